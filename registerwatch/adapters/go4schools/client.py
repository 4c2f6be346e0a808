"""GO 4 Schools-style client: Bearer key, the vendor's error envelope, strict cursor paging.

Vendor facts (OBSERVED in public client code and vendor pages unless marked):
- base ``https://api.go4schools.com/customer/v1``; ``Authorization: Bearer {key}``, one key per
  school; the academic year in the path is the year it *ends* (2025/26 -> ``2026``).
- paging: ``{"<collection>": [...], "has_more": true, "cursor": 123}``; the next request repeats
  the URL with ``?cursor=123``; the cursor is the last id returned, so it only ever grows.
- the collection key's casing is unconfirmed, so records are read from the first list-valued
  key, whatever it is called (as the g4sr client does).
- errors: 400 with messages such as "Invalid Cursor" / "Invalid date.", 401 "Unauthorised. Your
  API key is not valid for this request", 403 "Forbidden. Your data officer has disabled this
  module or embargoed it", 404, 429 "Too many requests", 500. The error *body* is NOT FOUND:
  ``{"error": "..."}`` is INFERRED, and ``message``/``errors`` are read too.
- no rate-limit numbers or Retry-After are published: 429 and 5xx retry with backoff and honour
  Retry-After when sent (``ApiClient``).
"""

from __future__ import annotations

import queue
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date
from itertools import islice
from typing import Any
from urllib.parse import urlsplit

import requests

from registerwatch.adapters.base import (
    DEFAULT_TIMEOUT,
    MAX_PAGES,
    ApiClient,
    Capabilities,
    RetryPolicy,
    VendorFacts,
)
from registerwatch.adapters.base import CursorPaginator as BaseCursorPaginator
from registerwatch.calendar import school_year_of
from registerwatch.errors import FatalApiError, PagingError, RetriableApiError

API_ROOT = "/customer/v1"
DEFAULT_BASE_URL = "https://api.go4schools.com" + API_ROOT

# Everything vendor-wide, declared once (see registerwatch.adapters.base.contract).
FACTS = VendorFacts(
    vendor="go4schools",
    credentials=(("api_key",),),  # a bearer key
    adapter="registerwatch.adapters.go4schools:Go4SchoolsAdapter",
    auth=("bearer-key",),
    paging="cursor",
    capabilities=Capabilities(
        registers=False,  # no register-taking events (NOT FOUND in any public GO 4 Schools API)
        amendments=None,  # the amendment history resource is INFERRED: probed per school
        social_worker=True,  # the student attribute CSW
        calendar=True,  # school days and closures
    ),
    # Vendor single-character encodings of the 2024 two-character codes. SECONDARY for MIS in
    # general (One/Capita: C1 -> "<", C2 -> ">", J1 -> "?"); INFERRED for GO 4 Schools. The one
    # table to change when a school's export shows otherwise.
    code_aliases={"<": "C1", ">": "C2", "?": "J1"},
    credential_hint="the GO 4 Schools API key",
)


class ResourceNotFoundError(FatalApiError):
    """The MIS answered 404: the resource does not exist here (or the base_url is wrong)."""


_YEAR_FORMS = (
    re.compile(r"^(?P<end>\d{4})$"),  # 2026 (the vendor's own form)
    re.compile(r"^(?P<start>\d{4})\s*[-/]\s*(?P<end>\d{4})$"),  # 2025-2026, 2025/2026
    re.compile(r"^(?P<start>\d{4})\s*[-/]\s*(?P<end2>\d{2})$"),  # 2025-26, 2025/26
)


def normalise_academic_year(value: str | int) -> str:
    """The vendor's academic-year path segment (the ending year) from the forms people write.

    ``2026``, ``"2026"``, ``"2025-2026"``, ``"2025/26"`` all give ``"2026"``. ValueError for
    anything else, or a range that is not one year long.
    """
    text = str(value).strip()
    for pattern in _YEAR_FORMS:
        match = pattern.match(text)
        if match is None:
            continue
        groups = match.groupdict()
        if groups.get("end2") is not None:
            start = int(groups["start"])
            end = start // 100 * 100 + int(groups["end2"])
            if end <= start:  # 1999/00: the century turned
                end += 100
        else:
            end = int(groups["end"])
            start = int(groups["start"]) if groups.get("start") else end - 1
        if end != start + 1:
            raise ValueError(f"academic year {value!r} does not span one year")
        return str(end)
    raise ValueError(f"academic year {value!r} is not like 2026, 2025-2026 or 2025/26")


def academic_year_of(day: date) -> str:
    """The academic year a date belongs to, as the path segment (2025-09-08 -> "2026")."""
    return str(school_year_of(day) + 1)


def records_of(payload: Any, where: str) -> list[Any]:
    """The records of one page: the first list-valued key (casing unconfirmed), or a bare list."""
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        for value in payload.values():
            if isinstance(value, list):
                return value
    raise FatalApiError(
        f"{where} answered without a list of records "
        f"({type(payload).__name__}); the API shape has changed — "
        "report it to the registerwatch maintainers"
    )


class CursorPaginator(BaseCursorPaginator):
    """The shared strict cursor paginator, reading records from the first list-valued key."""

    def __init__(self, max_pages: int = MAX_PAGES) -> None:
        super().__init__(max_pages=max_pages)

    def pages(
        self,
        fetch: Callable[[int | None], Any],
        *,
        what: str,
        identity: Callable[[Any], str | None] | None = None,
    ) -> Iterator[list[Any]]:
        self.records_of = lambda payload: records_of(payload, what)
        return super().pages(fetch, what=what, identity=identity)


def vendor_message(response: requests.Response) -> str | None:
    """The message in the vendor's error body, if there is one (body shape INFERRED)."""
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict):
        for key in ("error", "message", "Message", "error_description"):
            if isinstance(body.get(key), str) and body[key].strip():
                return " ".join(body[key].split())[:200]
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], str):
            return " ".join(errors[0].split())[:200]
    return None


class Go4SchoolsClient(ApiClient):
    """Everything vendor-wide for GO 4 Schools: base URL, Bearer key, failure classes, paging."""

    vendor = "go4schools"

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        school_id: str,
        api_key: str,
        credential_hint: str = FACTS.credential_hint,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        paginator: CursorPaginator | None = None,
        max_records_per_page: int | None = None,
    ) -> None:
        root = base_url.rstrip("/")
        # Accept the host alone or the documented ".../customer/v1" base.
        if not root.endswith(API_ROOT):
            root += API_ROOT
        super().__init__(
            root,
            school_id=school_id,
            credential_hint=credential_hint,
            timeout=timeout,
            retry=retry,
            session=session,
            sleep=sleep,
            rng=rng,
            max_records_per_page=max_records_per_page,
        )
        self._api_key = api_key
        self.paginator = paginator or CursorPaginator()
        self.paginator.max_records = self.max_records_per_page
        self._parsed: tuple[requests.Response, Any] | None = None

    def __repr__(self) -> str:  # never show the key
        return f"Go4SchoolsClient(base_url={self.base_url!r}, school_id={self.school_id!r})"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"}

    def classify(self, response: requests.Response) -> None:
        status = response.status_code
        where = self._where(response)
        if 400 <= status <= 499 and status != 429:
            message = vendor_message(response)
            said = f" ({message})" if message else ""
            if status == 400 and message and "cursor" in message.lower():
                raise PagingError(
                    f"{where}: GO 4 Schools rejected the paging cursor{said}; "
                    "the sync stopped rather than skip records"
                )
            if status == 401:
                raise FatalApiError(
                    f"{where}: MIS returned 401{said} — check {self.credential_hint}"
                )
            if status == 403:
                raise FatalApiError(
                    f"{where}: MIS returned 403{said} — the school's GO 4 Schools data officer "
                    "has disabled or embargoed this module for the API key; ask them to "
                    f"enable it, and check {self.credential_hint}"
                )
            if status == 404:
                raise ResourceNotFoundError(
                    f"{where}: MIS returned 404{said} — check the base_url (expected "
                    f"something like {DEFAULT_BASE_URL})"
                )
            raise FatalApiError(
                f"{where}: MIS returned {status}{said} — this request will "
                "not succeed on retry; check the base_url and academic_year"
            )
        super().classify(response)  # 429, 5xx, HTML maintenance pages served with 200
        try:
            payload = response.json()
        except ValueError:
            # A truncated or garbled body is a transient fault: classify it here so the request
            # loop retries it (a parse error after the loop would not be retried).
            raise RetriableApiError(f"{where} returned malformed JSON") from None
        self._parsed = (response, payload)

    def get_json(self, path: str, params: Any = None) -> Any:
        response = self.request("GET", path, params=params)
        if self._parsed is not None and self._parsed[0] is response:
            payload = self._parsed[1]
            self._parsed = None
            return payload
        return response.json()  # pragma: no cover - classify parsed it already

    def _where(self, response: requests.Response) -> str:
        method = response.request.method if response.request is not None else "GET"
        return f"school {self.school_id!r}: {self.vendor} {method} {urlsplit(response.url).path}"

    # -- paths and collections -----------------------------------------------------------------

    @staticmethod
    def year_path(year: str, resource: str) -> str:
        return f"academic-years/{year}/{resource.lstrip('/')}"

    def collect(self, path: str) -> list[Any]:
        """Every record of a paged collection, following the cursor strictly."""
        where = (
            f"school {self.school_id!r}: {self.vendor} GET {urlsplit(self.base_url).path}/{path}"
        )

        def fetch(cursor: int | None) -> Any:
            return self.get_json(path, params={"cursor": cursor} if cursor is not None else None)

        records: list[Any] = []
        for page in self.paginator.pages(fetch, what=where):
            records.extend(page)
        return records

    def school_details(self) -> dict[str, Any] | None:
        """``GET /school``: name, ``academic_years`` and ``current_academic_year``; None if absent.

        The ArchwayTrust client declares the ``school`` key as a list and falls back to a single
        object, so both are accepted.
        """
        try:
            payload = self.get_json("school")
        except ResourceNotFoundError:
            return None
        school = payload.get("school") if isinstance(payload, dict) else None
        if isinstance(school, list):
            school = school[0] if school else None
        return school if isinstance(school, dict) else None


class DayReader:
    """Collections at independent paths (one per date: the API asks one request per date, each
    with its own cursor walk), fetched up to ``workers`` at a time and handed back in order.

    A first sync asks for every school day of the year so far, one after another: the wait for
    each answer (the MIS's work and the round trip) then adds up, while the answers themselves
    need nothing from each other. Each worker thread takes a client of its own (its own
    connection, paginator and request count; a client is never shared between threads), made
    by ``make_client`` up to ``workers`` of them and reused. ``workers`` 1: the main client, in
    order, one at a time. A failed date raises in the caller when its turn comes, as it would
    one at a time; the dates still queued are then not asked.
    """

    def __init__(
        self, main: Go4SchoolsClient, make_client: Callable[[], Go4SchoolsClient], workers: int
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        self.main = main
        self.workers = workers
        self._make_client = make_client
        self._clients: list[Go4SchoolsClient] = []  # every worker client made (for counts)
        self._idle: queue.SimpleQueue[Go4SchoolsClient] = queue.SimpleQueue()
        self._lock = threading.Lock()

    @property
    def request_count(self) -> int:
        """Requests sent by the main client and every worker client (read between calls)."""
        return self.main.request_count + sum(c.request_count for c in self._clients)

    def collect_each(self, paths: Sequence[str]) -> Generator[list[Any], None, None]:
        """Every record of each path's collection, path by path in the order given."""
        if self.workers == 1 or len(paths) <= 1:
            for path in paths:
                yield self.main.collect(path)
            return
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="registerwatch-g4s")
        queued = iter(paths)
        # A few dates ahead of the one being mapped, not the whole year at once.
        pending: deque[Future[list[Any]]] = deque(
            pool.submit(self._collect, path) for path in islice(queued, 2 * self.workers)
        )
        try:
            while pending:
                rows = pending.popleft().result()
                pending.extend(pool.submit(self._collect, path) for path in islice(queued, 1))
                yield rows
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        for client in self._clients:
            client.http.close()

    def _collect(self, path: str) -> list[Any]:
        try:
            client = self._idle.get_nowait()
        except queue.Empty:
            with self._lock:
                client = self._make_client()
                self._clients.append(client)
        try:
            return client.collect(path)
        finally:
            self._idle.put(client)
