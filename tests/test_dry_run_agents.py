"""`run --dry-run` counts the model calls an agent's case is expected to make, not one per case."""

from __future__ import annotations

import json
import math
from pathlib import Path

from agent_evals.budget import CHARS_PER_TOKEN, MESSAGE_OVERHEAD_TOKENS, estimate
from agent_evals.load import load_project
from agent_evals.runner import RunOptions, dry_run, plan
from tests.support import write_tree

PROMPT = """\
schema_version: 1
id: refunds
version: 1
owner: {name: Support AI team, oncall: pagerduty:support-ai}
model: {provider: openai, name: gpt-4o-mini, max_tokens: 100}
tools:
  - {name: lookup_order, description: Find an order (synthetic)}
messages:
  - role: user
    content: "{{ text }}"
"""

EVALSET = """\
schema_version: 1
id: refunds
prompt: refunds
provenance: {source: synthetic test cases, synthetic: true}
graders: [{type: contains, value: refund}]
cases:
  - id: two-calls
    vars: {text: "refund A-1 and A-2"}
    tools:
      - {name: lookup_order, arguments: {id: A-1}, result: {status: delivered}}
      - {name: lookup_order, arguments: {id: A-2}, result: {status: lost}}
  - id: no-call
    vars: {text: "hello"}
  - id: conversation
    vars: {text: "hi"}
    turns:
      - {user: "and now?"}
"""

CONFIG = """\
schema_version: 1
providers:
  openai: {type: openai, base_url: "http://127.0.0.1:9/v1", api_key_env: OPENAI_API_KEY}
prices:
  gpt-4o-mini: {input_per_mtok: 1.0, output_per_mtok: 2.0}
"""


def test_an_agents_case_counts_the_calls_its_recorded_tools_imply(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {"agent-evals.yaml": CONFIG, "prompts/refunds.yaml": PROMPT, "evalsets/refunds.yaml": EVALSET},
    )
    project = load_project(tmp_path)
    jobs = plan(project)
    (row,) = dry_run(project, jobs, RunOptions(cache=False))
    # two recorded calls: 3 model calls; none: 1; a second turn: 1 more.
    assert row.requests == 3 + 1 + 2
    first = [estimate(jobs[0].request(i), None).input_tokens for i in range(len(jobs[0].indexes))]

    def exchange(args: dict[str, str], result: dict[str, str]) -> int:
        text = json.dumps(["lookup_order", args, result], default=str)
        return 2 * MESSAGE_OVERHEAD_TOKENS + math.ceil(len(text) / CHARS_PER_TOKEN)

    a1 = exchange({"id": "A-1"}, {"status": "delivered"})
    a2 = exchange({"id": "A-2"}, {"status": "lost"})
    expected_in = (3 * first[0] + a1 + (a1 + a2)) + first[1] + 2 * first[2]
    assert row.input_tokens == expected_in
    assert row.output_tokens == 6 * 100
    assert row.cost_usd is not None
    assert math.isclose(row.cost_usd, (expected_in * 1.0 + 600 * 2.0) / 1e6)
