"""The JSON Schemas editors read: generated from the models, committed, and pointed at by `init`.

They must accept every example file in the repository and every file `init` writes, reject a
typo'd key (at the top and inside a grader's options), agree with the loader on what is valid,
and the committed `schemas/*.schema.json` must be exactly what `agent-evals schema` generates.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args

import jsonschema
import pydantic
import pytest
import yaml

from agent_evals import cli, schema
from agent_evals.cli import main
from agent_evals.errors import ConfigError
from agent_evals.graders import build_grader
from agent_evals.models import EvalSet, ProjectConfig, Prompt
from tests.support import EVALSET, PROMPT

REPO = Path(__file__).resolve().parent.parent
MODELS: dict[str, type[pydantic.BaseModel]] = {"prompt": Prompt, "evalset": EvalSet, "config": ProjectConfig}


# libyaml, as agent_evals._yaml parses: the pure-Python parser refuses some plain scalars it accepts.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class EditorLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """YAML as an editor's language server reads it (YAML 1.2: `2026-11-24` is a string, not a date)."""


EditorLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load(text: str) -> Any:
    return yaml.load(text, EditorLoader)


def errors(kind: str, data: Any) -> list[str]:
    the_schema = schema.json_schema(kind)
    validator = jsonschema.validators.validator_for(the_schema)(the_schema)
    return sorted(e.message for e in validator.iter_errors(data))


def kind_of(path: Path, data: Any) -> str | None:
    if path.name == "agent-evals.yaml":
        return "config"
    if path.parent.name in ("prompts", "evalsets"):
        return path.parent.name.removesuffix("s")
    if isinstance(data, dict) and "messages" in data:
        return "prompt"
    if isinstance(data, dict) and "graders" in data:
        return "evalset"
    return None


def test_the_schemas_are_valid_draft_7() -> None:
    for name in schema.SCHEMAS:
        the_schema = schema.json_schema(name)
        assert the_schema["$schema"] == "http://json-schema.org/draft-07/schema#"
        jsonschema.Draft7Validator.check_schema(the_schema)


def test_the_committed_schemas_are_the_generated_ones() -> None:
    for name, file in schema.FILES.items():
        committed = (REPO / "schemas" / file).read_text(encoding="utf-8")
        assert committed == schema.render(name), (
            f"schemas/{file} is stale: the models changed; run: agent-evals schema --write schemas/"
        )
    assert sorted(p.name for p in (REPO / "schemas").iterdir()) == sorted(schema.FILES.values())


def test_the_command_offers_every_schema() -> None:
    assert get_args(cli.SchemaName) == schema.SCHEMAS


def test_every_example_file_in_the_repository_validates() -> None:
    files = [*REPO.glob("prompts/*.yaml"), *REPO.glob("evalsets/*.yaml"), *REPO.glob("examples/**/*.yaml")]
    files += [*REPO.glob("agent-evals.yaml"), *(REPO / "agent_evals/templates/init").rglob("*.yaml")]
    checked = {}
    for path in files:
        data = load(path.read_text(encoding="utf-8"))
        kind = kind_of(path, data)
        if kind is None:
            continue
        assert errors(kind, data) == [], path
        checked[str(path.relative_to(REPO))] = kind
    assert {
        "prompts/ticket-triage.yaml": "prompt",
        "evalsets/ticket-triage.yaml": "evalset",
        "examples/candidate/ticket-triage.yaml": "prompt",
        "agent_evals/templates/init/agent-evals.yaml": "config",
        "agent_evals/templates/init/prompts/ticket-triage.yaml": "prompt",
        "agent_evals/templates/init/evalsets/ticket-triage.yaml": "evalset",
    }.items() <= checked.items()


def test_the_test_projects_validate() -> None:
    assert errors("prompt", load(PROMPT)) == []
    assert errors("evalset", load(EVALSET)) == []


@pytest.fixture
def initialized(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    assert main(["init", "."]) == 0
    return tmp_path


def test_init_points_editors_at_schemas_that_exist_beside_the_files(initialized: Path) -> None:
    """yaml-language-server resolves a relative `$schema` against the file's own folder."""
    for rel, kind in (
        ("agent-evals.yaml", "config"),
        ("prompts/ticket-triage.yaml", "prompt"),
        ("evalsets/ticket-triage.yaml", "evalset"),
    ):
        text = (initialized / rel).read_text(encoding="utf-8")
        # In the comments above the first key: the language server ignores a modeline after content.
        header = text[: re.search(r"^[^#\s]", text, re.MULTILINE).start()]  # type: ignore[union-attr]
        found = re.search(r"^# yaml-language-server: \$schema=(\S+)$", header, re.MULTILINE)
        assert found, rel
        target = (initialized / rel).parent / found.group(1)
        assert target.read_text(encoding="utf-8") == schema.render(kind), rel
        assert errors(kind, load(text)) == [], rel


def test_check_jsonschema_accepts_the_init_files_and_rejects_a_typo(initialized: Path) -> None:
    """The ecosystem's own validator, reading the YAML itself, agrees."""
    tool = Path(sys.executable).parent / "check-jsonschema"

    def check(schema_file: str, *files: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(tool), "--schemafile", schema_file, *files],
            cwd=initialized, capture_output=True, text=True, timeout=120,
            env={**os.environ, "NO_COLOR": "1"},
        )  # fmt: skip

    assert check("schemas/prompt.schema.json", "prompts/ticket-triage.yaml").returncode == 0
    assert check("schemas/evalset.schema.json", "evalsets/ticket-triage.yaml").returncode == 0
    assert check("schemas/config.schema.json", "agent-evals.yaml").returncode == 0
    prompt = initialized / "prompts/ticket-triage.yaml"
    prompt.write_text(prompt.read_text().replace("\nowner:", "\nownr:"))
    typo = check("schemas/prompt.schema.json", "prompts/ticket-triage.yaml")
    assert typo.returncode == 1
    assert "'ownr' was unexpected" in typo.stdout


def test_a_typod_key_is_rejected() -> None:
    prompt = load(PROMPT.replace("owner:", "ownr:"))
    assert errors("prompt", prompt) == [
        "'owner' is a required property",
        "Additional properties are not allowed ('ownr' was unexpected)",
    ]
    model = load(PROMPT.replace("  temperature: 0", "  temprature: 0"))
    assert errors("prompt", model) == ["Additional properties are not allowed ('temprature' was unexpected)"]
    config = {"schema_version": 1, "defualts": {"concurrency": 2}}
    assert errors("config", config) == ["Additional properties are not allowed ('defualts' was unexpected)"]


def test_a_typod_grader_option_is_rejected_for_its_type() -> None:
    evalset = load(EVALSET)
    evalset["graders"][0]["feild"] = "disposition"
    assert errors("evalset", evalset) == ["Additional properties are not allowed ('feild' was unexpected)"]
    # An option of another grader type is as wrong as a typo.
    evalset = load(EVALSET)
    evalset["graders"][0]["pattern"] = "refund"
    assert errors("evalset", evalset) == ["Additional properties are not allowed ('pattern' was unexpected)"]
    evalset["graders"][0]["type"] = "regex"  # where `pattern` belongs
    assert errors("evalset", evalset) == []


# Each mutation of a valid eval set or prompt, and whether it stays valid, as the loader decides.
GRADER = "  - type: exact_match\n    name: disposition\n    field: disposition\n"
EVALSET_CASES: list[tuple[str, str, str, bool]] = [
    ("normalize one value", GRADER, GRADER + "    normalize: case\n", True),
    ("normalize a list", GRADER, GRADER + "    normalize: [case, punctuation]\n", True),
    ("normalize unknown", GRADER, GRADER + "    normalize: upper\n", False),
    ("unknown grader type", "type: exact_match", "type: exact_mtch", False),
    ("python grader", GRADER, "  - type: python:checks:grade\n    threshold: 0.7\n    args: {k: 1}\n", True),
    ("python grader bad threshold", GRADER, "  - type: python:checks:grade\n    threshold: 2\n", False),
    ("python grader typo", GRADER, "  - type: python:checks:grade\n    arg: {k: 1}\n", False),
    ("contains options", GRADER, "  - type: contains\n    values: refund\n    mode: any\n    field: summary\n", True),
    ("contains bad mode", GRADER, "  - type: contains\n    values: refund\n    mode: some\n", False),
    ("regex", GRADER, "  - type: regex\n    pattern: ^ref\n    fullmatch: true\n", True),
    ("regex without its pattern", GRADER, "  - type: regex\n    fullmatch: true\n", False),
    ("json_schema", GRADER, "  - type: json_schema\n    schema: {type: object}\n", True),
    ("rubric judge", GRADER, "  - type: rubric\n    judge: {provider: openai, model: m, rubric: be kind}\n", True),
    ("rubric judge typo", GRADER, "  - type: rubric\n    judge: {provider: openai, model: m, rubrik: be kind}\n", False),
    ("rubric criteria", GRADER, "  - type: rubric\n    criteria: [{max_words: 40}, {contains: refund, weight: 2}]\n", True),
    ("rubric criterion typo", GRADER, "  - type: rubric\n    criteria: [{max_wrds: 40}]\n", False),
    ("a number for max_score_drop", "graders:\n", "gate: {max_score_drop: 0.1}\ngraders:\n", True),
    ("a mapping for max_score_drop", "graders:\n", "gate: {max_score_drop: {overall: 0.1, tags: {refund: 0}}}\ngraders:\n", True),
    ("an integer case id", "  - id: c1\n", "  - id: 7\n", True),
    ("a case key typo", "    tags: [refund]\n", "    tgas: [refund]\n", False),
    ("a date for sampled_at", "  synthetic: true\n", "  synthetic: true\n  sampled_at: 2026-11-24\n", True),
    ("review pairs", "graders:\n", "review: {disagree: [[disposition, disposition]]}\ngraders:\n", True),
    ("review triple", "graders:\n", "review: {disagree: [[disposition, disposition, disposition]]}\ngraders:\n", False),
    ("weight below zero", "    name: disposition\n", "    name: disposition\n    weight: -1\n", False),
]  # fmt: skip


def _loader_accepts_evalset(text: str) -> bool:
    data = yaml.safe_load(text)
    try:
        evalset = EvalSet.model_validate(data)
        for spec in evalset.graders:
            build_grader(spec)
    except (pydantic.ValidationError, ConfigError):
        return False
    return True


@pytest.mark.parametrize(("label", "old", "new", "valid"), EVALSET_CASES, ids=[c[0] for c in EVALSET_CASES])
def test_the_schema_agrees_with_the_loader_on_eval_sets(
    label: str, old: str, new: str, valid: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The python grader's module exists: what the schema cannot know, the loader is not asked.
    (tmp_path / "checks.py").write_text("def grade(output, case):\n    return 1.0\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "checks", raising=False)
    assert EVALSET.count(old) == 1, label
    text = EVALSET.replace(old, new)
    assert _loader_accepts_evalset(text) == valid, label
    assert (errors("evalset", load(text)) == []) == valid, label


MESSAGES = PROMPT[PROMPT.index("messages:") : PROMPT.index("output:")]
PROMPT_CASES: list[tuple[str, str, str, bool]] = [
    ("reasoning effort", "  temperature: 0\n", "  reasoning_effort: high\n", True),
    ("temperature as text", "  temperature: 0\n", "  temperature: warm\n", False),
    ("a stop list", "  temperature: 0\n", "  temperature: 0\n  stop: [END]\n", True),
    ("no messages", MESSAGES, "messages: []\n", False),
    ("a bad role", "role: system", "role: robot", False),
    ("an integer version", "\nversion: 1", "\nversion: 3", True),
    ("an id with a space", "id: triage", "id: tri age", False),
    ("an output schema", "output:\n  format: json\n", "output:\n  format: json\n  schema: {type: object}\n", True),
]  # fmt: skip


def _loader_accepts_prompt(text: str) -> bool:
    try:
        Prompt.model_validate(yaml.safe_load(text))
    except pydantic.ValidationError:
        return False
    return True


@pytest.mark.parametrize(("label", "old", "new", "valid"), PROMPT_CASES, ids=[c[0] for c in PROMPT_CASES])
def test_the_schema_agrees_with_the_loader_on_prompts(label: str, old: str, new: str, valid: bool) -> None:
    assert PROMPT.count(old) == 1, label
    text = PROMPT.replace(old, new)
    assert _loader_accepts_prompt(text) == valid, label
    assert (errors("prompt", load(text)) == []) == valid, label


def test_schema_prints_one_and_writes_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["schema", "evalset"]) == 0
    assert capsys.readouterr().out == schema.render("evalset")
    assert main(["-q", "schema", "prompt"]) == 0  # asked for by name: --quiet does not mute it
    assert capsys.readouterr().out == schema.render("prompt")
    assert main(["schema", "--write", "out"]) == 0
    assert capsys.readouterr().out == "".join(f"wrote out/{file}\n" for file in schema.FILES.values())
    for name, file in schema.FILES.items():
        assert (tmp_path / "out" / file).read_text() == (REPO / "schemas" / file).read_text(), name
    assert main(["schema", "config", "--write", "one"]) == 0
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["config.schema.json"]
    assert main(["schema"]) == 2
    assert "name a schema (prompt, evalset, config) or give --write DIR" in capsys.readouterr().err
    assert main(["schema", "evalsets"]) == 2
