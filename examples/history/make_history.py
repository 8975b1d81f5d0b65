"""Build a SYNTHETIC history of the bundled ticket-triage example, for the dashboard demo.

Everything here is synthetic: the tickets, the prompt edits, the pull request numbers, the
dates, the cost, the latency and the business metric. The runs and gate verdicts are real
(the `local` provider, offline, no key), made by the real `agent-evals` commands in a real
git repository, in under a minute; their times are then moved onto a ten-week calendar.

What it does (examples/history/README.md tells the story):

1. copies the ticket-triage prompt and eval set into `OUT/repo`, a new git repository, and
   commits it on `main` (version 1);
2. for each later version, on its own branch: edits the prompt (a few-shot example added,
   or the refund examples trimmed), commits, runs `agent-evals ci --base main`; a passing
   branch is merged into main with `--no-ff` (a failing one is abandoned); a nightly
   `agent-evals run` on main records the live version every week and after each merge;
3. gives every step a synthetic time (commits through GIT_AUTHOR_DATE/GIT_COMMITTER_DATE;
   run records and gate reports rewritten: run ids, `started_at`, `finished_at`, and a
   synthetic cost and latency per case, since the local model is free and instant), then
   `agent-evals history import`s them into `OUT/history.sqlite3`, each report with its PR;
4. writes a synthetic daily business-metric series (`OUT/metric.csv`, a seeded random walk
   that moves after the merges that raised the pass rate) and `agent-evals metric import`s it;
5. writes `agent-evals dashboard --html OUT/dashboard.html` (in the repository, so the live
   periods come from the merges on main), and with `--screenshot PATH` a Chromium screenshot.

While it builds, `ci` and `run` write their own history into a throwaway store (a temporary
folder): the demo store holds only the rewritten, imported records.

Usage:
    python examples/history/make_history.py [OUT] [--versions N] [--screenshot PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import hashlib
import json
import os
import random
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = Path(".agent-evals") / "demo-history"
MARKER = ".agent-evals-demo-history"
"""A file in OUT saying this script made it: a folder without it is never emptied."""
PROMPT = "prompts/ticket-triage.yaml"
EVALSET = "evalsets/ticket-triage.yaml"
START = dt.datetime(2026, 9, 7, 9, 0, tzinfo=dt.UTC)
"""Day 0 of the synthetic calendar (a Monday); the history spans DAYS days from it."""
DAYS = 70
FIRST_PR = 41
SEED = 15
AUTHOR = ("Support Automation (synthetic)", "support-automation@example.com")
PRICE_PER_MTOK = (0.15, 0.60)
"""Synthetic price of the demo's tokens, USD per million input and output tokens (the local model is free)."""
METRIC_START = 0.712
METRIC_GAIN = 0.6
"""How much of a merged version's pass-rate change reaches the synthetic business metric."""


# --- the prompt edits -------------------------------------------------------------------------------

_TEMPLATE = "  - role: user\n    content: |\n      Subject: {{ ticket.subject }}"
_PAIR = re.compile(
    r"  - role: user\n    content: \|\n(?:      .*\n|\n)*?"
    r"  - role: assistant\n    content: '.*\"disposition\": \"(\w+)\"\}'\n\n?"
)


def add_example(
    subject: str, product: str, channel: str, body: str, summary: str, disposition: str
) -> Callable[[str], str]:
    """An edit adding one few-shot example (a user ticket and the assistant's answer) before the input."""
    answer = json.dumps({"summary": summary, "disposition": disposition}).replace("'", "''")
    pair = (
        f"  - role: user\n    content: |\n      Subject: {subject}\n      Product: {product}\n"
        f"      Channel: {channel}\n\n      {body}\n  - role: assistant\n    content: '{answer}'\n\n"
    )

    def edit(text: str) -> str:
        if text.count(_TEMPLATE) != 1:
            raise SystemExit(f"{PROMPT}: cannot find the input message to add an example before")
        return text.replace(_TEMPLATE, pair + _TEMPLATE)

    return edit


def drop_examples(disposition: str) -> Callable[[str], str]:
    """An edit removing every few-shot example whose answer has this disposition."""

    def edit(text: str) -> str:
        return _PAIR.sub(lambda m: "" if m.group(1) == disposition else m.group(0), text)

    return edit


def set_version(text: str, version: int) -> str:
    return re.sub(r"(?m)^version: \d+$", f"version: {version}", text, count=1)


@dataclass(frozen=True)
class Change:
    """A prompt edit proposed on a branch, as one synthetic pull request."""

    branch: str
    title: str
    edit: Callable[[str], str]


# Versions 2, 3, ...: each edit is applied to main as it is then. With the offline model each
# changes a few answers; the comments say what the gate sees (72 cases, version 1 passes 58).
CHANGES = (
    Change(
        "double-charge-is-a-bug",
        "Add an example: a payment form charging twice is a technical issue",
        add_example(
            "Payrail charging customers twice",
            "Payrail",
            "web",
            "Since yesterday some of our customers are charged twice by Payrail when they press the "
            "pay button once. Looks like a bug in the payment form.",
            "Payrail payment form charges some customers twice for one click since yesterday; customer reports a bug.",
            "technical_issue",
        ),
    ),  # 60/72, two fixed, none regressed: passes
    Change(
        "trim-refund-examples",
        "Trim the prompt to save tokens: drop the refund examples",
        drop_examples("refund"),
    ),  # most refund tickets regress (critical): fails, abandoned
    Change(
        "outage-refund-example",
        "Add an example: a refund asked for after an outage",
        add_example(
            "Refund for Payrail downtime",
            "Payrail",
            "email",
            "Payrail was down for most of Saturday and we could not take payments. We want a refund of this month's fee.",
            "Customer could not take payments during Saturday's Payrail outage and wants this month's fee refunded.",
            "refund",
        ),
    ),  # one fixed, one regressed: passes, no change
    Change(
        "close-account-example",
        "Add an example: closing an account and deleting its data is a cancellation",
        add_example(
            "Close our Tillpoint account",
            "Tillpoint",
            "web",
            "We have stopped trading. Please close our Tillpoint account and delete our data once the "
            "last payout has gone through.",
            "Customer stopped trading and wants the Tillpoint account closed and their data deleted after the last payout.",
            "cancellation",
        ),
    ),  # 61/72: passes
    Change(
        "terse-login-example",
        "Add an example: a terse 'wrong password' ticket is account access",
        add_example(
            "login not working",
            "Stockroom",
            "chat",
            "cant get into stockroom, it says my password is wrong but i just reset it",
            "Customer cannot log in to Stockroom; it rejects the password they just reset.",
            "account_access",
        ),
    ),  # 62/72: passes
    Change(
        "account-takeover-example",
        "Add an example: a hijacked account is account access",
        add_example(
            "Someone changed my password",
            "Mailbeam",
            "chat",
            "Someone changed the password on our Mailbeam account and I'm locked out. I think we were "
            "hacked. Please help me get back in.",
            "Customer is locked out of Mailbeam after an unknown password change and fears the account was hacked.",
            "account_access",
        ),
    ),  # a refund ticket regresses (critical): fails, abandoned
    Change(
        "declined-card-example",
        "Add an example: a declined plan payment is a billing question",
        add_example(
            "Stockroom says my card was declined",
            "Stockroom",
            "chat",
            "Stockroom emailed me that the payment for our plan was declined, but the card is valid and "
            "has funds. How do I pay the invoice so the plan is not paused?",
            "Stockroom plan payment was declined although the card is valid; customer asks how to pay the invoice.",
            "billing_question",
        ),
    ),  # 63/72: passes
)
MAX_VERSIONS = len(CHANGES) + 1


# --- running the tool ---------------------------------------------------------------------------------


def cli(args: Sequence[str], *, store: Path, log: Any) -> int:
    """`agent-evals ARGS` in this process, writing history to `store`; its output goes to `log`."""
    from agent_evals.cli import main

    saved_env, saved_cwd = os.environ.get("AGENT_EVALS_HISTORY_URL"), Path.cwd()
    os.environ["AGENT_EVALS_HISTORY_URL"] = f"sqlite:///{store}"
    try:
        print(f"$ agent-evals {' '.join(args)}", file=log, flush=True)
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            return main(list(args))
    finally:
        os.chdir(saved_cwd)
        if saved_env is None:
            os.environ.pop("AGENT_EVALS_HISTORY_URL", None)
        else:
            os.environ["AGENT_EVALS_HISTORY_URL"] = saved_env


def must(code: int, step: str, allowed: tuple[int, ...] = (0,)) -> int:
    if code not in allowed:
        raise SystemExit(f"make_history: {step} exited {code} (see the log in OUT/make_history.log)")
    return code


def iso(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class Repo:
    """The demo's git repository; every commit and merge at a synthetic time."""

    def __init__(self, root: Path) -> None:
        import git

        self.root = root
        self.git = git.Repo.init(root, initial_branch="main")
        with self.git.config_writer() as config:
            config.set_value("user", "name", AUTHOR[0])
            config.set_value("user", "email", AUTHOR[1])
            config.set_value("commit", "gpgsign", "false")

    def _env(self, at: dt.datetime) -> dict[str, str]:
        stamp = at.strftime("%Y-%m-%dT%H:%M:%S+0000")
        return {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}

    def commit(self, message: str, at: dt.datetime) -> str:
        self.git.git.add("-A")
        self.git.git.commit("-m", message, "--no-verify", env=self._env(at))
        return str(self.git.head.commit.hexsha)

    def checkout(self, branch: str, *, new: bool = False) -> None:
        self.git.git.checkout(*(["-b", branch] if new else [branch]))

    def merge(self, branch: str, message: str, at: dt.datetime) -> str:
        self.checkout("main")
        self.git.git.merge("--no-ff", "--no-verify", "-m", message, branch, env=self._env(at))
        return str(self.git.head.commit.hexsha)


# --- the synthetic calendar ---------------------------------------------------------------------------


@dataclass
class Produced:
    """Records (and a gate report) a step wrote, and the synthetic time they get."""

    label: str
    at: dt.datetime
    records: list[Path]
    report: Path | None = None
    pr: int | None = None


def version_day(k: int, versions: int) -> int:
    """The day version k (2..versions) is proposed: spread evenly over the calendar."""
    return 3 + round((k - 2) * (DAYS - 7) / max(versions - 2, 1))


def _unit(*parts: object) -> random.Random:
    """A generator seeded by `parts` alone: the same case in the same run gets the same numbers."""
    digest = hashlib.sha256(json.dumps([SEED, *map(str, parts)]).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def rewrite(step: Produced) -> dict[str, str]:
    """Move a step's records and report onto its synthetic time; the old run id -> the new one."""
    ids: dict[str, str] = {}
    for offset, path in enumerate(step.records):
        lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        header = lines[0]
        started = step.at + dt.timedelta(minutes=2 * offset)
        side = header["run_id"].rsplit("-", 1)[-1] if step.report is not None else "run"
        digest = hashlib.sha256(f"{SEED}:{step.label}:{side}".encode()).hexdigest()[:6]
        new_id = f"{started.strftime('%Y%m%dT%H%M%SZ')}-{digest}" + (f"-{side}" if side != "run" else "")
        ids[header["run_id"]] = new_id
        header["run_id"], header["started_at"] = new_id, iso(started)
        elapsed, total = 0.0, 0.0
        for line in lines[1:]:
            if line.get("kind") == "case":
                usage = line.get("usage") or {}
                tokens_in, tokens_out = usage.get("input_tokens") or 0, usage.get("output_tokens") or 0
                rng = _unit(step.label, side, line["case_id"], line.get("repeat", 0))
                # Synthetic: a hosted model's latency grows with the prompt, with a long tail.
                line["latency_ms"] = round(
                    (350 + 0.4 * tokens_in + 18 * tokens_out) * rng.lognormvariate(0, 0.35), 1
                )
                cost = (tokens_in * PRICE_PER_MTOK[0] + tokens_out * PRICE_PER_MTOK[1]) / 1e6
                line["cost_usd"] = round(cost, 8)
                line["cached"] = False
                elapsed += line["latency_ms"] / 8  # eight calls in flight
                total += cost
            elif line.get("kind") == "end":
                line["finished_at"] = iso(started + dt.timedelta(milliseconds=elapsed + 500))
                line["cost_usd"] = round(total, 8)
        path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    if step.report is not None:
        text = step.report.read_text(encoding="utf-8")
        for old, new in ids.items():
            text = text.replace(old, new)
        document = json.loads(text)
        for pair in document.get("pairs", []):
            for side, offset in (("base", 0), ("cand", 1)):
                run = pair.get("runs", {}).get(side)
                if isinstance(run, dict):
                    run["started_at"] = iso(step.at + dt.timedelta(minutes=2 * offset))
        step.report.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return ids


def pass_rate(record: Path) -> float:
    judged = passed = 0
    for line in record.read_text(encoding="utf-8").splitlines():
        data = json.loads(line)
        if data.get("kind") == "case" and data.get("status") in ("pass", "fail"):
            judged += 1
            passed += data["status"] == "pass"
    return passed / judged if judged else 0.0


def metric_series(merges: list[tuple[dt.datetime, float]]) -> list[tuple[str, float]]:
    """Daily values of the synthetic business metric: a seeded random walk around a level that
    moves, two days after a merge, by part of the pass-rate change that merge brought."""
    rng = random.Random(SEED)
    points, drift = [], 0.0
    for day in range(DAYS):
        at = START.replace(hour=12) + dt.timedelta(days=day)
        level = METRIC_START + sum(
            METRIC_GAIN * delta for merged, delta in merges if at - merged >= dt.timedelta(days=2)
        )
        drift = 0.7 * drift + rng.gauss(0, 0.004)
        points.append((at.strftime("%Y-%m-%dT%H:%M:%SZ"), round(level + drift + rng.gauss(0, 0.003), 4)))
    return points


# --- the build ----------------------------------------------------------------------------------------


def prepare(out: Path) -> None:
    """An empty OUT: made, or emptied when this script made it before."""
    if out.exists():
        if not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists()):
            raise SystemExit(f"{out}: not empty and not made by make_history.py (choose another folder)")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("made by examples/history/make_history.py (synthetic demo data)\n")


def build(out: Path, versions: int, log: Any) -> dict[str, Any]:
    """Steps 1-3: the repository, its branches, ci and nightly runs, rewritten onto the calendar and
    imported into OUT/history.sqlite3. Returns what steps 4-5 need."""
    repo = Repo(out / "repo")
    for rel in (PROMPT, EVALSET):
        (repo.root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / rel, repo.root / rel)
    (repo.root / ".gitignore").write_text(".agent-evals/\n")
    repo.commit("Ticket triage prompt and eval set (synthetic example)", START - dt.timedelta(days=3))
    records, gates = out / "records", out / "gates"
    steps: list[Produced] = []
    merges: list[tuple[dt.datetime, int]] = []  # (when, version)
    events: list[tuple[dt.datetime, str, int]] = [
        (START + dt.timedelta(days=day, hours=-7), "nightly", 0) for day in range(0, DAYS + 1, 7)
    ]
    events += [
        (START + dt.timedelta(days=version_day(k, versions), hours=1), "version", k)
        for k in range(2, versions + 1)
    ]
    with tempfile.TemporaryDirectory(prefix="make-history-") as scratch:
        throwaway = Path(scratch) / "throwaway.sqlite3"
        must(cli(["-C", str(repo.root), "validate"], store=throwaway, log=log), "validate")
        while events:
            events.sort()
            at, kind, k = events.pop(0)
            if kind == "nightly":
                repo.checkout("main")
                target = records / f"nightly-{at:%Y%m%d}.jsonl"
                args = ["-C", str(repo.root), "run", "--evalset", "ticket-triage", "--output", str(target)]
                must(cli(args, store=throwaway, log=log), f"the nightly run of {at:%Y-%m-%d}")
                steps.append(Produced(f"nightly-{at:%Y%m%d}", at, [target]))
                continue
            change, pr = CHANGES[k - 2], FIRST_PR + k - 2
            repo.checkout(change.branch, new=True)
            prompt = repo.root / PROMPT
            prompt.write_text(set_version(change.edit(prompt.read_text()), k))
            repo.commit(f"{change.title} (prompt version {k})", at - dt.timedelta(minutes=40))
            report, folder = gates / f"gate-{k}.json", records / f"ci-{k}"
            args = [
                "-C",
                str(repo.root),
                "ci",
                "--base",
                "main",
                "--json",
                str(report),
                "--output",
                str(folder),
            ]
            code = must(cli(args, store=throwaway, log=log), f"ci on {change.branch}", (0, 1))
            side_records = [folder / "base" / "ticket-triage.jsonl", folder / "cand" / "ticket-triage.jsonl"]
            steps.append(Produced(f"ci-{k}", at, side_records, report, pr))
            if code == 0:
                merged = at + dt.timedelta(days=1, hours=5)
                repo.merge(change.branch, f"Merge pull request #{pr} from lumen/{change.branch}", merged)
                merges.append((merged, k))
                # The nightly run after the merge records the new live version.
                nightly = START.replace(hour=2) + dt.timedelta(days=(merged - START).days + 1)
                if (nightly, "nightly", 0) not in events:
                    events.append((nightly, "nightly", 0))
            else:
                repo.checkout("main")  # abandoned: the PR is closed, the branch stays unmerged
        for step in steps:
            rewrite(step)
    rates = {1: pass_rate(next(s.records[0] for s in steps if s.report is not None))} if versions > 1 else {}
    for step in steps:
        if step.report is not None:
            rates[int(step.label.removeprefix("ci-"))] = pass_rate(step.records[1])
    return {"steps": steps, "merges": merges, "rates": rates, "repo": repo.root}


def make(out: Path, versions: int = MAX_VERSIONS, screenshot: Path | None = None) -> int:
    """Build the whole demo into `out`; 0 when done."""
    if not 2 <= versions <= MAX_VERSIONS:
        raise SystemExit(f"--versions {versions}: choose 2 to {MAX_VERSIONS}")
    out = out.resolve()
    prepare(out)
    store = out / "history.sqlite3"
    with (out / "make_history.log").open("w", encoding="utf-8") as log:
        built = build(out, versions, log)
        repo: Path = built["repo"]
        # Step 3: the rewritten records into the demo store, each gate report with its PR.
        must(
            cli(["-C", str(repo), "history", "import", str(out / "records")], store=store, log=log), "import"
        )
        for step in built["steps"]:
            if step.report is not None:
                args = ["-C", str(repo), "history", "import", str(step.report), "--pr", str(step.pr)]
                must(cli(args, store=store, log=log), f"import {step.report.name}")
        # Step 4: the business metric the eval set names, moved by the merges that raised the pass rate.
        header = json.loads(built["steps"][0].records[0].read_text().splitlines()[0])
        metric = header["evalset"]["metric"]
        rates, live, moves = built["rates"], 1, []
        for merged, k in built["merges"]:
            moves.append((merged, rates[k] - rates[live]))
            live = k
        with (out / "metric.csv").open("w", newline="", encoding="utf-8") as fh:
            fh.write(
                f"# SYNTHETIC: a seeded random walk made by examples/history/make_history.py, not real data ({metric})\n"
            )
            writer = csv.writer(fh)
            writer.writerow(["metric", "at", "value"])
            for at, value in metric_series(moves):
                writer.writerow([metric, at, value])
        must(
            cli(["-C", str(repo), "metric", "import", str(out / "metric.csv")], store=store, log=log),
            "metric",
        )
        # Step 5: the dashboard, read in the repository so the live periods come from its merges.
        page = out / "dashboard.html"
        must(cli(["-C", str(repo), "dashboard", "--html", str(page)], store=store, log=log), "dashboard")
    if screenshot is not None:
        shoot(page, screenshot)
    print(f"synthetic history: {out} (store {store.name}, dashboard {page.name})")
    return 0


CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def shoot(page: Path, target: Path) -> None:
    """A full-page screenshot of the dashboard in headless Chromium (Debian's `chromium` on PATH)."""
    binary = shutil.which("chromium")
    if binary is None:
        raise SystemExit("--screenshot: no chromium on PATH (install Debian's chromium)")
    from playwright.sync_api import sync_playwright

    target.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=binary, args=CHROMIUM_FLAGS)
        try:
            view = browser.new_page(viewport={"width": 1280, "height": 900})
            view.goto(page.as_uri())
            view.wait_for_load_state("load")
            view.screenshot(path=str(target), full_page=True)
        finally:
            browser.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "out", nargs="?", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--versions",
        type=int,
        default=MAX_VERSIONS,
        help=f"prompt versions, 2 to {MAX_VERSIONS} (default {MAX_VERSIONS})",
    )
    parser.add_argument("--screenshot", type=Path, help="also save a screenshot of the dashboard here (PNG)")
    args = parser.parse_args(argv)
    return make(args.out, args.versions, args.screenshot)


if __name__ == "__main__":
    sys.exit(main())
