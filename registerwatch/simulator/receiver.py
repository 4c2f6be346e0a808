"""A local authority's returns receiver on loopback, for the walkthrough and tests.

The example config's LA transports POST returns to ``http://127.0.0.1:8110/la/<code>/returns``;
``registerwatch simulate --receiver`` serves this so a night against the simulators ends with
every return delivered, rather than "submit failed" against an address nobody answers.

It behaves as the HTTP transport expects a real receiver to (docs/outbox.md): a bearer token
when one is set, the first request per ``Idempotency-Key`` kept and a repeat answered with the
original receipt, and ``201 {"reference": ...}`` for a stored return. Each body is written to
``folder`` (when given) under its reference, so what "the LA" received can be read back.

  POST /la/<code>/returns     store the body, answer 201 {"reference": "RCPT-000001"}
  GET  /_receiver/received    what was stored: [{reference, path, bytes, key}, ...]
"""

from __future__ import annotations

import hmac
import json
import re
import threading
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from registerwatch.simulator.server import LoopbackServer

DEFAULT_TOKEN = "simulator-token"
RETURNS_PATH = re.compile(r"^/la/(?P<code>\d{3})/returns/?$")
# Large enough for a whole school's census return; anything bigger is not a return.
MAX_BODY = 50 * 1024 * 1024


@dataclass(frozen=True)
class Received:
    reference: str
    path: str
    bytes: int
    key: str | None


class ReceiverState:
    """What the receiver has stored, safe to share between request threads."""

    def __init__(self, folder: Path | None, token: str | None) -> None:
        self.folder = folder
        self.token = token
        self._lock = threading.Lock()
        self._by_key: dict[str, Received] = {}
        self.received: list[Received] = []

    def store(self, path: str, body: bytes, key: str | None) -> tuple[Received, bool]:
        """The receipt for ``body``, and whether it is new (False: a repeat of ``key``)."""
        with self._lock:
            if key is not None and key in self._by_key:
                return self._by_key[key], False
            reference = f"RCPT-{len(self.received) + 1:06d}"
            if self.folder is not None:
                self.folder.mkdir(parents=True, exist_ok=True)
                target = self.folder / f"{reference}.xml"
                target.write_bytes(body)
                target.chmod(0o600)  # a return names pupils
            item = Received(reference, path, len(body), key)
            self.received.append(item)
            if key is not None:
                self._by_key[key] = item
            return item, True


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        state = self.server.state
        if not RETURNS_PATH.match(self.path):
            self._answer(404, {"error": f"no receiver at {self.path}; POST /la/<code>/returns"})
            return
        if state.token is not None:
            sent = self.headers.get("Authorization", "")
            if not hmac.compare_digest(sent.encode(), f"Bearer {state.token}".encode()):
                self._answer(401, {"error": "missing or wrong bearer token"})
                return
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > MAX_BODY:
            self._answer(400, {"error": "expected a return as the request body"})
            return
        body = self.rfile.read(length)
        item, new = state.store(self.path, body, self.headers.get("Idempotency-Key"))
        self._answer(201 if new else 200, {"reference": item.reference})

    def do_GET(self) -> None:
        if self.path.rstrip("/") != "/_receiver/received":
            self._answer(404, {"error": "GET /_receiver/received lists what was stored"})
            return
        self._answer(200, {"received": [asdict(r) for r in self.server.state.received]})

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the CLI says what the receiver is; per-request lines would drown it


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: ReceiverState) -> None:
        self.state = state
        super().__init__(address, _Handler)


class ReceiverServer(LoopbackServer):
    """Runs the receiver on 127.0.0.1, in the foreground or a background thread."""

    def __init__(
        self,
        *,
        port: int = 0,
        folder: Path | None = None,
        token: str | None = DEFAULT_TOKEN,
    ) -> None:
        self.state = ReceiverState(folder, token)
        super().__init__(_Server(("127.0.0.1", port), self.state), "sim-receiver")

    def url(self, la_code: str) -> str:
        return f"http://127.0.0.1:{self.port}/la/{la_code}/returns"
