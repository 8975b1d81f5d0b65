"""Generate a SYNTHETIC production log of support tickets for `agent-evals sample`.

Everything here is invented: Lumen Commerce, its products, its customers, and
every ticket are made up from templates with a seeded random generator. No
real customer data is used. The personal data planted in some rows (emails,
phone numbers, Luhn-valid card numbers, mod-97-valid IBANs, IP addresses) is
random and exists so the redaction can be tested; none of it belongs to anyone.

The log looks like a request log of the `ticket-triage` prompt:

    {"ts": "2026-10-03T14:05:09Z", "request_id": "req-...", "conversation_id": "conv-...",
     "payload": {"subject": ..., "body": ..., "channel": "email", "product": "Shopwave", "customer": ...},
     "output": "{\"summary\": ..., \"disposition\": ...}",
     "resolution": {"disposition": "refund", "agent": "..."},   # missing on some rows: not labelled yet
     "feedback": "thumbs_down" | "thumbs_up" | null,
     "meta": {"region": "EU", "app_version": "5.2.1"}}

The classes are skewed the way support traffic is: one in 200 tickets is a
cancellation. A share of the traffic is the same password-reset ticket, word
for word but for the customer, and some tickets are sent again from another
channel, so near-duplicate dropping has work to do.

    .venv/bin/python bench/gen_log.py /tmp/support.jsonl --rows 1000000 [--seed 0]
    .venv/bin/python bench/gen_log.py /tmp/support.csv --rows 20000      # nested fields as dotted columns
    .venv/bin/python bench/gen_log.py /tmp/support.parquet --rows 20000  # nested fields as structs
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MAPPING = {
    "vars.ticket.subject": "payload.subject",
    "vars.ticket.body": "payload.body",
    "vars.ticket.channel": "payload.channel",
    "vars.ticket.product": "payload.product",
    "vars.ticket.customer": "payload.customer",
    "label": "resolution.disposition",
    "timestamp": "ts",
    "cluster": "conversation_id",
    "output": "output",
    "feedback": "feedback",
}
"""The field mapping from this log to the `ticket-triage` prompt's variables."""

DISPOSITIONS = {
    "technical_issue": 0.38,
    "billing_question": 0.27,
    "account_access": 0.18,
    "refund": 0.10,
    "feature_request": 0.065,
    "cancellation": 0.005,
}
PRODUCTS = ("Shopwave", "Payrail", "Stockroom", "Tillpoint", "Mailbeam")
CHANNELS = ("email", "chat", "web")
FIRST = (
    "Priya",
    "Marcus",
    "Ana",
    "Tomasz",
    "Keiko",
    "Lena",
    "Omar",
    "Grace",
    "Jonas",
    "Fatima",
    "Luis",
    "Mei",
)
LAST = (
    "Nair",
    "Bell",
    "Ortiz",
    "Kowalski",
    "Sato",
    "Berg",
    "Haddad",
    "Okafor",
    "Weber",
    "Rossi",
    "Chen",
    "Diaz",
)
SHOPS = ("Textiles", "Bikes", "Coffee Co", "Garden Supply", "Bookshop", "Ceramics", "Outdoor", "Bakery")
START = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)

_TEMPLATES: dict[str, list[tuple[str, str]]] = {
    "refund": [
        (
            "Charged twice for {product}",
            "I was billed ${amount} twice on {day} for {product}, same invoice {order}. Please refund the duplicate charge.",
        ),
        (
            "{product} renewed, want my money back",
            "The {product} plan auto-renewed for ${amount} yesterday but we stopped using it in {month}. Can I get a refund?",
        ),
        (
            "Refund for order {order}",
            "The {item} from order {order} arrived broken. I don't want a replacement, please refund the ${amount}.",
        ),
        (
            "Cancelled but still charged",
            "We cancelled {product} on {day} and were still charged ${amount}. Please return the money.",
        ),
    ],
    "billing_question": [
        (
            "Question about my {product} invoice",
            "What is the ${amount} line called '{fee}' on this month's {product} invoice? I don't remember agreeing to it.",
        ),
        (
            "Change card on file",
            "Our company card expires next month. How do I update the payment method for {product} before invoice {order}?",
        ),
        (
            "VAT on {product}",
            "Do you charge VAT on {product} for businesses in {country}? Our accountant needs invoices with our VAT number.",
        ),
        (
            "Which plan am I on",
            "Can you tell me which {product} plan we are on and when the next ${amount} payment is due?",
        ),
    ],
    "technical_issue": [
        (
            "{product} {feature} is broken",
            "Since {day} the {feature} in {product} shows error {code} and nothing loads. We are losing sales, please fix it.",
        ),
        (
            "{product} not syncing",
            "{product} stopped syncing with our store {hours} hours ago. The sync page says {code}. Nothing changed on our side.",
        ),
        (
            "App crashes on {device}",
            "The {product} app crashes every time I open {feature} on our {device}. Error {code} flashes before it closes.",
        ),
        (
            "Slow {feature}",
            "{feature} in {product} takes over {hours} minutes to load since the last update. Is there an outage?",
        ),
    ],
    "account_access": [
        (
            "Can't log in to {product}",
            "I can't log in to my {product} account. I asked for a password reset {hours} times and the email never arrives.",
        ),
        (
            "Lost phone, two-factor",
            "I lost my phone and can't get past the two-factor code on {product}. How do I get back into the account?",
        ),
        (
            "Transfer account owner",
            "Our former manager set up {product} with her own login and has left. We need ownership moved to me.",
        ),
    ],
    "feature_request": [
        (
            "Please add {wish} to {product}",
            "It would be great if {product} could {wish_long}. Is that on the roadmap? We would use it right away.",
        ),
        (
            "Feature idea for {feature}",
            "Could {feature} in {product} support {wish}? Our team asks for it every week.",
        ),
    ],
    "cancellation": [
        (
            "Cancel {product}",
            "Please cancel our {product} subscription at the end of this billing period. We are moving to another tool.",
        ),
        (
            "Closing our account",
            "We are closing the business in {month}. How do I close the {product} account and stop all future charges?",
        ),
    ],
}
# The most common request, word for word but for the name: what diversity sampling must not be swamped by.
_HOT = ("Password reset", "Hi, please reset my password, the reset link says it has expired. Thanks, {first}")
_FILL = {
    "fee": ("transaction surcharge", "platform fee", "overage", "support add-on"),
    "country": ("Ireland", "Germany", "Spain", "Poland", "Portugal"),
    "feature": (
        "checkout page",
        "inventory sync",
        "receipt printing",
        "campaign editor",
        "reports",
        "payouts",
    ),
    "device": ("Android tablet", "iPad", "Windows PC", "card reader"),
    "item": ("card reader", "receipt printer", "barcode scanner", "cash drawer"),
    "month": ("March", "June", "August", "September"),
    "wish": ("Apple Pay", "SMS alerts", "recurring orders", "dark mode", "CSV export", "a Shopify import"),
    "wish_long": (
        "send low-stock alerts by text message",
        "export every report to CSV",
        "schedule campaigns by time zone",
    ),
}


def _luhn_complete(prefix: str) -> str:
    total = 0
    for index, char in enumerate(reversed(prefix + "0")):
        digit = int(char)
        if index % 2:
            digit = digit * 2 - 9 if digit * 2 > 9 else digit * 2
        total += digit
    return prefix + str((10 - total % 10) % 10)


def _iban(rng: random.Random) -> str:
    bban = "".join(rng.choice("0123456789") for _ in range(18))
    numeric = "".join(str(int(c, 36)) for c in bban + "DE00")
    check = 98 - int(numeric) % 97
    compact = f"DE{check:02d}{bban}"
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def pii(rng: random.Random, kind: str) -> str:
    """One random, made-up value of a kind of personal data."""
    if kind == "email":
        return f"{rng.choice(FIRST).lower()}.{rng.choice(LAST).lower()}{rng.randrange(100)}@example-{rng.randrange(1000)}.com"
    if kind == "phone":
        return f"+44 20 {rng.randrange(1000, 9999)} {rng.randrange(1000, 9999)}"
    if kind == "card":
        number = _luhn_complete("4" + "".join(rng.choice("0123456789") for _ in range(14)))
        return " ".join(number[i : i + 4] for i in range(0, 16, 4))
    if kind == "iban":
        return _iban(rng)
    if kind == "ip":
        return f"{rng.randrange(11, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    raise ValueError(kind)


_PII_SENTENCES = {
    "email": "You can reach me at {value}.",
    "phone": "Call me back on {value} please.",
    "card": "The card used was {value}.",
    "iban": "Please send it to IBAN {value}.",
    "ip": "The login attempts came from {value}.",
}
PII_KINDS = tuple(_PII_SENTENCES)


def rows(
    n: int,
    *,
    seed: int = 0,
    start: int = 0,
    pii_rate: float = 0.05,
    unlabelled_rate: float = 0.03,
    hot_rate: float = 0.08,
    resend_rate: float = 0.04,
    planted: dict[str, list[str]] | None = None,
) -> Iterator[dict[str, Any]]:
    """`n` synthetic log rows, numbered from `start` (the same seed and numbers give the same rows).

    Args:
        pii_rate: share of rows with a planted piece of personal data.
        unlabelled_rate: share of rows without a `resolution` (not labelled yet).
        hot_rate: share of rows that are the same password-reset ticket.
        resend_rate: share of rows that re-send the previous ticket from another channel (near-duplicates).
        planted: when given, every planted value is appended under its kind.
    """
    rates = (pii_rate, unlabelled_rate, hot_rate)
    for index in range(start, start + n):
        rng = random.Random(f"{seed}:{index}:resend")
        if index > 0 and rng.random() < resend_rate:
            row = _row(seed, index - 1, rates, planted=None)
            payload = row["payload"]
            payload["channel"] = rng.choice([c for c in CHANNELS if c != payload["channel"]])
            row["ts"] = _time(index, rng)
            row["request_id"] = f"req-{seed}-{index:08d}"
            yield row
        else:
            yield _row(seed, index, rates, planted)


def _time(index: int, rng: random.Random) -> str:
    moment = START + dt.timedelta(seconds=index * 2.6 + rng.random())
    return moment.isoformat().replace("+00:00", "Z")


def _row(
    seed: int, index: int, rates: tuple[float, float, float], planted: dict[str, list[str]] | None
) -> dict[str, Any]:
    pii_rate, unlabelled_rate, hot_rate = rates
    names = list(DISPOSITIONS)
    weights = list(DISPOSITIONS.values())
    rng = random.Random(f"{seed}:{index}")
    first, last = rng.choice(FIRST), rng.choice(LAST)
    product = rng.choice(PRODUCTS)
    slots = {
        "product": product,
        "amount": f"{rng.randrange(9, 400)}.{rng.randrange(100):02d}",
        "order": f"#{rng.randrange(10000, 99999)}",
        "day": f"October {rng.randrange(1, 29)}",
        "code": f"{product[:2].upper()}-{rng.randrange(100, 999)}",
        "hours": str(rng.randrange(2, 30)),
        "first": first,
    }
    slots.update({key: rng.choice(options) for key, options in _FILL.items()})
    if rng.random() < hot_rate:
        disposition = "account_access"
        subject, body = _HOT
    else:
        disposition = rng.choices(names, weights)[0]
        subject, body = rng.choice(_TEMPLATES[disposition])
    subject, body = subject.format(**slots), body.format(**slots)
    customer = f"{first} {last} ({rng.choice(SHOPS)})"
    if rng.random() < pii_rate:
        kind = rng.choice(PII_KINDS)
        value = pii(rng, kind)
        body = f"{body} {_PII_SENTENCES[kind].format(value=value)}"
        if planted is not None:
            planted.setdefault(kind, []).append(value)
        if rng.random() < 0.3:
            email = pii(rng, "email")
            customer = f"{first} {last} <{email}>"
            if planted is not None:
                planted.setdefault("email", []).append(email)
    row: dict[str, Any] = {
        "ts": _time(index, rng),
        "request_id": f"req-{seed}-{index:08d}",
        "conversation_id": f"conv-{seed}-{index // 3:07d}",
        "payload": {
            "subject": subject,
            "body": body,
            "channel": rng.choice(CHANNELS),
            "product": product,
            "customer": customer,
        },
        "output": json.dumps({"summary": f"{product}: {subject}", "disposition": disposition}),
        "feedback": rng.choice(("thumbs_up", "thumbs_down", None, None, None)),
        "meta": {"region": rng.choice(("EU", "US", "APAC")), "app_version": rng.choice(("5.2.1", "5.3.0"))},
    }
    if rng.random() >= unlabelled_rate:
        row["resolution"] = {"disposition": disposition, "agent": f"agent-{rng.randrange(40):02d}"}
    return row


def flatten(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested fields as dotted columns (`payload.subject`), as a CSV export would have them."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def write_log(path: Path, n: int, *, seed: int = 0, **options: Any) -> Path:
    """Write `n` rows to `path` as JSONL, CSV or Parquet (by its suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    generated = rows(n, seed=seed, **options)
    if path.suffix == ".jsonl":
        with path.open("w", encoding="utf-8") as handle:
            for row in generated:
                handle.write(json.dumps(row) + "\n")
    elif path.suffix == ".csv":
        import csv

        columns = [
            "ts", "request_id", "conversation_id", "payload.subject", "payload.body", "payload.channel",
            "payload.product", "payload.customer", "output", "feedback", "meta.region", "meta.app_version",
            "resolution.disposition", "resolution.agent",
        ]  # fmt: skip
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            for row in generated:
                writer.writerow(flatten(row))
    elif path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        batch: list[dict[str, Any]] = []
        writer = None
        for row in generated:
            row.setdefault("resolution", None)
            batch.append(row)
            if len(batch) == 50_000:
                writer = _write_batch(pq, pa, path, batch, writer)
                batch = []
        if batch or writer is None:
            writer = _write_batch(pq, pa, path, batch, writer)
        writer.close()
    else:
        raise SystemExit(f"{path}: name it .jsonl, .csv or .parquet")
    return path


def _write_batch(pq: Any, pa: Any, path: Path, batch: list[dict[str, Any]], writer: Any) -> Any:
    schema = pa.schema(
        [
            ("ts", pa.string()),
            ("request_id", pa.string()),
            ("conversation_id", pa.string()),
            (
                "payload",
                pa.struct([(k, pa.string()) for k in ("subject", "body", "channel", "product", "customer")]),
            ),
            ("output", pa.string()),
            ("feedback", pa.string()),
            ("meta", pa.struct([("region", pa.string()), ("app_version", pa.string())])),
            ("resolution", pa.struct([("disposition", pa.string()), ("agent", pa.string())])),
        ]
    )
    table = pa.Table.from_pylist(batch, schema=schema)
    if writer is None:
        writer = pq.ParquetWriter(path, schema)
    writer.write_table(table)
    return writer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="the log to write (.jsonl, .csv or .parquet)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pii-rate", type=float, default=0.05)
    args = parser.parse_args(argv)
    write_log(args.output, args.rows, seed=args.seed, pii_rate=args.pii_rate)
    size = args.output.stat().st_size / 1e6
    print(f"wrote {args.rows:,} synthetic rows to {args.output} ({size:.0f} MB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
