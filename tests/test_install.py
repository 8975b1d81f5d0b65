"""What a runtime-only install holds: the CLI works without the dev and Parquet extras, and a
Parquet log read without pyarrow says which extra to install (exit 2, one line)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import tomllib
from importlib import metadata
from pathlib import Path
from types import ModuleType

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support import load_script

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

# Run before the code under test in a fresh interpreter: the modules named in argv[1] (a JSON list of
# top-level names) fail to import as if not installed; argv[2] is the code to run, with argv[3:] as
# the arguments of an `agent-evals` command.
NOT_INSTALLED = textwrap.dedent(
    """
    import importlib.abc, json, sys
    blocked = set(json.loads(sys.argv[1]))

    class NotInstalled(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in blocked:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NotInstalled())
    code, sys.argv = sys.argv[2], ["agent-evals", *sys.argv[3:]]
    exec(compile(code, "<command>", "exec"), {"__name__": "__main__"})
    """
)


def requirements(names: list[str]) -> list[Requirement]:
    env = {**default_environment(), "extra": ""}
    parsed = [Requirement(n) for n in names]
    return [r for r in parsed if r.marker is None or r.marker.evaluate(env)]


def runtime_closure() -> set[str]:
    """The distributions a runtime-only install brings: the dependencies and theirs (no extras)."""
    seen: set[str] = set()
    todo = requirements(PROJECT["dependencies"])
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        seen.add(name)
        todo += requirements(metadata.requires(req.name) or [])
    return seen


def outside_runtime() -> list[str]:
    """The top-level modules of the installed distributions a runtime-only install would not have."""
    keep = runtime_closure() | {canonicalize_name(PROJECT["name"])}
    return sorted(
        module
        for module, dists in metadata.packages_distributions().items()
        if not any(canonicalize_name(d) in keep for d in dists)
    )


def run_without(
    blocked: list[str], code: str, *args: str, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", NOT_INSTALLED, json.dumps(blocked), code, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


CLI = "from agent_evals.cli import entry; entry()"


# --- what the runtime install holds ------------------------------------------------------------


def test_pytest_and_pyarrow_are_not_runtime_dependencies() -> None:
    runtime = {canonicalize_name(r.name) for r in requirements(PROJECT["dependencies"])}
    extras = PROJECT["optional-dependencies"]

    assert "pytest" not in runtime
    assert "pyarrow" not in runtime
    assert [Requirement(r).name for r in extras["parquet"]] == ["pyarrow"]
    dev = [Requirement(r) for r in extras["dev"]]
    assert any(r.name == "agent-evals" and r.extras == {"parquet"} for r in dev)  # the tests read Parquet
    assert "pytest" in {r.name for r in dev}


def test_the_package_and_cli_work_with_only_the_runtime_dependencies(tmp_path: Path) -> None:
    blocked = outside_runtime()
    assert {"pytest", "pyarrow", "openai", "hypothesis"} <= set(blocked)
    every_module = textwrap.dedent(
        """
        import importlib, pkgutil, agent_evals
        for info in pkgutil.walk_packages(agent_evals.__path__, "agent_evals."):
            importlib.import_module(info.name)
        print("imported", len(list(pkgutil.walk_packages(agent_evals.__path__))))
        """
    )

    imported = run_without(blocked, every_module)
    helped = run_without(blocked, CLI, "--help")
    validated = run_without(blocked, CLI, "validate")

    assert imported.returncode == 0, imported.stderr
    assert helped.returncode == 0, helped.stderr
    assert "validate" in helped.stdout
    assert validated.returncode == 0, validated.stdout + validated.stderr


def test_the_blocker_blocks() -> None:
    """So the test above means something: a blocked module does not import, others do."""
    result = run_without(["pyarrow"], "import yaml, pyarrow")
    assert result.returncode == 1
    assert "ModuleNotFoundError: No module named 'pyarrow'" in result.stderr


# --- Parquet without pyarrow ---------------------------------------------------------------------


def _gen_log() -> ModuleType:
    return load_script(ROOT / "bench" / "gen_log.py")


def test_a_parquet_log_without_pyarrow_names_the_extra(tmp_path: Path) -> None:
    gen = _gen_log()
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "ticket-triage.yaml").write_bytes(
        (ROOT / "prompts" / "ticket-triage.yaml").read_bytes()
    )
    log = gen.write_log(tmp_path / "support.parquet", 40, seed=5)
    maps = [arg for target, field in gen.MAPPING.items() for arg in ("--map", f"{target}={field}")]
    command = ["sample", "support.parquet", "--prompt", "ticket-triage", "--n", "10", *maps]
    blocked = outside_runtime()

    without = run_without(blocked, CLI, *command, cwd=tmp_path)
    with_it = run_without([m for m in blocked if m != "pyarrow"], CLI, *command, cwd=tmp_path)

    assert without.returncode == 2, without.stdout + without.stderr
    assert without.stderr.splitlines() == [
        f"{log.name}: reading a Parquet log needs pyarrow, which is not installed "
        "(pip install 'agent-evals[parquet]', or convert the log to JSONL or CSV)"
    ]
    assert "Traceback" not in without.stdout + without.stderr
    assert with_it.returncode == 0, with_it.stdout + with_it.stderr  # the same command, pyarrow importable
    assert re.search(r"wrote .*evalsets/ticket-triage\.yaml", with_it.stdout + with_it.stderr)


def test_the_message_names_an_extra_that_exists() -> None:
    from agent_evals.sampling._read import PARQUET_EXTRA

    extra = Requirement(PARQUET_EXTRA)
    assert extra.name == PROJECT["name"]
    assert extra.extras == {"parquet"} <= set(PROJECT["optional-dependencies"])
