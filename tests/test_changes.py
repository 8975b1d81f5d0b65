"""`changes`: what a branch changed and which pairs to gate, in real temporary git repositories."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import git
import pytest

from agent_evals.changes import (
    ChangeSet,
    Pair,
    affected_pairs,
    changes_since,
    load_evalset_at,
    load_prompt_at,
    read_at,
    resolve_base,
    worktree_at,
)
from agent_evals.errors import ConfigError
from agent_evals.load import load_project
from tests.support import EVALSET, PROMPT, GitRepo

CASES_EVALSET = EVALSET.split("cases:")[0] + "cases_file: triage.cases.jsonl\n"
CASES = [
    {"id": "c1", "vars": {"subject": "Refund", "body": "money back"}, "expected": {"disposition": "refund"}},
    {
        "id": "c2",
        "vars": {"subject": "Login", "body": "log in"},
        "expected": {"disposition": "account_access"},
    },
]


def prompt(prompt_id: str, version: int = 1) -> str:
    return PROMPT.replace("id: triage", f"id: {prompt_id}").replace("\nversion: 1", f"\nversion: {version}")


def evalset(evalset_id: str, prompt_id: str = "triage", extra: str = "") -> str:
    text = EVALSET.replace("id: triage\nprompt: triage", f"id: {evalset_id}\nprompt: {prompt_id}")
    return text + extra


def jsonl(rows: list[dict[str, object]]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


class Repo(GitRepo):
    def changes(self, base: str = "main", root: Path | None = None) -> ChangeSet:
        return changes_since(root or self.root, base)

    def pairs(self, changes: ChangeSet, root: Path | None = None) -> list[Pair]:
        return affected_pairs(changes, load_project(root or self.root))


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repo]:
    """A repository whose main branch has the triage prompt and eval set; HEAD on 'feature'."""
    r = Repo(tmp_path / "repo")
    r.commit({"prompts/triage.yaml": PROMPT, "evalsets/triage.yaml": EVALSET, ".gitignore": "*.log\n"})
    r.branch()
    yield r
    r.git.close()


def test_nothing_changed_gives_no_changes_and_no_pairs(repo: Repo) -> None:
    changes = repo.changes()
    assert changes.changed == ()
    assert changes.deleted_evalsets == ()
    assert changes.merge_base == repo.git.commit("main").hexsha
    assert changes.repo_root == repo.root.resolve()
    assert repo.pairs(changes) == []


def test_committed_prompt_edit_gates_the_pair_and_reads_the_old_prompt(repo: Repo) -> None:
    base = repo.git.head.commit.hexsha
    repo.commit({"prompts/triage.yaml": prompt("triage", version=2)})
    status_before = repo.git.git.status("--porcelain")
    index_before = (repo.root / ".git" / "index").stat().st_mtime_ns

    changes = repo.changes()

    assert changes.changed == ("prompts/triage.yaml",)
    assert repo.pairs(changes) == [
        Pair(
            "triage",
            "triage",
            prompt_status="modified",
            evalset_status="unchanged",
            base_prompt_path="prompts/triage.yaml",
            base_evalset_path="evalsets/triage.yaml",
        )
    ]
    old = load_prompt_at(changes, "prompts/triage.yaml")
    assert old is not None
    assert old.version == 1
    assert old.source_path == f"prompts/triage.yaml@{base[:8]}"
    assert load_project(repo.root).prompts["triage"].version == 2
    # Read from git objects: the index and the work tree are as they were.
    assert (repo.root / ".git" / "index").stat().st_mtime_ns == index_before
    assert repo.git.git.status("--porcelain") == status_before


def test_staged_unstaged_and_untracked_changes_count_but_ignored_files_do_not(repo: Repo) -> None:
    repo.write({"prompts/triage.yaml": prompt("triage", version=2), "notes.md": "staged\n"})
    repo.git.git.add("notes.md")
    repo.write({"evalsets/extra.yaml": evalset("extra"), "run.log": "ignored\n"})

    changes = repo.changes()

    assert changes.changed == ("evalsets/extra.yaml", "notes.md", "prompts/triage.yaml")
    assert [(p.prompt_id, p.evalset_id, p.prompt_status, p.evalset_status) for p in repo.pairs(changes)] == [
        ("triage", "extra", "modified", "new"),
        ("triage", "triage", "modified", "unchanged"),
    ]


def test_eval_set_edit_alone_gates_its_pair(repo: Repo) -> None:
    repo.commit({"evalsets/triage.yaml": EVALSET.replace("metric: refund", "metric: refund cost")})

    [pair] = repo.pairs(repo.changes())

    assert (pair.prompt_id, pair.evalset_id) == ("triage", "triage")
    assert (pair.prompt_status, pair.evalset_status) == ("unchanged", "modified")
    assert pair.retargeted_from is None


def test_cases_file_edit_alone_gates_the_pair_and_reads_the_old_cases(tmp_path: Path) -> None:
    r = Repo(tmp_path)
    base = r.commit(
        {
            "prompts/triage.yaml": PROMPT,
            "evalsets/triage.yaml": CASES_EVALSET,
            "evalsets/triage.cases.jsonl": jsonl(CASES[:1]),
        }
    )
    r.branch()
    r.write({"evalsets/triage.cases.jsonl": jsonl(CASES)})  # unstaged

    changes = r.changes()

    assert changes.changed == ("evalsets/triage.cases.jsonl",)
    [pair] = r.pairs(changes)
    assert (pair.prompt_status, pair.evalset_status) == ("unchanged", "modified")
    old = load_evalset_at(changes, "evalsets/triage.yaml")
    assert old is not None
    assert [c.id for c in old.cases] == ["c1"]
    assert old.case_source(0) == (f"evalsets/triage.cases.jsonl@{base[:8]}", 1)
    assert len(load_project(tmp_path).evalsets["triage"].cases) == 2


def test_new_prompt_and_new_eval_set_are_new(repo: Repo) -> None:
    repo.commit(
        {
            "prompts/summarize.yaml": prompt("summarize"),
            "evalsets/summarize.yaml": evalset("summarize", "summarize"),
        }
    )

    changes = repo.changes()

    assert repo.pairs(changes) == [Pair("summarize", "summarize", prompt_status="new", evalset_status="new")]
    assert read_at(changes, "prompts/summarize.yaml") is None
    assert load_prompt_at(changes, "prompts/summarize.yaml") is None
    assert load_evalset_at(changes, "evalsets/summarize.yaml") is None
    assert read_at(changes, "prompts/triage.yaml") == PROMPT


def test_prompt_edit_gates_every_eval_set_that_targets_it(tmp_path: Path) -> None:
    r = Repo(tmp_path)
    r.commit(
        {
            "prompts/triage.yaml": PROMPT,
            "prompts/other.yaml": prompt("other"),
            "evalsets/triage.yaml": EVALSET,
            "evalsets/triage-hard.yaml": evalset("triage-hard"),
            "evalsets/other.yaml": evalset("other", "other"),
        }
    )
    r.branch()
    r.commit({"prompts/triage.yaml": prompt("triage", version=2)})

    pairs = r.pairs(r.changes())

    assert [(p.prompt_id, p.evalset_id, p.prompt_status, p.evalset_status) for p in pairs] == [
        ("triage", "triage", "modified", "unchanged"),
        ("triage", "triage-hard", "modified", "unchanged"),
    ]


def test_retargeted_eval_set_is_gated_with_its_new_prompt(repo: Repo) -> None:
    repo.git.git.checkout("main")
    repo.commit({"prompts/triage-v2.yaml": prompt("triage-v2")})
    repo.git.git.checkout("-B", "feature")
    repo.commit({"evalsets/triage.yaml": evalset("triage", "triage-v2")})

    changes = repo.changes()

    assert repo.pairs(changes) == [
        Pair(
            "triage-v2",
            "triage",
            prompt_status="unchanged",
            evalset_status="modified",
            retargeted_from="triage",
            base_prompt_path="prompts/triage-v2.yaml",
            base_evalset_path="evalsets/triage.yaml",
        )
    ]


def test_a_caller_supplied_baseline_mapping_gates_retargets_git_did_not_see(repo: Repo) -> None:
    changes = repo.changes()
    project = load_project(repo.root)

    assert affected_pairs(changes, project, {"triage": "triage"}) == []
    [pair] = affected_pairs(changes, project, {"triage": "triage-old"})
    assert (pair.prompt_id, pair.retargeted_from, pair.evalset_status) == (
        "triage",
        "triage-old",
        "unchanged",
    )


def test_deleted_eval_set_is_reported_not_paired(tmp_path: Path) -> None:
    r = Repo(tmp_path)
    r.commit(
        {
            "prompts/triage.yaml": PROMPT,
            "prompts/gone.yaml": prompt("gone"),
            "evalsets/triage.yaml": EVALSET,
            "evalsets/triage-hard.yaml": evalset("triage-hard"),
            "evalsets/gone.yaml": evalset("gone", "gone"),
        }
    )
    r.branch()
    r.git.git.rm("evalsets/triage-hard.yaml")
    r.commit()
    # A prompt deleted with all its eval sets: nothing left to gate, nothing reported as a pair.
    (tmp_path / "prompts/gone.yaml").unlink()
    (tmp_path / "evalsets/gone.yaml").unlink()

    changes = r.changes()

    assert changes.deleted_evalsets == ("gone", "triage-hard")
    assert r.pairs(changes) == []


def test_deleted_prompt_still_targeted_is_a_pair_with_a_deleted_prompt(repo: Repo) -> None:
    (repo.root / "prompts/triage.yaml").unlink()

    [pair] = repo.pairs(repo.changes())

    assert (pair.prompt_status, pair.evalset_status) == ("deleted", "unchanged")
    assert pair.base_prompt_path == "prompts/triage.yaml"


def test_project_in_a_subfolder_of_the_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r = Repo(tmp_path)
    r.commit(
        {
            "services/triage/agent-evals.yaml": "paths:\n  prompts: p\n  evalsets: e\n",
            "services/triage/p/triage.yaml": PROMPT,
            "services/triage/e/triage.yaml": EVALSET,
            # Another project with the same ids: its changes are not this project's.
            "services/other/prompts/triage.yaml": PROMPT,
            "p/triage.yaml": PROMPT,
        }
    )
    r.branch()
    r.commit(
        {
            "services/other/prompts/triage.yaml": prompt("triage", version=2),
            "p/triage.yaml": prompt("triage", version=2),
            "services/triage/e/triage.yaml": EVALSET.replace("metric: refund", "metric: refund cost"),
        }
    )
    project_root = tmp_path / "services" / "triage"
    monkeypatch.chdir(project_root)  # the loader keeps paths relative to the working directory

    changes = changes_since(Path("."), "main")

    assert changes.repo_root == tmp_path.resolve()
    assert changes.changed == (
        "p/triage.yaml",
        "services/other/prompts/triage.yaml",
        "services/triage/e/triage.yaml",
    )
    assert affected_pairs(changes, load_project(Path("."))) == [
        Pair(
            "triage",
            "triage",
            prompt_status="unchanged",
            evalset_status="modified",
            base_prompt_path="services/triage/p/triage.yaml",
            base_evalset_path="services/triage/e/triage.yaml",
        )
    ]
    old = load_evalset_at(changes, "services/triage/e/triage.yaml")
    assert old is not None
    assert old.metric == "refund handling time"


def test_renamed_eval_set_counts_both_paths(repo: Repo) -> None:
    repo.git.git.mv("evalsets/triage.yaml", "evalsets/triage-v2.yaml")
    repo.commit({"evalsets/triage-v2.yaml": evalset("triage-v2")})

    changes = repo.changes()

    assert changes.changed == ("evalsets/triage-v2.yaml", "evalsets/triage.yaml")
    assert changes.deleted_evalsets == ("triage",)
    assert repo.pairs(changes) == [
        Pair(
            "triage",
            "triage-v2",
            prompt_status="unchanged",
            evalset_status="new",
            base_prompt_path="prompts/triage.yaml",
        )
    ]


def test_eval_set_renamed_to_another_suffix_keeps_its_id(repo: Repo) -> None:
    repo.git.git.mv("evalsets/triage.yaml", "evalsets/triage.yml")
    repo.commit()

    changes = repo.changes()

    assert changes.deleted_evalsets == ()
    [pair] = repo.pairs(changes)
    assert (pair.evalset_status, pair.base_evalset_path) == ("unchanged", "evalsets/triage.yaml")


def test_diverged_branch_compares_with_the_branch_point(repo: Repo) -> None:
    branch_point = repo.git.head.commit.hexsha
    repo.commit({"prompts/triage.yaml": prompt("triage", version=2)})
    repo.git.git.checkout("main")
    repo.commit(
        {
            "evalsets/triage.yaml": EVALSET.replace("metric: refund", "metric: churn"),
            "evalsets/late.yaml": evalset("late"),
        }
    )
    repo.git.git.checkout("feature")

    changes = repo.changes()

    assert changes.merge_base == branch_point
    assert changes.changed == ("prompts/triage.yaml",)
    assert [(p.evalset_id, p.prompt_status, p.evalset_status) for p in repo.pairs(changes)] == [
        ("triage", "modified", "unchanged")
    ]


def test_unknown_base_ref(repo: Repo) -> None:
    with pytest.raises(ConfigError) as info:
        repo.changes("origin/nope")
    assert info.value.render() == (
        "unknown git ref 'origin/nope' "
        "(fetch it first: git fetch origin nope; shallow CI clones need 'fetch-depth: 0')"
    )


def test_not_a_git_repository(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        changes_since(tmp_path, "main")
    assert info.value.render() == (
        f"{tmp_path}: not inside a git repository (run inside a git repository, or use --baseline-dir)"
    )


def test_repository_without_commits(tmp_path: Path) -> None:
    Repo(tmp_path)
    with pytest.raises(ConfigError) as info:
        changes_since(tmp_path, "main")
    assert info.value.render() == (
        f"{tmp_path.resolve()}: the git repository has no commits yet "
        "(commit the prompts and eval sets on the base branch first)"
    )


def test_unrelated_histories(repo: Repo) -> None:
    repo.git.git.checkout("--orphan", "elsewhere")
    repo.commit({"README.md": "unrelated\n"})
    with pytest.raises(ConfigError) as info:
        repo.changes()
    assert info.value.render() == (
        "HEAD and 'main' have no common ancestor "
        "(the histories are unrelated: pass a --base this branch was made from)"
    )


def test_shallow_clone_without_the_branch_point(repo: Repo, tmp_path: Path) -> None:
    repo.commit({"prompts/triage.yaml": prompt("triage", version=2)})
    repo.git.git.checkout("main")
    repo.commit({"README.md": "main moved on\n"})
    clone = tmp_path / "clone"
    git.Repo.clone_from(
        f"file://{repo.root}", clone, depth=1, branch="feature", no_single_branch=True
    ).close()

    with pytest.raises(ConfigError) as info:
        changes_since(clone, "origin/main")
    assert info.value.render() == (
        "HEAD and 'origin/main' have no common ancestor "
        "(the clone is shallow: git fetch --unshallow; shallow CI clones need 'fetch-depth: 0')"
    )


def test_undecodable_file_at_the_merge_base_names_path_and_commit(repo: Repo) -> None:
    repo.git.git.checkout("main")
    (repo.root / "data.bin").write_bytes(b"\xff\xfe\x00")
    base = repo.commit()
    repo.git.git.checkout("feature")
    repo.git.git.merge("main")

    changes = repo.changes()

    with pytest.raises(ConfigError) as info:
        read_at(changes, "data.bin")
    assert info.value.render() == f"data.bin@{base[:8]}: not UTF-8 text (save the file as UTF-8)"


def test_invalid_prompt_at_the_merge_base_is_a_located_error(repo: Repo) -> None:
    repo.git.git.checkout("main")
    base = repo.commit({"prompts/broken.yaml": prompt("wrong-id")})
    repo.git.git.checkout("feature")
    repo.git.git.merge("main")

    with pytest.raises(ConfigError) as info:
        load_prompt_at(repo.changes(), "prompts/broken.yaml")
    # The id check uses the real file name; the error names the file at the commit.
    assert info.value.render() == (
        f"prompts/broken.yaml@{base[:8]}:2: id 'wrong-id' does not match the file name 'broken.yaml' "
        "(rename the file to 'wrong-id.yaml' or set 'id: broken')"
    )


# --- --base auto ---------------------------------------------------------------------------


def _repo_with(tmp_path: Path, name: str, branch: str = "main") -> Repo:
    r = Repo(tmp_path / name)
    r.git.git.checkout("-b", branch)  # no commit yet: this only renames the unborn branch
    r.commit({"prompts/triage.yaml": PROMPT, "evalsets/triage.yaml": EVALSET})
    return r


def _clone(origin: Repo, path: Path) -> Repo:
    git.Repo.clone_from(f"file://{origin.root}", path).close()
    return Repo(path)  # re-opened through the helper: it sets the author for commits


def test_auto_base_is_the_upstream_of_the_current_branch(tmp_path: Path) -> None:
    origin = _repo_with(tmp_path, "origin", branch="trunk")
    clone = _clone(origin, tmp_path / "clone")
    clone.git.git.checkout("-b", "feature", "--track", "origin/trunk")
    clone.commit({"prompts/triage.yaml": prompt("triage", version=2)})

    assert resolve_base(clone.root, "auto") == "origin/trunk"
    changes = changes_since(clone.root, "auto")
    assert changes.base_ref == "origin/trunk"
    assert changes.merge_base == origin.git.head.commit.hexsha
    assert changes.changed == ("prompts/triage.yaml",)


def test_auto_base_falls_back_to_the_remote_default_branch(tmp_path: Path) -> None:
    origin = _repo_with(tmp_path, "origin", branch="trunk")
    clone = _clone(origin, tmp_path / "clone")
    clone.git.git.checkout("-b", "feature")  # no upstream

    assert resolve_base(clone.root, "auto") == "origin/trunk"


def test_auto_base_prefers_origin_main_then_origin_master_then_local_branches(tmp_path: Path) -> None:
    origin = _repo_with(tmp_path, "origin", branch="master")
    local = Repo(tmp_path / "local")
    local.commit({"README.md": "x\n"})
    local.git.git.checkout("-b", "feature")
    local.git.git.remote("add", "origin", f"file://{origin.root}")
    local.git.git.fetch("origin")  # a fetch records no origin/HEAD

    assert resolve_base(local.root, "auto") == "origin/master"
    origin.git.git.branch("main")
    local.git.git.fetch("origin")
    assert resolve_base(local.root, "auto") == "origin/main"


def test_auto_base_uses_a_local_main_or_master_without_a_remote(tmp_path: Path) -> None:
    repo = _repo_with(tmp_path, "repo", branch="master")
    repo.branch()
    assert resolve_base(repo.root, "auto") == "master"
    repo.git.git.branch("main")
    assert resolve_base(repo.root, "auto") == "main"


def test_auto_base_on_main_itself_gates_only_uncommitted_changes(tmp_path: Path) -> None:
    repo = _repo_with(tmp_path, "repo")
    repo.write({"prompts/triage.yaml": prompt("triage", version=2)})
    repo.git.git.add("prompts/triage.yaml")

    changes = changes_since(repo.root, "auto")

    assert changes.base_ref == "main"
    assert changes.merge_base == repo.git.head.commit.hexsha
    assert changes.changed == ("prompts/triage.yaml",)


def test_auto_base_skips_an_upstream_that_was_never_fetched(tmp_path: Path) -> None:
    repo = _repo_with(tmp_path, "repo")
    repo.branch()
    repo.git.git.remote("add", "origin", f"file://{tmp_path / 'nowhere'}")
    repo.git.git.config("branch.feature.remote", "origin")
    repo.git.git.config("branch.feature.merge", "refs/heads/feature")

    assert resolve_base(repo.root, "auto") == "main"


def test_auto_base_with_no_candidate_is_a_config_error(tmp_path: Path) -> None:
    repo = _repo_with(tmp_path, "repo", branch="develop")
    with pytest.raises(ConfigError) as info:
        changes_since(repo.root, "auto")
    assert info.value.render() == (
        "--base auto found no base branch: the current branch has no upstream, and there is no "
        "origin/HEAD, origin/main, origin/master, main or master "
        "(pass --base REF, or set an upstream: git branch --set-upstream-to=origin/main)"
    )


def test_resolve_base_returns_other_refs_as_they_are(tmp_path: Path) -> None:
    assert resolve_base(tmp_path, "origin/release-2") == "origin/release-2"  # no git needed
    with pytest.raises(ConfigError, match="not inside a git repository"):
        resolve_base(tmp_path, "auto")


# --- the code a pair runs -------------------------------------------------------------

AGENT = "def answer(request):\n    return {'disposition': 'refund'}\n"


@pytest.fixture
def agent_repo(tmp_path: Path) -> Iterator[Repo]:
    """main has the triage prompt (`python:agent:answer`), its eval set, the agent and a grader."""
    r = Repo(tmp_path / "repo")
    r.commit(
        {
            "prompts/triage.yaml": PROMPT + "watch: [tools/*.yaml]\n",
            "evalsets/triage.yaml": EVALSET.replace(
                "graders:\n", "graders:\n  - {type: 'python:checks.tone:grade', name: tone}\n"
            ),
            "agent.py": AGENT,
            "tools/search.yaml": "name: search\n",
            "checks/__init__.py": "",
            "checks/tone.py": "def grade(**kw):\n    return True\n",
            "helpers/util.py": "X = 1\n",
            ".gitignore": "*.log\n",
        }
    )
    r.branch()
    yield r
    r.git.close()


def test_a_change_to_the_agent_module_gates_the_pair_with_both_files_unchanged(agent_repo: Repo) -> None:
    agent_repo.write({"agent.py": AGENT.replace("refund", "billing_question")})  # unstaged counts too
    assert agent_repo.pairs(agent_repo.changes()) == [
        Pair(
            "triage",
            "triage",
            prompt_status="unchanged",
            evalset_status="unchanged",
            base_prompt_path="prompts/triage.yaml",
            base_evalset_path="evalsets/triage.yaml",
            agent_code=("agent.py",),
        )
    ]


def test_watched_and_grader_files_are_code_of_the_pair(agent_repo: Repo) -> None:
    agent_repo.commit(
        {"tools/search.yaml": "name: web search\n", "checks/tone.py": "def grade(**kw):\n    return 1\n"}
    )
    (pair,) = agent_repo.pairs(agent_repo.changes())
    assert pair.agent_code == ("tools/search.yaml",)
    assert pair.grader_code == ("checks/tone.py",)
    assert pair.code_changed


def test_code_outside_every_scope_gates_nothing(agent_repo: Repo) -> None:
    agent_repo.commit({"helpers/util.py": "X = 2\n", "tools/notes.txt": "not watched\n"})
    changes = agent_repo.changes()
    assert changes.changed == ("helpers/util.py", "tools/notes.txt")
    assert agent_repo.pairs(changes) == []


def test_code_removed_from_the_index_but_kept_as_it_was_is_no_change(agent_repo: Repo) -> None:
    agent_repo.git.git.rm("--cached", "agent.py")  # staged deletion, the file untracked and unchanged
    changes = agent_repo.changes()
    assert changes.changed == ("agent.py",)
    assert agent_repo.pairs(changes) == []


def test_a_deleted_code_file_is_a_change(agent_repo: Repo) -> None:
    agent_repo.write({"checks/extra.py": "Y = 1\n"})  # an untracked new module of the grader's package
    (agent_repo.root / "tools/search.yaml").unlink()
    (pair,) = agent_repo.pairs(agent_repo.changes())
    assert pair.agent_code == ("tools/search.yaml",)
    assert pair.grader_code == ("checks/extra.py",)


def test_the_provider_a_run_uses_decides_whose_code_is_gated(agent_repo: Repo) -> None:
    agent_repo.commit({"agent.py": AGENT.replace("refund", "billing_question")})
    changes = agent_repo.changes()
    project = load_project(agent_repo.root)
    assert affected_pairs(changes, project, provider="local") == []
    assert affected_pairs(changes, project)[0].agent_code == ("agent.py",)


def test_worktree_at_checks_out_the_merge_base_and_removes_it(agent_repo: Repo) -> None:
    agent_repo.commit({"agent.py": AGENT.replace("refund", "billing_question")})
    hook = agent_repo.root / ".git/hooks/post-checkout"
    hook.write_text(f"#!/bin/sh\ntouch {agent_repo.root / 'hook-ran.log'}\n")
    hook.chmod(0o755)
    changes = agent_repo.changes()
    with worktree_at(changes) as tree:
        assert (tree / "agent.py").read_text() == AGENT
        assert tree.parent.name.startswith("agent-evals-base-")
        listed = agent_repo.git.git.worktree("list", "--porcelain")
        assert f"worktree {tree}" in listed
        assert f"HEAD {changes.merge_base}" in listed
    assert not tree.parent.exists()
    assert agent_repo.git.git.worktree("list", "--porcelain").count("worktree ") == 1
    assert (agent_repo.root / "agent.py").read_text() != AGENT  # the work tree is untouched
    assert agent_repo.git.head.commit.hexsha != changes.merge_base
    assert not (agent_repo.root / "hook-ran.log").exists()  # no hook ran


def test_worktree_at_removes_it_on_an_error_too(agent_repo: Repo) -> None:
    changes = agent_repo.changes()
    seen: list[Path] = []

    def leave_a_file_and_stop() -> None:
        with worktree_at(changes) as tree:
            seen.append(tree)
            (tree / "scratch.txt").write_text("left by the baseline's agent\n")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        leave_a_file_and_stop()
    (tree,) = seen
    assert not tree.parent.exists()
    assert agent_repo.git.git.worktree("list", "--porcelain").count("worktree ") == 1
