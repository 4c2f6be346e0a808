"""The Arbor-style REST v2 client: Basic auth, error envelopes, page-number paging, href stubs.

Transport facts are OBSERVED in Arbor's PHP SDK unless marked INFERRED:
``/rest-v2/`` paths, HTTP Basic with per-application credentials, ``{"<lcfirst plural>": [...]}``
lists with no total and no next link (``page-number`` / ``page-size``; a short page ends the
list), ``{"entityType", "href"}`` stubs for related objects, and the error envelope
``{"response": {"code", "reason", "errors": [{"exception", "message"}]}}`` whose ``code`` the
SDK trusts over the HTTP status.
"""

from __future__ import annotations

import base64
import functools
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests

from registerwatch.adapters.base import (
    DEFAULT_TIMEOUT,
    MAX_PAGES,
    ApiClient,
    Capabilities,
    PageNumberPaginator,
    RetryPolicy,
    VendorFacts,
    parse_retry_after,
)
from registerwatch.errors import FatalApiError, RetriableApiError

T = TypeVar("T")

API_ROOT = "rest-v2"
DEFAULT_PAGE_SIZE = 200
# INFERRED: Arbor clamps a larger page-size. A clamped page would look short
# and end the list early, silently, so the client never asks for more than this.
MAX_PAGE_SIZE = 1000

# Everything vendor-wide, declared once (see registerwatch.adapters.base.contract).
FACTS = VendorFacts(
    vendor="arbor",
    credentials=(("username", "password"),),  # HTTP Basic
    adapter="registerwatch.adapters.arbor:ArborAdapter",
    auth=("basic",),
    paging="page-number",
    capabilities=Capabilities(
        registers=True,  # register-taking events with saved times
        amendments=None,  # attendance-record-amendments is INFERRED: probed per school
        social_worker=False,  # Arbor-style REST exposes no social-worker flag
        calendar=True,  # terms
    ),
    # INFERRED: Arbor-style single-character encodings of the 2024 two-character codes (the
    # simulator's ATTENDANCE_MARKS uses them). Change it here when a real Arbor code table is
    # captured. Every other Arbor code is taken to be the national code itself.
    code_aliases={"1": "C1", "2": "C2", "3": "J1"},
    credential_hint="the Arbor username/password",
)


class ArborNotFoundError(FatalApiError):
    """Arbor answered 404: the resource is not there (or not enabled for this application)."""


# Where json_of keeps a response's parsed body on the response itself.
_PARSED_BODY = "_registerwatch_json"


def json_of(response: requests.Response) -> Any:
    """The response's JSON, decoded once: ``classify`` reads every body for Arbor's error
    envelope (the SDK trusts its code over the HTTP status, so a 200 may carry one) and the
    caller then reads the same body for its data. A body that is not JSON raises ValueError
    each time it is asked for."""
    cache = vars(response)
    if _PARSED_BODY not in cache:
        cache[_PARSED_BODY] = response.json()
    return cache[_PARSED_BODY]


@dataclass(frozen=True)
class ErrorEnvelope:
    """Arbor's error body: ``{"response": {"code", "reason", "errors": [...]}}``."""

    code: int
    reason: str
    exception: str | None = None
    message: str | None = None

    @classmethod
    def of(cls, response: requests.Response) -> ErrorEnvelope | None:
        try:
            body = json_of(response)
        except ValueError:
            return None
        envelope = body.get("response") if isinstance(body, dict) else None
        if not isinstance(envelope, dict) or not isinstance(envelope.get("code"), int):
            return None
        errors = envelope.get("errors")
        first = (
            errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
        )
        return cls(
            code=envelope["code"],
            reason=str(envelope.get("reason") or ""),
            exception=first.get("exception"),
            message=first.get("message"),
        )

    def describe(self) -> str:
        detail = ": ".join(p for p in (self.exception, self.message) if p)
        return f"{self.reason}; {detail}" if detail else self.reason


# Every attendance record names its student, register, register type and mark by href, and
# the same few thousand hrefs repeat across a pull: parse each once (bounded for a long-lived
# worker; the cache holds only ids, never personal data).
@functools.lru_cache(maxsize=1 << 16)
def resource_path(href: str) -> str:
    """``/rest-v2/students/123`` (or an absolute URL) -> ``students/123``."""
    path = urlsplit(href).path if "://" in href else href
    marker = f"/{API_ROOT}/"
    if marker in f"/{path.lstrip('/')}":
        path = f"/{path.lstrip('/')}".split(marker, 1)[1]
    return path.strip("/")


def href_id(href: str) -> str:
    """The id in an href: its last segment (``ModelBase::getResourceId`` takes the 3rd)."""
    return resource_path(href).rsplit("/", 1)[-1]


def list_key(path: str) -> str:
    """The root key of a list response: ``attendance-records`` -> ``attendanceRecords``."""
    first, *rest = path.split("-")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def _item_href(item: Any) -> str | None:
    # type() first: every item of every page comes here, and an ABC's isinstance is slow
    if (type(item) is dict or isinstance(item, Mapping)) and isinstance(item.get("href"), str):
        return resource_path(item["href"])
    return None


class ArborPaginator(PageNumberPaginator):
    """``page-number`` from 1 with a fixed ``page-size``; a short page ends the list.

    Items are told apart by their href, which turns on the shared consistency checks: a page
    repeating the previous one (the server ignores ``page-number``; the SDK once sent
    ``page``, issue #21) is a ``PagingError``, and an item coming back on a later page is a
    ``ListingChangedError`` (the adapter reads the listing again).
    """

    def __init__(
        self,
        page_size: int = DEFAULT_PAGE_SIZE,
        max_pages: int = MAX_PAGES,
        identity: Callable[[Any], str | None] = _item_href,
    ) -> None:
        super().__init__(page_size, max_page_size=MAX_PAGE_SIZE, max_pages=max_pages)
        self.identity = identity

    def pages(
        self,
        fetch: Callable[[int], Any],
        *,
        what: str,
        identity: Callable[[Any], str | None] | None = None,
    ) -> Iterator[list[Any]]:
        return super().pages(fetch, what=what, identity=identity or self.identity)


class ArborClient(ApiClient):
    """Everything Arbor-wide: auth, failure classification, paging, stub resolution."""

    vendor = "arbor"

    def __init__(
        self,
        base_url: str,
        *,
        school_id: str,
        username: str,
        password: str,
        credential_hint: str = FACTS.credential_hint,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        max_pages: int = MAX_PAGES,
        max_records_per_page: int | None = None,
    ) -> None:
        if API_ROOT not in urlsplit(base_url).path.split("/"):
            # "https://school.uk.arbor.sc" alone: every Arbor REST path lives under /rest-v2.
            base_url = f"{base_url.rstrip('/')}/{API_ROOT}"
        super().__init__(
            base_url,
            school_id=school_id,
            credential_hint=credential_hint,
            timeout=timeout,
            retry=retry,
            session=session,
            sleep=sleep,
            rng=rng,
            max_records_per_page=max_records_per_page,
        )
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._authorization = f"Basic {token}"
        self.paginator = ArborPaginator(page_size, max_pages)
        self.paginator.max_records = self.max_records_per_page
        self._objects: dict[str, dict[str, Any]] = {}  # resolved stubs, by resource path
        self._missing: dict[str, ArborNotFoundError] = {}  # stubs Arbor said do not exist

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": self._authorization, "Accept": "application/json"}

    # -- failures -----------------------------------------------------------------------------

    def classify(self, response: requests.Response) -> None:
        envelope = ErrorEnvelope.of(response)
        status = response.status_code
        if envelope is not None and envelope.code >= 400 and status < 400:
            status = envelope.code  # the SDK trusts the body's code over the HTTP status
        if status < 400:
            super().classify(response)  # HTML maintenance pages served with 200
            return
        where = (
            f"school {self.school_id!r}: arbor {response.request.method} "
            f"{urlsplit(response.url).path}"
        )
        detail = envelope.describe() if envelope else _snippet(response)
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if status == 429:
            raise RetriableApiError(f"{where} was rate limited (429)", retry_after=retry_after)
        if status >= 500:
            raise RetriableApiError(
                f"{where} failed with {status} ({detail})", retry_after=retry_after
            )
        if status in (401, 403):
            raise FatalApiError(
                f"{where}: Arbor returned {status} ({detail}) — check "
                f"{self.credential_hint}, and that the API application may "
                "read this resource"
            )
        if status == 404:
            raise ArborNotFoundError(
                f"{where}: Arbor returned 404 ({detail}) — check base_url "
                "(it ends in /rest-v2) and that this resource is enabled "
                "for the API application"
            )
        raise FatalApiError(
            f"{where}: Arbor returned {status} ({detail}) — this request will not succeed on retry"
        )

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params, parse=json_of)

    # -- lists --------------------------------------------------------------------------------

    def list_page(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        page: int = 1,
        page_size: int | None = None,
    ) -> list[Any]:
        """One page of a list resource (``page`` counts from 1)."""
        query = {
            **(params or {}),
            "page-number": page,
            "page-size": page_size or self.paginator.page_size,
        }
        body = self.get_json(path, query)
        return _list_from(body, list_key(path), f"school {self.school_id!r}: arbor {path}")

    def paginate(
        self, path: str, params: Mapping[str, Any] | None = None, *, keep: bool = False
    ) -> Iterator[Any]:
        """Every item of a list resource; ``keep`` caches each object for ``resolve``."""
        for page in self.paginator.pages(
            lambda n: self.list_page(path, params, page=n),
            what=f"school {self.school_id!r}: arbor {path}",
        ):
            for item in page:
                if keep and (key := _item_href(item)) is not None:
                    self._objects[key] = item
                yield item

    def changelog(self, path: str, from_revision: int) -> Iterator[dict[str, Any]]:
        """``{path}/changelog`` entries after ``from_revision`` (INFERRED: paged like lists)."""
        paginator = ArborPaginator(
            self.paginator.page_size, self.paginator.max_pages, identity=_change_identity
        )
        paginator.max_records = self.max_records_per_page
        where = f"school {self.school_id!r}: arbor {path}/changelog"

        def fetch(number: int) -> list[Any]:
            body = self.get_json(
                f"{path}/changelog",
                {
                    "from-revision": from_revision,
                    "page-number": number,
                    "page-size": paginator.page_size,
                },
            )
            return _list_from(body, "changes", where)

        for page in paginator.pages(fetch, what=where):
            yield from (change for change in page if isinstance(change, dict))

    # -- single objects and stubs -------------------------------------------------------------

    def get_object(self, href: str) -> dict[str, Any]:
        """One object by href; ``{}`` when Arbor answers with an empty object (no access)."""
        path = resource_path(href)
        body = self.get_json(path)
        if isinstance(body, dict) and not body:
            return {}
        values = list(body.values()) if isinstance(body, dict) else []
        if len(values) == 1 and isinstance(values[0], dict):
            return values[0]
        raise FatalApiError(
            f"school {self.school_id!r}: arbor {path} answered with an "
            f"unexpected shape (keys: {_keys(body)})"
        )

    def resolve(self, stub: Mapping[str, Any]) -> dict[str, Any]:
        """The full object behind an ``{"entityType", "href"}`` stub, fetched once per run."""
        key = resource_path(str(stub["href"]))
        if key not in self._objects:
            if (missing := self._missing.get(key)) is not None:
                raise missing
            self._objects[key] = self.get_object(key)
        return self._objects[key]

    def prefetch(self, hrefs: Iterable[str], *, workers: int) -> None:
        """Fetch the objects behind ``hrefs`` not fetched yet, ``workers`` requests at a time,
        so that ``resolve`` answers from the cache.

        Arbor lists a student's person (and a membership's form or year) as a stub, and each
        is one GET: a school's pupils cost as many round trips as it has pupils, which in
        turn would cost the MIS's latency once each. The requests are independent, so they
        overlap. A 404 is kept, and raised by ``resolve`` for the record naming it (which is
        then quarantined, as before); any other failure stops the fetching and is raised here.
        """
        keys = [
            key
            for key in dict.fromkeys(resource_path(href) for href in hrefs)
            if key not in self._objects and key not in self._missing
        ]
        if workers <= 1 or len(keys) <= 1:
            return  # resolve fetches them one at a time
        pool = ThreadPoolExecutor(max_workers=min(workers, len(keys)))
        futures = {pool.submit(self.get_object, key): key for key in keys}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for future in done:
                    key, error = futures[future], future.exception()
                    if error is None:
                        self._objects[key] = future.result()
                    elif isinstance(error, ArborNotFoundError):
                        self._missing[key] = error
                    else:
                        raise error
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def in_parallel(self, calls: list[Callable[[], T]], *, workers: int) -> list[T]:
        """Each call's result, in the calls' order, ``workers`` calls at a time; the first
        failure is raised once the calls under way have ended (the rest are not started)."""
        pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(calls))))
        futures = [pool.submit(call) for call in calls]
        try:
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for future in done:
                if (error := future.exception()) is not None:
                    raise error
            return [future.result() for future in futures]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def cached(self, href: str) -> dict[str, Any] | None:
        return self._objects.get(resource_path(href))


def _change_identity(change: Any) -> str | None:
    if not isinstance(change, Mapping):
        return None
    changed = change.get("changedObject")
    ref = _item_href(changed) if isinstance(changed, Mapping) else None
    return f"{change.get('toRevision')}:{ref}"


def _list_from(body: Any, key: str, where: str) -> list[Any]:
    if isinstance(body, dict):
        if key in body:
            value = body[key]
            if value is None:
                return []
            if isinstance(value, list):
                return value
        elif not body:
            return []  # Arbor's silent empty object when a permission is missing
    raise FatalApiError(
        f"{where} answered without a {key!r} list (keys: {_keys(body)}) — "
        "is base_url an Arbor REST v2 API?"
    )


def _keys(body: Any) -> str:
    return ", ".join(sorted(map(str, body))[:5]) if isinstance(body, dict) else type(body).__name__


def _snippet(response: requests.Response, limit: int = 120) -> str:
    text = " ".join(response.text.split())
    return text[:limit] + ("…" if len(text) > limit else "")
