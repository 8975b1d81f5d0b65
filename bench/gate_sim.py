"""A seeded simulation of the gate's statistical promises (issue 12, acceptance 1).

Feeds the gate SYNTHETIC paired run records, built in memory, through the path
`agent-evals diff` takes (`judge` below), and prints Markdown tables: how often
a change that does nothing fails the gate (false alarms) under three policies,
how often a 5-point drop fails it (power), the detectable drop the gate
states, and the drop it really detects with 80% power. It asserts nothing: the
figures depend on the gate being measured, so they are printed, to be read.

    .venv/bin/python bench/gate_sim.py [--sims N] [--quick] [--jobs J] [--seed S]
        [--curve-sims N] [--no-curve] [--curve-clusters] [--at REF]

`--at REF` measures the gate as committed at REF (agent_evals/ and evalsets/
read with `git archive`, nothing written to the repository) instead of the
working tree.

The data-generating process. Everything is synthetic and seeded
(numpy.random.default_rng); every simulation draws a new world:

* Cases: n of them; each has a true pass probability p_i ~ Beta(1.7, 0.3)
  (mean 0.85: a no-op at n=200 with one run has about 17 pass -> fail cases).
* Clusters (the variant): cases come in conversations of 5 turns; a
  conversation's difficulty q_g ~ Beta(1.7, 0.3), clipped to [1e-3, 1 - 1e-3],
  and each turn's p_i ~ Beta(10 q_g, 10 (1 - q_g)); CaseResult.cluster is the
  conversation id. Without the variant, cluster is None.
* Tags: one of 10 per case, uniformly (refund, billing, technical, access,
  feature, cancellation, shipping, fraud, onboarding, other). `refund` matters:
  the shipped policies have `critical: [refund]`.
* Graders: one exact-match grader, "disposition". The expected disposition is
  the case's tag; a passing run answers it, a failing run a fixed wrong one.
  One GradeRecord per CaseResult: score 1 or 0, passed = the run's outcome.
* Repeats: K runs per case and side (CaseResult.repeat 0..K-1, header option
  repeat K); the same eval set id and hash and the same prompt id on both
  sides; both runs complete, no errors.
* `stochastic`: every run of a case passes independently with probability
  p_i, and no two runs have the same output text (a run nonce in the summary);
  header provider params {"temperature": 0.7}.
* `deterministic`: a case's outcome is drawn once per world (pass iff
  u_i < p_i), and every run of it, every repeat on both sides, is the same
  output text; header params {"temperature": 0}.
* A drop of d points (the "break" model). Stochastic: walk the cases in a
  random order, setting the candidate's pass probability to 0 case after case,
  until the probability removed sums to d * n; the last case loses only the
  remainder. Deterministic: passing cases flip to failing, in a random order,
  until round(d * n) (half up) have flipped. A no-op is d = 0: fresh draws from
  the same p_i (stochastic); the baseline's runs again (deterministic).
* Policies: `stats-only` is GatePolicy() (alpha 0.05, nothing else); `init`
  is the `gate:` block of agent_evals/templates/init/evalsets/ticket-triage.yaml
  and `example` that of evalsets/ticket-triage.yaml, read from the files, so
  the bench tracks what ships.
* Confirmation runs: when the gate has `gate.cases_to_confirm(diff, policy)`,
  the bench does what `agent-evals ci` does with it: asks which cases to re-run
  and how often, appends that many runs per side for them (repeat K, K+1, ...,
  drawn from the same per-case probabilities; the same outcome and text when
  deterministic) and judges again. `diff` on two finished records cannot, so
  both figures are shown, for the K=1 stochastic cells.

Figures, per cell (n in {50, 200, 500} x K in {1, 3, 5} x mode x clusters):
the false-alarm rate is the share of no-op simulations whose verdict is
"fail"; power is the share of 5-point-drop simulations that fail (stats-only);
the stated drop is the mean of `verdict.power.detectable_drop` over the no-op
simulations (a verdict without a power note is left out). The power curves
(n=200, K in {1, 3}) estimate power on a grid of drops, 0.5 to 15 points, and
interpolate where it first reaches 80%: the measured 80%-power drop, beside
the stated one. A simulation's seed depends only on (--seed, cell, figure,
drop, its index), so the figures do not depend on --jobs.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from machine import describe as machine  # bench/machine.py: the machine, named one way

import agent_evals
from agent_evals import diff as diff_module
from agent_evals import gate as gate_module
from agent_evals.diff import Diff
from agent_evals.gate import Verdict
from agent_evals.models import GatePolicy, ProjectConfig
from agent_evals.record import CaseResult, GradeRecord, RunEnd, RunHeader, RunRecord, Usage

try:
    from agent_evals.compare import compare_pair
except ImportError:  # a gate from before agent_evals/compare.py
    compare_pair = None  # type: ignore[assignment]

REPO = Path(__file__).resolve().parent.parent
# The project the imported agent_evals belongs to: this repository, or a --at snapshot of it.
PROJECT = Path(agent_evals.__file__).resolve().parent.parent

Mode = Literal["stochastic", "deterministic"]
MODES: tuple[Mode, ...] = ("stochastic", "deterministic")
Side = Literal["base", "cand"]
TAGS = (
    "refund", "billing", "technical", "access", "feature",
    "cancellation", "shipping", "fraud", "onboarding", "other",
)  # fmt: skip
TURNS = 5  # cases per conversation in the clustered variant
BETA_A, BETA_B = 1.7, 0.3
CONCENTRATION = 10.0  # of a turn's Beta around its conversation's difficulty
DROP = 0.05  # the drop the power column is measured at
POLICY_NAMES = ("stats-only", "init", "example")
CONFIRM_POLICIES = ("init", "example")
POLICY_FILES = {
    "init": PROJECT / "agent_evals" / "templates" / "init" / "evalsets" / "ticket-triage.yaml",
    "example": PROJECT / "evalsets" / "ticket-triage.yaml",
}
CURVE_GRID = tuple(round(0.005 * i, 3) for i in range(1, 31))  # 0.5..15 points, half a point apart
EVALSET_HASH = "sha256:" + "5e" * 32
PROMPT_HASH = {"base": "sha256:" + "ba" * 32, "cand": "sha256:" + "ca" * 32}


# --- the gate, as `agent-evals diff` calls it -----------------------------------------


def judge(base: RunRecord, cand: RunRecord, policy: GatePolicy) -> tuple[Verdict, Diff | None]:
    """The verdict `agent-evals diff` gives two records under `policy`, and the diff it judged.

    `diff` loads the two records, checks that they ran the same eval set and
    hands them to `compare.compare_pair`, the one path of every command; here
    with no project around them (no reviews, no calibration), the policy given.
    """
    diff_module.check_comparable(base, cand)
    if compare_pair is not None:
        pair = compare_pair(base, cand, config=ProjectConfig(), evalset=None, policy=policy)
        return pair.verdict, pair.diff
    d = diff_module.diff(base, cand)  # before compare.py: what compare_pair does for these records
    return gate_module.gate(d, policy), d


def cases_to_confirm(d: Diff, policy: GatePolicy) -> dict[str, int] | None:
    """The cases `ci` re-runs before counting regressions: case id -> extra runs per side.

    None when the gate has no confirmation step.
    """
    ask = getattr(gate_module, "cases_to_confirm", None)
    if ask is None:
        return None
    asked: dict[str, int] = ask(d, policy)
    return asked


def load_policies() -> dict[str, GatePolicy]:
    """stats-only, and the `gate:` blocks of the two shipped ticket-triage eval sets."""
    policies = {"stats-only": GatePolicy()}
    for name, path in POLICY_FILES.items():
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        policies[name] = GatePolicy.model_validate(data["gate"])
    return policies


# --- a simulated world ------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    n: int
    repeats: int
    mode: Mode
    clusters: bool

    @property
    def key(self) -> tuple[int, int, int, int]:
        return (self.n, self.repeats, MODES.index(self.mode), int(self.clusters))

    @property
    def confirms(self) -> bool:
        """The cells whose figures are also shown with ci's confirmation runs."""
        return self.repeats == 1 and self.mode == "stochastic"

    def label(self) -> str:
        return f"K={self.repeats} {self.mode[:5]}{', clustered' if self.clusters else ''}"


@dataclass(frozen=True)
class Cases:
    """The eval set of one world: ids, tags, conversations and true pass probabilities."""

    ids: tuple[str, ...]
    tags: tuple[str, ...]
    clusters: tuple[str | None, ...]
    p: np.ndarray


def draw_cases(rng: np.random.Generator, n: int, clustered: bool) -> Cases:
    if clustered:
        q = np.clip(rng.beta(BETA_A, BETA_B, size=math.ceil(n / TURNS)), 1e-3, 1 - 1e-3)
        q_case = np.repeat(q, TURNS)[:n]
        p = rng.beta(CONCENTRATION * q_case, CONCENTRATION * (1 - q_case))
        clusters: tuple[str | None, ...] = tuple(f"conv-{i // TURNS:04d}" for i in range(n))
    else:
        p = rng.beta(BETA_A, BETA_B, size=n)
        clusters = (None,) * n
    tags = tuple(TAGS[t] for t in rng.integers(0, len(TAGS), size=n))
    return Cases(ids=tuple(f"ticket-{i:04d}" for i in range(n)), tags=tags, clusters=clusters, p=p)


def broken(rng: np.random.Generator, p: np.ndarray, drop: float) -> np.ndarray:
    """The candidate's pass probabilities after a drop of `drop` (the stochastic break model)."""
    out = p.copy()
    rest = drop * p.size
    for i in rng.permutation(p.size):
        if rest <= 0:
            break
        take = min(out[i], rest)
        out[i] -= take
        rest -= take
    return out


def flipped(rng: np.random.Generator, outcome: np.ndarray, drop: float) -> np.ndarray:
    """The candidate's outcomes after a drop of `drop` (deterministic: round(d n) passes flip)."""
    out = outcome.copy()
    flips = math.floor(drop * outcome.size + 0.5)
    out[rng.permutation(np.flatnonzero(outcome))[:flips]] = False
    return out


@dataclass
class World:
    """One simulated pair of runs: the cases, and each side's per-case probabilities and runs."""

    cell: Cell
    cases: Cases
    p: dict[Side, np.ndarray]  # stochastic: pass probabilities; deterministic: outcomes as 0/1
    runs: dict[Side, np.ndarray]  # (n, K) bool
    rng: np.random.Generator

    def more_runs(self, side: Side, index: int, count: int) -> np.ndarray:
        """`count` more runs of one case: fresh draws, or its one outcome again when deterministic."""
        if self.cell.mode == "deterministic":
            return np.full(count, bool(self.runs[side][index, 0]))
        drawn: np.ndarray = self.rng.random(count) < self.p[side][index]
        return drawn


def draw_world(rng: np.random.Generator, cell: Cell, drop: float) -> World:
    cases = draw_cases(rng, cell.n, cell.clusters)
    k = cell.repeats
    if cell.mode == "stochastic":
        cand_p = broken(rng, cases.p, drop) if drop > 0 else cases.p
        base = rng.random((cell.n, k)) < cases.p[:, None]
        cand = rng.random((cell.n, k)) < cand_p[:, None]
        return World(cell, cases, {"base": cases.p, "cand": cand_p}, {"base": base, "cand": cand}, rng)
    outcome = rng.random(cell.n) < cases.p
    cand_outcome = flipped(rng, outcome, drop) if drop > 0 else outcome
    return World(
        cell,
        cases,
        {"base": outcome.astype(float), "cand": cand_outcome.astype(float)},
        {"base": np.repeat(outcome[:, None], k, axis=1), "cand": np.repeat(cand_outcome[:, None], k, axis=1)},
        rng,
    )


# --- run records, as `agent-evals run` writes them ------------------------------------


def _wrong(tag: str) -> str:
    return TAGS[(TAGS.index(tag) + 1) % len(TAGS)]


def _grade(tag: str, passed: bool) -> GradeRecord:
    actual = tag if passed else _wrong(tag)
    return GradeRecord(
        grader="disposition",
        type="exact_match",
        score=1.0 if passed else 0.0,
        passed=passed,
        reason=f"disposition: matches '{actual}'"
        if passed
        else f"disposition: expected '{tag}', got '{actual}'",
        details={"expected": tag, "actual": actual, "normalize": ["case", "whitespace"]},
    )


# Records are frozen: one GradeRecord per (tag, outcome) serves every run.
GRADES = {(tag, passed): _grade(tag, passed) for tag in TAGS for passed in (True, False)}
USAGE = Usage(input_tokens=182, output_tokens=31)


class Records:
    """The CaseResults of one world, validated as the runner's are (it costs about what model_construct does).

    Deterministic runs of a case with the same outcome are the same result,
    output for output, on both sides: built once and shared.
    """

    def __init__(self, world: World) -> None:
        self.world = world
        self.params = {"temperature": 0.7 if world.cell.mode == "stochastic" else 0}
        self.shared: dict[tuple[int, int, bool], CaseResult] = {}
        cases = world.cases
        # What the runner records as the request; one prompt text, so the same on both sides.
        self.requests = [
            {
                "provider": "sim",
                "model": "sim-model",
                "params": self.params,
                "messages": [
                    {"role": "system", "content": "Triage the support ticket; answer JSON."},
                    {"role": "user", "content": f"Ticket {case_id} ({tag})."},
                ],
            }
            for case_id, tag in zip(cases.ids, cases.tags, strict=True)
        ]

    def _result(self, index: int, repeat: int, passed: bool, nonce: int | None) -> CaseResult:
        cases = self.world.cases
        tag = cases.tags[index]
        # Stochastic runs never repeat a text, so the gate cannot take them for copies.
        summary = f"Customer writes about {tag}" + (f" (draft {nonce:08x})" if nonce is not None else ".")
        return CaseResult(
            index=index,
            case_id=cases.ids[index],
            repeat=repeat,
            status="pass" if passed else "fail",
            score=1.0 if passed else 0.0,
            passed=passed,
            tags=(tag,),
            cluster=cases.clusters[index],
            expected={"disposition": tag},
            request=self.requests[index],
            output=f'{{"disposition": "{tag if passed else _wrong(tag)}", "summary": "{summary}"}}',
            grades=(GRADES[tag, passed],),
            latency_ms=600.0 + (37 * index + 11 * repeat) % 500,
            usage=USAGE,
            cost_usd=0.000_12,
            attempts=1,
        )

    def results(self, runs: np.ndarray, indexes: Sequence[int], first_repeat: int = 0) -> list[CaseResult]:
        """The results of `runs` (one row per index in `indexes`, one column per repeat)."""
        if self.world.cell.mode == "deterministic":
            out = []
            for row, index in enumerate(indexes):
                for r in range(runs.shape[1]):
                    key = (index, first_repeat + r, bool(runs[row, r]))
                    if key not in self.shared:
                        self.shared[key] = self._result(*key, None)
                    out.append(self.shared[key])
            return out
        nonces = self.world.rng.integers(0, 2**32, size=runs.shape)
        return [
            self._result(index, first_repeat + r, bool(runs[row, r]), int(nonces[row, r]))
            for row, index in enumerate(indexes)
            for r in range(runs.shape[1])
        ]

    def record(self, side: Side, results: list[CaseResult]) -> RunRecord:
        cell = self.world.cell
        results = sorted(results, key=lambda c: (c.index, c.repeat))  # as load_record orders them
        header = RunHeader(
            run_id=f"20261201-000000-sim-{side}",
            started_at="2026-12-01T00:00:00+00:00",
            tool_version=getattr(agent_evals, "__version__", "0.1.0"),
            prompt={"id": "ticket-triage", "version": "1" if side == "base" else "2", "hash": PROMPT_HASH[side]},
            evalset={"id": "ticket-triage-sim", "hash": EVALSET_HASH, "cases": cell.n, "selected": cell.n},
            provider={"name": "sim", "type": "python", "model": "sim-model", "params": self.params},
            options={"concurrency": 8, "repeat": cell.repeats, "max_cost_usd": None},
        )  # fmt: skip
        counts = {"pass": 0, "fail": 0, "error": 0, "skipped": 0}
        for r in results:
            counts[r.status] += 1
        end = RunEnd(
            status="complete",
            finished_at="2026-12-01T00:05:00+00:00",
            counts=counts,
            cost_usd=sum(r.cost_usd or 0.0 for r in results),
        )
        return RunRecord(path=f"<simulated {side}>", header=header, cases=tuple(results), end=end)


@dataclass
class Pair:
    world: World
    builder: Records
    results: dict[Side, list[CaseResult]]
    base: RunRecord
    cand: RunRecord


def build(world: World) -> Pair:
    builder = Records(world)
    every = range(world.cell.n)
    results: dict[Side, list[CaseResult]] = {
        side: builder.results(world.runs[side], every) for side in ("base", "cand")
    }
    return Pair(
        world,
        builder,
        results,
        builder.record("base", results["base"]),
        builder.record("cand", results["cand"]),
    )


def confirmed(pair: Pair, asked: dict[str, int]) -> tuple[RunRecord, RunRecord, int]:
    """Both records after ci's confirmation runs for the cases in `asked`; and the runs added per side.

    As `ci` runs them: one more round, on both sides, of every case asked for, each to
    the largest count asked (ci resumes the run with `--repeat K + max`, only those cases),
    appended to the records as repeats K, K+1, ... under the same header.
    """
    world = pair.world
    index_of = {case_id: i for i, case_id in enumerate(world.cases.ids)}
    cases = [index_of[case_id] for case_id, wanted in asked.items() if wanted > 0]
    if not cases:
        return pair.base, pair.cand, 0
    count = max(asked.values())
    records = []
    for side in ("base", "cand"):
        runs = np.array([world.more_runs(side, index, count) for index in cases]).reshape(len(cases), count)
        extra = pair.builder.results(runs, cases, first_repeat=world.cell.repeats)
        records.append(pair.builder.record(side, [*pair.results[side], *extra]))
    return records[0], records[1], count * len(cases)


# --- one batch of simulations (a worker's unit) ----------------------------------------

Figure = Literal["noop", "drop", "curve"]
FIGURES: tuple[Figure, ...] = ("noop", "drop", "curve")


@dataclass(frozen=True)
class Task:
    figure: Figure
    cell: Cell
    drop: float
    start: int
    count: int


@dataclass
class Tally:
    """Counts over simulations of one (figure, cell, drop)."""

    sims: int = 0
    fails: dict[str, int] = field(default_factory=dict)  # policy, or "policy+confirm" -> failed verdicts
    stated_sum: float = 0.0
    stated_n: int = 0
    extra_runs: dict[str, int] = field(default_factory=dict)  # policy -> confirmation runs per side
    judge_calls: int = 0
    judge_s: float = 0.0
    build_s: float = 0.0
    cpu_s: float = 0.0  # the worker's CPU time: steadier than wall time on a shared machine

    def count(self, key: str, failed: bool) -> None:
        self.fails[key] = self.fails.get(key, 0) + failed

    def rate(self, key: str) -> float | None:
        return self.fails[key] / self.sims if key in self.fails and self.sims else None

    def add(self, other: Tally) -> None:
        self.sims += other.sims
        for key, value in other.fails.items():
            self.fails[key] = self.fails.get(key, 0) + value
        for key, value in other.extra_runs.items():
            self.extra_runs[key] = self.extra_runs.get(key, 0) + value
        self.stated_sum += other.stated_sum
        self.stated_n += other.stated_n
        self.judge_calls += other.judge_calls
        self.judge_s += other.judge_s
        self.build_s += other.build_s
        self.cpu_s += other.cpu_s


class Judge:
    """`judge` with a memo for one pair of records: the gate is pure, so an equal policy gets the same verdict."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.memo: list[tuple[RunRecord, GatePolicy, tuple[Verdict, Diff | None]]] = []

    def __call__(self, base: RunRecord, cand: RunRecord, policy: GatePolicy) -> tuple[Verdict, Diff | None]:
        for b, p, result in self.memo:
            if b is base and p == policy:
                return result
        started = time.perf_counter()
        result = judge(base, cand, policy)
        self.tally.judge_s += time.perf_counter() - started
        self.tally.judge_calls += 1
        self.memo.append((base, policy, result))
        return result


_POLICIES: dict[str, GatePolicy] = {}


def _init_worker(policies: dict[str, GatePolicy]) -> None:
    _POLICIES.update(policies)


def seed_for(task: Task, sim: int, seed: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(
        [seed, *task.cell.key, FIGURES.index(task.figure), round(task.drop * 10_000), sim]
    )


def run_task(args: tuple[Task, int]) -> tuple[Task, Tally]:
    """Simulate a batch: draw each world, build its records, judge them under the figure's policies."""
    task, seed = args
    tally = Tally()
    cpu_started = time.process_time()
    confirm = task.cell.confirms and task.figure != "curve"
    policies = {
        "noop": POLICY_NAMES,
        "drop": POLICY_NAMES if confirm else ("stats-only",),
        "curve": ("stats-only",),
    }[task.figure]
    for sim in range(task.start, task.start + task.count):
        started = time.perf_counter()
        pair = build(draw_world(np.random.default_rng(seed_for(task, sim, seed)), task.cell, task.drop))
        tally.build_s += time.perf_counter() - started
        run = Judge(tally)
        for name in policies:
            verdict, _ = run(pair.base, pair.cand, _POLICIES[name])
            tally.count(name, verdict.status == "fail")
            stated = getattr(verdict.power, "detectable_drop", None)
            if name == "stats-only" and task.figure == "noop" and stated is not None:
                tally.stated_sum += stated
                tally.stated_n += 1
        if confirm:
            _confirm(pair, run, tally)
        tally.sims += 1
    tally.cpu_s = time.process_time() - cpu_started
    return task, tally


def _confirm(pair: Pair, run: Judge, tally: Tally) -> None:
    """Judge again as `ci` would, after its confirmation runs; nothing when the gate has none."""
    done: list[tuple[GatePolicy, tuple[Verdict, int]]] = []
    for name in CONFIRM_POLICIES:
        policy = _POLICIES[name]
        result = next((r for p, r in done if p == policy), None)
        if result is None:
            verdict, d = run(pair.base, pair.cand, policy)
            asked = cases_to_confirm(d, policy) if d is not None else None
            if asked is None:
                return
            extra = 0
            if asked:
                base, cand, extra = confirmed(pair, asked)
                verdict, _ = run(base, cand, policy)
            result = (verdict, extra)
            done.append((policy, result))
        tally.count(f"{name}+confirm", result[0].status == "fail")
        tally.extra_runs[name] = tally.extra_runs.get(name, 0) + result[1]


# --- the plan, the pool, the tables ------------------------------------------------------


def cells() -> list[Cell]:
    return [
        Cell(n, k, mode, clustered)
        for n in (50, 200, 500)
        for k in (1, 3, 5)
        for mode in MODES
        for clustered in (False, True)
    ]


def curve_cells(with_clusters: bool) -> list[Cell]:
    return [
        Cell(200, k, mode, clustered)
        for clustered in ((False, True) if with_clusters else (False,))
        for mode in MODES
        for k in (1, 3)
    ]


@dataclass(frozen=True)
class Budget:
    """Simulations: no-op and drop per cell (stochastic and deterministic); power-curve points."""

    noop: int
    drop: int
    noop_deterministic: int
    drop_deterministic: int
    coarse: int  # every point of a power curve
    fine: int  # more, at the points within REFINE_WITHIN of where the curve reaches 80%

    def per_cell(self, figure: Figure, cell: Cell) -> int:
        stochastic = cell.mode == "stochastic"
        if figure == "noop":
            return self.noop if stochastic else self.noop_deterministic
        return self.drop if stochastic else self.drop_deterministic

    def describe(self) -> str:
        return (
            f"per stochastic cell {self.noop} no-op and {self.drop} drop simulations, per deterministic "
            f"cell {self.noop_deterministic} and {self.drop_deterministic}"
        )


# The default, tuned to about 15 minutes of the gate at 9d673c9 on 2 cores (bench/README.md).
# Stochastic cells: false alarms to +-1.3 points at a 4% rate (one standard error), power to
# +-5 at 50%. A deterministic no-op compares two identical records, so any false alarm there
# is a bug that 80 simulations show as well as 300; its power is all or nothing.
SIMS = Budget(noop=240, drop=100, noop_deterministic=80, drop_deterministic=40, coarse=20, fine=100)
QUICK = Budget(noop=20, drop=20, noop_deterministic=20, drop_deterministic=20, coarse=10, fine=10)
REFINE_WITHIN = 0.01  # the grid points refined: within a point of the 80% crossing (two steps each side)
REFINE_ROUNDS = 2  # the second places a crossing that moved after the first


def split(figure: Figure, cell: Cell, drop: float, start: int, total: int, chunk: int) -> Iterator[Task]:
    for first in range(start, start + total, chunk):
        yield Task(figure, cell, drop, first, min(chunk, start + total - first))


def plan(budget: Budget, curves: Sequence[Cell], chunk: int) -> list[Task]:
    """The first round: every cell's no-op and drop simulations, and each curve's coarse pass."""
    tasks: list[Task] = []
    for cell in cells():
        tasks += split("noop", cell, 0.0, 0, budget.per_cell("noop", cell), chunk)
        tasks += split("drop", cell, DROP, 0, budget.per_cell("drop", cell), chunk)
    for cell in curves:
        for d in CURVE_GRID:
            tasks += split("curve", cell, d, 0, budget.coarse, chunk)
    return tasks


def refine(results: Results, budget: Budget, curves: Sequence[Cell], chunk: int) -> list[Task]:
    """More simulations at the coarse grid points near each curve's crossing (not refined yet)."""
    tasks: list[Task] = []
    for cell in curves:
        where, qualifier = crossing(power_curve(results, cell))
        if qualifier:
            continue  # not bracketed by the grid: more simulations would not place it
        for d in CURVE_GRID:
            if abs(d - where) <= REFINE_WITHIN + 1e-9 and results[("curve", cell, d)].sims <= budget.coarse:
                tasks += split("curve", cell, d, budget.coarse, budget.fine, chunk)
    return tasks


def simulate(pool: Any, tasks: Sequence[Task], seed: int, results: Results, started: float) -> None:
    # The biggest batches first, so the pool does not end waiting on one straggler.
    ordered = sorted(tasks, key=lambda t: -t.cell.n * t.cell.repeats * t.count)
    for done, (task, tally) in enumerate(pool.imap_unordered(run_task, [(t, seed) for t in ordered]), 1):
        results.setdefault((task.figure, task.cell, task.drop), Tally()).add(tally)
        if sys.stderr.isatty():
            print(
                f"\r{done}/{len(ordered)} batches, {time.perf_counter() - started:.0f} s",
                end="",
                file=sys.stderr,
            )
    if sys.stderr.isatty():
        print(file=sys.stderr)


def power_curve(results: Results, cell: Cell) -> list[tuple[float, float, int]]:
    """(drop, power, simulations) at each grid point."""
    out = []
    for d in CURVE_GRID:
        tally = results[("curve", cell, d)]
        out.append((d, tally.rate("stats-only") or 0.0, tally.sims))
    return out


def monotone(curve: Sequence[tuple[float, float, int]]) -> list[tuple[float, float]]:
    """The curve made non-decreasing (pool adjacent violators, weighted by simulations).

    Power cannot fall as the drop grows; what falls is noise, and a crossing read off
    noise moves with it.
    """
    blocks: list[list[float]] = []  # [weighted sum, weight, points]
    for _, power, sims in curve:
        blocks.append([power * sims, float(sims), 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            top = blocks.pop()
            blocks[-1] = [blocks[-1][0] + top[0], blocks[-1][1] + top[1], blocks[-1][2] + top[2]]
    fitted = [b[0] / b[1] for b in blocks for _ in range(int(b[2]))]
    return [(d, power) for (d, _, _), power in zip(curve, fitted, strict=True)]


def crossing(curve: Sequence[tuple[float, float, int]], level: float = 0.8) -> tuple[float, str]:
    """Where a power curve first reaches `level`: on its monotone fit, interpolated linearly.

    Returns:
        (drop, qualifier): qualifier "" when bracketed, "<=" when the first grid point
        already reaches it, ">" when no grid point does (then the last one).
    """
    fitted = monotone(curve)
    for i, (d, power) in enumerate(fitted):
        if power >= level:
            if i == 0:
                return d, "<="
            d0, p0 = fitted[i - 1]
            return d0 + (level - p0) * (d - d0) / (power - p0), ""
    return fitted[-1][0], ">"


def pct(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{100 * x:.{digits}f}%"


def pts(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}"


def _git(*args: str) -> str | None:
    try:
        # --no-optional-locks: `status` would otherwise refresh the index, a write.
        done = subprocess.run(
            ["git", "--no-optional-locks", *args], cwd=REPO, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def revision() -> str:
    """Which gate is measured: a --at snapshot, or the working tree and whether agent_evals/ differs from HEAD."""
    at = os.environ.get("GATE_SIM_AT")
    if at is not None:
        return f"{at}, from git archive"
    head = _git("rev-parse", "--short", "HEAD") or "?"
    dirty = _git("status", "--porcelain", "--", "agent_evals")
    return f"the working tree at {head}" + (", with uncommitted changes in agent_evals/" if dirty else "")


def table(head: Sequence[str], rows: Sequence[Sequence[str]], left: int) -> str:
    """A Markdown table; the first `left` columns left-aligned, the rest right-aligned."""
    align = ["---" if i < left else "---:" for i in range(len(head))]
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


Results = dict[tuple[Figure, Cell, float], Tally]


def stated(results: Results, cell: Cell) -> float | None:
    noop = results[("noop", cell, 0.0)]
    return noop.stated_sum / noop.stated_n if noop.stated_n else None


def main_table(results: Results) -> str:
    rows = []
    for cell in cells():
        noop, drop = results[("noop", cell, 0.0)], results[("drop", cell, DROP)]
        rows.append(
            [
                str(cell.n), str(cell.repeats), cell.mode, "yes" if cell.clusters else "no",
                *(pct(noop.rate(p)) for p in POLICY_NAMES),
                pct(drop.rate("stats-only")), pts(stated(results, cell)), f"{noop.sims}/{drop.sims}",
            ]
        )  # fmt: skip
    return table(
        ["n", "K", "mode", "clusters", "false alarms, stats-only", "false alarms, init",
         "false alarms, example", "power at 5 pts", "stated drop (pts)", "sims"],
        rows,
        left=4,
    )  # fmt: skip


def confirm_table(results: Results) -> str:
    rows = []
    for cell in cells():
        if not cell.confirms:
            continue
        noop, drop = results[("noop", cell, 0.0)], results[("drop", cell, DROP)]
        for name in CONFIRM_POLICIES:
            extra = noop.extra_runs.get(name)
            design = cell.n * cell.repeats
            rows.append(
                [
                    str(cell.n), "yes" if cell.clusters else "no", name,
                    pct(noop.rate(name)), pct(noop.rate(f"{name}+confirm")),
                    pct(drop.rate(name)), pct(drop.rate(f"{name}+confirm")),
                    "n/a" if extra is None else f"{extra / noop.sims:.1f} ({extra / noop.sims / design:.0%})",
                ]
            )  # fmt: skip
    return table(
        ["n", "clusters", "policy", "false alarms, diff", "false alarms, ci (confirmed)",
         "power at 5 pts, diff", "power at 5 pts, ci (confirmed)", "confirmation runs a side, no-op (share of the runs)"],
        rows,
        left=3,
    )  # fmt: skip


def curve_tables(results: Results, curves: Sequence[Cell], coarse: int) -> tuple[str, str]:
    summary = []
    for cell in curves:
        measured, qualifier = crossing(power_curve(results, cell))
        claim = stated(results, cell)
        summary.append(
            [
                str(cell.repeats), cell.mode, "yes" if cell.clusters else "no",
                f"{qualifier} {pts(measured)}".strip(), pts(claim),
                f"{qualifier} {measured / claim:.2f}".strip() if claim else "n/a",
            ]
        )  # fmt: skip

    def shown(cell: Cell, d: float) -> str:
        tally = results[("curve", cell, d)]
        rate = pct(tally.rate("stats-only"), 0)
        return rate if tally.sims == coarse else f"{rate} ({tally.sims})"

    rows = [[pts(d), *(shown(c, d) for c in curves)] for d in CURVE_GRID]
    return (
        table(
            [
                "K",
                "mode",
                "clusters",
                "measured 80%-power drop (pts)",
                "stated drop (pts)",
                "measured / stated",
            ],
            summary,
            left=3,
        ),
        table(["drop (pts)", *(c.label() for c in curves)], rows, left=1),
    )


def cpu_by_figure(results: Results) -> str:
    """Where the CPU time went: per figure, and the costliest cells (to tune --sims by)."""
    by_figure: dict[str, float] = {}
    by_cell: dict[Cell, float] = {}
    for (figure, cell, _), tally in results.items():
        by_figure[figure] = by_figure.get(figure, 0.0) + tally.cpu_s
        by_cell[cell] = by_cell.get(cell, 0.0) + tally.cpu_s
    costly = sorted(by_cell.items(), key=lambda item: -item[1])[:3]
    return (
        ", ".join(f"{figure} {seconds:.0f} s" for figure, seconds in by_figure.items())
        + "; the costliest cells "
        + ", ".join(f"n={cell.n} {cell.label()} {seconds:.0f} s" for cell, seconds in costly)
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Simulate the gate's false alarms, power and stated drop.")
    parser.add_argument(
        "--sims",
        type=int,
        help=f"no-op and 5-point-drop simulations in every cell (default: {SIMS.describe()})",
    )
    parser.add_argument(
        "--curve-sims",
        type=int,
        help=f"simulations at the power-curve points near 80%% power ({SIMS.fine}; a fifth elsewhere)",
    )
    parser.add_argument("--quick", action="store_true", help="a few simulations per cell: a smoke run")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--no-curve", action="store_true", help="skip the 80%%-power curves")
    parser.add_argument("--curve-clusters", action="store_true", help="the clustered power curves too")
    parser.add_argument("--chunk", type=int, default=25, help="simulations per worker task")
    parser.add_argument("--at", metavar="REF", help="measure the gate as committed at REF")
    args = parser.parse_args(argv)
    if args.at is not None:
        return _run_at(args.at, list(sys.argv[1:] if argv is None else argv))
    snapshot = os.environ.get("PYTHONPATH") if os.environ.get("GATE_SIM_AT") else None
    if snapshot is not None and not PROJECT.samefile(snapshot):
        print(
            f"gate_sim: agent_evals was imported from {PROJECT}, not the snapshot {snapshot}", file=sys.stderr
        )
        return 2
    budget = QUICK if args.quick else SIMS
    if args.sims:
        budget = replace(
            budget, noop=args.sims, drop=args.sims, noop_deterministic=args.sims, drop_deterministic=args.sims
        )
    if args.curve_sims:
        budget = replace(budget, coarse=max(10, args.curve_sims // 5), fine=args.curve_sims)
    curves = [] if args.no_curve else curve_cells(args.curve_clusters)
    policies = load_policies()

    gate = revision()  # now: others may commit while this runs
    # One judge call before the workers fork: the gate's lazy imports happen once, here, and a
    # gate that cannot judge these records fails now rather than in every worker.
    warm = build(draw_world(np.random.default_rng(args.seed), Cell(50, 1, "stochastic", False), 0.0))
    judge(warm.base, warm.cand, policies["init"])
    started = time.perf_counter()
    results: Results = {}
    ctx = multiprocessing.get_context("fork" if sys.platform != "win32" else "spawn")
    with ctx.Pool(args.jobs, initializer=_init_worker, initargs=(policies,)) as pool:
        simulate(pool, plan(budget, curves, args.chunk), args.seed, results, started)
        for _ in range(REFINE_ROUNDS):
            simulate(pool, refine(results, budget, curves, args.chunk), args.seed, results, started)
    wall = time.perf_counter() - started
    tallies = results.values()
    calls = sum(t.judge_calls for t in tallies)
    judge_s = sum(t.judge_s for t in tallies)
    cpu_s = sum(t.cpu_s for t in tallies)
    worlds = sum(t.sims for t in tallies)
    build_s = sum(t.build_s for t in tallies)
    confirm_on = hasattr(gate_module, "cases_to_confirm")

    print("## The gate's statistical promises, simulated (bench/gate_sim.py)\n")
    print(
        f"* machine: {machine()}; {args.jobs} worker processes; wall time {wall:.0f} s, "
        f"CPU time {cpu_s:.0f} s in the workers"
    )
    print(
        f"* gate: {gate}; judged through "
        + ("compare.compare_pair" if compare_pair is not None else "diff.diff + gate.gate")
        + "; confirmation runs: "
        + ("gate.cases_to_confirm, as ci runs them" if confirm_on else "none in this gate")
    )
    print("* policies: " + "; ".join(f"{name} {_show(policies[name])}" for name in POLICY_NAMES))
    print(
        f"* {budget.describe()}"
        + (f"; per power-curve point {budget.coarse}, {budget.fine} more near 80%" if curves else "")
        + f"; seed {args.seed}; {worlds:,} worlds, {calls:,} judge calls "
        f"({1000 * judge_s / max(calls, 1):.0f} ms each), records built in {1000 * build_s / max(worlds, 1):.0f} ms a world"
    )
    print("* CPU time by figure: " + cpu_by_figure(results))
    print(
        "\n### False alarms (no-op changes that fail the gate), power at a 5-point drop, stated detectable drop\n"
    )
    print(main_table(results))
    print("\n### Confirmation runs (K=1, stochastic): `diff` on the records, and `ci` with its re-runs\n")
    print(confirm_table(results))
    if curves:
        summary, curve = curve_tables(results, curves, budget.coarse)
        print("\n### The drop detected with 80% power (stats-only, n=200): measured and stated\n")
        print(summary)
        print(
            f"\n### Power curves (stats-only, n=200; {budget.coarse} simulations a point, "
            "more where shown in brackets)\n"
        )
        print(curve)
    return 0


def _show(policy: GatePolicy) -> str:
    shown = policy.model_dump(exclude_defaults=True)
    return "(" + ", ".join(f"{k}={v}" for k, v in shown.items()) + ")" if shown else "(the defaults)"


def _run_at(ref: str, argv: list[str]) -> int:
    """Re-run this script against agent_evals/ and evalsets/ as committed at `ref`."""
    rest = [a for i, a in enumerate(argv) if a != "--at" and (i == 0 or argv[i - 1] != "--at")]
    rest = [a for a in rest if not a.startswith("--at=")]
    commit = _git("rev-parse", "--short", f"{ref}^{{commit}}")
    if commit is None:
        print(f"gate_sim: {ref} is not a commit of {REPO}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="gate-sim-") as tmp:
        archive = subprocess.run(
            ["git", "archive", "--format=tar", commit, "agent_evals", "evalsets"],
            cwd=REPO,
            capture_output=True,
        )
        if archive.returncode != 0:
            print(f"gate_sim: cannot read {ref}: {archive.stderr.decode().strip()}", file=sys.stderr)
            return 2
        archive_path = Path(tmp) / "snapshot.tar"
        archive_path.write_bytes(archive.stdout)
        with tarfile.open(archive_path) as tar:
            tar.extractall(tmp, filter="data")
        env = {**os.environ, "PYTHONPATH": tmp, "GATE_SIM_AT": ref if ref == commit else f"{ref} ({commit})"}
        return subprocess.run(
            [sys.executable, "-c", _AT_BOOT, str(Path(__file__).resolve()), *rest],
            env=env,
            cwd=tmp,
            check=False,
        ).returncode


# Only the snapshot: not the current folder (python -c puts it first on sys.path), nor the editable
# install's import hook, which would fill in from the working tree a module missing at REF.
_AT_BOOT = """
import runpy, sys
sys.path[:] = [p for p in sys.path if p not in ("", ".")]
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


if __name__ == "__main__":
    sys.exit(main())
