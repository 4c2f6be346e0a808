"""Parts every vendor adapter shares: the HTTP client with retry, and the adapter contract.

Failure classification lives in one method (``ApiClient.classify``), which each vendor extends
for its own quirks (iSAMS deadlock bodies, HTML maintenance pages served with status 200...).
Sync state (bookmarks, trailing windows) belongs to ``registerwatch.sync``; adapters only read
the window they are given.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import urlsplit

import requests
import structlog

from registerwatch.codes import is_known_code
from registerwatch.errors import FatalApiError, InvalidRecord, RetriableApiError
from registerwatch.retry import RetryPolicy, backoff_delay, parse_retry_after
from registerwatch.schema import Amendment, Calendar, Mark, Pupil, Register

log = structlog.get_logger("registerwatch.adapters")

T = TypeVar("T")

DEFAULT_TIMEOUT = (5.0, 30.0)  # connect, read (seconds): every request has one


@dataclass(frozen=True)
class Quarantined:
    """A record that would not map: where it came from, which field, and why."""

    resource: str
    record_ref: str
    field: str | None
    reason: str
    raw: str = ""

    @classmethod
    def from_error(cls, error: InvalidRecord, raw: str = "") -> Quarantined:
        return cls(resource=error.resource or "", record_ref=error.record_ref or "",
                   field=error.field, reason=error.reason, raw=raw)


@dataclass
class Batch(Generic[T]):
    """What one fetch produced: mapped records, and the ones set aside with their reasons."""

    records: list[T] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    requests: int = 0

    def extend(self, other: Batch[T]) -> None:
        self.records.extend(other.records)
        self.quarantined.extend(other.quarantined)
        self.requests += other.requests


class ApiClient:
    """One client per vendor: base URL, auth, timeouts, retries and failure classification."""

    vendor = "mis"

    def __init__(self, base_url: str, *, school_id: str, credential_hint: str,
                 timeout: tuple[float, float] = DEFAULT_TIMEOUT,
                 retry: RetryPolicy | None = None,
                 session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.school_id = school_id
        self.credential_hint = credential_hint
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.http = session or requests.Session()
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.request_count = 0

    # -- hooks for vendors ------------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        return {}

    def on_unauthorised(self) -> bool:
        """Called on a 401; return True when fresh credentials were obtained (retry once)."""
        return False

    def classify(self, response: requests.Response) -> None:
        """Raise RetriableApiError or FatalApiError for a failed response; return if usable."""
        status = response.status_code
        where = f"school {self.school_id!r}: {self.vendor} {response.request.method} " \
                f"{_path_of(response.url)}"
        if status == 429:
            raise RetriableApiError(f"{where} was rate limited (429)",
                                    retry_after=parse_retry_after(response.headers.get("Retry-After")))
        if 500 <= status <= 599:
            raise RetriableApiError(f"{where} failed with {status}",
                                    retry_after=parse_retry_after(response.headers.get("Retry-After")))
        if status in (401, 403):
            raise FatalApiError(f"{where}: MIS returned {status} — check {self.credential_hint}")
        if 400 <= status <= 499:
            raise FatalApiError(f"{where}: MIS returned {status} ({_snippet(response)}) — "
                                "this request will not succeed on retry; check the base_url "
                                "and the API permissions for this school")
        content_type = response.headers.get("Content-Type", "")
        if "html" in content_type.lower() or response.text.lstrip()[:15].lower().startswith(
                ("<!doctype html", "<html")):
            raise RetriableApiError(f"{where} returned an HTML page instead of data "
                                    "(MIS maintenance?)")

    # -- the request loop -------------------------------------------------------------------

    def request(self, method: str, path: str, *,
                parse: Callable[[requests.Response], Any] | None = None,
                **kwargs: Any) -> Any:
        """Send with retries; return the response, or ``parse(response)`` when given.

        ``parse`` runs inside the retry loop, so a garbled body (a ValueError from the parser,
        e.g. truncated JSON from an overloaded MIS) is retried like a 5xx.
        """
        url = path if path.startswith("http") else f"{self.base_url}/{path.lstrip('/')}"
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            headers = {**kwargs.pop("headers", {}), **self.auth_headers()}
            try:
                self.request_count += 1
                response = self.http.request(method, url, headers=headers, timeout=self.timeout,
                                             **kwargs)
                if response.status_code == 401 and not refreshed and self.on_unauthorised():
                    refreshed = True
                    attempt -= 1
                    continue
                self.classify(response)
                if parse is None:
                    return response
                try:
                    return parse(response)
                except ValueError as exc:
                    raise RetriableApiError(
                        f"school {self.school_id!r}: {self.vendor} {method} "
                        f"{_path_of(response.url)} returned a malformed body "
                        f"({_snippet(response)})") from exc
            except (requests.Timeout, requests.ConnectionError) as exc:
                # A ConnectTimeout is both; either way the server was never reached in time.
                what = ("did not answer in time" if isinstance(exc, requests.Timeout)
                        else f"could not be reached at {self.base_url} (check base_url and "
                             "the network)")
                error: RetriableApiError = RetriableApiError(
                    f"school {self.school_id!r}: {self.vendor} {method} {_path_of(url)} "
                    f"{what} ({type(exc).__name__})")
            except RetriableApiError as exc:
                error = exc
            if attempt >= self.retry.max_attempts:
                raise RetriableApiError(
                    f"{error} — gave up after {attempt} attempts; the next run will retry",
                    retry_after=error.retry_after)
            delay = self._backoff(attempt, error.retry_after)
            log.warning("adapter.request_retried", vendor=self.vendor, school=self.school_id,
                        path=_path_of(url), attempt=attempt, delay=round(delay, 2),
                        reason=str(error))
            self.sleep(delay)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        delay = backoff_delay(self.retry, attempt, retry_after, self.rng)
        if delay is None:
            raise RetriableApiError(
                f"school {self.school_id!r}: {self.vendor} asked to wait {retry_after:.0f}s "
                "(Retry-After), longer than registerwatch waits; the next run will retry",
                retry_after=retry_after)
        return delay

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params, parse=lambda r: r.json())


def _path_of(url: str) -> str:
    return urlsplit(url).path


def _snippet(response: requests.Response) -> str:
    """What came back, without quoting it: a body can hold pupil data or a token, and these
    messages reach logs."""
    content_type = response.headers.get("Content-Type", "no content type").split(";")[0]
    return f"{len(response.content)} bytes of {content_type}"


# -- mapping helpers --------------------------------------------------------------------------


def normalise_code(vendor_code: str | None, aliases: Mapping[str, str], *, resource: str,
                   record_ref: str, field: str = "code") -> str:
    """A vendor code or alias as a national code; InvalidRecord when it is neither."""
    if vendor_code is None or str(vendor_code).strip() == "":
        raise InvalidRecord("attendance code is missing", resource=resource,
                            record_ref=record_ref, field=field)
    raw = str(vendor_code).strip()
    # An alias as written wins. National single-letter codes are case-sensitive (a CTF marks
    # string is, and a lower-case letter is more likely a vendor's private code than a typo);
    # only the two-character codes are read in any case, since "c1" cannot mean anything else.
    code = aliases.get(raw) or aliases.get(raw.upper()) or (
        raw.upper() if raw.upper() in {"C1", "C2", "J1", *(f"Y{i}" for i in range(1, 8))}
        else raw)
    if not is_known_code(code):
        raise InvalidRecord(f"unknown attendance code {raw!r}", resource=resource,
                            record_ref=record_ref, field=field)
    return code


def parse_date(value: Any, *, resource: str, record_ref: str, field: str) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except (TypeError, ValueError):
        # A date of birth is personal data: quarantine reasons reach logs and reports, so
        # say what is wrong without quoting it.
        shown = "the value" if _is_personal_date(field) else repr(value)
        raise InvalidRecord(f"{shown} is not a valid date", resource=resource,
                            record_ref=record_ref, field=field) from None


_PERSONAL_DATE_FIELDS = {"dob", "dateofbirth", "date_of_birth", "birthdate", "birth_date"}


def _is_personal_date(field: str) -> bool:
    return field.lower().replace("-", "_") in _PERSONAL_DATE_FIELDS or \
        field.lower().replace("_", "") in _PERSONAL_DATE_FIELDS


def parse_instant(value: Any, *, resource: str, record_ref: str, field: str,
                  default_tz: Any = None) -> datetime | None:
    """An ISO 8601 instant; naive values are taken in ``default_tz`` (the MIS's local time)."""
    if value in (None, ""):
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRecord(f"{value!r} is not a valid date-time", resource=resource,
                            record_ref=record_ref, field=field) from None
    if parsed.tzinfo is None:
        if default_tz is None:
            from registerwatch.calendar import LONDON
            default_tz = LONDON
        parsed = parsed.replace(tzinfo=default_tz)
    return parsed


def require(record: Mapping[str, Any], key: str, *, resource: str, record_ref: str) -> Any:
    if key not in record or record[key] is None:
        raise InvalidRecord(f"required field {key!r} is missing", resource=resource,
                            record_ref=record_ref, field=key)
    return record[key]


def dedupe_marks(marks: Iterable[Mark]) -> list[Mark]:
    """One mark per (pupil, date, session).

    The rule, explicit because MIS feeds (iSAMS especially) repeat rows: the mark recorded
    latest wins; marks with no ``recorded_at`` lose to any that have one; among equals the one
    that came last in the feed wins (feeds list in the order they were written).
    """
    chosen: dict[tuple[str, date, str], Mark] = {}
    for mark in marks:
        key = (mark.pupil_id, mark.date, mark.session.value)
        current = chosen.get(key)
        if current is None or _later_or_equal(mark, current):
            chosen[key] = mark
    return list(chosen.values())


def _later_or_equal(candidate: Mark, current: Mark) -> bool:
    if candidate.recorded_at is None:
        return current.recorded_at is None
    if current.recorded_at is None:
        return True
    return candidate.recorded_at >= current.recorded_at


# -- the adapter contract ---------------------------------------------------------------------


class Adapter(Protocol):
    """What sync asks of every vendor adapter."""

    vendor: str
    school_id: str
    # The MIS exposes amendment records (reason, amender): AMD002 can be checked for it.
    exposes_amendments: bool
    # The MIS exposes register events (opened / completed): REG002 and REG003 need them.
    exposes_registers: bool
    # Pupils carry the has-a-social-worker flag: ATT005 needs it.
    exposes_social_worker: bool

    def pupils(self) -> Batch[Pupil]: ...

    def registers(self, start: date, end: date) -> Batch[Register]: ...

    def marks(self, start: date, end: date) -> Batch[Mark]: ...

    def amendments(self, start: date, end: date) -> Batch[Amendment]: ...

    def calendar(self) -> Calendar | None: ...

    def close(self) -> None: ...
