"""A real HTTP server on loopback that serves a generated school, with switchable faults.

Each vendor simulator subclasses ``VendorApp`` and implements ``route``; this module owns the
transport (``ThreadingHTTPServer``), request accounting, and the faults every vendor shares
(429 with Retry-After, 5xx, slow responses, HTML maintenance pages). Vendor-shaped faults (an
empty 200 for a missing permission, stale cached responses, data changing between pages,
expiring tokens, malformed records) are looked up by the vendor app with ``faults.take``.

Control endpoints (not part of any vendor API), for tests and evaluators:
  POST   /_sim/faults   {"kind": "429", "times": 2, "path": "attendance"}  arm a fault
  DELETE /_sim/faults                                                   clear all faults
  GET    /_sim/stats                                                    request counts
  POST   /_sim/marks    {"pupil_id", "date", "session", "code"}          change a mark
  DELETE /_sim/marks    {"pupil_id", "date", "session"}                  remove a mark
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from registerwatch.schema import Amendment, Mark, Session
from registerwatch.simulator.model import GeneratedSchool


class FaultKind(StrEnum):
    RATE_LIMIT = "429"
    SERVER_ERROR = "500"
    BAD_GATEWAY = "502"
    UNAVAILABLE = "503"
    SLOW = "slow"  # sleeps past the client's read timeout
    HTML_MAINTENANCE = "html"  # status 200, an HTML page
    EMPTY_PERMISSION = "empty"  # status 200, no records (permission missing)
    STALE_CACHE = "stale"  # an older snapshot of the data
    CHANGING_PAGES = "changing"  # data changes between page 1 and page 2
    EXPIRING_TOKENS = "expiring_tokens"  # tokens expire after one use
    MALFORMED = "malformed"  # bad dates, unknown codes, missing keys in some records
    DEADLOCK = "deadlock"  # iSAMS: XML error body saying the request deadlocked


GENERIC_FAULTS = {
    FaultKind.RATE_LIMIT,
    FaultKind.SERVER_ERROR,
    FaultKind.BAD_GATEWAY,
    FaultKind.UNAVAILABLE,
    FaultKind.SLOW,
    FaultKind.HTML_MAINTENANCE,
}

MAINTENANCE_PAGE = (
    "<!DOCTYPE html><html><head><title>Down for maintenance</title></head>"
    "<body><h1>We'll be back soon</h1><p>The system is undergoing scheduled maintenance."
    "</p></body></html>"
)


@dataclass
class Fault:
    kind: FaultKind
    times: int | None = 1  # None: until cleared
    path: str | None = None  # only requests whose path contains this
    delay: float = 3.0  # for SLOW
    retry_after: int = 1  # for RATE_LIMIT


class FaultInjector:
    """Thread-safe set of armed faults; each use of a counted fault spends one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.fired: Counter[str] = Counter()

    def arm(
        self, kind: FaultKind | str, times: int | None = 1, path: str | None = None, **options: Any
    ) -> Fault:
        fault = Fault(kind=FaultKind(kind), times=times, path=path, **options)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, kinds: set[FaultKind] | FaultKind, path: str = "") -> Fault | None:
        """The first armed fault of ``kinds`` matching ``path``, spending one use."""
        wanted = {kinds} if isinstance(kinds, FaultKind) else kinds
        with self._lock:
            for fault in self._faults:
                if fault.kind in wanted and (fault.path is None or fault.path in path):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    self.fired[fault.kind.value] += 1
                    return fault
        return None

    def active(self, kind: FaultKind, path: str = "") -> bool:
        """Is a fault armed, without spending it (for faults that shape a whole response)?"""
        with self._lock:
            return any(f.kind is kind and (f.path is None or f.path in path) for f in self._faults)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Response:
    status: int = 200
    body: bytes | str = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: Any, status: int = 200, **headers: str) -> Response:
        return cls(status=status, body=json.dumps(payload, default=str), headers=dict(headers))


class VendorApp:
    """A vendor-style API over a generated school. Subclasses implement ``route``."""

    vendor = "mis"

    def __init__(
        self,
        school: GeneratedSchool,
        faults: FaultInjector | None = None,
        *,
        serve_amendments: bool = True,
    ) -> None:
        self.school = school
        self.faults = faults or FaultInjector()
        self.serve_amendments = serve_amendments
        self.lock = threading.RLock()
        self.requests: Counter[str] = Counter()
        self.prepare()

    def prepare(self) -> None:
        """Build what the vendor serves from ``self.school`` (ids, fixed resources).

        Runs at the end of ``VendorApp.__init__``, before a subclass's own ``__init__`` goes
        on, so it may use only the fields set above; each vendor's data class overrides it.
        """

    # Added to every vendor request before it is answered (a distant MIS's round trip; the sync
    # benchmark's --latency-ms). Slept outside the app lock, so concurrent requests overlap.
    latency_seconds = 0.0

    def route(self, request: Request) -> Response:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- changes between syncs (the school's data manager editing the register) ------------

    # When True, every edit made through set_mark/delete_mark is also written to the school's
    # amendment history (INFERRED: the audit trail an MIS keeps by itself records who, when, old
    # and new; the reason is what staff must type, so it stays empty and AMD001 has something
    # to find). Vendors whose simulator serves no such trail leave it False.
    records_edit_history = False

    def set_mark(self, pupil_id: str, day: date, session: Session, code: str) -> None:
        with self.lock:
            key = (pupil_id, day, Session(session))
            marks = self.school.marks
            before = None
            for index, mark in enumerate(marks):
                if (mark.pupil_id, mark.date, mark.session) == key:
                    before = mark
                    marks[index] = mark.model_copy(
                        update={"code": code, "vendor_code": code, "recorded_at": datetime.now(UTC)}
                    )
                    break
            else:
                marks.append(
                    Mark(
                        pupil_id=pupil_id,
                        date=day,
                        session=session,
                        code=code,
                        vendor_code=code,
                        recorded_at=datetime.now(UTC),
                    )
                )
            self._record_edit(key, before.code if before else None, code)

    def delete_mark(self, pupil_id: str, day: date, session: Session) -> bool:
        with self.lock:
            key = (pupil_id, day, Session(session))
            gone = [m for m in self.school.marks if (m.pupil_id, m.date, m.session) == key]
            if not gone:
                return False
            self.school.marks[:] = [
                m for m in self.school.marks if (m.pupil_id, m.date, m.session) != key
            ]
            self._record_edit(key, gone[0].code, None)
            return True

    def _record_edit(
        self, key: tuple[str, date, Session], old: str | None, new: str | None
    ) -> None:
        if not self.records_edit_history:
            return
        pupil_id, day, session = key
        self.school.amendments.append(
            Amendment(
                pupil_id=pupil_id,
                date=day,
                session=session,
                original_code=old,
                amended_code=new,
                reason=None,
                amended_at=datetime.now(UTC).replace(microsecond=0),
                amended_by_name="Simulator",
                amended_by_position="Data manager",
            )
        )

    # -- dispatch ---------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        if request.path.startswith("/_sim/"):
            return self._control(request)
        self.requests[request.path] += 1
        if self.latency_seconds:
            time.sleep(self.latency_seconds)
        fault = self.faults.take(GENERIC_FAULTS, request.path)
        if fault is not None:
            if fault.kind is FaultKind.RATE_LIMIT:
                return Response.json(
                    {"error": "Too Many Requests"},
                    status=429,
                    **{"Retry-After": str(fault.retry_after)},
                )
            if fault.kind is FaultKind.SLOW:
                time.sleep(fault.delay)
            elif fault.kind is FaultKind.HTML_MAINTENANCE:
                return Response(status=200, body=MAINTENANCE_PAGE, content_type="text/html")
            else:
                status = int(fault.kind.value)
                return Response(
                    status=status,
                    body=f"<html><body>{status}</body></html>",
                    content_type="text/html",
                )
        with self.lock:
            return self.route(request)

    def _control(self, request: Request) -> Response:
        payload = json.loads(request.body or b"{}")
        if request.path == "/_sim/faults":
            if request.method == "DELETE":
                self.faults.clear()
                return Response.json({"cleared": True})
            fault = self.faults.arm(
                payload["kind"],
                payload.get("times", 1),
                payload.get("path"),
                **{k: payload[k] for k in ("delay", "retry_after") if k in payload},
            )
            return Response.json({"armed": fault.kind.value, "times": fault.times})
        if request.path == "/_sim/stats":
            return Response.json(
                {"requests": dict(self.requests), "faults_fired": dict(self.faults.fired)}
            )
        if request.path == "/_sim/marks":
            day = date.fromisoformat(payload["date"])
            if request.method == "DELETE":
                found = self.delete_mark(payload["pupil_id"], day, Session(payload["session"]))
                return Response.json({"deleted": found})
            self.set_mark(payload["pupil_id"], day, Session(payload["session"]), payload["code"])
            return Response.json({"updated": True})
        return Response.json({"error": "unknown control endpoint"}, status=404)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    # Headers and body go out in separate writes; with Nagle's algorithm on, the client's
    # delayed ACK adds ~40 ms to every keep-alive response.
    disable_nagle_algorithm = True

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        try:
            response = self.server.app.handle(request)
        except Exception as exc:  # a simulator bug must look like a 500, not a hang
            response = Response.json({"error": f"simulator error: {exc}"}, status=500)
        data = response.body.encode() if isinstance(response.body, str) else response.body
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and went away (the SLOW fault does this on purpose)

    do_GET = do_POST = do_DELETE = do_PUT = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        return  # request lines would carry pupil ids in query strings: stay quiet


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: VendorApp) -> None:
        self.app = app
        super().__init__(address, _Handler)


class LoopbackServer:
    """An HTTP server on 127.0.0.1 run in a background thread (``with`` or start/stop); the
    vendor simulators and the LA receiver share it."""

    def __init__(self, server: ThreadingHTTPServer, thread_name: str) -> None:
        self._server = server
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name=thread_name, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> Self:
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.05)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SimulatorServer(LoopbackServer):
    """Runs a VendorApp on 127.0.0.1 in a background thread (``with`` or start/stop)."""

    def __init__(self, app: VendorApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        super().__init__(_Server((host, port), app), f"sim-{app.vendor}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
