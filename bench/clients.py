"""How fast can an HTTP client alone go? The measurement behind the choice of client.

Sends N chat completion requests at a given concurrency to bench/server.py
(started here, in its own process) with each candidate client, parsing each
JSON answer, and prints wall time, efficiency (N x latency / concurrency /
wall) and this process's CPU time per request. Nothing of agent-evals runs:
this is the ceiling the runner works under.

    .venv/bin/python bench/clients.py [--cases 10000] [--concurrency 100] [--latency-ms 20]

With `--url` it sends to a server that is already running (bench/run_bench.py
runs it so, as a whole process timed like `agent-evals run`: the floor a
Python runner on this HTTP client starts from). It imports the client it
measures only when it measures it, so a timed process pays that import as
`agent-evals run` does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

BODY = {
    "model": "bench-model",
    "messages": [
        {"role": "system", "content": "Answer with the word answer and the case number."},
        {"role": "user", "content": "Question for case-{i}: what is the answer to question {i}?"},
    ],
    "temperature": 0,
    "max_tokens": 16,
}
HEADERS = {"user-agent": "agent-evals", "accept": "application/json", "authorization": "Bearer sk-bench"}

Send = Callable[[int], Awaitable[str]]


def body(i: int) -> dict[str, object]:
    messages = [dict(m, content=str(m["content"]).format(i=i)) for m in BODY["messages"]]  # type: ignore[attr-defined]
    return {**BODY, "messages": messages}


async def drive(send: Send, cases: int, concurrency: int) -> None:
    items = iter(range(cases))

    async def worker() -> None:
        for i in items:
            text = await send(i)
            assert text == f"answer {i}", text

    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(worker())


async def with_httpx(url: str, cases: int, concurrency: int, tuned: bool) -> None:
    import httpx

    if tuned:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        client = httpx.AsyncClient(limits=limits, timeout=60, trust_env=False)
    else:
        client = httpx.AsyncClient(timeout=60)

    async def send(i: int) -> str:
        response = await client.post(url, json=body(i), headers=HEADERS)
        data = json.loads(response.content)
        return str(data["choices"][0]["message"]["content"])

    async with client:
        await drive(send, cases, concurrency)


async def with_aiohttp(url: str, cases: int, concurrency: int) -> None:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def send(i: int) -> str:
            async with session.post(url, data=json.dumps(body(i)).encode(), headers=HEADERS) as response:
                data = json.loads(await response.read())
            return str(data["choices"][0]["message"]["content"])

        await drive(send, cases, concurrency)


CLIENTS: dict[str, Callable[[str, int, int], Awaitable[None]]] = {
    "httpx": lambda url, n, c: with_httpx(url, n, c, tuned=False),
    "httpx-tuned": lambda url, n, c: with_httpx(url, n, c, tuned=True),
    "aiohttp": with_aiohttp,
    "aiohttp+uvloop": with_aiohttp,
}


@contextmanager
def running(url: str | None, latency_ms: float, impl: str) -> Iterator[str]:
    """The chat completions URL to send to: `url` as given, else a bench/server.py started for it."""
    if url is not None:
        yield url
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run_bench import server

    with server(latency_ms, impl) as base_url:
        yield base_url + "/chat/completions"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--server", choices=("uvicorn", "asyncio", "aiohttp"), default="uvicorn")
    parser.add_argument("--client", action="append", choices=list(CLIENTS), help="default: all")
    parser.add_argument(
        "--url", help="send to this chat completions URL (a running bench/server.py) instead of starting one"
    )
    args = parser.parse_args(argv)
    ideal = args.cases * args.latency_ms / 1000 / args.concurrency
    print(
        f"{args.cases:,} requests, concurrency {args.concurrency}, {args.latency_ms:g} ms: ideal {ideal:.2f} s"
    )
    for name in args.client or list(CLIENTS):
        with running(args.url, args.latency_ms, args.server) as url:
            cpu0 = resource.getrusage(resource.RUSAGE_SELF)
            start = time.perf_counter()
            if name.endswith("+uvloop"):
                import uvloop

                uvloop.run(CLIENTS[name](url, args.cases, args.concurrency))
            else:
                asyncio.run(CLIENTS[name](url, args.cases, args.concurrency))
            wall = time.perf_counter() - start
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        print(
            f"{name:12} wall {wall:6.2f} s  efficiency {ideal / wall:4.2f}  "
            f"CPU {1e6 * cpu / args.cases:5.0f} us/request  ({args.cases / wall:,.0f} requests/s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
