"""Write the SYNTHETIC production log of the refund agent: examples/logs/refund-agent-production.jsonl.

Nothing here is real. Harbor & Pine, its customers, their orders, e-mail addresses and
phone numbers are invented (the domains are example.com/example.org and the phone numbers
are the UK's and the US's fictional ranges), and every row says `"synthetic": true`.

The log is what a production refund agent would write: one JSON object per line, one
conversation each, in OpenAI message format (`messages`: the system prompt, the customer's
message, assistant messages with `tool_calls` whose `arguments` are JSON strings, `tool`
messages answering them by `tool_call_id`, and the final JSON decision), with the request's
fields (`request`), a little metadata (`meta`) and, for most conversations, a QA review
(`review`: the decision and the tools a reviewer approved). The simulated agent follows
prompts/refund-agent.yaml as it was in production (version 3, `SYSTEM_PROMPT`): look the
order up, check the refund policy, then refund or escalate. About one conversation in twenty
has no order id: the agent asked for it and called no tool, and those rows have no review
(`sample --labelled-only` leaves them out).

Seeded: the same seed writes the same bytes.

    python examples/logs/make_refund_log.py                     # 300 conversations, seed 14
    python examples/logs/make_refund_log.py --n 1000 --seed 3 --out /tmp/refunds.jsonl
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import string
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEFAULT_OUT = HERE / "refund-agent-production.jsonl"

WINDOW_DAYS = {"apparel": 30, "home": 30, "electronics": 14, "grocery": 7}
"""The (synthetic) refund policy: days after delivery a category stays refundable."""
FINAL_SALE_RATE = 0.12
NO_ORDER_ID_RATE = 0.05
REVIEWED_RATE = 0.9

ITEMS: dict[str, list[tuple[str, float, float]]] = {
    # category: (item, lowest price, highest price)
    "apparel": [
        ("linen shirt", 29.0, 69.0),
        ("rain jacket", 79.0, 189.0),
        ("wool scarf", 19.0, 49.0),
        ("running shoes", 59.0, 149.0),
        ("denim jeans", 39.0, 99.0),
    ],
    "home": [
        ("table lamp", 25.0, 120.0),
        ("cotton rug", 49.0, 299.0),
        ("cast-iron pan", 29.0, 89.0),
        ("bath towel set", 19.0, 59.0),
        ("ceramic vase", 15.0, 75.0),
    ],
    "electronics": [
        ("wireless headphones", 49.0, 249.0),
        ("smart speaker", 39.0, 199.0),
        ("e-reader", 89.0, 179.0),
        ("phone charger", 12.0, 39.0),
        ("fitness tracker", 49.0, 149.0),
    ],
    "grocery": [
        ("coffee beans", 9.0, 29.0),
        ("olive oil", 12.0, 35.0),
        ("tea sampler", 14.0, 32.0),
        ("dark chocolate box", 8.0, 24.0),
    ],
}
CATEGORY_WEIGHTS = {"apparel": 0.32, "home": 0.28, "electronics": 0.25, "grocery": 0.15}

COMPLAINTS: dict[str, list[str]] = {
    "apparel": [
        "The {item} runs two sizes small.",
        "The colour of the {item} is nothing like the photos.",
        "The {item} came with a torn seam.",
        "I changed my mind about the {item}.",
    ],
    "home": [
        "The {item} arrived with a crack in it.",
        "The {item} is much smaller than the listing said.",
        "The {item} smells strongly of chemicals.",
        "We do not need the {item} any more.",
    ],
    "electronics": [
        "The {item} stopped charging after a week.",
        "The {item} will not pair with my phone.",
        "The {item} has a dead pixel line across the screen.",
        "The {item} is not what I expected.",
    ],
    "grocery": [
        "The {item} tasted stale.",
        "The {item} leaked all over the box.",
        "The {item} was past its best-before date.",
    ],
}
OPENINGS = [
    "Hi, I'd like a refund for order {oid}. {complaint}",
    "Order {oid}: {complaint} Please refund me.",
    "{complaint} The order number is {oid}. Can I get my money back?",
    "Hello. Requesting a refund on #{oid}. {complaint}",
    "{complaint} I want a refund for {oid}, please.",
    "Can you refund order {oid}? {complaint} Thanks.",
]
NO_ID_OPENINGS = [
    "{complaint} I want my money back.",
    "Hi, I need a refund. {complaint}",
]
CONTACT = [
    "",
    "",
    "",
    " You can reach me at {email}.",
    " Call me on +44 20 7946 {phone4} if needed.",
    " My number is (212) 555-01{phone2}.",
]
FIRST = [
    "Ana",
    "Bilal",
    "Chloe",
    "Dmitri",
    "Esther",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kemi",
    "Luca",
    "Maya",
    "Nils",
    "Olga",
    "Pedro",
    "Quinn",
    "Rosa",
    "Sami",
    "Tara",
]
LAST = [
    "Duarte",
    "Okafor",
    "Lindqvist",
    "Marsh",
    "Novak",
    "Haddad",
    "Ferreira",
    "Tanaka",
    "Becker",
    "Moreau",
    "Adeyemi",
    "Kowalski",
    "Ibarra",
    "Sato",
    "Whitfield",
    "Varga",
]
CHANNELS = ["chat", "email", "web"]
START = dt.datetime(2026, 10, 1, 8, 0, tzinfo=dt.UTC)
SYSTEM_PROMPT = """\
You are the refund agent of Harbor & Pine, an online shop for apparel, homeware,
electronics and groceries. A customer asks for their money back for an order.

Work through these steps, one tool call at a time:
1. Call lookup_order with the order_id the customer gives.
2. Check the refund policy: call lookup_policy with the order's category, days_since_delivery and final_sale.
3. If lookup_policy says `eligible` is true, call issue_refund with the order_id and the order's amount; otherwise call escalate_to_human with the order_id and the policy's reason.
4. Answer with one JSON object: "decision" (refund or escalate), "order_id", "refund_id" when you issued a refund, and "reason" in the policy's words.

Never promise a refund in words: only issue_refund refunds. Do not apologize and do
not mention being an AI.
"""
"""The system prompt production ran when the log was written: prompts/refund-agent.yaml, version 3."""


def _call_id(rng: random.Random) -> str:
    return "call_" + "".join(rng.choices(string.ascii_letters + string.digits, k=24))


def _call(rng: random.Random, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": _call_id(rng),
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }


def _policy(category: str, days: int, final_sale: bool) -> dict[str, Any]:
    window = WINDOW_DAYS[category]
    if final_sale:
        return {
            "eligible": False,
            "reason": "final-sale items are not refundable",
            "window_days": window,
            "policy_version": "2026-09",
        }
    if days > window:
        return {
            "eligible": False,
            "reason": f"delivered {days} days ago; {category} orders are refundable within {window} days",
            "window_days": window,
            "policy_version": "2026-09",
        }
    return {
        "eligible": True,
        "reason": f"{category} orders are refundable within {window} days; delivered {days} days ago",
        "window_days": window,
        "policy_version": "2026-09",
    }


def conversation(rng: random.Random, index: int, system: str) -> dict[str, Any]:
    """One synthetic conversation of the production refund agent."""
    when = START + dt.timedelta(minutes=index * 83 + rng.randrange(60))
    first, last = rng.choice(FIRST), rng.choice(LAST)
    customer_id = f"cus-{rng.randrange(1, 260):04d}"
    category = rng.choices(list(CATEGORY_WEIGHTS), weights=list(CATEGORY_WEIGHTS.values()))[0]
    item, low, high = rng.choice(ITEMS[category])
    amount = round(round(rng.uniform(low, high) * 2) / 2 - 0.01, 2)  # prices end in .49 or .99
    days = rng.choice([rng.randrange(0, 8), rng.randrange(0, 31), rng.randrange(8, 70)])
    final_sale = rng.random() < FINAL_SALE_RATE
    order_id = f"HP-{rng.randrange(100000, 999999)}"
    complaint = rng.choice(COMPLAINTS[category]).format(item=item)
    email = f"{first.lower()}.{last.lower()}@example.{rng.choice(['com', 'org'])}"
    contact = rng.choice(CONTACT).format(
        email=email, phone2=f"{rng.randrange(0, 100):02d}", phone4=f"0{rng.randrange(0, 1000):03d}"
    )
    has_id = rng.random() >= NO_ORDER_ID_RATE
    opening = rng.choice(OPENINGS if has_id else NO_ID_OPENINGS)
    message = opening.format(oid=order_id, complaint=complaint) + contact
    channel = rng.choice(CHANNELS)
    customer = f"{first} {last}"
    user = f"Channel: {channel}\nCustomer: {customer}\n\n{message}\n"
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": system},
        {"role": "user", "content": user},
    ]
    row: dict[str, Any] = {
        "synthetic": True,
        "conversation_id": f"conv-{when:%Y%m%d}-{index:04d}",
        "timestamp": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "agent": {"prompt": "refund-agent", "version": 3, "model": "synthetic-prod-model"},
        "request": {"channel": channel, "customer": customer, "customer_id": customer_id, "message": message},
        "meta": {"category": category},
    }
    if not has_id:
        answer = "Could you send me the order id (it starts with HP-) so I can look the order up?"
        messages.append({"role": "assistant", "content": answer})
        row.update(
            messages=messages, review=None, meta={"category": category, "outcome": "asked_for_order_id"}
        )
        return row

    delivered = (when - dt.timedelta(days=days)).date().isoformat()
    order = {
        "order_id": order_id,
        "status": "delivered",
        "item": item,
        "category": category,
        "amount": amount,
        "currency": "USD",
        "delivered_on": delivered,
        "days_since_delivery": days,
        "final_sale": final_sale,
        "customer_email": email,
    }
    policy = _policy(category, days, final_sale)
    steps: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        ("lookup_order", {"order_id": order_id}, order),
        (
            "lookup_policy",
            {"category": category, "days_since_delivery": days, "final_sale": final_sale},
            policy,
        ),
    ]
    if policy["eligible"]:
        refund_id = f"RF-{rng.randrange(100000, 999999)}"
        steps.append(
            (
                "issue_refund",
                {"order_id": order_id, "amount": amount},
                {"refund_id": refund_id, "status": "issued", "amount": amount, "currency": "USD"},
            )
        )
        decision: dict[str, Any] = {
            "decision": "refund",
            "order_id": order_id,
            "refund_id": refund_id,
            "reason": policy["reason"],
        }
    else:
        steps.append(
            (
                "escalate_to_human",
                {"order_id": order_id, "reason": policy["reason"]},
                {
                    "ticket_id": f"ESC-{rng.randrange(10000, 99999)}",
                    "queue": "refunds-review",
                    "status": "open",
                },
            )
        )
        decision = {"decision": "escalate", "order_id": order_id, "reason": policy["reason"]}
    for name, arguments, result in steps:
        call = _call(rng, name, arguments)
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        messages.append({"role": "tool", "tool_call_id": call["id"], "content": json.dumps(result)})
    messages.append({"role": "assistant", "content": json.dumps(decision)})
    row["messages"] = messages
    row["review"] = (
        {
            "reviewer": "synthetic-qa",
            "decision": decision["decision"],
            "tools": [name for name, _, _ in steps],
        }
        if rng.random() < REVIEWED_RATE
        else None
    )
    return row


def write_log(out: Path, n: int, seed: int) -> Path:
    """Write `n` synthetic conversations to `out` (JSON Lines); the same seed writes the same bytes."""
    rng = random.Random(seed)
    system = SYSTEM_PROMPT
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="\n") as f:
        for index in range(n):
            f.write(json.dumps(conversation(rng, index, system), ensure_ascii=False) + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=300, help="conversations (default 300)")
    parser.add_argument("--seed", type=int, default=14, help="random seed (default 14)")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT.relative_to(ROOT)}"
    )
    args = parser.parse_args()
    path = write_log(args.out, args.n, args.seed)
    print(f"wrote {args.n} synthetic conversations to {path}")


if __name__ == "__main__":
    main()
