"""A run against a real third-party OpenAI-compatible server: LiteLLM's proxy on 127.0.0.1.

The proxy runs from its own virtualenv (`make litellm` builds .venv-litellm: litellm pins its
own openai, fastapi and more, so it stays out of .venv). Its models answer with LiteLLM's
`mock_response`, so nothing leaves the machine: the model cost map is the bundled one
(`LITELLM_LOCAL_MODEL_COST_MAP`), and the proxy's own outbound HTTP goes to a closed local
port (`HTTP(S)_PROXY`), so a call home would fail instead of reaching out.

The eval runs through the CLI against the proxy; its tokens must be what LiteLLM reports (asked
again, case by case, with the official `openai` SDK), and its cost those tokens times the
`prices:` of agent-evals.yaml.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest

from agent_evals.cli import main
from agent_evals.record import load_record
from tests.support import basic_project, write_tree

ROOT = Path(__file__).resolve().parent.parent
LITELLM = ROOT / ".venv-litellm" / "bin" / "litellm"
# It starts in about 7 s; far more on a cold disk (the first start once took a minute).
READY_TIMEOUT_S = 180.0
MASTER_KEY = "sk-litellm-test-master-key-0123456789"
ANSWER = '{"disposition": "refund"}'
PRICE_IN, PRICE_OUT = 2.0, 8.0  # USD per million tokens, from agent-evals.yaml's `prices:`

pytestmark = pytest.mark.skipif(
    not LITELLM.exists(),
    reason="LiteLLM's proxy is not installed: run `make litellm` (builds .venv-litellm; `make test` does)",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Proxy:
    url: str


CONFIG = f"""\
model_list:
  - model_name: triage-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_key: sk-upstream-never-called
      mock_response: '{ANSWER}'
  - model_name: o3
    litellm_params:
      model: openai/o3
      api_key: sk-upstream-never-called
      mock_response: '{ANSWER}'
"""


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    """LiteLLM's proxy on a free port of 127.0.0.1, stopped (its process group) afterwards."""
    folder = tmp_path_factory.mktemp("litellm")
    (folder / "config.yaml").write_text(CONFIG, encoding="utf-8")
    log = (folder / "proxy.log").open("wb")
    port = _free_port()
    closed = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.lower().endswith("_proxy") and not key.startswith(("OPENAI_", "LITELLM_"))
    }
    env.update(
        LITELLM_MASTER_KEY=MASTER_KEY,
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        HTTP_PROXY=closed,
        HTTPS_PROXY=closed,
        NO_PROXY="127.0.0.1,localhost",
        HOME=str(folder),  # any cache it writes stays in the test's folder
    )
    start = time.monotonic()
    process = subprocess.Popen(
        [str(LITELLM), "--config", "config.yaml", "--host", "127.0.0.1", "--port", str(port)],
        cwd=folder,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so its workers stop with it
    )
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"LiteLLM's proxy exited with {process.returncode}:\n{_tail(folder / 'proxy.log')}"
                )
            if time.monotonic() - start > READY_TIMEOUT_S:
                pytest.fail(
                    f"LiteLLM's proxy not ready in {READY_TIMEOUT_S:.0f}s:\n{_tail(folder / 'proxy.log')}"
                )
            try:
                if httpx.get(f"{url}/health/readiness", timeout=2.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield Proxy(url=url)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def _project(root: Path, proxy: Proxy, model: str, params: str) -> Path:
    prompt = (
        "schema_version: 1\nid: triage\nversion: 1\nowner: {name: Support AI team, oncall: pagerduty:support-ai}\n"
        f"model:\n  provider: litellm\n  name: {model}\n{params}"
        "messages:\n  - role: system\n    content: Classify the ticket into a disposition.\n"
        "  - role: user\n    content: 'Subject: {{ subject }}. {{ body }}'\n"
        "output:\n  format: json\n"
    )
    config = (
        "providers:\n  litellm:\n    type: openai\n"
        f"    base_url: {proxy.url}/v1\n    api_key_env: LITELLM_TEST_KEY\n"
        f"prices:\n  {model}: {{input_per_mtok: {PRICE_IN}, output_per_mtok: {PRICE_OUT}}}\n"
    )
    basic_project(root, prompts__triage_yaml=prompt)
    return write_tree(root, {"agent-evals.yaml": config})


@pytest.mark.parametrize(
    ("model", "params"),
    [
        ("triage-mini", "  temperature: 0\n  max_tokens: 60\n  seed: 7\n"),
        # A reasoning model through a third-party server: max_completion_tokens and reasoning_effort.
        ("o3", "  max_tokens: 60\n  reasoning_effort: low\n"),
    ],
    ids=["chat-model", "reasoning-model"],
)
def test_run_against_litellm_grades_with_its_tokens_and_cost(
    proxy: Proxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    model: str,
    params: str,
) -> None:
    _project(tmp_path, proxy, model, params)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LITELLM_TEST_KEY", MASTER_KEY)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)

    assert main(["validate"]) == 0
    code = main(["run", "--output", "run.jsonl"])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    record = load_record(tmp_path / "run.jsonl")

    # The mock answers `refund` to every ticket: c1 passes, c2 and c3 fail, none errs.
    assert [(c.case_id, c.status, c.output) for c in record.cases] == [
        ("c1", "pass", ANSWER),
        ("c2", "fail", ANSWER),
        ("c3", "fail", ANSWER),
    ]
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=MASTER_KEY, max_retries=0)
    for case in record.cases:
        assert case.request is not None
        assert case.finish_reason == "stop"
        assert not case.truncated
        # What LiteLLM reports for the same request, asked with the official SDK.
        answer = client.chat.completions.create(model=model, messages=case.request["messages"])
        assert answer.usage is not None
        assert case.usage is not None
        assert (case.usage.input_tokens, case.usage.output_tokens) == (
            answer.usage.prompt_tokens,
            answer.usage.completion_tokens,
        )
        assert case.usage.input_tokens > 0
        assert case.usage.output_tokens > 0
        assert case.cost_usd == pytest.approx(
            (case.usage.input_tokens * PRICE_IN + case.usage.output_tokens * PRICE_OUT) / 1e6
        )


def test_a_parameter_the_model_refuses_is_caught_before_litellm_sees_it(
    proxy: Proxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # LiteLLM itself would refuse it with a 400 on every case; agent-evals stops at the line.
    _project(tmp_path, proxy, "o3", "  temperature: 0.2\n  max_tokens: 60\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LITELLM_TEST_KEY", MASTER_KEY)

    assert main(["run", "--output", "run.jsonl"]) == 2
    err = capsys.readouterr().err
    assert "prompts/triage.yaml:8: model 'o3' does not accept temperature (remove it; " in err
    assert not (tmp_path / "run.jsonl").exists()
    raw = httpx.post(
        f"{proxy.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {MASTER_KEY}"},
        json={"model": "o3", "temperature": 0.2, "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    )
    assert raw.status_code == 400, raw.text
    assert "temperature" in json.loads(raw.text)["error"]["message"]
