"""bench/server.py's plain asyncio server, over real sockets on 127.0.0.1.

The benchmark measures agent-evals against it as it would a user's local model server, so it
must speak enough HTTP/1.1 for the official SDK and for a keep-alive pool: a completion the
`openai` SDK parses, two requests on one connection, `Connection: close`, a 404 for other paths.
Its answers are the same as uvicorn's, byte for byte apart from the id and the clock.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion

SERVER = Path(__file__).resolve().parent.parent / "bench" / "server.py"


def _start(impl: str, latency_ms: float) -> Generator[str, None, None]:
    """bench/server.py in its own process on a free port; yields its base URL (`http://host:port/v1`)."""
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--impl", impl, "--latency-ms", str(latency_ms), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("ready "), line
        yield line.split()[1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def base_url() -> Iterator[str]:
    yield from _start("asyncio", latency_ms=2)


def _address(base_url: str) -> tuple[str, int]:
    host, port = base_url.removeprefix("http://").removesuffix("/v1").split(":")
    return host, int(port)


def _chat(case: int) -> bytes:
    return json.dumps(
        {"model": "bench-model", "messages": [{"role": "user", "content": f"Question for case-{case}"}]}
    ).encode()


def _post(conn: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, Any]:
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def _content(answer: tuple[int, Any]) -> tuple[int, str]:
    status, body = answer
    return status, body["choices"][0]["message"]["content"]


def test_the_openai_sdk_reads_the_completion(base_url: str) -> None:
    client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0, timeout=10)
    raw = client.chat.completions.with_raw_response.create(
        model="bench-model", messages=[{"role": "user", "content": "Question for case-7: what?"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "answer 7"
    assert completion.usage is not None
    assert completion.usage.total_tokens == 23
    assert ChatCompletion.model_validate(json.loads(raw.http_response.content)) == completion
    client.close()


def test_two_requests_on_one_connection(base_url: str) -> None:
    conn = http.client.HTTPConnection(*_address(base_url), timeout=10)
    assert _content(_post(conn, "/v1/chat/completions", _chat(1))) == (200, "answer 1")
    first = conn.sock
    assert first is not None
    # http.client reconnects when the server closes: the same socket means the connection was kept.
    assert _content(_post(conn, "/v1/chat/completions", _chat(2))) == (200, "answer 2")
    assert conn.sock is first
    conn.request("GET", "/stats")
    stats = json.loads(conn.getresponse().read())
    assert conn.sock is first
    conn.close()
    assert stats["served"] == 2
    assert stats["cpu_s"] > 0


def test_other_paths_are_404_and_keep_the_connection(base_url: str) -> None:
    conn = http.client.HTTPConnection(*_address(base_url), timeout=10)
    assert _post(conn, "/v1/embeddings", _chat(1)) == (404, {"error": {"message": "not found"}})
    first = conn.sock
    conn.request("GET", "/v1/chat/completions")
    response = conn.getresponse()
    assert (response.status, response.reason) == (404, "Not Found")
    response.read()
    assert conn.sock is first
    conn.close()


def _exchange(base_url: str, request: bytes) -> bytes:
    """Send `request` raw and read until the server closes the connection."""
    with socket.create_connection(_address(base_url), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_connection_close_is_honoured(base_url: str) -> None:
    body = _chat(3)
    answer = _exchange(
        base_url,
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body),
    )
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 200 OK"
    assert b"connection: close" in head.split(b"\r\n")
    assert b"content-length: %d" % len(payload) in head.split(b"\r\n")
    assert json.loads(payload)["choices"][0]["message"]["content"] == "answer 3"


def test_a_chunked_body_is_refused(base_url: str) -> None:
    answer = _exchange(
        base_url,
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 501 Not Implemented\r\n")


@pytest.fixture(scope="module")
def both() -> Iterator[tuple[str, str]]:
    asyncio_server = _start("asyncio", latency_ms=0)
    uvicorn_server = _start("uvicorn", latency_ms=0)
    yield next(asyncio_server), next(uvicorn_server)
    for started in (asyncio_server, uvicorn_server):
        started.close()


@settings(max_examples=25, deadline=None)
@given(case=st.integers(min_value=0, max_value=10**9), extra=st.text(max_size=40))
def test_the_same_answers_as_uvicorn(both: tuple[str, str], case: int, extra: str) -> None:
    body = json.dumps(
        {"model": "m", "messages": [{"role": "user", "content": f"{extra} case-{case} {extra}"}]}
    ).encode()
    answers = []
    for url in both:
        conn = http.client.HTTPConnection(*_address(url), timeout=10)
        status, answer = _post(conn, "/v1/chat/completions", body)
        conn.close()
        assert status == 200
        del answer["id"], answer["created"]
        answers.append(answer)
    assert answers[0] == answers[1]
