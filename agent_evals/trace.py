"""Structured traces: one JSON line per step (render, request, retry, response, tool, grade).

Field names follow the OpenTelemetry GenAI semantic conventions where one
exists (`gen_ai.request.model`, `gen_ai.usage.input_tokens`, ...). In an agent
loop each model call is a `chat` operation (its `request` and `response` lines)
and each tool call answered is a `tool` line, an `execute_tool` operation with
`gen_ai.tool.name` and `gen_ai.tool.call.id`; both carry `agent_step`, the
step's number in the case's trajectory (from 1, model and tool steps alike).
Tool arguments and results stay out of traces (the conventions make them
opt-in: they hold user data); the run record has them.
A trace never holds request headers or API keys; provider error messages are
already scrubbed of keys before they get here.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import IO, Any

from agent_evals.credentials import scrub
from agent_evals.errors import ConfigError
from agent_evals.outputs import failure, open_output
from agent_evals.providers.base import ChatRequest


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def request_attributes(provider_type: str, request: ChatRequest) -> dict[str, Any]:
    """The gen_ai.* request attributes of a chat call."""
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider_type,
        "gen_ai.request.model": request.model.name,
    }
    for key, name in (("temperature", "temperature"), ("max_tokens", "max_tokens"), ("top_p", "top_p"),
                      ("seed", "seed")):  # fmt: skip
        value = getattr(request.model, key)
        if value is not None:
            attrs[f"gen_ai.request.{name}"] = value
    return attrs


def tool_attributes(name: str, call_id: str | None) -> dict[str, Any]:
    """The gen_ai.* attributes of a tool call answered (an `execute_tool` span)."""
    return {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": name,
        "gen_ai.tool.call.id": call_id,
        "gen_ai.tool.type": "function",
    }


class Tracer:
    """Appends trace events to a JSONL file; flushed per case so a crash keeps what happened.

    A write that fails (a full disk) stops the trace; the next `flush` (or `close`) raises it,
    as a `ConfigError`, and the run stops there, as it does when its record cannot be written.
    """

    _WHAT = "the trace"
    _FIX = "pass a writable --trace path"

    def __init__(self, path: Path, run_id: str) -> None:
        self.path = path
        self.run_id = run_id
        self._fh: IO[str] = open_output(path, what=self._WHAT, fix=self._FIX, append=True)
        self._failed: ConfigError | None = None
        self._reported = False

    def event(self, step: str, start: float, end: float | None = None, /, **fields: Any) -> None:
        """Write one step; `start`/`end` are epoch seconds (time.time())."""
        if self._failed is not None:
            return
        end = time.time() if end is None else end
        line = {
            "run_id": self.run_id,
            "step": step,
            "start": _iso(start),
            "end": _iso(end),
            "duration_ms": round((end - start) * 1000, 3),
            **{k: v for k, v in fields.items() if v is not None},
        }
        try:
            self._fh.write(scrub(json.dumps(line, ensure_ascii=False, default=str)) + "\n")
        except OSError as exc:
            self._fail(exc)

    def flush(self) -> None:
        if self._failed is None and not self._fh.closed:
            try:
                self._fh.flush()
            except OSError as exc:
                self._fail(exc)
        self._raise()

    def close(self) -> None:
        if not self._fh.closed:
            try:
                self._fh.close()
            except OSError as exc:
                if self._failed is None:
                    self._fail(exc)
        self._raise()

    def _fail(self, exc: OSError) -> None:
        self._failed = failure(self.path, exc, what=self._WHAT, fix=self._FIX)

    def _raise(self) -> None:
        # Once: `close` (in the run's `finally`) does not raise what `flush` already raised.
        if self._failed is not None and not self._reported:
            self._reported = True
            raise self._failed
