"""The run lock: one registerwatch job at a time per store, and one ``run`` daemon.

Two jobs on one store must not overlap: two syncs would pull the same windows twice and race
on the ledger's tip, and a scan reading half a sync would open findings that the next scan
closes again. Two locks, both ``fcntl.flock`` on a small file:

* the **work lock** (``<store>.lock``) is held while a job runs: ``registerwatch sync``,
  ``registerwatch nightly``, and each job of ``registerwatch run``. A second one either exits
  naming the holder (:class:`~registerwatch.errors.RunLockedError`) or, asked to wait, waits;
* the **daemon lock** (``<store>.daemon.lock``) is held by ``registerwatch run`` for its whole
  life, so a second daemon refuses to start (or, with ``--wait``, stands by and takes over when
  the first one stops), while a data manager can still run ``registerwatch sync`` by hand
  between the daemon's jobs.

Why flock: the kernel releases it when the holding process dies, however it dies (SIGKILL, OOM,
power cut on a local disk), so a lock can never go stale; the file's text (pid, command, since,
host) is only there to name the holder in the message. The file is never deleted: deleting a
flock'd file lets a third process lock a new file of the same name while the second still holds
the old one.

Where: next to the SQLite store (so every user and service of that store meets the same lock),
or for PostgreSQL in ``$XDG_RUNTIME_DIR/registerwatch`` (else ``/tmp/registerwatch-<uid>``),
named by a hash of the store URL. A file lock only coordinates one machine (and one user, for
the runtime folder), so for PostgreSQL the work lock also takes a session-level advisory lock in
the database itself (:class:`PgAdvisoryLock`), which the server releases when the holder's
connection ends. An in-memory SQLite store is private to its process and needs no lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import socket
import stat
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from registerwatch.calendar import LONDON
from registerwatch.errors import ConfigError, RunLockedError
from registerwatch.logging import get_logger
from registerwatch.store import PgAdvisoryLock
from registerwatch.store.engine import is_sqlite_memory, parse_url, safe_url, sqlite_path

log = get_logger("registerwatch.jobs.lock")

LockKind = Literal["work", "daemon"]

# How often a waiting process retries. flock could block in the kernel instead, but then a
# SIGTERM (or a timeout) could not end the wait until the holder finishes.
POLL_SECONDS = 0.25

_SUFFIX: dict[LockKind, str] = {"work": ".lock", "daemon": ".daemon.lock"}


@dataclass(frozen=True)
class LockHolder:
    """Who holds a lock, as its holder wrote it (any field may be unknown)."""

    pid: int | None = None
    command: str | None = None
    since: datetime | None = None
    host: str | None = None

    def describe(self) -> str:
        """'pid 4242 (registerwatch nightly) since 2025-10-01 02:00:03 BST on host rw1'."""
        if self.pid is None and self.command is None:
            return "another process (it has not written its details yet)"
        parts = [f"pid {self.pid}" if self.pid is not None else "a process"]
        if self.command:
            parts.append(f"(registerwatch {self.command})")
        if self.since is not None:
            parts.append(f"since {self.since.astimezone(LONDON):%Y-%m-%d %H:%M:%S %Z}")
        if self.host and self.host != socket.gethostname():
            parts.append(f"on host {self.host}")
        elif self.pid is not None and not _alive(self.pid):
            # flock outlives its process only in a child that inherited the descriptor.
            parts.append("(that process has exited: a child process it started still holds it)")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "command": self.command,
            "host": self.host,
            "since": self.since.isoformat() if self.since else None,
        }


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def read_holder(path: Path) -> LockHolder:
    """The holder details written in a lock file (empty when unreadable or half-written)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return LockHolder()
    if not isinstance(data, dict):
        return LockHolder()
    since: datetime | None = None
    try:
        since = datetime.fromisoformat(data["since"]) if data.get("since") else None
    except (TypeError, ValueError):
        since = None
    pid = data.get("pid")
    return LockHolder(
        pid=pid if isinstance(pid, int) else None,
        command=str(data["command"]) if data.get("command") else None,
        since=since,
        host=str(data["host"]) if data.get("host") else None,
    )


# -- where the lock lives ----------------------------------------------------------------------


def runtime_dir(environ: Mapping[str, str] | None = None) -> Path:
    """A private folder for lock files of stores that are not files (PostgreSQL).

    Refuses a folder that another user owns or can write into: whoever controls it could
    pre-create the lock file as a symlink, or hold the lock to stop every nightly run.
    """
    env = os.environ if environ is None else environ
    base = env.get("XDG_RUNTIME_DIR", "").strip()
    folder = (
        Path(base) / "registerwatch"
        if base
        else Path(tempfile.gettempdir()) / f"registerwatch-{os.getuid()}"
    )
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(folder)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the lock folder {folder}: {exc.strerror} "
            "(set XDG_RUNTIME_DIR to a folder of your own)"
        ) from None
    if (
        not stat.S_ISDIR(info.st_mode)
        or info.st_uid != os.getuid()
        or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    ):
        raise ConfigError(
            f"lock folder {folder} is not a private folder owned by this user; "
            "remove it or set XDG_RUNTIME_DIR to a folder of your own"
        )
    return folder


def lock_path(
    store_url: str, kind: LockKind = "work", environ: Mapping[str, str] | None = None
) -> Path | None:
    """The lock file for a store: next to a SQLite file, else keyed by the URL's hash.

    None for an in-memory SQLite store, which no other process can see.
    """
    url = parse_url(store_url)
    if is_sqlite_memory(url):
        return None
    file = sqlite_path(url)
    if file is not None:
        return file.with_name(file.name + _SUFFIX[kind])
    # The password-free form: no secret in a file name, and the same store however it is
    # authenticated hashes the same.
    digest = hashlib.sha256(safe_url(url).encode("utf-8")).hexdigest()[:16]
    return runtime_dir(environ) / f"store-{digest}{_SUFFIX[kind]}"


# -- the lock ------------------------------------------------------------------------------------


class RunLock:
    """An exclusive lock on one store for one kind of work, named after its holder.

    ``path`` None means there is nothing to lock (an in-memory store): acquiring always
    succeeds. Use as a context manager (``with RunLock(...)``: acquire, raising
    RunLockedError when held, and release at the end) or call :meth:`acquire` yourself when a
    stop request must be able to end the wait.
    """

    def __init__(
        self,
        path: Path | None,
        command: str,
        *,
        wait: bool = False,
        timeout: float | None = None,
        kind: LockKind = "work",
        advisory: PgAdvisoryLock | None = None,
        poll_seconds: float = POLL_SECONDS,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.path = path
        self.command = command
        self.wait = wait
        self.timeout = timeout
        self.kind = kind
        self.advisory = advisory
        self.poll_seconds = poll_seconds
        self._clock = clock or (lambda: datetime.now(UTC))
        self._fd: int | None = None
        self._held = False

    def __repr__(self) -> str:
        return f"RunLock({str(self.path)!r}, {self.command!r}, kind={self.kind!r})"

    @property
    def held(self) -> bool:
        return self._held

    def acquire(
        self,
        *,
        wait: bool | None = None,
        timeout: float | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> bool:
        """Take the lock. Returns True once held.

        Not waiting, or past ``timeout`` seconds of waiting, raises RunLockedError naming the
        holder. Returns False, without the lock, when ``should_stop()`` turns true while waiting
        (a SIGTERM during ``--wait``).
        """
        if self._held:
            raise RuntimeError(f"{self!r} is already held by this process")
        wait = self.wait if wait is None else wait
        timeout = self.timeout if timeout is None else timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        announced = False
        try:
            while True:
                blocker = self._try_once()
                if blocker is None:
                    self._held = True
                    log.info(
                        "runlock.acquired",
                        kind=self.kind,
                        command=self.command,
                        path=str(self.path) if self.path else None,
                    )
                    return True
                if not wait:
                    raise self._locked_error(blocker())
                if deadline is not None and time.monotonic() >= deadline:
                    raise self._locked_error(blocker(), waited=timeout)
                if not announced:
                    log.info(
                        "runlock.waiting", kind=self.kind, command=self.command, held_by=blocker()
                    )
                    announced = True
                if should_stop is not None and should_stop():
                    log.info("runlock.wait_abandoned", kind=self.kind, command=self.command)
                    return False
                pause = self.poll_seconds
                if deadline is not None:
                    pause = max(0.0, min(pause, deadline - time.monotonic()))
                time.sleep(pause)
        finally:
            if not self._held and self.advisory is not None:
                self.advisory.release()  # the connection kept while waiting

    def _try_once(self) -> Callable[[], str] | None:
        """One attempt at every part of the lock: None when all are held, else a function that
        names who blocks (asked only when the name is needed)."""
        if self.path is None:
            return None
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            path = self.path
            return lambda: read_holder(path).describe()
        if self.advisory is not None:
            try:
                got = self.advisory.try_acquire(self.command)
            except BaseException:
                self._unlock(fd)
                raise
            if not got:
                self._unlock(fd)
                return self.advisory.holder
        self._fd = fd
        self._write_holder(fd)
        return None

    def _open(self) -> int:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # O_NOFOLLOW: a symlink planted at the lock's name must not redirect the write of the
        # holder details to another file. Not inheritable (Python's default): a program this
        # process starts must not keep the lock alive after it exits.
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise RunLockedError(
                f"cannot open the lock file {self.path}: {exc.strerror} "
                "(check the folder's permissions)"
            ) from None

    def _write_holder(self, fd: int) -> None:
        details = {
            "pid": os.getpid(),
            "command": self.command,
            "host": socket.gethostname(),
            "since": self._clock().astimezone(UTC).isoformat(),
        }
        payload = json.dumps(details).encode("utf-8")
        os.ftruncate(fd, 0)
        os.pwrite(fd, payload, 0)

    @staticmethod
    def _unlock(fd: int) -> None:
        with contextlib.suppress(OSError):  # clearing the details is a courtesy
            os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def _locked_error(self, blocker: str, waited: float | None = None) -> RunLockedError:
        where = f" ({self.path})" if self.path is not None else ""
        if self.kind == "daemon":
            what = "a registerwatch run daemon is already running on this store"
            fix = "stop it first, or start this one with --wait to stand by until it stops"
        else:
            what = "the store is in use by another registerwatch run"
            fix = "wait for it to finish, rerun with --wait, or see `registerwatch runs`"
        tail = f"gave up after waiting {waited:g} s" if waited is not None else fix
        return RunLockedError(f"{what}: held by {blocker}{where}; {tail}")

    def release(self) -> None:
        """Let the lock go (safe to call when not held)."""
        if not self._held:
            return
        self._held = False
        if self.advisory is not None:
            self.advisory.release()
        if self._fd is not None:
            fd, self._fd = self._fd, None
            self._unlock(fd)
        log.info("runlock.released", kind=self.kind, command=self.command)

    def holder(self) -> LockHolder | None:
        """The current holder's details, or None when the lock is free (or not a file)."""
        if self.path is None or not self.path.exists():
            return None
        if self._held:
            return read_holder(self.path)
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return read_holder(self.path)
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def store_lock(
    store_url: str,
    command: str,
    *,
    kind: LockKind = "work",
    wait: bool = False,
    timeout: float | None = None,
    environ: Mapping[str, str] | None = None,
) -> RunLock:
    """The lock of ``kind`` for the store at ``store_url``, to be held by ``command``.

    For PostgreSQL the work lock also takes the advisory lock in the database (see the module
    docs); the daemon lock stays a file lock, because a connection held open for months can be
    cut by the server without the daemon noticing.
    """
    path = lock_path(store_url, kind, environ)
    advisory = None
    if kind == "work" and parse_url(store_url).get_backend_name() == "postgresql":
        advisory = PgAdvisoryLock(store_url, kind)
    return RunLock(path, command, wait=wait, timeout=timeout, kind=kind, advisory=advisory)


__all__ = [
    "LockHolder",
    "LockKind",
    "PgAdvisoryLock",
    "RunLock",
    "lock_path",
    "read_holder",
    "runtime_dir",
    "store_lock",
]
