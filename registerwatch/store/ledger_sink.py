"""The tip sink: each run's ledger tip written somewhere the store's owner cannot rewrite.

``runs.ledger_tip`` keeps each run's tip inside the store, where whoever rewrites the ledger
can rewrite it too. A sink keeps a copy outside: an append-only file in another folder (opened
``O_APPEND``, created 0600; make it append-only for real with ``chattr +a`` or put it on another
machine's share) or an HTTP endpoint (an audit log service: each tip is POSTed as JSON, and a
GET on the same URL returns every tip posted, as a JSON array or one JSON object per line).

``registerwatch ledger verify --against-sink`` reads the sink back and holds every tip in it
against the chain.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import requests

from registerwatch import __version__, netguard
from registerwatch.errors import StoreError

MAX_SINK_ANSWER_BYTES = 64 * 1024 * 1024


class TipSinkError(StoreError):
    """The tip sink could not be written or read: check ``[ledger.sink]`` and the sink itself."""


@dataclass(frozen=True)
class SinkTip:
    """One tip as the sink keeps it. ``where`` names it when read back (line or item number)."""

    seq: int
    hash: str
    run_id: int | None = None
    command: str | None = None
    at: str | None = None
    store: str | None = None
    where: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "hash": self.hash,
            "run": self.run_id,
            "command": self.command,
            "at": self.at,
            "store": self.store,
        }

    @property
    def text(self) -> str:
        return f"{self.seq}:{self.hash}"


def parse_tip(value: Any, where: str) -> SinkTip:
    """A tip from the sink's JSON, or TipSinkError naming where it is."""
    if not isinstance(value, dict):
        raise TipSinkError(f"tip sink {where}: not a JSON object")
    seq, digest = value.get("seq"), value.get("hash")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise TipSinkError(f"tip sink {where}: 'seq' is not a positive whole number")
    if not isinstance(digest, str) or not digest:
        raise TipSinkError(f"tip sink {where}: 'hash' is missing")
    run = value.get("run")
    return SinkTip(
        seq=seq,
        hash=digest,
        run_id=run if isinstance(run, int) and not isinstance(run, bool) else None,
        command=value.get("command") if isinstance(value.get("command"), str) else None,
        at=value.get("at") if isinstance(value.get("at"), str) else None,
        store=value.get("store") if isinstance(value.get("store"), str) else None,
        where=where,
    )


class TipSink(Protocol):
    description: str

    def append(self, tip: SinkTip) -> None: ...

    def read(self) -> list[SinkTip]: ...


class FileTipSink:
    """One JSON object per line, appended with ``O_APPEND`` (never rewritten), mode 0600."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"tip sink file {path}"

    def append(self, tip: SinkTip) -> None:
        line = (json.dumps(tip.to_dict(), sort_keys=True) + "\n").encode("utf-8")
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise TipSinkError(f"cannot open {self.description}: {exc.strerror}") from None
        try:
            if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
                os.fchmod(fd, 0o600)  # tips are no secret, but the file names the store
            os.write(fd, line)  # one write: O_APPEND puts the whole line at the end
            os.fsync(fd)
        except OSError as exc:
            raise TipSinkError(f"cannot append to {self.description}: {exc.strerror}") from None
        finally:
            os.close(fd)

    def read(self) -> list[SinkTip]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise TipSinkError(
                f"{self.description} does not exist: no run has written a tip yet"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise TipSinkError(f"cannot read {self.description}: {exc}") from None
        tips = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError:
                raise TipSinkError(f"{self.description} line {number}: not JSON") from None
            tips.append(parse_tip(value, f"line {number}"))
        return tips


class HttpTipSink:
    """POST each tip as JSON; GET the same URL for every tip posted."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        limits: netguard.NetLimits | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.url = url
        self._token = token
        self.limits = limits or netguard.NetLimits(
            connect=5.0, read=15.0, total=30.0, max_bytes=MAX_SINK_ANSWER_BYTES
        )
        self.http = session or requests.Session()
        self._tracker = netguard.guard_session(self.http)
        self.description = f"tip sink {url.split('?')[0]}"

    def _headers(self) -> dict[str, str]:
        headers = {"User-Agent": f"registerwatch/{__version__}", "Accept": "application/json"}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def _request(self, method: str, **kwargs: Any) -> requests.Response:
        try:
            with netguard.guarded(self._tracker, self.limits.total) as watch:
                response = self.http.request(
                    method,
                    self.url,
                    headers=self._headers(),
                    timeout=(self.limits.connect, self.limits.read),
                    allow_redirects=False,
                    stream=True,
                    **kwargs,
                )
                netguard.read_body(response, watch, self.limits.max_bytes)
        except netguard.DeadlineExceeded:
            raise TipSinkError(
                f"{self.description} did not answer within {self.limits.total:.0f}s"
            ) from None
        except netguard.Cancelled:
            raise TipSinkError(f"stopped while waiting for {self.description}") from None
        except netguard.BodyTooLarge:
            raise TipSinkError(f"{self.description} answered with too much data") from None
        except requests.RequestException as exc:
            raise TipSinkError(f"cannot reach {self.description}: {type(exc).__name__}") from None
        if not 200 <= response.status_code <= 299:
            raise TipSinkError(
                f"{self.description} answered {method} with {response.status_code} "
                f"{response.reason or ''}".rstrip()
            )
        return response

    def append(self, tip: SinkTip) -> None:
        self._request("POST", json=tip.to_dict())

    def read(self) -> list[SinkTip]:
        text = self._request("GET").text
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, list):
            return [parse_tip(item, f"item {n}") for n, item in enumerate(value, start=1)]
        tips = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                tips.append(parse_tip(json.loads(line), f"line {number}"))
            except ValueError:
                raise TipSinkError(f"{self.description} line {number}: not JSON") from None
        return tips

    def close(self) -> None:
        self.http.close()
