"""After the merge, on a SYNTHETIC production log: `monitor`, `verify`, `freshness`, a page, the dashboard.

Everything here is synthetic: the tickets, the production answers, the user feedback, the
business metric, the dates, the pull request and the secrets. The commands are the real
`agent-evals` ones, run in this process (`agent_evals.cli.main`), offline, with no key; the
pages go over real HTTP to a stand-in receiver on 127.0.0.1 (receiver.py) that this script
starts and stops.

The story (examples/monitor/README.md):

1. six weeks of production traffic of the ticket-triage prompt, from 2026-10-05, about 120
   tickets a day over four channels (email, chat, web, phone); the log says which prompt
   version answered each ticket;
2. on 2026-10-26 version 2 goes live (its PR passed the gate: the eval set has no phone
   tickets, and the edit only changes how phone calls are summarised); from then on, phone
   tickets' summaries often run past the 40 words the eval set's rubric allows;
3. the business metric the eval set protects, first-contact resolution rate, dips after it;
4. `monitor` on a control window before the change finds nothing; on a window after it, it
   finds the drop in the phone stratum and pages the on-call once (PagerDuty and a webhook);
   again a day later it pages no more; `verify` puts the change's before/after in production
   and on the metric beside the gate's prediction; `freshness` names the phone stratum the
   eval set lacks and the `sample --append` command that fills it; `dashboard` draws it all.

Deterministic (seeded; every date fixed) and offline; about 15 seconds.

Usage:
    python examples/monitor/make_monitor_demo.py [OUT]      # default .agent-evals/demo-monitor
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import io
import json
import os
import random
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent / "history"))

from make_history import Repo  # noqa: E402 (the dashboard demo's git repository at synthetic times)
from receiver import PAGERDUTY_PATH, Receiver  # noqa: E402 (beside this script, not a package)

DEFAULT_OUT = Path(".agent-evals") / "demo-monitor"
MARKER = ".agent-evals-demo-monitor"
"""A file in OUT saying this script made it: a folder without it is never emptied."""
PROMPT = "prompts/ticket-triage.yaml"
EVALSET = "evalsets/ticket-triage.yaml"
LOG = "ticket-triage-production.jsonl"
SEED = 16

START = dt.datetime(2026, 10, 5)
"""The log's first day (a Monday, naive UTC); it spans DAYS days."""
DAYS = 42
LIVE = dt.datetime(2026, 10, 26, 10, 0)
"""When version 2 went live (recorded with `agent-evals history deploy`)."""
GATE_AT = dt.datetime(2026, 10, 23, 15, 0)
"""When the gate judged version 2's pull request."""
PR = 52
CONTROL = ("2026-10-19", "2026-10-26")
"""The window before the change: `monitor` should find nothing."""
AFTER = ("2026-11-02", "2026-11-09")
"""A window after it: the drop in the phone stratum."""
NEXT_DAY = ("2026-11-03", "2026-11-10")
"""The next day's window (a daily cron job): the same incident, no second page."""

ROUTING_KEY_ENV = "PAGERDUTY_ROUTING_KEY"
WEBHOOK_ENV = "SUPPORT_SLACK_WEBHOOK_URL"
SYNTHETIC_ROUTING_KEY = "R0UT1NGKEYSYNTHETICDEMO000000000"
SYNTHETIC_WEBHOOK_TOKEN = "synthetic0demo0token0000"

# --- the synthetic traffic ------------------------------------------------------------------------

CHANNELS = {"email": 0.34, "chat": 0.28, "web": 0.18, "phone": 0.20}
"""Traffic shares; the eval set has email, chat and web tickets, and no phone ones."""
PRODUCTS = ("Shopwave", "Payrail", "Stockroom", "Tillpoint", "Mailbeam")
CUSTOMERS = (
    "Priya Nair (Nair Textiles)",
    "Marcus Bell (Bell's Bikes)",
    "Hana Kobayashi (Kobo Stationery)",
    "Tomás Rivera (Rivera Coffee Roasters)",
    "Grace Okafor (Okafor Naturals)",
    "Lena Fischer (Fischer Hardware)",
    "Owen Hughes (Hughes Outdoor)",
    "Mei Chen (Lantern Tea House)",
    "Ivan Petrov (Petrov Prints)",
    "Nadia Haddad (Cedar Grill)",
    "Elena Rossi (Rossi Pasta Co)",
    "Bea Thornton (Thornton Honey)",
)
TICKETS: dict[str, list[tuple[str, str, str]]] = {
    # disposition: (subject, body, summary); {p} is the product
    "refund": [
        ("Charged twice for {p}", "I was charged twice this month for {p}. Please refund the duplicate charge.",
         "Customer was charged twice this month for {p} and wants the duplicate refunded."),
        ("Refund the {p} renewal", "{p} renewed yesterday but we stopped using it months ago. Can you refund the renewal?",
         "{p} renewed on an unused account; customer asks for the renewal to be refunded."),
    ],
    "billing_question": [
        ("Question about my {p} invoice", "What is the extra line on this month's {p} invoice? I don't recognise it.",
         "Customer asks what an unfamiliar line on this month's {p} invoice is for."),
        ("{p} annual billing", "Is there a discount if we pay for {p} yearly instead of monthly?",
         "Customer asks whether {p} is cheaper on annual billing."),
    ],
    "technical_issue": [
        ("{p} keeps failing", "{p} shows an error every time we try to save since this morning's update.",
         "{p} shows an error on every save since this morning's update."),
        ("{p} is very slow", "Pages in {p} take over a minute to load and often time out.",
         "{p} pages take over a minute to load and time out."),
    ],
    "account_access": [
        ("Locked out of {p}", "I can't log in to {p}; the password reset email never arrives.",
         "Customer cannot log in to {p} because reset emails never arrive."),
    ],
    "feature_request": [
        ("Idea for {p}", "Could {p} send low-stock alerts by text message? We'd use it daily.",
         "Customer asks for {p} to send alerts by text message."),
    ],
    "cancellation": [
        ("Cancel {p}", "Please cancel our {p} subscription at the end of this billing period.",
         "Customer wants the {p} subscription cancelled at the end of the period."),
    ],
}  # fmt: skip
DISPOSITIONS = tuple(TICKETS)
FILLER = (
    "They explained the whole history of their account, their previous calls, what they had tried "
    "with their bank, and asked several times to be called back by the same person later in the week "
    "because they will be travelling and can only talk in the afternoons."
)
"""What version 2 adds to a phone call's summary (it summarises the whole call: over 40 words)."""

P_NO_PRODUCT = 0.05
"""A summary that forgets to name the product (fails the rubric's mentions_var), any version."""
P_TOO_LONG = 0.02
"""A summary over 40 words, any version."""
P_LONG_PHONE_V2 = 0.40
"""Version 2 on a phone call: the summary retells the whole call."""
METRIC = "first-contact resolution rate"
METRIC_LEVEL = 0.781
METRIC_DIP = 0.027
"""How far the synthetic metric falls once version 2 is live (phone tickets bounce back)."""


def _ticket(rng: random.Random, channel: str) -> tuple[dict[str, str], str, str]:
    disposition = rng.choice(DISPOSITIONS)
    subject, body, summary = rng.choice(TICKETS[disposition])
    product = rng.choice(PRODUCTS)
    if channel == "phone":
        body = f"Call transcript (synthetic): caller says {body[0].lower()}{body[1:]} They called twice about it."
    ticket = {
        "subject": subject.format(p=product),
        "body": body.format(p=product),
        "channel": channel,
        "product": product,
        "customer": rng.choice(CUSTOMERS),
    }
    return ticket, disposition, summary.format(p=product)


def _answer(rng: random.Random, ticket: dict[str, str], summary: str, version: int) -> tuple[str, bool]:
    """The production answer (JSON text) and whether it should pass the rubric."""
    ok = True
    draw = rng.random()
    if version == 2 and ticket["channel"] == "phone" and draw < P_LONG_PHONE_V2:
        summary = f"Phone call about {ticket['product']}: {summary} {FILLER}"
        ok = False
    elif draw > 1 - P_NO_PRODUCT:
        summary = re.sub(ticket["product"], "the product", summary)
        ok = False
    elif draw > 1 - P_NO_PRODUCT - P_TOO_LONG:
        summary = f"{summary} {FILLER}"
        ok = False
    return summary, ok


def write_log(path: Path) -> int:
    """The SYNTHETIC production log, one JSON object per ticket; every row says `"synthetic": true`."""
    rng = random.Random(SEED)
    rows = 0
    with path.open("w", encoding="utf-8") as fh:
        for day in range(DAYS):
            date = START + dt.timedelta(days=day)
            count = 95 + rng.randrange(50) - (30 if date.weekday() >= 5 else 0)
            times = sorted(rng.uniform(6 * 3600, 22 * 3600) for _ in range(count))
            for seconds in times:
                at = date + dt.timedelta(seconds=round(seconds))
                version = 2 if at >= LIVE else 1
                channel = rng.choices(tuple(CHANNELS), weights=tuple(CHANNELS.values()))[0]
                ticket, disposition, summary = _ticket(rng, channel)
                summary, ok = _answer(rng, ticket, summary, version)
                rows += 1
                row: dict[str, Any] = {
                    "synthetic": True,
                    "ts": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "request_id": f"req-{rows:06d}",
                    "prompt": {"id": "ticket-triage", "version": version},
                    "ticket": ticket,
                    "response": json.dumps({"summary": summary, "disposition": disposition}),
                }
                if rng.random() < 0.3:  # a third of the agents rate the suggestion
                    good = rng.random() < (0.85 if ok else 0.35)
                    row["feedback"] = {"rating": "up" if good else "down"}
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return rows


def write_metric(path: Path) -> None:
    """A daily SYNTHETIC first-contact resolution rate: AR(1) noise around a level that dips once
    version 2 is live."""
    rng = random.Random(SEED + 1)
    drift = 0.0
    with path.open("w", newline="", encoding="utf-8") as fh:
        fh.write(f"# SYNTHETIC: made by examples/monitor/make_monitor_demo.py, not real data ({METRIC})\n")
        writer = csv.writer(fh)
        writer.writerow(["metric", "at", "value"])
        for day in range(DAYS):
            at = START + dt.timedelta(days=day, hours=23)
            drift = 0.5 * drift + rng.gauss(0, 0.004)
            level = METRIC_LEVEL - (METRIC_DIP if at >= LIVE else 0.0)
            writer.writerow([METRIC, at.strftime("%Y-%m-%dT%H:%M:%SZ"), round(level + drift, 4)])


# --- the project copy and its git history ------------------------------------------------------------

V2_RULE = (
    "      Do not apologize and do not mention being an AI.\n",
    "      Do not apologize and do not mention being an AI.\n"
    "      For a phone call the body is the call transcript: summarise the whole call, so the\n"
    "      next agent does not have to ask the customer again.\n",
)
"""Version 2's edit: the instruction that makes phone calls' summaries run long."""


def alerts_config(receiver_url: str) -> str:
    return (
        "# SYNTHETIC demo project (examples/monitor/make_monitor_demo.py): pages go to a local stand-in.\n"
        "schema_version: 1\n"
        "alerts:\n"
        "  channels:\n"
        "    oncall:\n"
        "      type: pagerduty\n"
        f"      routing_key_env: {ROUTING_KEY_ENV}\n"
        f"      url: {receiver_url}{PAGERDUTY_PATH}\n"
        "    support-slack:\n"
        "      type: webhook\n"
        f"      url_env: {WEBHOOK_ENV}\n"
        "  routes:\n"
        "    pagerduty:support-automation-primary: [oncall, support-slack]\n"
    )


# --- running the tool ------------------------------------------------------------------------------


@dataclass
class Step:
    """One command of the demo: its arguments, exit code and output."""

    name: str
    args: list[str]
    code: int
    output: str
    key: list[str] = field(default_factory=list)


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class Runner:
    """`agent-evals ARGS` in this process, against OUT's history; every output kept in OUT's log."""

    def __init__(self, out: Path, project: Path, log: Any) -> None:
        self.out, self.project, self.log = out, project, log
        self.steps: list[Step] = []

    def __call__(
        self, name: str, args: Sequence[str], *, expect: int, store: Path | None = None, key: str = ""
    ) -> Step:
        from agent_evals.cli import main

        cwd = Path.cwd()
        buffer = io.StringIO()
        url = f"sqlite:///{store or self.out / 'history.sqlite3'}"
        try:
            with (
                environment({"AGENT_EVALS_HISTORY_URL": url, "COLUMNS": "200", "NO_COLOR": "1"}),
                contextlib.redirect_stdout(buffer),
                contextlib.redirect_stderr(buffer),
            ):
                code = main(["-C", str(self.project), *args])
        finally:
            os.chdir(cwd)
        output = buffer.getvalue()
        shown = " ".join(args).replace(str(self.out) + os.sep, "")
        print(f"$ agent-evals {shown}\n{output}(exit {code})\n", file=self.log, flush=True)
        step = Step(name, list(args), code, output)
        if key:
            step.key = _key_lines(output, key)
        self.steps.append(step)
        if code != expect:
            raise SystemExit(
                f"make_monitor_demo: {name} exited {code}, expected {expect} (see {self.log.name})"
            )
        return step


def _key_lines(output: str, key: str) -> list[str]:
    """The lines matching `key`, each with the lines rich wrapped it onto (up to a table or a blank)."""
    found: list[str] = []
    joining = False
    for line in output.splitlines():
        if re.search(key, line):
            found.append(line.rstrip())
            joining = True
        elif joining and line.strip() and not line[0].isspace() and line[0] not in "┃┏━│└┡":
            found[-1] += " " + line.strip()
        else:
            joining = False
    return found


def shift_report(path: Path, at: dt.datetime) -> None:
    """Move a gate report onto the synthetic calendar (its runs' start times give the verdict's time)."""
    document = json.loads(path.read_text(encoding="utf-8"))
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    for pair in document.get("pairs", []):
        for run in (pair.get("runs") or {}).values():
            if isinstance(run, dict):
                run["started_at"] = stamp
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


# --- the demo --------------------------------------------------------------------------------------


def prepare(out: Path) -> None:
    """An empty OUT: made, or emptied when this script made it before."""
    if out.exists():
        if not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists()):
            raise SystemExit(f"{out}: not empty and not made by make_monitor_demo.py (choose another folder)")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("made by examples/monitor/make_monitor_demo.py (synthetic demo data)\n")


def make(
    out: Path, *, routing_key: str = SYNTHETIC_ROUTING_KEY, webhook_token: str = SYNTHETIC_WEBHOOK_TOKEN
) -> int:
    """Build the whole demo into `out` and print its transcript; 0 when every step did what it should."""
    out = out.resolve()
    prepare(out)
    log_path = out / LOG
    rows = write_log(log_path)
    write_metric(out / "metric.csv")
    project = out / "project"
    repo = Repo(project)
    for rel in (PROMPT, EVALSET):
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / rel, project / rel)
    (project / ".gitignore").write_text(".agent-evals/\n")
    webhook_path = f"/services/T0SYNTH/B0DEMO/{webhook_token}"
    with (
        Receiver(routing_key=routing_key, webhook_path=webhook_path) as receiver,
        (out / "make_monitor_demo.log").open("w", encoding="utf-8") as log,
        environment({ROUTING_KEY_ENV: routing_key, WEBHOOK_ENV: receiver.url + webhook_path}),
    ):
        (project / "agent-evals.yaml").write_text(alerts_config(receiver.url), encoding="utf-8")
        repo.commit(
            "Ticket triage prompt and eval set (synthetic example), version 1", START - dt.timedelta(days=30)
        )
        run = Runner(out, project, log)
        run("metric", ["metric", "import", str(out / "metric.csv")], expect=0, key="point")
        window = ["monitor", str(log_path), "--prompt", "ticket-triage"]
        run("control", [*window, "--since", CONTROL[0], "--until", CONTROL[1]], expect=0, key=r"^monitor ")
        # Version 2 on its own branch, gated by `ci` against main (its own history in a throwaway store).
        repo.checkout("summarise-phone-calls", new=True)
        prompt = project / PROMPT
        text = prompt.read_text(encoding="utf-8")
        prompt.write_text(
            text.replace(*V2_RULE).replace("\nversion: 1\n", "\nversion: 2\n"), encoding="utf-8"
        )
        repo.commit("Summarise the whole phone call (prompt version 2)", GATE_AT - dt.timedelta(hours=1))
        report = out / "gate-v2.json"
        with tempfile.TemporaryDirectory(prefix="monitor-demo-") as scratch:
            ci = ["ci", "--base", "main", "--json", str(report), "--output", str(out / "ci")]
            run("gate", ci, expect=0, store=Path(scratch) / "throwaway.sqlite3", key=r"ticket-triage")
        shift_report(report, GATE_AT)
        run("import", ["history", "import", str(report), "--pr", str(PR)], expect=0)
        repo.merge(
            "summarise-phone-calls", f"Merge pull request #{PR} from lumen/summarise-phone-calls", LIVE
        )
        run(
            "deploy",
            ["history", "deploy", "ticket-triage", "2", "--at", LIVE.strftime("%Y-%m-%dT%H:%MZ")],
            expect=0,
            key="live",
        )
        run(
            "after",
            [*window, "--since", AFTER[0], "--until", AFTER[1]],
            expect=1,
            key=r"^(monitor |freshness:)",
        )
        run("again", [*window, "--since", NEXT_DAY[0], "--until", NEXT_DAY[1]], expect=1, key=r"^monitor ")
        run("verify", ["verify", "ticket-triage"], expect=1, key=r"^(DROP|ok|cannot tell): verify")
        run(
            "freshness",
            [
                "freshness",
                str(log_path),
                "--evalset",
                "ticket-triage",
                "--since",
                AFTER[0],
                "--until",
                AFTER[1],
            ],
            expect=0,
            key=r"^(freshness |fix: )",
        )
        run("dashboard", ["dashboard", "--html", str(out / "dashboard.html")], expect=0, key="dashboard")
    received = receiver.shown()
    (out / "received.json").write_text(
        json.dumps(received, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    transcript = render(out, run.steps, received, rows)
    (out / "transcript.txt").write_text(transcript, encoding="utf-8")
    print(transcript, end="")
    print(
        f"\nmonitor demo: {out} (log {LOG}, history.sqlite3, dashboard.html, received.json, make_monitor_demo.log)"
    )
    return 0


def render(out: Path, steps: Sequence[Step], received: Sequence[dict[str, Any]], rows: int) -> str:
    """The short transcript for the README: each command, the lines that matter, what was paged."""
    first, last = START, START + dt.timedelta(days=DAYS - 1)
    lines = [
        f"# {LOG}: {rows} SYNTHETIC tickets {first:%Y-%m-%d}..{last:%Y-%m-%d}, "
        f"version 2 live from {LIVE:%Y-%m-%d %H:%M}Z"
    ]
    for step in steps:
        shown = " ".join(a.replace(str(out) + os.sep, "") for a in step.args)
        lines.append(f"$ agent-evals {shown}   # exit {step.code}")
        lines += [f"  {line.strip().replace(str(out) + os.sep, '')}" for line in step.key]
        if step.name in ("control", "after", "again", "verify"):
            found = re.search(r"""["']action["']: ["'](\w+)["']""", step.output)
            lines.append(f"  alert action: {found.group(1) if found else '(none printed)'}")
    lines.append(f"# the stand-in receiver on 127.0.0.1 got {len(received)} request(s):")
    for request in received:
        body = request["body"]
        if request["receiver"] == "pagerduty":
            summary = (body.get("payload") or {}).get("summary", "")
            lines.append(
                f"  pagerduty {body.get('event_action')} {body.get('dedup_key')}: {_cut(summary, 150)}"
            )
        else:
            lines.append(f"  {request['receiver']}: {_cut(str(body.get('text', body)), 170)}")
    return "\n".join(lines) + "\n"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "out", nargs="?", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})"
    )
    args = parser.parse_args(argv)
    return make(args.out)


if __name__ == "__main__":
    sys.exit(main())
