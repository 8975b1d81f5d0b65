"""An OpenAI-compatible chat completions server with a fixed latency, for the benchmark.

It answers `POST /v1/chat/completions` after sleeping `--latency-ms`, with a
completion and its usage, and `GET /stats` with the number of completions
served (the benchmark checks that a cached re-run sent none), when the
first request since the last `/stats` arrived and the last was answered, and
the CPU time the server process has used so far. The answer is
`answer <N>` where N is the first `case-<N>` in the request, so the eval set's
graders have something real to check.

Three implementations, all answering with the same `Answers` (see bench/README.md):
`uvicorn` (httptools parser, uvloop when installed, a bare ASGI app) and
`aiohttp` (aiohttp.web), the fast servers; and `asyncio`, a plain
`asyncio.start_server` with a minimal HTTP/1.1 reader and never uvloop, the kind
of server a user's local stub or model server is. Each runs in its own process
on 127.0.0.1, so its CPU is not charged to agent-evals but does share the
machine; it prints `ready <base_url>` once listening.

    python bench/server.py --latency-ms 50 [--port 0] [--impl uvicorn|aiohttp|asyncio]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

_CASE = re.compile(rb"case-(\d+)")


class Answers:
    """The responses: the same shape an OpenAI server sends, cheap to build."""

    def __init__(self, latency_s: float) -> None:
        self.latency_s = latency_s
        self.served = 0
        self.first_at: float | None = None
        """When the first completion request arrived (epoch seconds)."""
        self.last_at: float | None = None
        """When the last completion was answered."""

    def arrived(self) -> None:
        if self.first_at is None:
            self.first_at = time.time()

    def body(self, request: bytes) -> bytes:
        self.served += 1
        self.last_at = time.time()
        found = _CASE.search(request)
        number = found.group(1).decode() if found else "0"
        return json.dumps(
            {
                "id": f"chatcmpl-{self.served}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": "bench-model",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": f"answer {number}"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 20, "completion_tokens": 3, "total_tokens": 23},
            },
            separators=(",", ":"),
        ).encode()

    def stats(self) -> bytes:
        return json.dumps(
            {
                "served": self.served,
                "first_at": self.first_at,
                "last_at": self.last_at,
                # User plus system CPU of this process since it started, all threads.
                "cpu_s": time.process_time(),
            }
        ).encode()

    def reset(self) -> None:
        self.first_at = self.last_at = None


def _listen(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(4096)
    sock.setblocking(False)
    return sock


def _ready(sock: socket.socket) -> None:
    host, port = sock.getsockname()[:2]
    print(f"ready http://{host}:{port}/v1", flush=True)


Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


def _asgi_app(answers: Answers) -> Callable[[dict[str, Any], Receive, Send], Awaitable[None]]:
    json_headers = [(b"content-type", b"application/json")]

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        if scope["method"] == "GET" and scope["path"] == "/stats":
            status, payload = 200, answers.stats()
            answers.reset()
        elif scope["method"] == "POST" and scope["path"].endswith("/chat/completions"):
            answers.arrived()
            await asyncio.sleep(answers.latency_s)
            status, payload = 200, answers.body(b"".join(chunks))
        else:
            status, payload = 404, b'{"error":{"message":"not found"}}'
        headers = [*json_headers, (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    return app


async def _serve_uvicorn(answers: Answers, sock: socket.socket) -> None:
    import uvicorn

    config = uvicorn.Config(
        _asgi_app(answers),  # type: ignore[arg-type]
        http="httptools",
        loop="none",
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=600,
        backlog=4096,
    )
    server = uvicorn.Server(config)
    _ready(sock)
    await server.serve(sockets=[sock])


async def _serve_aiohttp(answers: Answers, sock: socket.socket) -> None:
    from aiohttp import web

    async def complete(request: web.Request) -> web.Response:
        answers.arrived()
        body = await request.read()
        await asyncio.sleep(answers.latency_s)
        return web.Response(body=answers.body(body), content_type="application/json")

    async def stats(request: web.Request) -> web.Response:
        payload = answers.stats()
        answers.reset()
        return web.Response(body=payload, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", complete)
    app.router.add_get("/stats", stats)
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=600)
    await runner.setup()
    await web.SockSite(runner, sock, backlog=4096).start()
    _ready(sock)
    await asyncio.Event().wait()


_REASONS = {200: b"OK", 404: b"Not Found", 501: b"Not Implemented"}
_NOT_FOUND = b'{"error":{"message":"not found"}}'


async def _serve_asyncio(answers: Answers, sock: socket.socket) -> None:
    """HTTP/1.1 with keep-alive over `asyncio.start_server`, no HTTP library: bodies by Content-Length only."""

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # One write per response, and no Nagle: otherwise a small segment sent while an
        # earlier one is unacknowledged waits for the client's delayed ACK (40 ms on Linux).
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return  # the client closed the connection between requests
                request_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
                method, path, version = request_line.split(" ", 2)
                headers: dict[str, str] = {}
                for line in header_lines:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip().lower()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                keep_alive = headers.get("connection", "") != "close" and version == "HTTP/1.1"
                if "transfer-encoding" in headers:
                    status, payload, keep_alive = 501, b'{"error":{"message":"chunked bodies"}}', False
                elif method == "GET" and path == "/stats":
                    status, payload = 200, answers.stats()
                    answers.reset()
                elif method == "POST" and path.endswith("/chat/completions"):
                    answers.arrived()
                    await asyncio.sleep(answers.latency_s)
                    status, payload = 200, answers.body(body)
                else:
                    status, payload = 404, _NOT_FOUND
                head_out = (
                    b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n"
                    % (
                        status,
                        _REASONS[status],
                        len(payload),
                        b"" if keep_alive else b"connection: close\r\n",
                    )
                )
                writer.write(head_out + payload)
                await writer.drain()
                if not keep_alive:
                    return
        finally:
            writer.close()

    server = await asyncio.start_server(connection, sock=sock, backlog=4096)
    _ready(sock)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--latency-ms", type=float, default=50.0, help="time each completion takes")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--impl", choices=("uvicorn", "aiohttp", "asyncio"), default="uvicorn")
    parser.add_argument(
        "--no-uvloop", action="store_true", help="use the standard asyncio loop (asyncio: always)"
    )
    args = parser.parse_args(argv)
    answers = Answers(args.latency_ms / 1000.0)
    sock = _listen(args.port)
    serve = {"uvicorn": _serve_uvicorn, "aiohttp": _serve_aiohttp, "asyncio": _serve_asyncio}[args.impl]
    if not args.no_uvloop and args.impl != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            uvloop.run(serve(answers, sock))
            return 0
    asyncio.run(serve(answers, sock))
    return 0


if __name__ == "__main__":
    sys.exit(main())
