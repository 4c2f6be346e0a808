"""The iSAMS simulator's HTTP face: the OAuth2 token endpoint, REST ``/api/students``, the
Batch XML endpoint, per-key throttling, the Batch cache and the vendor-shaped faults."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import parse_qs

from lxml import etree

from registerwatch.schema import Pupil
from registerwatch.simulator.common import PagingError, iso_midnight, page_of, read_page
from registerwatch.simulator.isams.document import IsamsData
from registerwatch.simulator.isams.protocol import (
    AUDIT,
    BATCH_PATH,
    DEADLOCK_DESCRIPTION,
    DEFAULT_PAGE_SIZE,
    DISPLAY_NAME,
    FILTERED_METHODS,
    MAX_PAGE_SIZE,
    PRESENT_CODES,
    PUPILS,
    REGISTRATION_STATUS,
    STUDENTS_PATH,
    TERMS,
    TOKEN_PATH,
    Corruption,
    date_filter,
    message,
    xml_response,
)
from registerwatch.simulator.model import GeneratedSchool
from registerwatch.simulator.server import FaultInjector, FaultKind, Request, Response


@dataclass
class _Token:
    client_id: str
    expires_at: float
    uses: int = 0
    revoked: bool = False


@dataclass
class _CacheEntry:
    stored_at: float
    body: bytes


class IsamsApp(IsamsData):
    """A GeneratedSchool served in iSAMS style (REST + Batch XML)."""

    vendor = "isams"
    records_edit_history = True

    def __init__(
        self,
        school: GeneratedSchool,
        faults: FaultInjector | None = None,
        *,
        serve_amendments: bool = True,
        client_id: str = "registerwatch",
        client_secret: str = "simulator",
        api_key: str = "simulator-key",
        token_lifetime: int = 3600,
        cache_seconds: float = 0.0,
        duplicate_rows: bool = True,
        throttle_limit: int | None = None,
        throttle_window: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(school, faults, serve_amendments=serve_amendments)
        self.duplicate_rows = duplicate_rows
        self.client_id = client_id
        self.client_secret = client_secret
        self.api_key = api_key
        self.token_lifetime = token_lifetime
        # The vendor default is ISAMS_DEFAULT_CACHE_SECONDS; the simulator starts with caching
        # off so that edits made through /_sim/marks show on the next pull. STALE_CACHE serves
        # the cached answer regardless.
        self.cache_seconds = cache_seconds
        self.throttle_limit = throttle_limit
        self.throttle_window = throttle_window
        self.clock = clock
        self.allocated_methods = {PUPILS, PRESENT_CODES, REGISTRATION_STATUS, TERMS}
        if serve_amendments:
            self.allocated_methods.add(AUDIT)
        self.tokens: dict[str, _Token] = {}
        self._cache: dict[tuple[str, bytes], _CacheEntry] = {}
        self._throttle: dict[str, tuple[float, int]] = {}

    # -- dispatch ---------------------------------------------------------------------------

    def route(self, request: Request) -> Response:
        if request.path == TOKEN_PATH and request.method == "POST":
            return self._token(request)
        if request.path.rstrip("/") == STUDENTS_PATH and request.method == "GET":
            return self._students(request)
        if request.path == BATCH_PATH and request.method in ("GET", "POST"):
            return self._batch(request)
        return Response.json({"error": "Not Found", "path": request.path}, status=404)

    # -- OAuth2 -----------------------------------------------------------------------------

    def _token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "client_credentials":
            return Response.json({"error": "unsupported_grant_type"}, status=400)
        if (form.get("client_id"), form.get("client_secret")) != (
            self.client_id,
            self.client_secret,
        ):
            return Response.json({"error": "invalid_client"}, status=400)
        token = secrets.token_urlsafe(24)
        self.tokens[token] = _Token(
            client_id=self.client_id, expires_at=self.clock() + self.token_lifetime
        )
        return Response.json(
            {
                "access_token": token,
                "expires_in": self.token_lifetime,
                "token_type": "Bearer",
                "scope": "restapi",
            }
        )

    def _check_bearer(self, request: Request) -> Response | None:
        """None when the request carries a live token; else the 401 to send."""
        header = request.headers.get("authorization", "")
        token = (
            self.tokens.get(header[7:].strip()) if header.lower().startswith("bearer ") else None
        )
        if token is None or token.revoked or self.clock() >= token.expires_at:
            return self._unauthorised("The access token is missing, invalid or expired")
        if token.uses >= 1 and self.faults.take(FaultKind.EXPIRING_TOKENS, request.path):
            token.revoked = True
            return self._unauthorised("The access token expired")
        token.uses += 1
        return None

    @staticmethod
    def _unauthorised(description: str) -> Response:
        return Response.json(
            {"error": "invalid_token", "error_description": description},
            status=401,
            **{"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )

    def _throttled(self, key: str, *, xml: bool) -> Response | None:
        """Per-key throttling ("Throttling Unit Type/Value/Limit", OBSERVED setting); the
        response (429, Retry-After, ThrottledException) is INFERRED."""
        if self.throttle_limit is None:
            return None
        now = self.clock()
        start, count = self._throttle.get(key, (now, 0))
        if now - start >= self.throttle_window:
            start, count = now, 0
        if count >= self.throttle_limit:
            wait = str(max(1, int(start + self.throttle_window - now + 0.999)))
            if xml:
                return message(
                    429,
                    "ThrottledException",
                    "Request Limit Exceeded",
                    f"The request limit of {self.throttle_limit} for this key has been reached.",
                    **{"Retry-After": wait},
                )
            return Response.json(
                {"error": "Too Many Requests"}, status=429, **{"Retry-After": wait}
            )
        self._throttle[key] = (start, count + 1)
        return None

    # -- REST /api/students -----------------------------------------------------------------

    def _students(self, request: Request) -> Response:
        denied = self._check_bearer(request)
        if denied is not None:
            return denied
        throttled = self._throttled(self.client_id, xml=False)
        if throttled is not None:
            return throttled
        try:
            page, size = read_page(
                request,
                number_arg="page",
                size_arg="pageSize",
                default_size=DEFAULT_PAGE_SIZE,
                max_size=MAX_PAGE_SIZE,
            )
        except PagingError as exc:
            wrong = "must be whole numbers" if exc.not_whole else "must be at least 1"
            return Response.json({"error": f"page and pageSize {wrong}"}, status=400)
        if self.faults.take(FaultKind.EMPTY_PERMISSION, request.path):
            return Response.json({"students": [], "page": page, "totalPages": 0, "totalCount": 0})
        if page >= 2 and self.faults.take(FaultKind.CHANGING_PAGES, request.path):
            # A pupil record is edited mid-pull and floats to the front of the (undefined)
            # listing order: offsets shift, so one later page repeats a pupil and one is lost.
            order = self._ordered_pupils()
            self._pupil_order = [order[-1].id] + [p.id for p in order[:-1]]
        pupils = self._ordered_pupils()
        total_pages = (len(pupils) + size - 1) // size
        chosen = page_of(pupils, page, size)  # beyond totalPages: an empty page
        items = [self._student_json(p) for p in chosen]
        if items and self.faults.take(FaultKind.MALFORMED, request.path):
            self._corrupt_students(items, chosen)
        return Response.json(
            {"students": items, "page": page, "totalPages": total_pages, "totalCount": len(pupils)}
        )

    def _student_json(self, pupil: Pupil) -> dict[str, Any]:
        # REST yearGroup is a number; "R" or "N1" stay text.
        year: int | str | None = pupil.nc_year
        if pupil.nc_year is not None and pupil.nc_year.isdigit():
            year = int(pupil.nc_year)
        return {
            "schoolId": pupil.mis_id,
            "personGuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"isams:{pupil.id}")),
            "uniquePupilNumber": pupil.upn,
            "forename": pupil.legal_forename,
            "surname": pupil.legal_surname,
            "middlenames": pupil.middle_names,
            "preferredName": pupil.preferred_forename,
            "dob": iso_midnight(pupil.dob),
            "gender": pupil.sex,
            "yearGroup": year,
            "formGroup": pupil.reg_group,
            "enrolmentDate": iso_midnight(pupil.starting_day),
            "leavingDate": iso_midnight(pupil.leaving_date),
            "boardingHouse": "School House" if pupil.boarder else None,
            "schoolCode": self.school.school.id.upper(),
        }

    def _corrupt_students(self, items: list[dict[str, Any]], pupils: list[Pupil]) -> None:
        items[0]["dob"] = f"{(pupils[0].dob or date(2012, 1, 1)).year}-02-31T00:00:00"
        self.corrupted.append(
            Corruption("students", f"students {pupils[0].mis_id}", "dob", pupils[0].id)
        )
        if len(items) > 1:
            del items[1]["schoolId"]
            self.corrupted.append(
                Corruption("students", "students (no schoolId)", "schoolId", pupils[1].id)
            )

    # -- Batch API --------------------------------------------------------------------------

    def _batch(self, request: Request) -> Response:
        key = request.arg("apiKey")
        if not key:
            return message(
                400,
                "MissingParameter",
                "Missing Field: apiKey",
                'A required field "apiKey" was not supplied or was in an incorrect format.',
            )
        if key == self.client_id and key != self.api_key:
            denied = self._check_bearer(request)  # OAuth keys (OBSERVED, .NET client)
            if denied is not None:
                return denied
        elif key != self.api_key:
            return message(
                401,
                "InvalidApiKey",
                "Invalid API Key",
                "The API key is invalid.\nPlease contact your iSAMS administrator.",
            )
        throttled = self._throttled(key, xml=True)
        if throttled is not None:
            return throttled
        if self.faults.take(FaultKind.DEADLOCK, request.path):
            return message(500, "UnhandledException", "Unknown Error", DEADLOCK_DESCRIPTION)

        filters: etree._Element | None = None
        if request.body.strip():
            try:
                filters = etree.fromstring(
                    request.body,
                    etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False),
                )
            except etree.XMLSyntaxError:
                filters = None
            if filters is None or filters.tag != "Filters":
                return message(
                    500,
                    "UnhandledException",
                    "Unknown Error",
                    "Data at the root level is invalid. Line 1, position 1.",
                )
        methods = self._methods(filters)
        refused = [m for m in methods if m not in self.allocated_methods]
        if refused:
            names = ", ".join(m.lower() for m in refused)
            return message(
                403,
                "MethodsNotAllocatedToKeyException",
                "Methods Not Allocated To Key",
                "The following methods specified in the MethodsToRun filter are not "
                f"allocated to the requested key: {names}",
            )
        ranges: dict[str, tuple[date, date]] = {}
        for method in methods:
            if method in FILTERED_METHODS:
                found = date_filter(filters, FILTERED_METHODS[method])
                if found is None:
                    return message(
                        400,
                        "FiltersRequiredException",
                        "Filters Required",
                        f'Method "{DISPLAY_NAME[method]}" requires at least one '
                        "filter. No filters have been supplied.",
                    )
                if isinstance(found, str):
                    return message(500, "UnhandledException", "Unknown Error", found)
                ranges[method] = found

        cache_key = (key, request.body)
        cached = self._cache.get(cache_key)
        if cached is not None and self.faults.take(FaultKind.STALE_CACHE, request.path):
            return xml_response(200, cached.body)
        if cached is not None and self.clock() - cached.stored_at < self.cache_seconds:
            return xml_response(200, cached.body)
        if self.faults.take(FaultKind.EMPTY_PERMISSION, request.path):
            # The methods silently did not run: a 200 with none of their sections.
            return xml_response(200, b"<iSAMS />")
        corrupt = self.faults.take(FaultKind.MALFORMED, request.path) is not None
        body = self._document(methods, ranges, corrupt=corrupt)
        if not corrupt:
            self._cache[cache_key] = _CacheEntry(stored_at=self.clock(), body=body)
        return xml_response(200, body)

    def _methods(self, filters: etree._Element | None) -> list[str]:
        """The methods asked for, by their canonical names; none named: all allocated."""
        names = (
            []
            if filters is None
            else [(m.text or "").strip() for m in filters.iterfind("MethodsToRun/Method")]
        )
        if not names:
            return sorted(self.allocated_methods)
        canonical = {
            m.lower(): m
            for m in (
                *self.allocated_methods,
                PUPILS,
                PRESENT_CODES,
                REGISTRATION_STATUS,
                TERMS,
                AUDIT,
            )
        }
        return [canonical.get(n.lower(), n) for n in names if n]
