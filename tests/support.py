"""Helpers for tests: build project trees from dicts, run the CLI in-process."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

PROMPT = """\
schema_version: 1
id: triage
version: 1
description: Classify a support ticket (synthetic test data).
owner:
  name: Support AI team
  oncall: pagerduty:support-ai
model:
  provider: python:agent:answer
  name: test-agent
  temperature: 0
messages:
  - role: system
    content: Classify the ticket into a disposition.
  - role: user
    content: |
      Subject: {{ subject }}
      {{ body }}
output:
  format: json
"""

EVALSET = """\
schema_version: 1
id: triage
prompt: triage
metric: refund handling time
provenance:
  source: synthetic test cases
  synthetic: true
graders:
  - type: exact_match
    name: disposition
    field: disposition
cases:
  - id: c1
    vars: {subject: Refund, body: I want my money back}
    expected: {disposition: refund}
    tags: [refund]
  - id: c2
    vars: {subject: Login, body: cannot log in}
    expected: {disposition: account_access}
    tags: [access]
  - id: c3
    vars: {subject: Invoice, body: charged twice}
    expected: {disposition: billing}
    tags: [billing]
"""

# The system under test for pipeline tests: deterministic agent code (a `python:` provider).
AGENT = """\
import asyncio
import os

DELAY = float(os.environ.get("TEST_AGENT_DELAY", "0"))

async def answer(request):
    if DELAY:
        await asyncio.sleep(DELAY)
    text = request["messages"][-1]["content"].lower()
    if "money back" in text:
        return {"disposition": "refund"}
    if "log in" in text:
        return {"disposition": "account_access"}
    return {"disposition": "other"}
"""


def write_tree(root: Path, files: Mapping[str, str]) -> Path:
    """Write `files` (relative path -> text, dedented) under `root`; return root."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def basic_project(root: Path, **overrides: str) -> Path:
    """A small valid project: one prompt, one eval set, the agent module."""
    files = {"prompts/triage.yaml": PROMPT, "evalsets/triage.yaml": EVALSET, "agent.py": AGENT}
    files.update({k.replace("__", "/").replace("_yaml", ".yaml"): v for k, v in overrides.items()})
    return write_tree(root, files)
