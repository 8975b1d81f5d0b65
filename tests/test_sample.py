"""`sample`: a production log (synthetic, from bench/gen_log.py) to a versioned eval set.

The logs here are generated: invented tickets with planted, random personal data.
"""

from __future__ import annotations

import gzip
import json
import random
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from agent_evals.cli import main
from agent_evals.errors import ConfigError
from agent_evals.limits import MAX_SEED
from agent_evals.load import load_evalset
from agent_evals.sampling import SampleOptions, SampleReport, load_spec, parse_map_args, print_summary, sample
from agent_evals.sampling._fields import MISSING, FieldMap, get_field
from agent_evals.sampling._select import Candidate, Pool, allocate
from agent_evals.validate import validate
from tests.support import load_script

REPO = Path(__file__).resolve().parent.parent


gen = load_script(REPO / "bench" / "gen_log.py")
MAPPING: dict[str, str] = gen.MAPPING


def write_jsonl(path: Path, rows: list[dict[str, Any]] | Iterator[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with the repository's example prompt, and nothing else."""
    (tmp_path / "prompts").mkdir()
    shutil.copy(REPO / "prompts" / "ticket-triage.yaml", tmp_path / "prompts")
    return tmp_path


@pytest.fixture(scope="module")
def big_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20,000 synthetic rows (the 1,000,000-row case is bench/bench_sample.py)."""
    return gen.write_log(tmp_path_factory.mktemp("logs") / "support.jsonl", 20_000, seed=3)


def options(root: Path, log: Path, **changes: Any) -> SampleOptions:
    base = SampleOptions(
        log=log,
        prompt="ticket-triage",
        mapping=MAPPING,
        n=50,
        root=root,
        seed=7,
        sampled_at="2026-11-01",
    )
    return replace(base, **changes)


def evalset_path(root: Path) -> Path:
    return root / "evalsets" / "ticket-triage.yaml"


def written(root: Path) -> list[dict[str, Any]]:
    """The cases of the written eval set, as plain dicts."""
    return [c.model_dump() for c in load_evalset(evalset_path(root)).cases]


def to_label(root: Path) -> list[dict[str, Any]]:
    path = root / "evalsets" / "ticket-triage.to-label.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def error_of(opts: SampleOptions) -> str:
    with pytest.raises(ConfigError) as info:
        sample(opts)
    return info.value.render()


# --- 1. stratified sampling keeps every class -------------------------------------------


def test_stratified_sample_keeps_every_class_with_the_minimum(project: Path, big_log: Path) -> None:
    report = sample(options(project, big_log, n=500, stratify_by="disposition", min_per_stratum=5))

    source = Counter(
        (json.loads(line).get("resolution") or {}).get("disposition", "(missing)")
        for line in big_log.read_text().splitlines()
    )
    assert source["cancellation"] < 150  # a rare class: 0.5% of the traffic
    cases = written(project)
    queued = to_label(project)
    assert len(cases) + len(queued) == 500
    sampled = Counter(c["expected"]["disposition"] for c in cases)
    sampled["(missing)"] = len(queued)
    assert set(sampled) == set(source)
    assert all(sampled[name] >= 5 for name in source)
    # The rest is proportional to the log: the big classes keep their share within a point or two.
    for name in ("technical_issue", "billing_question", "account_access"):
        assert abs(sampled[name] / 500 - source[name] / 20_000) < 0.02
    assert {s.name: (s.source, s.sampled) for s in report.strata} == {
        name: (source[name], sampled[name]) for name in source
    }
    assert report.rows_read == 20_000
    assert report.eligible == 20_000


def test_min_per_stratum_too_large_for_n(project: Path, big_log: Path) -> None:
    message = error_of(options(project, big_log, n=20, stratify_by="disposition", min_per_stratum=5))
    assert message == (
        "--n 20 cannot hold --min-per-stratum 5 for 7 strata (needs 35) "
        "(raise --n, lower --min-per-stratum, or stratify by a column with fewer values)"
    )


# --- 2. no planted personal data survives ---------------------------------------------------


def test_no_planted_pii_survives_into_the_written_files(project: Path, tmp_path: Path) -> None:
    planted: dict[str, list[str]] = {}
    rows = list(gen.rows(400, seed=11, pii_rate=0.6, planted=planted))
    # Personal data outside the variables too: a cluster id, a production output, feedback, a label.
    rows[0]["conversation_id"] = "conv-of-ana.ortiz@example-shop.com"
    rows[1]["output"] = "Reply sent to +44 20 7946 0958"
    rows[2]["feedback"] = "call me at +1 (415) 555-0132"
    rows[3].pop("resolution", None)  # to label: its context (output) is written too
    rows[3]["output"] = "refund to 4111 1111 1111 1111"
    planted["email"].append("ana.ortiz@example-shop.com")
    planted["phone"] += ["+44 20 7946 0958", "+1 (415) 555-0132"]
    planted["card"].append("4111 1111 1111 1111")
    log = write_jsonl(tmp_path / "pii.jsonl", rows)
    report = sample(options(project, log, n=400, query='feedback != "x@example.org"', dedup_threshold=1.01))

    assert report.cases + report.to_label == 400  # every row is written: nothing can hide
    text = "".join(p.read_text(encoding="utf-8") for p in (project / "evalsets").iterdir())
    for kind, values in planted.items():
        assert values, kind
        for value in values:
            assert value not in text, (kind, value)
            assert value.replace(" ", "") not in text.replace(" ", ""), (kind, value)
    assert "x@example.org" not in text  # the query, recorded in the provenance
    for placeholder in ("<EMAIL>", "<PHONE>", "<CARD>", "<IBAN>", "<IP>"):
        assert placeholder in text
    assert set(report.redactions) == {"email", "phone", "card", "iban", "ip"}
    assert report.redactions["iban"] == len(planted["iban"])


def test_no_redact_must_be_explicit_and_is_said(project: Path, tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", gen.rows(30, seed=2, pii_rate=1.0))
    report = sample(options(project, log, n=30, redact=False))
    text = evalset_path(project).read_text(encoding="utf-8")
    assert "Redaction was turned OFF (--no-redact)" in text
    assert "PII NOT redacted (--no-redact)" in text
    assert not report.redaction
    assert "<EMAIL>" not in text
    assert "@" in text


def test_extra_redaction_patterns(project: Path, tmp_path: Path) -> None:
    rows = list(gen.rows(20, seed=2, pii_rate=0))
    for row in rows:
        row["payload"]["body"] += " Order ref ORD-123456."
    log = write_jsonl(tmp_path / "log.jsonl", rows)
    report = sample(options(project, log, n=20, redact_patterns=("order_ref=ORD-\\d{6}",)))
    text = "".join(p.read_text(encoding="utf-8") for p in (project / "evalsets").iterdir())
    assert "ORD-123456" not in text
    assert "<ORDER_REF>" in text
    assert report.redactions["order_ref"] == report.sampled == 20


# --- 3. reproducible, and append only adds ------------------------------------------------


def test_same_seed_same_bytes_and_another_seed_differs(project: Path, big_log: Path) -> None:
    opts = options(project, big_log, n=120, stratify_by="disposition", overwrite=True)
    sample(opts)
    first = evalset_path(project).read_bytes(), to_label(project)
    sample(opts)
    assert (evalset_path(project).read_bytes(), to_label(project)) == first
    sample(replace(opts, seed=8))
    assert evalset_path(project).read_bytes() != first[0]


def test_diversity_is_reproducible_too(project: Path, tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", gen.rows(4000, seed=26))
    texts = []
    for chunksize in (1000, 7000, 7000):
        sample(options(project, log, n=60, method="diversity", chunksize=chunksize, overwrite=True))
        texts.append(evalset_path(project).read_bytes())
    assert texts[0] == texts[1] == texts[2]


def test_a_seed_is_a_32_bit_number_the_sampler_and_scikit_learn_both_take(
    project: Path, tmp_path: Path
) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", gen.rows(400, seed=27))
    for seed in (0, MAX_SEED):  # the largest reaches KMeans' random_state whole
        sample(options(project, log, n=20, method="diversity", seed=seed, overwrite=True))
        assert len(written(project)) + len(to_label(project)) == 20
    for seed in (-1, MAX_SEED + 1, 10**23):  # scikit-learn refused them, or the priority hash overflowed
        assert (
            error_of(options(project, log, seed=seed))
            == f"--seed must be from 0 to {MAX_SEED} (e.g. --seed 0)"
        )


def test_an_eval_set_whose_every_row_awaits_a_label_stops_a_run_until_labelled(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`run` on it wrote an empty record and exited 0, a clean run of nothing; it is exit 2 at the
    eval set's cases line, naming the file of rows to label."""
    rows = [{**row, "resolution": {"disposition": None}} for row in gen.rows(200, seed=28)]
    sample(options(project, write_jsonl(tmp_path / "log.jsonl", rows), n=20, cases_file=True, overwrite=True))
    assert written(project) == []
    assert len(to_label(project)) == 20
    text = evalset_path(project).read_text()
    line = next(i for i, row in enumerate(text.splitlines(), 1) if row.startswith("cases_file:"))
    assert main(["-C", str(project), "run"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"evalsets/ticket-triage.yaml:{line}: eval set 'ticket-triage' has no cases: nothing to evaluate "
        "(label the rows 'agent-evals sample' set aside in ticket-triage.to-label.jsonl and add them as cases)"
    ]
    assert not (project / ".agent-evals" / "runs").exists()


def test_same_result_whatever_the_chunk_size(project: Path, big_log: Path) -> None:
    texts = []
    for chunksize in (1000, 7000):
        sample(
            options(project, big_log, n=200, stratify_by="disposition", chunksize=chunksize, overwrite=True)
        )
        texts.append(evalset_path(project).read_bytes())
    assert texts[0] == texts[1]


def test_same_result_whatever_the_row_order(project: Path, tmp_path: Path) -> None:
    rows = list(gen.rows(3000, seed=5))
    ordered = write_jsonl(tmp_path / "a.jsonl", rows)
    random.Random(1).shuffle(rows)
    shuffled = write_jsonl(tmp_path / "b.jsonl", rows)
    ids = []
    for log in (ordered, shuffled):
        sample(options(project, log, n=80, stratify_by="disposition", overwrite=True))
        ids.append([c["id"] for c in written(project)])
    assert ids[0] == ids[1]


@pytest.mark.parametrize("cases_file", [False, True], ids=["yaml", "jsonl"])
def test_append_adds_only_new_cases_at_the_end(project: Path, tmp_path: Path, cases_file: bool) -> None:
    log = write_jsonl(tmp_path / "week1.jsonl", gen.rows(2000, seed=4))
    sample(options(project, log, n=60, cases_file=cases_file))
    files = sorted((project / "evalsets").iterdir())
    before = {p.name: p.read_bytes() for p in files}
    old_ids = {c["id"] for c in written(project)} | {r["id"] for r in to_label(project)}

    grown = write_jsonl(
        tmp_path / "week2.jsonl", [*gen.rows(2000, seed=4), *gen.rows(500, seed=4, start=2000)]
    )
    report = sample(options(project, grown, n=40, append=True))

    for name, old in before.items():
        new = (project / "evalsets" / name).read_bytes()
        assert new.startswith(old), name  # the git diff is additions only
        assert len(new) > len(old), name
    cases = written(project)
    ids = [c["id"] for c in cases] + [r["id"] for r in to_label(project)]
    assert len(ids) == len(set(ids)) == len(old_ids) + 40
    assert report.appended
    assert report.cases + report.to_label == 40
    assert report.filtered["already in the eval set"] == len(old_ids)
    assert validate(project) == []
    new_text = evalset_path(project).read_text(encoding="utf-8")
    assert "# appended by agent-evals sample on 2026-11-01: " in new_text


def test_append_to_a_hand_written_eval_set(project: Path, tmp_path: Path) -> None:
    """The example eval set indents its case items; appended items follow its indentation."""
    target = evalset_path(project)
    target.parent.mkdir()
    shutil.copy(REPO / "evalsets" / "ticket-triage.yaml", target)
    old = target.read_bytes()
    log = write_jsonl(tmp_path / "log.jsonl", gen.rows(500, seed=1, unlabelled_rate=0))
    report = sample(options(project, log, n=10, append=True))
    assert target.read_bytes().startswith(old)
    assert report.cases == 10
    assert len(load_evalset(target).cases) == 72 + 10
    assert validate(project) == []


def test_append_with_nothing_new_changes_nothing(project: Path, tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", gen.rows(30, seed=1))
    sample(options(project, log, n=30, dedup_threshold=1.01))
    before = evalset_path(project).read_bytes()
    report = sample(options(project, log, n=30, append=True))
    assert evalset_path(project).read_bytes() == before
    assert report.cases == report.to_label == 0
    assert "nothing new to add: the eval set is unchanged" in report.notes


def test_existing_eval_set_needs_append_or_overwrite(project: Path, tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", gen.rows(50, seed=1))
    sample(options(project, log, n=10))
    assert error_of(options(project, log, n=10)) == (
        f"{evalset_path(project)}: the eval set already exists "
        "(pass --append to add new cases to it, or --overwrite to replace it)"
    )


def test_append_refuses_a_file_whose_cases_are_not_last(project: Path, tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", gen.rows(50, seed=1))
    sample(options(project, log, n=10))
    target = evalset_path(project)
    target.write_text(target.read_text(encoding="utf-8") + "metric: refund time\n", encoding="utf-8")
    cases_line = target.read_text(encoding="utf-8").splitlines().index("cases:") + 1
    assert error_of(options(project, log, n=10, append=True)) == (
        f"{target}:{cases_line}: cannot append: 'cases' is not the last key of the eval set "
        "(move 'cases:' to the end of the file, so new cases can be added without rewriting it)"
    )


# --- 4. malformed logs ------------------------------------------------------------------------


def _lines(n: int = 5) -> list[str]:
    return [json.dumps(row) for row in gen.rows(n, seed=9, unlabelled_rate=0)]


def test_bad_json_line_names_the_line(project: Path, tmp_path: Path) -> None:
    lines = _lines()
    lines[2] = '{"ts": "2026-10-01T00:00:00Z" "payload": {}}'
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert error_of(options(project, log)) == (
        f"{log}:3: not valid JSON (Expecting ',' delimiter at column 31) (fix the line, or pass --skip-bad-lines)"
    )
    report = sample(options(project, log, skip_bad_lines=True))
    assert report.bad_lines == {"not valid JSON": 1}
    assert report.rows_read == 4
    assert report.cases == 4


def test_line_that_is_not_an_object(project: Path, tmp_path: Path) -> None:
    lines = _lines()
    lines[1] = "[1, 2]"
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert error_of(options(project, log)) == (
        f"{log}:2: not a JSON object (got a list) (fix the line, or pass --skip-bad-lines)"
    )


def test_wrong_encoding_names_the_line(project: Path, tmp_path: Path) -> None:
    lines = [line.encode() for line in _lines()]
    lines[1] = (
        lines[1]
        .replace(b"Charged", "Charg\u00e9d caf\u00e9".encode("latin-1"))
        .replace(b'"ts"', '"caf\u00e9"'.encode("latin-1"), 1)
    )
    log = tmp_path / "log.jsonl"
    log.write_bytes(b"\n".join(lines) + b"\n")
    column = lines[1].index(b"\xe9") + 1
    assert error_of(options(project, log)) == (
        f"{log}:2: not utf-8 text (byte 0xe9 at column {column}) "
        "(convert the log to utf-8, pass --encoding (e.g. latin-1), or pass --skip-bad-lines)"
    )
    report = sample(options(project, log, skip_bad_lines=True))
    assert report.bad_lines == {"not utf-8 text": 1}
    assert report.rows_read == 4
    assert sample(options(project, log, encoding="latin-1", overwrite=True)).rows_read == 5


def test_missing_mapped_column_names_it(project: Path, tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", gen.rows(20, seed=1))
    mapping = {**MAPPING, "vars.ticket.subject": "payload.subjct"}
    assert error_of(options(project, log, mapping=mapping)) == (
        f"{log}: no row of the log has 'payload.subjct' (mapped to vars.ticket.subject) "
        "(did you mean 'payload.subject'?)"
    )
    csv = gen.write_log(tmp_path / "log.csv", 20, seed=1)
    assert error_of(options(project, csv, mapping=mapping)) == (
        f"{csv}: the log has no column 'payload.subjct' (mapped to vars.ticket.subject) "
        "(did you mean 'payload.subject'?)"
    )


def test_bad_csv_line_names_the_line_and_can_be_skipped(project: Path, tmp_path: Path) -> None:
    csv = gen.write_log(tmp_path / "log.csv", 10, seed=1)
    lines = csv.read_text(encoding="utf-8").splitlines(keepends=True)
    lines.insert(4, "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p\n")
    csv.write_text("".join(lines), encoding="utf-8")
    assert error_of(options(project, csv)) == (
        f"{csv}:5: expected 14 fields, saw 16 (fix the line, or pass --skip-bad-lines)"
    )
    report = sample(options(project, csv, skip_bad_lines=True))
    assert report.bad_lines == {"wrong number of fields": 1}
    assert report.rows_read == 10


def test_csv_wrong_encoding_names_the_line(project: Path, tmp_path: Path) -> None:
    csv = gen.write_log(tmp_path / "log.csv", 10, seed=1)
    lines = csv.read_bytes().splitlines(keepends=True)
    lines[3] = lines[3].replace(b"Hi", b"H\xe9", 1) if b"Hi" in lines[3] else b"\xe9" + lines[3]
    csv.write_bytes(b"".join(lines))
    assert error_of(options(project, csv)).startswith(f"{csv}:4: not utf-8 text (byte 0xe9 at column ")
    report = sample(options(project, csv, skip_bad_lines=True))
    assert report.bad_lines == {"not utf-8 text": 1}
    assert report.rows_read == 9


def test_bad_timestamp_names_the_line(project: Path, tmp_path: Path) -> None:
    rows = list(gen.rows(5, seed=1))
    rows[3]["ts"] = "yesterday"
    log = write_jsonl(tmp_path / "log.jsonl", rows)
    assert error_of(options(project, log)) == (
        f"{log}:4: timestamp is not a date or time (ts: 'yesterday') "
        "(use ISO 8601 or epoch seconds, fix the line, or pass --skip-bad-lines)"
    )
    assert sample(options(project, log, skip_bad_lines=True)).bad_lines == {
        "timestamp is not a date or time": 1
    }


def test_missing_log_file(project: Path, tmp_path: Path) -> None:
    assert error_of(options(project, tmp_path / "nope.jsonl")) == (
        f"{tmp_path / 'nope.jsonl'}: log file not found (check the path)"
    )


# --- 5. the sample validates and runs ----------------------------------------------------------


def test_sampled_eval_set_validates_and_runs_with_the_example_prompt(project: Path, tmp_path: Path) -> None:
    log = gen.write_log(tmp_path / "support.jsonl", 3000, seed=21)
    report = sample(options(project, log, n=40, stratify_by="disposition", min_per_stratum=3))
    assert report.cases > 30
    assert validate(project) == []
    done = subprocess.run(
        [sys.executable, "-m", "agent_evals.cli", "run", "--output", "run.jsonl"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = (project / "run.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == report.cases + 2  # header, a line per case, end


def test_written_eval_set_layout(project: Path, tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", gen.rows(300, seed=8))
    report = sample(options(project, log, n=30, stratify_by="disposition", min_per_stratum=1))
    text = evalset_path(project).read_text(encoding="utf-8")
    evalset = load_evalset(evalset_path(project))
    assert text.rstrip().split("\n- id: ")[0].endswith("cases:")
    assert text.startswith("# Sampled from production traffic by `agent-evals sample`")
    assert evalset.prompt == "ticket-triage"
    assert [g.model_dump(exclude_defaults=True) for g in evalset.graders] == [
        {"type": "exact_match", "name": "disposition", "field": "disposition"}
    ]
    prov = evalset.provenance
    assert prov is not None
    assert prov.source == "log.jsonl"
    assert prov.source_hash == report.source_hash
    assert prov.source_hash is not None
    assert prov.source_hash.startswith("sha256:")
    import hashlib

    assert prov.source_hash == "sha256:" + hashlib.sha256(log.read_bytes()).hexdigest()
    assert prov.seed == 7
    assert prov.sampled_at == "2026-11-01"
    assert prov.method is not None
    assert prov.method.startswith("stratified by disposition (at least 1 per stratum)")
    assert prov.time_window is not None
    assert prov.time_window.startswith("2026-10-01T")
    case = evalset.cases[0]
    assert case.id.startswith("c-")
    assert len(case.id) == 14
    assert set(case.vars["ticket"]) == {"subject", "body", "channel", "product", "customer"}
    assert case.cluster is not None
    assert case.cluster.startswith("conv-8-")
    queued = to_label(project)
    assert len(queued) == report.to_label
    for row in queued:
        assert row["expected"] is None
        assert row["id"].startswith("c-")
        assert set(row["context"]) >= {"output", "timestamp", "source_line"}
    if queued:
        assert "ticket-triage.to-label.jsonl, not in this eval set" in text


def test_ids_are_stable_content_hashes(project: Path, tmp_path: Path) -> None:
    rows = list(gen.rows(100, seed=6, pii_rate=0.5))
    log = write_jsonl(tmp_path / "log.jsonl", rows)
    sample(options(project, log, n=100, dedup_threshold=1.01))
    redacted = {c["id"] for c in written(project)} | {r["id"] for r in to_label(project)}
    sample(options(project, log, n=100, dedup_threshold=1.01, redact=False, overwrite=True))
    plain = {c["id"]: c for c in written(project)}
    assert redacted == set(plain) | {r["id"] for r in to_label(project)}
    import hashlib

    case = next(iter(plain.values()))
    blob = json.dumps(
        {"ticket": case["vars"]["ticket"]}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    assert case["id"] == "c-" + hashlib.sha256(b"agent-evals/case/v1\n" + blob.encode()).hexdigest()[:12]


def test_cases_file_for_large_sets(project: Path, tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", gen.rows(200, seed=8, unlabelled_rate=0))
    report = sample(options(project, log, n=100, cases_file=True))
    text = evalset_path(project).read_text(encoding="utf-8")
    assert text.rstrip().endswith("cases_file: ticket-triage.cases.jsonl")
    assert report.cases_path == project / "evalsets" / "ticket-triage.cases.jsonl"
    assert len(load_evalset(evalset_path(project)).cases) == report.cases
    assert validate(project) == []


# --- methods, filters, mapping, formats ---------------------------------------------------------


def _hot_share(project: Path, log: Path, method: str) -> int:
    fields = ("ticket.subject", "ticket.body")  # the request itself, not who sent it or from where
    sample(options(project, log, n=30, method=method, text_fields=fields, overwrite=True, labelled_only=True))
    return sum("reset my password" in c["vars"]["ticket"]["body"] for c in written(project))


def test_diversity_covers_more_than_the_most_common_request(project: Path, tmp_path: Path) -> None:
    # 60% of this traffic is one password-reset ticket, word for word but for the name that signs it.
    log = write_jsonl(tmp_path / "log.jsonl", gen.rows(3000, seed=12, hot_rate=0.6))
    uniform = _hot_share(project, log, "uniform")
    diverse = _hot_share(project, log, "diversity")
    assert uniform >= 8
    assert diverse <= uniform // 2


def test_near_duplicates_are_dropped(project: Path, tmp_path: Path) -> None:
    rows = list(gen.rows(60, seed=13, resend_rate=0, unlabelled_rate=0, pii_rate=0))
    resent = []
    for row in rows[:10]:
        # Sent again, with different punctuation: another input (another id), the same text.
        copy = json.loads(json.dumps(row))
        copy["payload"]["body"] = copy["payload"]["body"].upper().replace(".", "!!")
        resent.append(copy)
    log = write_jsonl(tmp_path / "log.jsonl", rows + resent)
    report = sample(options(project, log, n=70))
    assert report.near_duplicates == 10
    assert report.cases == 60

    def key(ticket: dict[str, str]) -> tuple[str, str]:
        return ticket["body"].lower().replace("!!", "."), ticket["customer"]

    kept = Counter(key(c["vars"]["ticket"]) for c in written(project))
    assert all(kept[key(row["payload"])] == 1 for row in rows[:10])  # one of each pair
    report = sample(options(project, log, n=70, dedup_threshold=1.01, overwrite=True))
    assert (report.near_duplicates, report.cases) == (0, 70)


def test_exact_duplicates_collapse(project: Path, tmp_path: Path) -> None:
    rows = list(gen.rows(20, seed=13, unlabelled_rate=0, resend_rate=0))
    log = write_jsonl(tmp_path / "log.jsonl", rows + rows[:5])
    report = sample(options(project, log, n=50))
    assert report.exact_duplicates == 5
    assert report.cases == 20
    assert len({c["id"] for c in written(project)}) == 20


def test_time_window(project: Path, tmp_path: Path) -> None:
    rows = list(gen.rows(400, seed=14))
    log = write_jsonl(tmp_path / "log.jsonl", rows)
    since, until = "2026-10-01T00:05:00Z", "2026-10-01T00:10:00"
    start, end = datetime.fromisoformat(since), datetime.fromisoformat(until + "+00:00")
    inside = [r for r in rows if start <= datetime.fromisoformat(r["ts"]) < end]
    report = sample(options(project, log, n=400, since=since, until=until, dedup_threshold=1.01))
    assert report.filtered == {"outside the time window": 400 - len(inside)}
    assert report.cases + report.to_label + report.exact_duplicates == len(inside)
    prov = load_evalset(evalset_path(project)).provenance
    assert prov is not None
    assert prov.time_window == "2026-10-01T00:05:00Z .. 2026-10-01T00:10:00Z"
    assert list(prov.filters[:2]) == ["timestamp >= 2026-10-01T00:05:00Z", "timestamp < 2026-10-01T00:10:00Z"]
    assert "--since/--until need a timestamp" in error_of(
        options(
            project, log, since="2026-10-01", mapping={k: v for k, v in MAPPING.items() if k != "timestamp"}
        )
    )
    assert error_of(options(project, log, since="last week")) == (
        "--since 'last week' is not a date or time (use ISO 8601, e.g. 2026-10-01 or 2026-10-01T08:00:00Z)"
    )


def test_query_on_mapped_and_unmapped_fields(project: Path, tmp_path: Path) -> None:
    rows = list(gen.rows(600, seed=15))
    log = write_jsonl(tmp_path / "log.jsonl", rows)
    email = sum(r["payload"]["channel"] == "email" for r in rows)
    report = sample(options(project, log, n=600, query='channel == "email"', dedup_threshold=1.01))
    assert report.filtered == {"query": 600 - email}
    assert {c["vars"]["ticket"]["channel"] for c in written(project)} == {"email"}

    eu = sum(r["meta"]["region"] == "EU" and r["payload"]["channel"] == "email" for r in rows)
    report = sample(
        options(
            project,
            log,
            n=600,
            query='`meta.region` == "EU" and `payload.channel` == "email"',
            dedup_threshold=1.01,
            overwrite=True,
        )
    )
    assert report.filtered == {"query": 600 - eu}


def test_query_errors(project: Path, tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", gen.rows(20, seed=1))
    assert error_of(options(project, log, query="chanel == 'email'")) == (
        f"{log}: --query names 'chanel', which no row of the log has "
        "(check the field name; put dotted names in backticks, e.g. `meta.region`)"
    )
    assert error_of(options(project, log, query="`meta.regio` == 'EU'")).startswith(
        f"{log}: --query names 'meta.regio', which no row of the log has"
    )
    assert error_of(options(project, log, query="channel ==")).startswith(
        "--query 'channel ==': invalid syntax"
    )


def test_query_field_present_in_later_rows_only(project: Path, tmp_path: Path) -> None:
    rows = list(gen.rows(40, seed=16, unlabelled_rate=0))
    for row in rows[30:]:
        row["meta"]["vip"] = True
    log = write_jsonl(tmp_path / "log.jsonl", rows)
    report = sample(options(project, log, n=40, query="`meta.vip` == True", chunksize=10))
    assert report.cases == 10
    assert report.filtered == {"query": 30}


def test_rows_missing_variables_are_counted(project: Path, tmp_path: Path) -> None:
    rows = list(gen.rows(50, seed=17))
    for row in rows[:4]:
        del row["payload"]["body"]
    for row in rows[4:6]:
        row["payload"]["product"] = None
    log = write_jsonl(tmp_path / "log.jsonl", rows)
    report = sample(options(project, log, n=50, dedup_threshold=1.01))
    assert report.filtered == {"missing a mapped variable": 6}
    assert report.missing_vars == {"vars.ticket.body": 4, "vars.ticket.product": 2}
    assert report.eligible == 44


def test_labelled_only(project: Path, tmp_path: Path) -> None:
    rows = list(gen.rows(50, seed=18, unlabelled_rate=0.3))
    unlabelled = sum("resolution" not in r for r in rows)
    log = write_jsonl(tmp_path / "log.jsonl", rows)
    report = sample(options(project, log, n=50, labelled_only=True, dedup_threshold=1.01))
    assert report.filtered == {"no label (--labelled-only)": unlabelled}
    assert report.to_label == 0
    assert not to_label(project)


def test_csv_parquet_and_jsonl_give_the_same_cases(project: Path, tmp_path: Path) -> None:
    cases = {}
    for suffix in ("jsonl", "csv", "parquet", "jsonl.gz"):
        if suffix == "jsonl.gz":
            log = tmp_path / "log.jsonl.gz"
            log.write_bytes(gzip.compress((tmp_path / "log.jsonl").read_bytes()))
        else:
            log = gen.write_log(tmp_path / f"log.{suffix}", 1500, seed=19)
        report = sample(
            options(project, log, n=60, stratify_by="disposition", min_per_stratum=2, overwrite=True)
        )
        assert report.rows_read == 1500
        cases[suffix] = (written(project), to_label(project))
    csv_cases, csv_queue = cases["csv"]
    assert csv_cases == cases["jsonl"][0]
    # A CSV row's source_line is its physical line: its JSONL twin's plus one (the header line).
    assert [
        {**r, "context": {**r["context"], "source_line": r["context"]["source_line"] - 1}} for r in csv_queue
    ] == cases["jsonl"][1]
    assert cases["parquet"] == cases["jsonl"]
    assert cases["jsonl.gz"] == cases["jsonl"]


def test_map_file_with_nested_mapping_and_graders(project: Path, tmp_path: Path) -> None:
    spec = tmp_path / "map.yaml"
    spec.write_text(
        "schema_version: 1\n"
        "map:\n"
        "  vars:\n"
        "    ticket: {subject: payload.subject, body: payload.body, channel: payload.channel,"
        " product: payload.product}\n"
        "  expected.disposition: resolution.disposition\n"
        "  timestamp: ts\n"
        "  tags.region: meta.region\n"
        "graders:\n"
        "  - {type: exact_match, name: disposition, field: disposition, normalize: [case]}\n"
        "text_fields: [ticket.body]\n",
        encoding="utf-8",
    )
    log = write_jsonl(tmp_path / "log.jsonl", gen.rows(100, seed=20, unlabelled_rate=0))
    sample(options(project, log, n=10, mapping={}, map_file=spec))
    evalset = load_evalset(evalset_path(project))
    assert evalset.graders[0].options == {"field": "disposition", "normalize": ["case"]}
    assert all(c.tags and c.tags[0] in ("EU", "US", "APAC") for c in evalset.cases)
    assert set(evalset.cases[0].vars["ticket"]) == {"subject", "body", "channel", "product"}


def test_map_file_errors_name_the_line(tmp_path: Path) -> None:
    spec = tmp_path / "map.yaml"
    spec.write_text("map:\n  vars.ticket.subject: payload.subject\n  lable: x\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_spec(spec)
    assert info.value.render() == f"{spec}:3: unknown mapping target 'lable' (did you mean 'label'?)"
    spec.write_text("map: {vars.a: x}\nmapping: {}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_spec(spec)
    assert info.value.render() == f"{spec}:2: unknown key 'mapping' (did you mean 'map'?)"


def test_mapping_flags() -> None:
    assert parse_map_args(["vars.a=x.y", " label = z "]) == {"vars.a": "x.y", "label": "z"}
    with pytest.raises(ConfigError, match=r"--map 'vars.a' is not TARGET=SOURCE"):
        parse_map_args(["vars.a"])
    with pytest.raises(ConfigError) as info:
        FieldMap.parse({"vars.ticket": "payload", "vars.ticket.subject": "payload.subject"})
    assert info.value.render() == (
        "--map: 'vars.ticket' and 'vars.ticket.subject' overlap (map either the whole object or its fields, not both)"
    )
    with pytest.raises(ConfigError, match="no input variables are mapped"):
        FieldMap.parse({"label": "x"})


def test_prompt_variables_are_checked_before_reading(project: Path, tmp_path: Path) -> None:
    log = tmp_path / "never-read.jsonl"  # does not exist: the check comes first
    mapping = {k: v for k, v in MAPPING.items() if k != "vars.ticket.product"}
    message = error_of(options(project, log, mapping=mapping))
    prompt = project / "prompts" / "ticket-triage.yaml"
    line = prompt.read_text(encoding="utf-8").splitlines().index("      Product: {{ ticket.product }}") + 1
    assert message == (
        f"{prompt}:{line}: the mapping gives no value for a variable prompt 'ticket-triage' uses: "
        "'dict object' has no attribute 'product' (map the variable that template line uses: --map vars.NAME=FIELD)"
    )


def test_whole_object_mapping_and_get_field() -> None:
    row = {"payload": {"a": 1, "b": [{"c": 2}]}, "meta.x": "flat", "raw": '{"k": {"v": 3}}'}
    assert get_field(row, "payload.a") == 1
    assert get_field(row, "payload.b.0.c") == 2
    assert get_field(row, "meta.x") == "flat"
    assert get_field(row, "raw.k.v") == 3
    assert get_field(row, "payload") == {"a": 1, "b": [{"c": 2}]}
    assert get_field(row, "payload.zz") is MISSING
    fields = FieldMap.parse({"vars.ticket": "payload", "label": "resolution.disposition"})
    assert fields.expected == ((("disposition",), "resolution.disposition"),)
    assert fields.aliases()["disposition"] == "resolution.disposition"


# --- the streaming pool and the allotment -----------------------------------------------------------


def _candidate(i: int, stratum: str) -> Candidate:
    from agent_evals.sampling._select import priority

    digest = i.to_bytes(8, "big")
    return Candidate(
        key=(priority(0, digest), i),
        id=f"c-{i}",
        stratum=stratum,
        balance=stratum,
        position=i,
        vars={},
        expected=None,
        labelled=True,
        cluster=None,
        tags=[],
        output=None,
        feedback=None,
        timestamp=None,
    )


def test_pool_is_the_same_whatever_the_order_and_chunking() -> None:
    rows = [_candidate(i, "rare" if i % 97 == 0 else "common") for i in range(5000)]
    pools = []
    for chunk, seed in ((1, 0), (333, 1), (5000, 2)):
        shuffled = rows[:]
        random.Random(seed).shuffle(shuffled)
        pool = Pool(global_k=100, stratum_k=20)
        for start in range(0, len(shuffled), chunk):
            pool.add([r for r in shuffled[start : start + chunk] if pool.could_enter(r.key[0], r.stratum)])
        pools.append(sorted(r.id for r in pool.rows))
    assert pools[0] == pools[1] == pools[2]
    by_key = sorted(rows, key=lambda r: r.key)
    expected = {r.id for r in by_key[:100]} | {r.id for r in [r for r in by_key if r.stratum == "rare"][:20]}
    assert set(pools[0]) == expected


@pytest.mark.parametrize(
    ("n", "population", "capacity", "minimum", "expected"),
    [
        (10, {"a": 90, "b": 10}, {"a": 90, "b": 10}, 0, {"a": 9, "b": 1}),
        (10, {"a": 990, "b": 10}, {"a": 990, "b": 10}, 3, {"a": 7, "b": 3}),
        (10, {"a": 990, "b": 2}, {"a": 990, "b": 2}, 3, {"a": 8, "b": 2}),
        (10, {"a": 50, "b": 50}, {"a": 3, "b": 50}, 0, {"a": 3, "b": 7}),
        (3, {"a": 1, "b": 1, "c": 1}, {"a": 1, "b": 1, "c": 1}, 0, {"a": 1, "b": 1, "c": 1}),
    ],
    ids=["proportional", "minimum-first", "all-a-rare-class-has", "capacity", "ties"],
)
def test_allocate(
    n: int, population: dict[str, int], capacity: dict[str, int], minimum: int, expected: dict[str, int]
) -> None:
    assert allocate(n, population, capacity, minimum) == expected


# --- the summary -------------------------------------------------------------------------------


def test_summary_prints_every_count(project: Path, tmp_path: Path) -> None:
    from rich.console import Console

    rows = list(gen.rows(300, seed=22, pii_rate=0.3))
    rows[5]["payload"]["body"] = None
    log = write_jsonl(tmp_path / "log.jsonl", rows)
    with log.open("a") as handle:
        handle.write("not json\n")
    report = sample(
        options(project, log, n=40, stratify_by="disposition", min_per_stratum=2, skip_bad_lines=True)
    )
    console = Console(record=True, width=120)
    print_summary(console, report)
    out = console.export_text()
    for text in (
        "rows read",
        "bad lines skipped: not valid JSON",
        "filtered: missing a mapped variable",
        "missing vars.ticket.body",
        "near-duplicates passed over",
        "strata: disposition",
        "cancellation" if any(s.name == "cancellation" for s in report.strata) else "refund",
        "redacted, per kind:",
        "email",
        "wrote",
    ):
        assert text in out, text
    if report.to_label:
        assert "have no label: written to" in out


def test_report_is_a_plain_dataclass(project: Path, tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", gen.rows(20, seed=23))
    report: SampleReport = sample(options(project, log, n=5))
    assert report.sampled == 5
    assert report.evalset_path == evalset_path(project)


def test_a_row_that_does_not_render_stops_before_writing(project: Path, tmp_path: Path) -> None:
    prompt = (project / "prompts" / "ticket-triage.yaml").read_text(encoding="utf-8")
    (project / "prompts" / "ticket-triage.yaml").write_text(
        prompt.replace("Subject: {{ ticket.subject }}", "Subject: {{ ticket.subject + 1 }}"), encoding="utf-8"
    )
    log = write_jsonl(tmp_path / "log.jsonl", gen.rows(20, seed=1))
    message = error_of(options(project, log, n=5))
    assert message.startswith(f"{project / 'prompts' / 'ticket-triage.yaml'}:")
    assert f"of {log} does not render with prompt 'ticket-triage': template failed in messages[" in message
    assert message.endswith("(check the mapping and the types of the mapped fields; nothing was written)")
    assert not (project / "evalsets").exists()


def test_without_the_prompt_it_says_the_cases_were_not_checked(tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", gen.rows(20, seed=1))
    report = sample(options(tmp_path, log, n=5))
    assert report.notes == ["prompt 'ticket-triage' not found: the cases were not rendered with it"]


def test_csv_cells_holding_json_are_addressable(project: Path, tmp_path: Path) -> None:
    import csv

    log = tmp_path / "log.csv"
    with log.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ts", "payload", "label"])
        for row in gen.rows(20, seed=24, unlabelled_rate=0):
            writer.writerow([row["ts"], json.dumps(row["payload"]), row["resolution"]["disposition"]])
    mapping = {f"vars.ticket.{k}": f"payload.{k}" for k in ("subject", "body", "channel", "product")}
    report = sample(options(project, log, n=20, mapping={**mapping, "label": "label"}, dedup_threshold=1.01))
    assert report.cases == 20
    assert all(
        set(c["vars"]["ticket"]) == {"subject", "body", "channel", "product"} for c in written(project)
    )
    assert {g.label for g in load_evalset(evalset_path(project)).graders} == {"label"}


def test_class_balance_without_strata(project: Path, tmp_path: Path) -> None:
    from rich.console import Console

    log = write_jsonl(tmp_path / "log.jsonl", gen.rows(400, seed=25))
    report = sample(options(project, log, n=40))
    assert report.strata == []
    assert report.balance_by == "expected.disposition"
    assert sum(b.source for b in report.balance) == report.eligible
    assert sum(b.sampled for b in report.balance) == 40
    console = Console(record=True, width=120)
    print_summary(console, report)
    assert "class balance: expected.disposition (the log vs the sample)" in console.export_text()
