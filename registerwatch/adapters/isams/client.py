"""The iSAMS client: OAuth2 tokens or an API key, REST paging, the Batch XML API, and failure
classification (including the XML ``<Message>`` error bodies the Batch API returns).

Vendor facts (OBSERVED in iSAMS's public docs and integrators' clients unless marked):

- REST: ``POST /auth/connect/token`` (client credentials) gives a Bearer token; ``GET
  /api/students?page=N`` answers ``{"students": [...], "page", "totalPages", "totalCount"}``
  (OBSERVED). The page-size parameter is NOT FOUND publicly; ``pageSize`` is INFERRED.
- Batch: ``POST /api/batch/1.0/xml.ashx?apiKey=...`` with a ``<Filters>`` document gives one
  ``<iSAMS>`` document (OBSERVED). Newer keys may use OAuth instead: the client id goes in
  ``apiKey`` and the token in the Authorization header (OBSERVED, .NET client).
- Errors are ``<Message>`` documents whose declaration says ``encoding="utf-16"`` although the
  bytes are ASCII (OBSERVED in the recorded examples): the parser decodes by sniffing the bytes,
  never by trusting the declaration.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date
from typing import Any, Literal
from urllib.parse import urlsplit

import requests
import structlog
from lxml import etree

from registerwatch.adapters.base import (
    DEFAULT_TIMEOUT,
    MAX_PAGES,
    ApiClient,
    Capabilities,
    ListingChangedError,
    RetryPolicy,
    VendorFacts,
    check_page_size,
    parse_retry_after,
    read_consistently,
)
from registerwatch.adapters.isams.mapping import (
    DEFAULT_PM_CUTOFF,
    IsamsMessage,
    XmlDocumentError,
    parse_message,
    parse_xml,
)
from registerwatch.errors import (
    ConfigError,
    FatalApiError,
    PagingError,
    PermissionGapError,
    RetriableApiError,
)

log = structlog.get_logger("registerwatch.adapters.isams")

TOKEN_PATH = "/auth/connect/token"
BATCH_PATH = "/api/batch/1.0/xml.ashx"
# INFERRED: the REST page-size parameter is not documented publicly; a server that ignores it
# still pages correctly because the client follows ``totalPages``, not the size it asked for.
REST_PAGE_SIZE = 100
# A token this close to expiry is renewed before use rather than after a 401.
TOKEN_RENEW_MARGIN = 30.0

# Everything vendor-wide, declared once (see registerwatch.adapters.base.contract).
FACTS = VendorFacts(
    vendor="isams",
    # OAuth2 client credentials (REST) or an API key (Batch XML): either will do.
    credentials=(("client_id", "client_secret"), ("api_key",)),
    adapter="registerwatch.adapters.isams:IsamsAdapter",
    sync_options={"pm_cutoff": "isams_pm_cutoff"},
    pm_cutoff=DEFAULT_PM_CUTOFF,
    auth=("oauth2-client-credentials", "api-key"),
    paging="page-number",  # REST; the Batch XML API has no paging (date windows instead)
    capabilities=Capabilities(
        registers=False,  # no register-taking events in any public iSAMS API
        amendments=None,  # Registration_GetRegistrationAudit is INFERRED: probed per key
        social_worker=False,  # iSAMS-style APIs expose no social-worker flag
        calendar=True,  # School_GetSchoolTerms
    ),
    # iSAMS schools configure their own absence codes. A spelling that is not a national code
    # but stands for one goes here. No iSAMS table is public, so it starts empty (INFERRED);
    # ``normalise_code`` already reads c1/c2/j1 in any case.
    code_aliases={},
    credential_hint="the iSAMS client id/secret or API key",
    # iSAMS repeats RegistrationStatus rows for one pupil and period with no record id and no
    # times (ideas MIS-I-3511, verified). That the repeats come in the order they were written,
    # so the last one is current, is INFERRED (the selection rules are undocumented): set this
    # to False to quarantine untimed repeats that disagree instead of taking the last.
    repeats_in_write_order=True,
)

_MESSAGE_RETRYABLE_PATTERNS = (
    # SQL Server deadlock victim: "... chosen as the deadlock victim. Rerun the transaction."
    re.compile(r"deadlock", re.IGNORECASE),
    re.compile(r"rerun the transaction", re.IGNORECASE),
    # "Lock request time out period exceeded." (the .NET client treats both as recoverable)
    re.compile(r"lock request time ?out", re.IGNORECASE),
)
_INVALID_ROOT = re.compile(r"data at the root level is invalid", re.IGNORECASE)


class MethodsNotAllocatedError(FatalApiError):
    """The API key may not run some Batch methods: the iSAMS administrator must allocate them."""

    def __init__(self, message: str, methods: Sequence[str] = ()) -> None:
        self.methods = [m.lower() for m in methods]
        super().__init__(message)


# -- the Batch request document ---------------------------------------------------------------


def filters_document(
    methods: Sequence[str], registration: Mapping[str, tuple[date, date]] | None = None
) -> bytes:
    """A ``<Filters>`` body in the officially documented form."""
    root = etree.Element("Filters")
    to_run = etree.SubElement(root, "MethodsToRun")
    for method in methods:
        etree.SubElement(to_run, "Method").text = method
    if registration:
        section = etree.SubElement(root, "Registration")
        for name, (start, end) in registration.items():
            etree.SubElement(section, name, StartDate=start.isoformat(), EndDate=end.isoformat())
    return etree.tostring(root, encoding="utf-8", xml_declaration=True)


# -- the client -------------------------------------------------------------------------------


class IsamsClient(ApiClient):
    """One iSAMS school: REST with OAuth2 client credentials, Batch XML with an API key.

    ``credentials`` holds ``client_id`` + ``client_secret`` (REST, and Batch over OAuth) and/or
    ``api_key`` (Batch). Tokens are fetched lazily, renewed shortly before they expire, and
    renewed once more when the server answers 401 (``on_unauthorised``).
    """

    vendor = "isams"

    def __init__(
        self,
        base_url: str,
        *,
        school_id: str,
        credentials: Mapping[str, str],
        credential_hint: str = FACTS.credential_hint,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_records_per_page: int | None = None,
    ) -> None:
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
        self.client_id = (credentials.get("client_id") or "").strip() or None
        self.client_secret = (credentials.get("client_secret") or "").strip() or None
        self.api_key = (credentials.get("api_key") or "").strip() or None
        # Incomplete credentials are a configuration problem, found before any request.
        if bool(self.client_id) != bool(self.client_secret):
            raise ConfigError(
                f"school {school_id!r}: iSAMS client credentials need both a "
                f"client id and a client secret — check {credential_hint}"
            )
        if not (self.client_id or self.api_key):
            raise ConfigError(
                f"school {school_id!r}: no iSAMS credentials configured — set {credential_hint}"
            )
        self.clock = clock
        self._token: str | None = None
        self._token_expires_at = 0.0
        self._auth: Literal["none", "bearer"] = "none"
        self._in_token_request = False
        self.tokens_fetched = 0

    @property
    def has_rest(self) -> bool:
        return self.client_id is not None

    # -- auth -------------------------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        if self._auth != "bearer" or self._in_token_request:
            return {}
        if self._token is None or self.clock() >= self._token_expires_at - TOKEN_RENEW_MARGIN:
            self._fetch_token()
        return {"Authorization": f"Bearer {self._token}"}

    def on_unauthorised(self) -> bool:
        if self._auth != "bearer" or self._in_token_request:
            return False
        self._token = None
        self._fetch_token()
        return True

    def _fetch_token(self) -> None:
        assert self.client_id and self.client_secret
        self._in_token_request = True
        try:
            payload = self.request(
                "POST",
                TOKEN_PATH,
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                },
                parse=self._parse_json,
            )
        finally:
            self._in_token_request = False
        try:
            token = str(payload["access_token"])
            lifetime = float(payload.get("expires_in") or 3600)
        except (ValueError, KeyError, TypeError):
            raise FatalApiError(
                f"school {self.school_id!r}: iSAMS {TOKEN_PATH} answered without an "
                "access_token — check the base_url points at the school's iSAMS host"
            ) from None
        self._token = token
        self._token_expires_at = self.clock() + lifetime
        self.tokens_fetched += 1
        log.info(
            "adapter.token_fetched", vendor=self.vendor, school=self.school_id, expires_in=lifetime
        )

    # -- classification ---------------------------------------------------------------------

    def classify(self, response: requests.Response) -> None:
        path = urlsplit(response.url).path
        where = f"school {self.school_id!r}: {self.vendor} {response.request.method} {path}"
        if path.endswith(TOKEN_PATH) and response.status_code in (400, 401):
            raise FatalApiError(
                f"{where}: iSAMS refused the client credentials "
                f"({_oauth_error(response)}) — check {self.credential_hint}"
            )
        message = parse_message(response.content)
        if message is not None:
            raise self._message_error(where, response, message)
        super().classify(response)

    def _message_error(
        self, where: str, response: requests.Response, message: IsamsMessage
    ) -> Exception:
        """The exception for an iSAMS ``<Message>`` body, whatever the HTTP status said."""
        status = response.status_code
        said = f"{message.message_id}: {message.title}".strip(": ")
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        text = f"{message.title} {message.description}"
        if status == 429 or "throttl" in message.message_id.lower():
            return RetriableApiError(
                f"{where} was throttled by iSAMS ({said})", retry_after=retry_after
            )
        if any(p.search(text) for p in _MESSAGE_RETRYABLE_PATTERNS):
            return RetriableApiError(
                f"{where} hit a database lock in iSAMS ({said}: {message.description})",
                retry_after=retry_after,
            )
        ident = message.message_id.lower()
        if ident == "invalidapikey":
            return FatalApiError(
                f"{where}: iSAMS rejected the API key ({said}) — check {self.credential_hint}"
            )
        if ident.startswith("methodsnotallocatedtokey"):
            methods = message.description.rsplit(":", 1)[-1].replace(" ", "").split(",")
            return MethodsNotAllocatedError(
                f"{where}: the iSAMS API key is not allowed to run {', '.join(methods)} "
                f"({said}) — ask the iSAMS administrator to allocate these methods to the key "
                f"named by {self.credential_hint}",
                methods=methods,
            )
        if ident.startswith("filtersrequired"):
            return FatalApiError(
                f"{where}: iSAMS says the request is missing its filters "
                f"({said}: {message.description}) — the <Filters> document "
                "registerwatch sent lacks a date range; report this as a bug"
            )
        if ident == "missingparameter":
            return FatalApiError(
                f"{where}: iSAMS says a request parameter is missing or "
                f"malformed ({message.title}: {message.description}) — check "
                f"the base_url and {self.credential_hint}"
            )
        if _INVALID_ROOT.search(message.description):
            return FatalApiError(
                f"{where}: iSAMS could not parse the request's XML "
                f"<Filters> body ({message.description}) — report this as a "
                "bug in registerwatch"
            )
        if 500 <= status <= 599:
            return RetriableApiError(
                f"{where} failed with {status} ({said}: {message.description})",
                retry_after=retry_after,
            )
        return FatalApiError(
            f"{where}: iSAMS returned an error ({said}: "
            f"{message.description}) — this request will not succeed on retry"
        )

    # -- REST -------------------------------------------------------------------------------

    def rest_get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        if not self.has_rest:
            raise FatalApiError(
                f"school {self.school_id!r}: the iSAMS REST API needs a client "
                f"id and secret — set {self.credential_hint}"
            )
        self._auth = "bearer"
        try:
            return self.request("GET", path, params=params, parse=self._parse_json)
        finally:
            self._auth = "none"

    def _parse_json(self, response: requests.Response) -> Any:
        # Not the shared get_json: its error quotes the start of the body, which here may be
        # pupil data or a token. Raised inside the retry loop, so a garbled body is retried.
        try:
            return response.json()
        except ValueError:
            raise RetriableApiError(
                f"school {self.school_id!r}: isams {response.request.method} "
                f"{urlsplit(response.url).path} returned malformed JSON "
                f"({len(response.content)} bytes)"
            ) from None

    def rest_pages(
        self, path: str, root_key: str, page_size: int = REST_PAGE_SIZE, key_field: str = "schoolId"
    ) -> Iterator[tuple[int, list[Any]]]:
        """Every page of a REST listing as ``(page_number, items)``, checked for consistency.

        The listing is offset-paged, so a record edited or added while we page can shift the
        rest of the list: a later page then repeats one record and another is never seen. The
        pages are collected first and checked (``totalPages`` and ``totalCount`` steady, the
        right page numbers, no ``key_field`` value seen twice, the count matching
        ``totalCount``, as isams-php checks); a listing that changed is pulled again from
        page 1 by the shared policy (``read_consistently``), then PagingError.
        """
        where = f"school {self.school_id!r}: isams GET {path}"
        yield from read_consistently(
            lambda: self._pull_listing(path, root_key, page_size, key_field, where),
            what=where,
            vendor=self.vendor,
            school=self.school_id,
        )

    def _pull_listing(
        self, path: str, root_key: str, page_size: int, key_field: str, where: str
    ) -> list[tuple[int, list[Any]]]:
        pages: list[tuple[int, list[Any]]] = []
        total_pages: int | None = None
        total_count: int | None = None
        page = 1
        while True:
            payload = self.rest_get(path, {"page": page, "pageSize": page_size})
            if not isinstance(payload, Mapping):
                raise RetriableApiError(
                    f"school {self.school_id!r}: isams GET {path} page "
                    f"{page} did not return a JSON object"
                )
            items = payload.get(root_key)
            if items is None:
                items = []
            if not isinstance(items, list):
                raise RetriableApiError(
                    f"school {self.school_id!r}: isams GET {path} page "
                    f"{page}: {root_key!r} is not a list"
                )
            this_total_pages = _int_or_none(payload.get("totalPages"))
            this_total_count = _int_or_none(payload.get("totalCount"))
            echoed = _int_or_none(payload.get("page"))
            if echoed is not None and echoed != page:
                raise PagingError(
                    f"school {self.school_id!r}: isams GET {path} was asked for "
                    f"page {page} and answered page {echoed}"
                )
            if total_pages is None:
                total_pages, total_count = this_total_pages, this_total_count
            elif (this_total_pages, this_total_count) != (total_pages, total_count):
                raise ListingChangedError(
                    f"{where}: totalPages/totalCount went from {total_pages}/{total_count} "
                    f"to {this_total_pages}/{this_total_count} at page {page}"
                )
            check_page_size(len(items), limit=self.max_records_per_page, what=where, number=page)
            pages.append((page, items))
            if total_pages is None:
                # No totals: stop on an empty or short page (the Arbor rule), never loop forever.
                if not items or len(items) < page_size:
                    break
            elif page >= total_pages:
                break
            page += 1
            if page > MAX_PAGES:
                raise PagingError(
                    f"school {self.school_id!r}: isams GET {path} never ended (10,000 pages)"
                )
        seen: set[str] = set()
        count = 0
        for _number, items in pages:
            for item in items:
                count += 1
                value = item.get(key_field) if isinstance(item, Mapping) else None
                if value is not None:
                    if str(value) in seen:
                        raise ListingChangedError(f"{where}: a record appeared on two pages")
                    seen.add(str(value))
        if total_count is not None and count != total_count:
            raise ListingChangedError(
                f"{where}: collected {count} records but totalCount says {total_count}"
            )
        return pages

    # -- Batch ------------------------------------------------------------------------------

    def batch(
        self, methods: Sequence[str], registration: Mapping[str, tuple[date, date]] | None = None
    ) -> etree._Element:
        """Run Batch methods; the ``<iSAMS>`` root of the answer."""
        body = filters_document(methods, registration)
        if self.api_key:
            self._auth = "none"
            params = {"apiKey": self.api_key}
        else:
            # OAuth keys: the client id goes where the key would, with a Bearer token (OBSERVED).
            self._auth = "bearer"
            params = {"apiKey": self.client_id or ""}
        try:
            root: etree._Element = self.request(
                "POST",
                BATCH_PATH,
                params=params,
                data=body,
                headers={"Content-Type": "application/xml", "Accept": "text/xml"},
                parse=self._parse_batch,
            )
        finally:
            self._auth = "none"
        return root

    def _parse_batch(self, response: requests.Response) -> etree._Element:
        # Runs inside the retry loop: a truncated or garbled answer is retried like a 5xx. The
        # message never quotes the body, which may hold pupil data.
        try:
            root = parse_xml(response.content)
        except XmlDocumentError as exc:
            raise RetriableApiError(
                f"school {self.school_id!r}: isams POST {BATCH_PATH} "
                f"returned an unusable document: {exc}"
            ) from None
        if root.tag != "iSAMS":
            raise RetriableApiError(
                f"school {self.school_id!r}: isams POST {BATCH_PATH} "
                f"returned <{root.tag}> instead of <iSAMS>"
            )
        return root

    def batch_section(self, root: etree._Element, path: str, method: str) -> etree._Element:
        """The element at ``path`` below ``<iSAMS>``; PermissionGapError when it is missing.

        A method that ran answers with its section even when it has no rows; a section that is
        missing from a 200 answer means the method silently did not run for this key.
        """
        section = root.find(path)
        if section is None:
            raise PermissionGapError(
                f"school {self.school_id!r}: iSAMS answered without <{path}> for {method} — "
                "the API key probably lacks permission for it; ask the iSAMS administrator to "
                f"check the methods and data permissions of the key named by "
                f"{self.credential_hint}"
            )
        return section


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _oauth_error(response: requests.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(payload, Mapping) and payload.get("error"):
        return str(payload["error"])
    return f"HTTP {response.status_code}"
