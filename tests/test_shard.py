"""Sharding a run over a CI matrix: the merged shards equal the unsharded run, verdict included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_evals.cli import main
from agent_evals.errors import ConfigError
from agent_evals.record import load_record, merge_paths
from agent_evals.runner import Shard
from tests.support import copy_ticket_triage_example

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy_ticket_triage_example(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def cases(path: Path) -> list[tuple[str, str, str | None, float | None]]:
    return [(c.case_id, c.status, c.output, c.score) for c in load_record(path).cases]


def test_three_shards_merged_equal_the_unsharded_run_and_verdict(
    example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    candidate = ["--prompt-file", "examples/candidate/ticket-triage.yaml"]
    assert main(["run", "--no-cache", "--output", "full/base.jsonl"]) == 0
    assert main(["run", "--no-cache", *candidate, "--output", "full/cand.jsonl"]) == 0
    for i in (1, 2, 3):
        assert main(["run", "--no-cache", "--shard", f"{i}/3", "--output", f"s{i}/base.jsonl"]) == 0
        assert (
            main(["run", "--no-cache", *candidate, "--shard", f"{i}/3", "--output", f"s{i}/cand.jsonl"]) == 0
        )
    sizes = [len(load_record(example / f"s{i}/base.jsonl").cases) for i in (1, 2, 3)]
    assert sum(sizes) == 72
    assert min(sizes) > 0
    assert main(["merge", "s1", "s2", "s3", "--output", "merged"]) == 0
    for side in ("base", "cand"):
        assert cases(example / f"merged/{side}.jsonl") == cases(example / f"full/{side}.jsonl")
    capsys.readouterr()
    full = main(["diff", "full/base.jsonl", "full/cand.jsonl", "--json", "full.json"])
    merged = main(["diff", "merged/base.jsonl", "merged/cand.jsonl", "--json", "merged.json"])
    assert full == merged == 1
    verdicts = [
        json.loads((example / name).read_text())["pairs"][0]["verdict"]
        for name in ("full.json", "merged.json")
    ]
    assert verdicts[0]["status"] == verdicts[1]["status"] == "fail"
    assert [r["rule"] for r in verdicts[0]["rules"]] == [r["rule"] for r in verdicts[1]["rules"]]
    assert [r["cases"] for r in verdicts[0]["rules"]] == [r["cases"] for r in verdicts[1]["rules"]]


def test_shards_are_stable_when_cases_are_added() -> None:
    ids = [f"case-{i}" for i in range(200)]
    before = {i: next(s for s in range(1, 4) if Shard(s, 3).owns(i)) for i in ids}
    after = {i: next(s for s in range(1, 4) if Shard(s, 3).owns(i)) for i in [*ids, "new-1", "new-2"]}
    assert all(after[i] == before[i] for i in ids)


def test_bad_shard_spec(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--shard", "4/3"]) == 2
    assert "--shard '4/3' is not I/N with 1 <= I <= N (e.g. --shard 2/3)" in capsys.readouterr().err


def test_merge_refuses_records_of_different_runs(example: Path) -> None:
    assert main(["run", "--output", "a.jsonl"]) == 0
    assert main(["run", "--prompt-file", "examples/candidate/ticket-triage.yaml", "--output", "b.jsonl"]) == 0
    with pytest.raises(ConfigError, match="not a shard of the same run"):
        merge_paths([example / "a.jsonl", example / "b.jsonl"], example / "m.jsonl")
