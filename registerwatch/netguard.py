"""Wall-clock deadlines and size limits for every outgoing HTTP request.

A socket timeout bounds one read, not the request: a server that drips one byte every few
seconds never trips it. Here one watchdog thread keeps a deadline per request in flight; when
one passes (or the process is asked to stop, see :func:`cancel_all`) it shuts the request's
sockets down, which wakes the blocked read at once, whether it was waiting for the headers or
the body. The body is then read in small pieces with a running byte count, after gzip/deflate
decoding, so a large or decompression-bomb response is stopped at ``max_bytes``.

Used by the MIS client (``adapters.base.http``) and the outbox HTTP transport; both mount
:class:`GuardedAdapter` on their session.
"""

from __future__ import annotations

import socket
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

WATCHDOG_POLL_SECONDS = 0.2
BODY_CHUNK = 8192  # decoded per step: a gzip bomb can expand one step ~1000x, so keep it small


@dataclass(frozen=True)
class NetLimits:
    """Connect and per-read timeouts, the whole request's deadline and the body size cap."""

    connect: float = 5.0
    read: float = 30.0
    total: float = 120.0
    max_bytes: int = 64 * 1024 * 1024

    @classmethod
    def from_timeout(cls, timeout: tuple[float, ...], **overrides: Any) -> NetLimits:
        """``(connect, read)`` or ``(connect, read, total)``: the shape adapters are given."""
        connect, read = float(timeout[0]), float(timeout[1])
        total = float(timeout[2]) if len(timeout) > 2 else max(cls.total, read * 4)
        return cls(connect=connect, read=read, total=total, **overrides)


class DeadlineExceeded(Exception):
    """The request outlived its wall-clock deadline (raised inside :func:`guarded`)."""


class Cancelled(Exception):
    """The process was asked to stop while the request was in flight."""


class BodyTooLarge(Exception):
    """The (decoded) body grew past the limit."""


_CANCEL = threading.Event()


def cancel_all() -> None:
    """End every request in flight and refuse new ones (a SIGTERM handler calls this)."""
    _CANCEL.set()
    _WATCHDOG.wake()


def reset_cancel() -> None:
    """Allow requests again (a daemon that stopped one job and goes on; tests)."""
    _CANCEL.clear()


def cancelled() -> bool:
    return _CANCEL.is_set()


class Tracker:
    """The sockets one session opened: what the watchdog shuts when its request overruns."""

    def __init__(self) -> None:
        self.sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        self.lock = threading.Lock()

    def add(self, sock: socket.socket | None) -> None:
        if sock is not None:
            with self.lock:
                self.sockets.add(sock)

    def shut(self) -> None:
        with self.lock:
            sockets = list(self.sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:  # already closed
                pass


def _tracked(base: type[HTTPConnection], tracker: Tracker) -> type[HTTPConnection]:
    class Tracked(base):  # type: ignore[valid-type,misc]
        def connect(self) -> None:
            super().connect()
            tracker.add(self.sock)
            raw = getattr(self.sock, "_sock", None)  # the TCP socket under a TLS wrapper
            tracker.add(raw)

    return Tracked


class GuardedAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections register their sockets with a tracker."""

    def __init__(self, tracker: Tracker, **kwargs: Any) -> None:
        self.tracker = tracker
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        tracker = self.tracker

        class Http(HTTPConnectionPool):
            ConnectionCls = _tracked(HTTPConnection, tracker)

        class Https(HTTPSConnectionPool):
            ConnectionCls = _tracked(HTTPSConnection, tracker)  # type: ignore[assignment]

        self.poolmanager.pool_classes_by_scheme = {"http": Http, "https": Https}
        self.poolmanager.key_fn_by_scheme = dict(self.poolmanager.key_fn_by_scheme)


class _Watch:
    def __init__(self, deadline: float, tracker: Tracker) -> None:
        self.deadline = deadline
        self.tracker = tracker
        self.tripped: str | None = None  # "deadline" | "cancelled"


class _Watchdog:
    """One daemon thread for the whole process, started on first use."""

    def __init__(self) -> None:
        self._watches: set[_Watch] = set()
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        self._event.set()

    def add(self, watch: _Watch) -> None:
        with self._lock:
            self._watches.add(watch)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="registerwatch-netguard", daemon=True
                )
                self._thread.start()

    def remove(self, watch: _Watch) -> None:
        with self._lock:
            self._watches.discard(watch)

    def _run(self) -> None:
        while True:
            self._event.wait(WATCHDOG_POLL_SECONDS)
            self._event.clear()
            now = time.monotonic()
            with self._lock:
                due = [w for w in self._watches if w.tripped is None]
            for watch in due:
                if _CANCEL.is_set():
                    watch.tripped = "cancelled"
                elif now >= watch.deadline:
                    watch.tripped = "deadline"
                else:
                    continue
                watch.tracker.shut()


_WATCHDOG = _Watchdog()


def guard_session(session: requests.Session) -> Tracker:
    """Mount tracking adapters on ``session``; return the tracker the watchdog shuts.

    A session that already has a non-default adapter (a test's mock transport) keeps it: the
    deadline is then enforced between body pieces only.
    """
    tracker = Tracker()
    for prefix in ("http://", "https://"):
        current = session.adapters.get(prefix)
        if current is None or type(current) is HTTPAdapter:
            session.mount(prefix, GuardedAdapter(tracker))
    return tracker


@contextmanager
def guarded(tracker: Tracker, total: float) -> Iterator[_Watch]:
    """Bound everything inside to ``total`` seconds of wall-clock time.

    Raises :class:`DeadlineExceeded` or :class:`Cancelled` in place of whatever the shut
    socket made the HTTP library raise.
    """
    if _CANCEL.is_set():
        raise Cancelled()
    watch = _Watch(time.monotonic() + total, tracker)
    _WATCHDOG.add(watch)
    try:
        yield watch
    except Exception as exc:
        if watch.tripped == "cancelled":
            raise Cancelled() from exc
        if watch.tripped == "deadline" or time.monotonic() >= watch.deadline:
            raise DeadlineExceeded() from exc
        raise
    finally:
        _WATCHDOG.remove(watch)


def read_body(response: requests.Response, watch: _Watch, max_bytes: int) -> bytes:
    """Read a streamed response's (decoded) body within the watch's deadline and ``max_bytes``.

    The result is also stored on the response, so ``response.content``/``.json()`` work after.
    """
    parts: list[bytes] = []
    size = 0
    for piece in response.iter_content(BODY_CHUNK):
        size += len(piece)
        if size > max_bytes:
            response.close()
            raise BodyTooLarge()
        if _CANCEL.is_set():
            response.close()
            watch.tripped = "cancelled"
            raise Cancelled()
        if time.monotonic() >= watch.deadline:
            response.close()
            watch.tripped = "deadline"
            raise DeadlineExceeded()
        parts.append(piece)
    body = b"".join(parts)
    response._content = body
    response._content_consumed = True  # type: ignore[attr-defined]
    return body
