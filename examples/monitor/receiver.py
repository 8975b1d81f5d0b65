"""A stand-in for PagerDuty's Events API v2 and a Slack webhook, on 127.0.0.1, for the monitor demo.

It answers as the real receivers do (PagerDuty: 202 with `{"status": "success", "dedup_key"}`;
Slack: 200 `ok`) and keeps every POST. It never shows a secret: `shown()` gives each request
with the routing key and the webhook's token replaced by a note saying whether they matched
what the demo configured.

    with Receiver(routing_key=KEY, webhook_path=PATH) as receiver:
        ...  # point agent-evals.yaml's pagerduty channel at receiver.url + "/v2/enqueue"
        for request in receiver.shown(): print(request)
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PAGERDUTY_PATH = "/v2/enqueue"


@dataclass
class Received:
    """One POST as it arrived (the secrets still in it: never printed as is)."""

    path: str
    body: Any


@dataclass
class Receiver:
    routing_key: str
    webhook_path: str
    """The webhook URL's path; its last segment is the token, as in Slack's."""
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(size)
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", errors="replace")
                with receiver._lock:
                    receiver.received.append(Received(self.path, body))
                if self.path == PAGERDUTY_PATH:
                    dedup = body.get("dedup_key") if isinstance(body, dict) else None
                    answer = json.dumps(
                        {"status": "success", "message": "Event processed", "dedup_key": dedup}
                    ).encode()
                    self._answer(202, answer, "application/json")
                elif self.path == receiver.webhook_path:
                    self._answer(200, b"ok", "text/plain")
                else:
                    self._answer(404, b'{"message": "no such receiver"}', "application/json")

            def _answer(self, status: int, data: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return  # the request line holds the webhook's token: never logged

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def shown(self) -> list[dict[str, Any]]:
        """Every request, secrets replaced: `{"receiver": "pagerduty" | "webhook" | PATH, "body": ...}`."""
        with self._lock:
            received = list(self.received)
        out = []
        for request in received:
            body = request.body
            if request.path == PAGERDUTY_PATH:
                name = "pagerduty"
                if isinstance(body, dict) and "routing_key" in body:
                    same = body["routing_key"] == self.routing_key
                    body = {
                        **body,
                        "routing_key": "(the configured routing key)" if same else "(ANOTHER KEY)",
                    }
            elif request.path == self.webhook_path:
                name = "webhook"
            else:
                name = "(an unknown path)"
            out.append({"receiver": name, "body": body})
        return out
