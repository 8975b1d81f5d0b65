"""Mutation testing of the gate's core: run mutmut, print the score per module and every survivor.

    .venv/bin/python bench/mutation_score.py                      # the full run (make mutation)
    .venv/bin/python bench/mutation_score.py --module agent_evals/integrity.py   # one module
    .venv/bin/python bench/mutation_score.py --report-only        # re-read the last run's results

The configuration (which modules get mutants, which tests run) is `[tool.mutmut]` in
pyproject.toml; this script adds no mutmut option of its own. See docs/TESTING.md.

By default the run starts from an empty `mutants/`: mutmut 3 never refreshes the copy of a
module it does not mutate once `mutants/` exists, and keeps a mutant's verdict across runs
until the function it mutates changes, even when the tests changed. A fresh run is the only
one whose figures mean "these tests, this code". `--keep` reuses the cache (faster, for
iterating on one survivor).

Score: (killed + timeout) / every mutant tested, the formula of `mutmut export-cicd-stats`
and `mutmut badge`. A mutant no selected test reaches ("no tests") counts as a survivor.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = ROOT / "mutants"
MUTMUT = Path(sys.executable).with_name("mutmut")

# Test files written for these modules: when one exists it must be in the test selection,
# or the score silently ignores it.
REQUIRED_WHEN_PRESENT = (
    "tests/test_compare_pair.py",
    "tests/test_compare_paths.py",
    "tests/test_gate_rules_detail.py",
    "tests/test_rules.py",
    "tests/test_gate_promises.py",
)

# Set, these change what the selected tests check (UPDATE_GOLDENS rewrites the golden files).
UNSAFE_ENV = ("UPDATE_GOLDENS", "TEST_AGENT_DELAY")

# `mutmut results --all true` prints "    <mutant name>: <status>" per mutant.
RESULT_LINE = re.compile(r"^\s+(?P<name>\S+__mutmut_\d+): (?P<status>.+)$")
DETECTED = ("killed", "timeout")
# Not a verdict on the tests: left out of the denominator, as mutmut does.
NOT_COUNTED = ("skipped", "not checked", "caught by type check")
COLUMNS = ("killed", "timeout", "survived", "no tests", "suspicious", "segfault")


def mutmut_config() -> dict[str, Any]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    config: dict[str, Any] | None = data.get("tool", {}).get("mutmut")
    if not config:
        sys.exit("pyproject.toml has no [tool.mutmut] section")
    return config


def module_of(path: str) -> str:
    """agent_evals/gate.py -> agent_evals.gate (mutmut's prefix for the module's mutants)."""
    return path.removesuffix(".py").replace("/", ".")


def preflight(config: dict[str, Any], modules: list[str]) -> list[str]:
    """Refuse a run that would fail at once or give a misleading figure; return warnings."""
    selection = [str(a) for a in config.get("pytest_add_cli_args_test_selection", [])]
    files = [a.split("::")[0] for a in selection if not a.startswith("-")]
    errors = [
        f"{f}: in the test selection but missing (pytest would exit 4)"
        for f in files
        if not (ROOT / f).exists()
    ]
    errors += [
        f"{f} exists but is not in [tool.mutmut] pytest_add_cli_args_test_selection: add it"
        for f in REQUIRED_WHEN_PRESENT
        if (ROOT / f).exists() and f not in files
    ]
    errors += [f"{m}: no such module" for m in modules if not (ROOT / m).is_file()]
    # UPDATE_GOLDENS makes a golden test rewrite its file and pass: every mutant would survive it.
    errors += [f"unset {v} first: it changes what the tests check" for v in UNSAFE_ENV if os.environ.get(v)]
    if errors:
        sys.exit("mutation_score: " + "\n  ".join(["cannot run:", *errors]))
    warnings = [
        f"{m} is not in [tool.mutmut] only_mutate: it has no mutants"
        for m in modules
        if m not in config.get("only_mutate", [])
    ]
    # Another test file that imports a mutated module may kill mutants the selection misses.
    names = "|".join(re.escape(Path(m).stem) for m in config.get("only_mutate", []))
    imports = re.compile(rf"agent_evals\.({names})\b|from agent_evals import [^\n]*\b({names})\b")
    for test in sorted((ROOT / "tests").glob("test_*.py")):
        rel = test.relative_to(ROOT).as_posix()
        if rel not in files and imports.search(test.read_text(encoding="utf-8")):
            warnings.append(f"{rel} imports a mutated module but is not in the test selection")
    return warnings


def unmutated(module: str) -> list[str]:
    """Functions mutmut 3 never mutates: decorated ones (bar @staticmethod and @classmethod).

    @property bodies and functions registered by a decorator get no mutant at all, so the
    score says nothing about them; module-level code (constants, decorator arguments) neither.
    """
    names = []
    for node in ast.walk(ast.parse((ROOT / module).read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.decorator_list:
            decorators = [ast.unparse(d) for d in node.decorator_list]
            if decorators not in (["staticmethod"], ["classmethod"]):
                names.append(f"{node.name} (@{decorators[0].split('(')[0]})")
    return names


def tree_state() -> dict[str, str]:
    """The commit, and whether the files the run copies differ from it (read-only git)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else "?"

    dirty = git("status", "--porcelain", "--", "agent_evals", "tests", "pyproject.toml")
    changed = "?" if dirty == "?" else f"{len(dirty.splitlines())} files" if dirty else "none"
    return {"commit": git("rev-parse", "HEAD"), "uncommitted": changed}


def run_mutmut(only: list[str], max_children: int | None, log: Path) -> tuple[int, float]:
    command = [str(MUTMUT), "run"]
    if max_children:
        command += ["--max-children", str(max_children)]
    # A mutant's name starts with its module's; a named mutant is re-run even if its verdict is cached.
    command += [f"{module_of(m)}.*" for m in only]
    print("$", shlex.join(["mutmut", *command[1:]]), flush=True)
    start = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        stdout = process.stdout
        assert stdout is not None
        # os.read: whatever is there, so mutmut's progress line shows as it is drawn.
        for chunk in iter(lambda: os.read(stdout.fileno(), 4096), b""):
            out.write(chunk)
            if sys.stdout.isatty():
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
        code = process.wait()
    return code, time.monotonic() - start


def results() -> dict[str, str]:
    out = subprocess.run(
        [str(MUTMUT), "results", "--all", "true"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return {m["name"]: m["status"] for line in out.splitlines() if (m := RESULT_LINE.match(line))}


def show(name: str) -> str:
    return subprocess.run(
        [str(MUTMUT), "show", name], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.rstrip()


def score(counts: Counter[str]) -> tuple[int, int, float | None]:
    detected = sum(counts[s] for s in DETECTED)
    tested = sum(n for s, n in counts.items() if s not in NOT_COUNTED)
    return detected, tested, (100 * detected / tested if tested else None)


def mutant_order(name: str) -> tuple[str, int]:
    """Function by function, mutant 2 before mutant 10."""
    function, _, number = name.rpartition("__mutmut_")
    return function, int(number)


def figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--module",
        action="append",
        default=[],
        help="mutate only this module (repeatable); default: only_mutate",
    )
    parser.add_argument("--keep", action="store_true", help="reuse mutants/ and its cached verdicts")
    parser.add_argument(
        "--report-only", action="store_true", help="do not run; report the last run's results"
    )
    parser.add_argument("--max-children", type=int, help="parallel mutants (mutmut's default: the CPU count)")
    parser.add_argument("--no-diffs", action="store_true", help="list survivors by name only")
    parser.add_argument("--json", type=Path, help="also write the figures and survivors to this file")
    args = parser.parse_args()

    config = mutmut_config()
    modules = args.module or [m for m in config["only_mutate"] if (ROOT / m).is_file()]
    elapsed = None
    state_file = MUTANTS / "mutation-tree.json"
    if not args.report_only:
        for warning in preflight(config, modules):
            print("warning:", warning, file=sys.stderr)
        if not args.keep and MUTANTS.exists():
            shutil.rmtree(MUTANTS)
        MUTANTS.mkdir(exist_ok=True)
        state_file.write_text(json.dumps(tree_state()), encoding="utf-8")
        log = MUTANTS / "mutation-run.log"
        code, elapsed = run_mutmut(args.module, args.max_children, log)
        if code != 0:
            lines = log.read_bytes().decode(errors="replace").replace("\r", "\n").splitlines()
            # pytest's summary says which test failed (the clean run must pass); else the last lines.
            summary = [i for i, line in enumerate(lines) if "short test summary info" in line]
            shown = lines[summary[-1] :] if summary else lines[-40:]
            print("\n".join(line for line in shown if line.strip()), file=sys.stderr)
            print(
                f"mutmut run failed (exit {code}); the whole output: {log.relative_to(ROOT)}", file=sys.stderr
            )
            return code or 1
    if not (MUTANTS / "mutmut-stats.json").exists():
        print("no results: run without --report-only first", file=sys.stderr)
        return 2

    state = json.loads(state_file.read_text(encoding="utf-8")) if state_file.exists() else tree_state()
    status = results()
    by_module = {
        m: Counter(s for n, s in status.items() if n.startswith(module_of(m) + ".")) for m in modules
    }
    total: Counter[str] = sum(by_module.values(), Counter())

    width = max(len(m) for m in [*modules, "total"])
    header = (
        f"{'module':<{width}}  {'mutants':>7}  " + "  ".join(f"{c:>10}" for c in COLUMNS) + f"  {'score':>7}"
    )
    print()
    print(header)
    print("-" * len(header))
    for name, counts in [*by_module.items(), ("total", total)]:
        cells = "  ".join(f"{counts[c]:>10}" for c in COLUMNS)
        print(f"{name:<{width}}  {sum(counts.values()):>7}  {cells}  {figure(score(counts)[2]):>7}")
    detected, tested, overall = score(total)
    print()
    print(f"mutation score: {figure(overall)} ({detected} of {tested} mutants killed or timed out)")
    if elapsed is not None:
        print(f"run time: {elapsed / 60:.1f} min")
    changes = state["uncommitted"]
    print(
        f"tree: commit {state['commit']}; uncommitted changes to agent_evals/, tests/, pyproject.toml: {changes}"
    )
    skipped = {m: names for m in modules if (names := unmutated(m))}
    if skipped:
        print("\nno mutants (mutmut 3 skips decorated functions):")
        for m, names in skipped.items():
            print(f"  {m}: {', '.join(names)}")
    unfinished = total["not checked"]
    if unfinished:
        print(f"warning: {unfinished} mutants were not checked (an interrupted run?)", file=sys.stderr)

    survivors = sorted(
        (
            n
            for n, s in status.items()
            if s in ("survived", "no tests", "suspicious", "segfault")
            and any(n.startswith(module_of(m) + ".") for m in modules)
        ),
        key=mutant_order,
    )
    if survivors:
        print(f"\n{len(survivors)} surviving mutants (not killed: survived, no tests, suspicious, segfault):")
    report = []
    for name in survivors:
        diff = "" if args.no_diffs else show(name)
        report.append({"name": name, "status": status[name], "diff": diff})
        print(f"  {name}: {status[name]}" if args.no_diffs else "\n" + diff)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "score": overall,
                    "detected": detected,
                    "tested": tested,
                    "minutes": None if elapsed is None else round(elapsed / 60, 1),
                    "tree": state,
                    "modules": {m: dict(c) for m, c in by_module.items()},
                    "not_mutated": skipped,
                    "survivors": report,
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
    return 0 if not unfinished else 1


if __name__ == "__main__":
    sys.exit(main())
