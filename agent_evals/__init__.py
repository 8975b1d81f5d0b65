"""agent-evals: put every prompt change behind an eval gate.

The public API, everything the CLI does, from Python:

    load     load_project, find_root, with_prompt_file, validate_project
    run      plan, execute, run_sync, RunOptions; load_record
    diff     diff_runs; compare_records and compare_pair (diff and gate as every command does)
    gate     gate_diff
    report   render_markdown, render_junit, render_json, render_html, render_annotations

    project = load_project(find_root(Path(".")))
    results = run_sync(execute(project, plan(project), RunOptions(output=Path("run.jsonl"))))
    report = compare_records(Path("base.jsonl"), Path("run.jsonl"), project.root)
    print(render_markdown(report)); report.status  # "pass", "fail" or "error"

Names are imported when first used (PEP 562), so `import agent_evals` loads nothing
else. Where a module's name is taken by its own module (`diff`, `gate`), the function
carries a longer name here (`diff_runs` is `agent_evals.diff.diff`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> "module:attribute". Kept in step with the TYPE_CHECKING imports below (a test checks).
_EXPORTS: dict[str, str] = {
    # load
    "load_project": "agent_evals.load:load_project",
    "find_root": "agent_evals.load:find_root",
    "with_prompt_file": "agent_evals.load:with_prompt_file",
    "validate_project": "agent_evals.validate:validate",
    "Project": "agent_evals.load:Project",
    # the files' models
    "Prompt": "agent_evals.models:Prompt",
    "EvalSet": "agent_evals.models:EvalSet",
    "Case": "agent_evals.models:Case",
    "ProjectConfig": "agent_evals.models:ProjectConfig",
    "GatePolicy": "agent_evals.models:GatePolicy",
    # run
    "plan": "agent_evals.runner:plan",
    "execute": "agent_evals.runner:execute",
    "run_sync": "agent_evals.runner:run_sync",
    "RunOptions": "agent_evals.runner:RunOptions",
    "Job": "agent_evals.runner:Job",
    "JobResult": "agent_evals.runner:JobResult",
    "load_record": "agent_evals.record:load_record",
    "RunRecord": "agent_evals.record:RunRecord",
    "CaseResult": "agent_evals.record:CaseResult",
    # providers
    "PROVIDERS": "agent_evals.providers:PROVIDERS",
    "ProviderSpec": "agent_evals.providers:ProviderSpec",
    "Provider": "agent_evals.providers.base:Provider",
    "ChatRequest": "agent_evals.providers.base:ChatRequest",
    "Completion": "agent_evals.providers.base:Completion",
    "Usage": "agent_evals.providers.base:Usage",
    "ToolCall": "agent_evals.providers.base:ToolCall",
    # diff and gate
    "diff_runs": "agent_evals.diff:diff",
    "Diff": "agent_evals.diff:Diff",
    "gate_diff": "agent_evals.gate:gate",
    "Verdict": "agent_evals.gate:Verdict",
    "compare_records": "agent_evals.compare:compare_records",
    "compare_pair": "agent_evals.compare:compare_pair",
    "GateReport": "agent_evals.gate:GateReport",
    "PairReport": "agent_evals.gate:PairReport",
    # report
    "render_markdown": "agent_evals.report.markdown:render",
    "render_junit": "agent_evals.report.junit:render",
    "render_json": "agent_evals.report.json_report:render",
    "render_html": "agent_evals.report.html:render",
    "render_annotations": "agent_evals.report.annotations:render",
    # errors
    "AgentEvalsError": "agent_evals.errors:AgentEvalsError",
    "ConfigError": "agent_evals.errors:ConfigError",
    "ConfigErrors": "agent_evals.errors:ConfigErrors",
    "TemplateError": "agent_evals.errors:TemplateError",
    "EvaluationError": "agent_evals.errors:EvaluationError",
    "ProviderError": "agent_evals.errors:ProviderError",
}

__all__ = [
    "PROVIDERS",
    "AgentEvalsError",
    "Case",
    "CaseResult",
    "ChatRequest",
    "Completion",
    "ConfigError",
    "ConfigErrors",
    "Diff",
    "EvalSet",
    "EvaluationError",
    "GatePolicy",
    "GateReport",
    "Job",
    "JobResult",
    "PairReport",
    "Project",
    "ProjectConfig",
    "Prompt",
    "Provider",
    "ProviderError",
    "ProviderSpec",
    "RunOptions",
    "RunRecord",
    "TemplateError",
    "ToolCall",
    "Usage",
    "Verdict",
    "__version__",
    "compare_pair",
    "compare_records",
    "diff_runs",
    "execute",
    "find_root",
    "gate_diff",
    "load_project",
    "load_record",
    "plan",
    "render_annotations",
    "render_html",
    "render_json",
    "render_junit",
    "render_markdown",
    "run_sync",
    "validate_project",
    "with_prompt_file",
]

if TYPE_CHECKING:
    from agent_evals.compare import compare_pair, compare_records
    from agent_evals.diff import Diff
    from agent_evals.diff import diff as diff_runs
    from agent_evals.errors import (
        AgentEvalsError,
        ConfigError,
        ConfigErrors,
        EvaluationError,
        ProviderError,
        TemplateError,
    )
    from agent_evals.gate import GateReport, PairReport, Verdict
    from agent_evals.gate import gate as gate_diff
    from agent_evals.load import Project, find_root, load_project, with_prompt_file
    from agent_evals.models import Case, EvalSet, GatePolicy, ProjectConfig, Prompt
    from agent_evals.providers import PROVIDERS, ProviderSpec
    from agent_evals.providers.base import ChatRequest, Completion, Provider, ToolCall, Usage
    from agent_evals.record import CaseResult, RunRecord, load_record
    from agent_evals.report.annotations import render as render_annotations
    from agent_evals.report.html import render as render_html
    from agent_evals.report.json_report import render as render_json
    from agent_evals.report.junit import render as render_junit
    from agent_evals.report.markdown import render as render_markdown
    from agent_evals.runner import Job, JobResult, RunOptions, execute, plan, run_sync
    from agent_evals.validate import validate as validate_project


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'agent_evals' has no attribute '{name}'")
    module, _, attribute = target.partition(":")
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # found once; later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
