"""`run --watch`, driven by real file edits: a saved change re-runs and reports only what it affected."""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_evals.runner import RunOptions
from agent_evals.watch import Selection, WatchUpdate, watch
from tests.support import EVALSET, PROMPT, basic_project

OTHER_PROMPT = PROMPT.replace("id: triage", "id: other")
OTHER_EVALSET = EVALSET.replace("id: triage\nprompt: triage", "id: other\nprompt: other")


@pytest.fixture
def watching(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, queue.Queue[WatchUpdate]]]:
    basic_project(tmp_path)
    (tmp_path / "prompts/other.yaml").write_text(OTHER_PROMPT)
    (tmp_path / "evalsets/other.yaml").write_text(OTHER_EVALSET)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "agent", raising=False)
    updates: queue.Queue[WatchUpdate] = queue.Queue()
    stop = threading.Event()
    thread = threading.Thread(
        target=watch,
        args=(tmp_path, RunOptions(cache=False), updates.put),
        kwargs={"stop": stop},
        daemon=True,
    )
    thread.start()
    first = updates.get(timeout=30)
    assert first.initial
    assert sorted(first.rerun) == ["other", "triage"]
    assert first.cases_run == 6
    yield tmp_path, updates
    stop.set()
    thread.join(timeout=10)


def next_update(updates: queue.Queue[WatchUpdate]) -> WatchUpdate:
    return updates.get(timeout=30)


def test_an_evalset_edit_reruns_that_evalset_and_reports_only_the_changed_case(
    watching: tuple[Path, queue.Queue[WatchUpdate]],
) -> None:
    root, updates = watching
    # c3 expected 'billing' and the agent answers 'other': make the expectation match.
    (root / "evalsets/triage.yaml").write_text(
        EVALSET.replace("{disposition: billing}", "{disposition: other}")
    )
    update = next_update(updates)
    assert update.changed_files == ("evalsets/triage.yaml",)
    assert update.rerun == ("triage",)
    assert [(c.evalset, c.case_id, c.before[0] if c.before else None, c.after[0] if c.after else None)
            for c in update.changes] == [("triage", "c3", "fail", "pass")]  # fmt: skip


def test_a_prompt_edit_reruns_its_evalsets_only(watching: tuple[Path, queue.Queue[WatchUpdate]]) -> None:
    root, updates = watching
    # The agent answers from the last user message; dropping the body breaks the cases that relied on it.
    (root / "prompts/other.yaml").write_text(OTHER_PROMPT.replace("      {{ body }}\n", ""))
    update = next_update(updates)
    assert update.rerun == ("other",)
    assert sorted(c.case_id for c in update.changes) == ["c1", "c2"]
    assert all(c.evalset == "other" for c in update.changes)


def test_a_half_saved_file_is_reported_and_waited_out(
    watching: tuple[Path, queue.Queue[WatchUpdate]],
) -> None:
    root, updates = watching
    (root / "evalsets/triage.yaml").write_text("id: triage\ncases: [\n")
    broken = next_update(updates)
    assert broken.error is not None
    assert broken.error.startswith("evalsets/triage.yaml:")
    (root / "evalsets/triage.yaml").write_text(EVALSET)
    healed = next_update(updates)
    assert healed.error is None
    assert healed.rerun == ("triage",)
    assert healed.changes == ()  # same results as before the broken save


@contextlib.contextmanager
def _watching(root: Path, selection: Selection) -> Iterator[queue.Queue[WatchUpdate]]:
    """A watch with `selection` in a thread, its updates in a queue; stopped on exit."""
    updates: queue.Queue[WatchUpdate] = queue.Queue()
    stop = threading.Event()
    thread = threading.Thread(
        target=watch,
        args=(root, RunOptions(cache=False), updates.put),
        kwargs={"selection": selection, "stop": stop},
        daemon=True,
    )
    thread.start()
    try:
        yield updates
    finally:
        stop.set()
        thread.join(timeout=10)


def _watch_once(root: Path, selection: Selection) -> WatchUpdate:
    """The first round of a watch with `selection`."""
    with _watching(root, selection) as updates:
        return updates.get(timeout=30)


def test_the_watch_runs_what_run_was_asked_to(
    watching: tuple[Path, queue.Queue[WatchUpdate]],
) -> None:
    root, _ = watching
    assert _watch_once(root, Selection(evalset_ids=("other",))).rerun == ("other",)
    assert _watch_once(root, Selection(prompt_ids=("triage",))).rerun == ("triage",)
    only_c1 = _watch_once(root, Selection(evalset_ids=("triage",), filters=("c1",)))
    assert only_c1.cases_run == 1


def test_a_prompt_file_stands_in_for_the_project_prompt_and_is_watched(
    watching: tuple[Path, queue.Queue[WatchUpdate]],
) -> None:
    root, _ = watching
    candidate = root / "candidate" / "triage.yaml"
    candidate.parent.mkdir()
    candidate.write_text(PROMPT.replace("      {{ body }}\n", ""))
    with _watching(root, Selection(evalset_ids=("triage",), prompt_file=candidate)) as updates:
        assert updates.get(timeout=30).initial
        candidate.write_text(PROMPT)  # the body is back: c1 and c2 pass again
        update = updates.get(timeout=30)
    assert update.changed_files == ("candidate/triage.yaml",)
    assert sorted(c.case_id for c in update.changes) == ["c1", "c2"]
