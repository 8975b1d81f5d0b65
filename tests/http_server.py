"""A real HTTP server on 127.0.0.1 for tests, scripted request by request.

Providers, the GitHub client and the benchmark are tested against a socket, not
a patched client. The server runs `http.server.ThreadingHTTPServer` on port 0
in a background thread and speaks HTTP/1.1 with keep-alive.

Each request is answered by the first of:

1. the next scripted behaviour, queued with `enqueue(...)` (FIFO, used once);
2. a handler registered with `route(method, path_regex, handler)`;
3. the default handler (`default=`), e.g. `openai_chat` or `anthropic_messages`;
4. a 404 JSON error.

A behaviour is a `Response`, `Hang`, `Drop`, or a handler: a function
`(Request) -> Response | Hang | Drop`. Every request is recorded (`requests`,
`request_count`) with its arrival time on `time.monotonic()`.

    with ScriptedServer(default=openai_chat()) as server:
        server.enqueue(Response(429, {"error": {"message": "slow down"}}, headers={"Retry-After": "1"}))
        ...  # point a client at server.url
        assert server.request_count == 2
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import struct
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "CREATED",
    "Drop",
    "Handler",
    "Hang",
    "Request",
    "Response",
    "ScriptedServer",
    "anthropic_messages",
    "not_found",
    "openai_chat",
]

_NO_JSON = object()


@dataclass(frozen=True)
class Request:
    """A request as the server received it.

    Attributes:
        method: e.g. "POST".
        path: the path without the query string, e.g. "/v1/chat/completions".
        query: the query string parsed; every value is a list.
        headers: header names lower-cased; a repeated header keeps its last value.
        body: the raw body.
        json: the body parsed as JSON, or None if it is empty or not JSON.
        time: arrival on `time.monotonic()`, taken when the headers were read.
        index: 0 for the first request the server saw, then 1, 2, ...
        header_list: every header line as sent, names lower-cased, repeats kept.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    json: Any
    time: float
    index: int
    header_list: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Response:
    """Answer with a status, a body and headers.

    Give `json` for a JSON body (Content-Type set for you), or `body` for raw
    bytes or text (garbage, HTML, an SSE stream). `delay` sleeps before
    answering, to model a slow server.
    """

    status: int = 200
    json: Any = _NO_JSON
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | str | None = None
    delay: float = 0.0

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        headers = {k.lower(): v for k, v in self.headers.items()}
        if self.json is not _NO_JSON:
            headers.setdefault("content-type", "application/json")
            return json.dumps(self.json).encode(), headers
        body = self.body.encode() if isinstance(self.body, str) else (self.body or b"")
        headers.setdefault("content-type", "text/plain; charset=utf-8")
        return body, headers


@dataclass(frozen=True)
class Hang:
    """Read the request, send nothing for `seconds` (or until the server stops), then close."""

    seconds: float = 30.0


@dataclass(frozen=True)
class Drop:
    """Read the request and close the connection without answering.

    With `reset=True` the close is abortive (TCP RST), which clients see as a
    connection reset rather than an orderly end of stream.
    """

    reset: bool = False


Behaviour = Response | Hang | Drop
Handler = Callable[[Request], Behaviour]


def not_found(request: Request) -> Response:
    """The fallback: a 404 in the OpenAI/Anthropic error shape."""
    message = f"no behaviour scripted for {request.method} {request.path}"
    return Response(404, {"error": {"type": "not_found", "message": message}})


def _last_user_text(request: Request) -> str:
    messages = (request.json or {}).get("messages") or []
    users = [m.get("content") for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    return str(users[-1]) if users else ""


CREATED = 1_767_225_600
"""The `created` time of every scripted chat completion (2026-01-01), so responses are deterministic."""

ToolCallScript = tuple[str, dict[str, Any] | str]
"""A tool call to answer with: the tool's name and its arguments (a dict, or raw text as a model may send)."""


def openai_chat(
    text: str | None = None,
    *,
    prompt_tokens: int = 11,
    completion_tokens: int = 7,
    cached_tokens: int = 0,
    reasoning_tokens: int = 0,
    tool_calls: Sequence[ToolCallScript] = (),
    finish_reason: str | None = None,
    ids: Sequence[str] | None = None,
) -> Handler:
    """A handler answering like OpenAI's chat completions, with every field the official SDK requires.

    tests/test_sdk_contract.py parses what it returns with `openai.types.chat.ChatCompletion`.

    Args:
        text: the answer; by default "echo: " + the last user message, or no content at all
            when `tool_calls` are given.
        prompt_tokens: reported in `usage`, cached tokens included (as OpenAI counts them).
        completion_tokens: reported in `usage`, reasoning tokens included.
        cached_tokens: `usage.prompt_tokens_details.cached_tokens`.
        reasoning_tokens: `usage.completion_tokens_details.reasoning_tokens`.
        tool_calls: the calls the model asks for, in order (several are parallel calls);
            dict arguments are sent as a JSON string, as OpenAI does, a str as it is.
        finish_reason: by default `tool_calls` when there are tool calls, else `stop`.
        ids: the tool calls' ids; by default `call_<request index>_<position>` (a model mints
            new ones on every call; fixed ids make a conversation the same run after run).
    """

    def handle(request: Request) -> Response:
        body = request.json if isinstance(request.json, dict) else {}
        content = text
        if content is None and not tool_calls:
            content = "echo: " + _last_user_text(request)
        message: dict[str, Any] = {
            "role": "assistant",
            "content": content,
            "refusal": None,
            "annotations": [],
        }
        if tool_calls:
            message["tool_calls"] = [
                {
                    "id": ids[i] if ids is not None else f"call_{request.index}_{i}",
                    "type": "function",
                    "function": {
                        "name": name,
                        "arguments": args if isinstance(args, str) else json.dumps(args),
                    },
                }
                for i, (name, args) in enumerate(tool_calls)
            ]
        return Response(
            200,
            {
                "id": f"chatcmpl-{request.index}",
                "object": "chat.completion",
                "created": CREATED,
                "model": body.get("model", "unknown"),
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": finish_reason or ("tool_calls" if tool_calls else "stop"),
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                    "prompt_tokens_details": {"cached_tokens": cached_tokens, "audio_tokens": 0},
                    "completion_tokens_details": {
                        "reasoning_tokens": reasoning_tokens,
                        "audio_tokens": 0,
                        "accepted_prediction_tokens": 0,
                        "rejected_prediction_tokens": 0,
                    },
                },
                "service_tier": "default",
                "system_fingerprint": "fp_scripted",
            },
        )

    return handle


def anthropic_messages(
    text: str | None = None,
    *,
    input_tokens: int = 13,
    output_tokens: int = 5,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    tool_calls: Sequence[tuple[str, dict[str, Any]]] = (),
    stop_reason: str | None = None,
    ids: Sequence[str] | None = None,
) -> Handler:
    """A handler answering like Anthropic's Messages API, with every field the official SDK requires.

    tests/test_sdk_contract.py parses what it returns with `anthropic.types.Message`.

    Args:
        text: the answer; by default "echo: " + the last user message, or no text block at
            all when `tool_calls` are given.
        input_tokens: reported in `usage` (the uncached input, as Anthropic counts it).
        output_tokens: reported in `usage`.
        cache_read_tokens: `usage.cache_read_input_tokens`.
        cache_write_tokens: `usage.cache_creation_input_tokens` (written to the 5-minute cache).
        tool_calls: `tool_use` blocks after the text, in order: a tool's name and its input.
        stop_reason: by default `tool_use` when there are tool calls, else `end_turn`.
        ids: the `tool_use` blocks' ids; by default `toolu_<request index>_<position>`.
    """

    def handle(request: Request) -> Response:
        body = request.json if isinstance(request.json, dict) else {}
        content: list[dict[str, Any]] = []
        answer = text if text is not None or tool_calls else "echo: " + _last_user_text(request)
        if answer is not None:
            content.append({"type": "text", "text": answer, "citations": None})
        content.extend(
            {
                "type": "tool_use",
                "id": ids[i] if ids is not None else f"toolu_{request.index}_{i}",
                "name": name,
                "input": args,
            }
            for i, (name, args) in enumerate(tool_calls)
        )
        return Response(
            200,
            {
                "id": f"msg_{request.index}",
                "type": "message",
                "role": "assistant",
                "model": body.get("model", "unknown"),
                "content": content,
                "stop_reason": stop_reason or ("tool_use" if tool_calls else "end_turn"),
                "stop_sequence": None,
                "usage": {
                    "input_tokens": input_tokens,
                    "output_tokens": output_tokens,
                    "cache_creation_input_tokens": cache_write_tokens,
                    "cache_read_input_tokens": cache_read_tokens,
                    "cache_creation": {
                        "ephemeral_5m_input_tokens": cache_write_tokens,
                        "ephemeral_1h_input_tokens": 0,
                    },
                    "service_tier": "standard",
                },
            },
        )

    return handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog is 5: a client opening dozens of connections at once
    # (a run at -j 32) would see SYNs dropped and retransmitted a second later.
    request_queue_size = 128
    scripted: ScriptedServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up is what several tests do on purpose.
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError | TimeoutError):
            self.scripted.errors.append(traceback.format_exc())


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real APIs do
    server: _Server
    timeout = 30  # an idle keep-alive connection must not pin a thread forever
    # Headers and body go out in two writes; with Nagle on, the body waits for the
    # client's delayed ACK (~40 ms a response on Linux).
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        self.server.scripted._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.scripted._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean; the requests are recorded instead

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        arrived = time.monotonic()
        body = self._read_body()
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = None
        url = urlsplit(self.path)
        scripted = self.server.scripted
        request = scripted._record(
            method=self.command,
            path=url.path,
            query=parse_qs(url.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            header_list=tuple((k.lower(), v) for k, v in self.headers.items()),
            body=body,
            json=parsed,
            time=arrived,
        )
        try:
            behaviour = scripted._behaviour_for(request)
        except Exception:
            scripted.errors.append(traceback.format_exc())
            behaviour = Response(500, {"error": {"message": "test server handler raised; see server.errors"}})
        self._perform(behaviour)

    def _perform(self, behaviour: Behaviour) -> None:
        stopping = self.server.scripted._stopping
        if isinstance(behaviour, Hang):
            stopping.wait(behaviour.seconds)
            self.close_connection = True
            return
        if isinstance(behaviour, Drop):
            if behaviour.reset:
                # SO_LINGER with a zero timeout makes close() send RST.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        if behaviour.delay:
            stopping.wait(behaviour.delay)
        body, headers = behaviour.encoded()
        self.send_response(behaviour.status)
        for name, value in headers.items():
            if name != "content-length":
                self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch


class ScriptedServer:
    """A scriptable HTTP server on 127.0.0.1; start it with `with` or `start()`.

    Args:
        default: the handler for requests nothing else answers (default: `not_found`).
    """

    def __init__(self, default: Handler | None = None) -> None:
        self.default: Handler = default or not_found
        self.errors: list[str] = []
        """Tracebacks of handlers that raised (the client got a 500)."""
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._queue: deque[Behaviour | Handler] = deque()
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._requests: list[Request] = []
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------

    def start(self) -> ScriptedServer:
        """Bind a free port and serve in a background thread."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = _Server(("127.0.0.1", 0), _RequestHandler)
        httpd.scripted = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, name="scripted-http", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; wakes hanging behaviours and closes open connections."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                conn.shutdown(socket.SHUT_RDWR)  # unblocks a handler waiting on keep-alive
        httpd.server_close()  # joins the handler threads
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the server is not running")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The base URL, e.g. "http://127.0.0.1:54321" (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    def url_for(self, path: str) -> str:
        return self.url + "/" + path.lstrip("/")

    # --- scripting ---------------------------------------------------------------

    def enqueue(self, *behaviours: Behaviour | Handler) -> ScriptedServer:
        """Answer the next requests, in order, with these behaviours (each used once)."""
        with self._lock:
            self._queue.extend(behaviours)
        return self

    def route(self, method: str, path: str, handler: Handler | Behaviour) -> ScriptedServer:
        """Answer every `method` request whose path fully matches the regex `path`.

        A fixed behaviour (e.g. a `Response`) is answered every time. `method`
        "*" matches any method. Later routes win over earlier ones.
        """
        if callable(handler):
            fn = handler
        else:
            fixed: Behaviour = handler

            def fn(_request: Request) -> Behaviour:
                return fixed

        with self._lock:
            self._routes.insert(0, (method.upper(), re.compile(path), fn))
        return self

    def reset(self) -> None:
        """Forget the queue, the routes, the recorded requests and handler errors."""
        with self._lock:
            self._queue.clear()
            self._routes.clear()
            self._requests.clear()
            self.errors.clear()

    @property
    def pending(self) -> int:
        """Scripted behaviours not used yet."""
        with self._lock:
            return len(self._queue)

    # --- what happened -------------------------------------------------------------

    @property
    def requests(self) -> list[Request]:
        """Every request received so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    @property
    def last(self) -> Request:
        with self._lock:
            if not self._requests:
                raise AssertionError("the server has received no request")
            return self._requests[-1]

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[Request]:
        """Block until `count` requests have arrived; return them.

        Raises:
            TimeoutError: fewer arrived within `timeout` seconds.
        """
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self._requests) >= count, timeout):
                raise TimeoutError(f"{len(self._requests)} of {count} requests arrived within {timeout}s")
            return list(self._requests)

    # --- called from handler threads -------------------------------------------------

    def _record(self, **fields: Any) -> Request:
        with self._arrived:
            request = Request(index=len(self._requests), **fields)
            self._requests.append(request)
            self._arrived.notify_all()
            return request

    def _behaviour_for(self, request: Request) -> Behaviour:
        with self._lock:
            scripted = self._queue.popleft() if self._queue else None
            routes = list(self._routes)
        if scripted is None:
            handler = self.default
            for method, pattern, fn in routes:
                if method in ("*", request.method) and pattern.fullmatch(request.path):
                    handler = fn
                    break
            scripted = handler
        return scripted(request) if callable(scripted) else scripted

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)
