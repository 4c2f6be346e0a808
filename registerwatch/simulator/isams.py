"""An iSAMS-style MIS on loopback: OAuth2 + REST students, and the Batch XML API.

OBSERVED in public sources (iSAMS developer docs and integrators' clients): the token endpoint, REST
``page``/``totalPages``/``totalCount``, the Batch URL with ``apiKey`` in the query, the
``<Filters>`` request, the ``<iSAMS>`` document, the ``<Message>`` error bodies (byte for byte
in the recorded examples' shape: an ``encoding="utf-16"`` declaration over ASCII bytes), the
24-hour response cache and per-key throttling. INFERRED (marked where they are built): the
``pageSize`` parameter, the present-code table, the ``RegistrationStatus`` extras
(``MinutesLate``, ``Comment``, ``LastUpdated``), the throttle response, and the whole
amendment audit resource (``Registration_GetRegistrationAudit``: no vendor documents one).

Routes:
  POST /auth/connect/token            form grant_type=client_credentials&client_id=&client_secret=
  GET  /api/students?page=&pageSize=  Bearer token; {"students": [...], "page", "totalPages",
                                      "totalCount"}; leavers included, with leavingDate
  POST /api/batch/1.0/xml.ashx?apiKey=KEY     <Filters> body → <iSAMS> document
       (GET with no body runs every method allocated to the key, as iSAMS does; OAuth keys:
       apiKey=<client id> with a Bearer token)

Registers are not served: iSAMS exposes no register-taking events (none is publicly documented).

RegistrationStatus rows: one per mark, at the school's register time for the session (local
time, no session flag); present marks (``/``, ``\\``, ``L``) by ``PresentCode`` id, the rest by
``Code``; a ``Registered = 0`` row for each pupil on roll on a past school session with no mark;
and, unless ``duplicate_rows=False``, repeated rows (an older superseded row before some marks,
an exact repeat after others). Edits through ``set_mark`` / ``delete_mark`` (or ``/_sim/marks``)
are added to the school's amendment records: amender "Simulator", position "Data manager", no
reason.

The Batch cache: answers are stored per (key, request body). With ``cache_seconds`` > 0 an
identical request within that time gets the stored answer (the vendor default is 86400,
``ISAMS_DEFAULT_CACHE_SECONDS``); the default 0 serves fresh data so that edits show at once.

Vendor faults (``FaultInjector``): EMPTY_PERMISSION (a 200 with the data left out),
STALE_CACHE (the Batch answer cached before later changes), CHANGING_PAGES (a pupil moves to
the front of the listing between REST pages), MALFORMED (a bad date, an unknown code and a
missing key in one answer; what was corrupted is listed in ``corrupted``), EXPIRING_TOKENS (a
used token is rejected with 401), DEADLOCK (the recorded deadlock ``<Message>`` with 500).
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from lxml import etree

from registerwatch.calendar import LONDON, SchoolCalendar, school_year_of
from registerwatch.errors import CalendarError
from registerwatch.schema import Amendment, Mark, Pupil, Session
from registerwatch.simulator.model import GeneratedSchool
from registerwatch.simulator.server import FaultInjector, FaultKind, Request, Response, VendorApp

TOKEN_PATH = "/auth/connect/token"
STUDENTS_PATH = "/api/students"
BATCH_PATH = "/api/batch/1.0/xml.ashx"

# OBSERVED vendor default ("API Key Cache Expiry", 24 hours).
ISAMS_DEFAULT_CACHE_SECONDS = 86_400
DEFAULT_PAGE_SIZE = 50  # INFERRED: iSAMS documents no page size

PUPILS = "Pupil_GetCurrentPupils"
PRESENT_CODES = "Registration_GetPresentCodes"
REGISTRATION_STATUS = "Registration_GetRegistrationStatus"
TERMS = "School_GetSchoolTerms"
AUDIT = "Registration_GetRegistrationAudit"  # INFERRED: no vendor documents an audit resource

# Methods that refuse to run without a date filter, and the filter element each reads.
FILTERED_METHODS = {REGISTRATION_STATUS: "RegistrationStatus", AUDIT: "RegistrationAudit"}
# How iSAMS names a method in the FiltersRequiredException text ("SchoolReports - GetReports").
_DISPLAY_NAME = {
    REGISTRATION_STATUS: "Registration - GetRegistrationStatus",
    AUDIT: "Registration - GetRegistrationAudit",
}

# INFERRED: a school's present-code table. iSAMS marks presence by a present-code id, not a
# letter; "Present" stands for both / (AM) and \ (PM).
PRESENT_CODE_TABLE: tuple[tuple[int, str, str], ...] = ((1, "/", "Present"), (2, "L", "Late"))
_PRESENT_ID = {"/": 1, "\\": 1, "L": 2}


def message_body(message_id: str, title: str, description: str) -> bytes:
    """An iSAMS ``<Message>`` in the recorded examples' exact shape: a UTF-16 declaration over
    ASCII bytes, two-space indents, LF line ends, no final newline."""
    return (
        '<?xml version="1.0" encoding="utf-16"?>\n<Message>\n'
        f"  <MessageId>{escape(message_id)}</MessageId>\n"
        f"  <MessageName>{escape(message_id)}</MessageName>\n"
        f"  <Title>{escape(title)}</Title>\n"
        f"  <Description>{escape(description)}</Description>\n"
        "</Message>"
    ).encode("ascii", "xmlcharrefreplace")


DEADLOCK_DESCRIPTION = (
    "Transaction (Process ID 118) was deadlocked on lock resources with "
    "another process and has been chosen as the deadlock victim. Rerun the "
    "transaction."
)


def _xml_response(status: int, body: bytes, **headers: str) -> Response:
    return Response(status=status, body=body, content_type="text/xml", headers=dict(headers))


def _message(
    status: int, message_id: str, title: str, description: str, **headers: str
) -> Response:
    return _xml_response(status, message_body(message_id, title, description), **headers)


@dataclass
class _Token:
    client_id: str
    expires_at: float
    uses: int = 0
    revoked: bool = False


@dataclass(frozen=True)
class Corruption:
    """One record the MALFORMED fault broke: where, which field, and the truth it stood for."""

    resource: str
    record_ref: str
    field: str
    truth: Any  # a Pupil id, or a (pupil id, date, session) mark key, or an amendment


@dataclass
class _CacheEntry:
    stored_at: float
    body: bytes


@dataclass
class _Row:
    """One RegistrationStatus row before it becomes XML."""

    id: int
    mis_id: str
    when: datetime
    registered: bool
    code: str | None = None
    minutes_late: int | None = None
    comment: str | None = None
    last_updated: datetime | None = None
    truth: tuple[str, date, Session] | None = None
    duplicated: bool = False
    fields: dict[str, str | None] = field(default_factory=dict)


class IsamsApp(VendorApp):
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
        self.client_id = client_id
        self.client_secret = client_secret
        self.api_key = api_key
        self.token_lifetime = token_lifetime
        # The vendor default is ISAMS_DEFAULT_CACHE_SECONDS; the simulator starts with caching
        # off so that edits made through /_sim/marks show on the next pull. STALE_CACHE serves
        # the cached answer regardless.
        self.cache_seconds = cache_seconds
        self.duplicate_rows = duplicate_rows
        self.throttle_limit = throttle_limit
        self.throttle_window = throttle_window
        self.clock = clock
        self.allocated_methods = {PUPILS, PRESENT_CODES, REGISTRATION_STATUS, TERMS}
        if serve_amendments:
            self.allocated_methods.add(AUDIT)
        self.tokens: dict[str, _Token] = {}
        self.corrupted: list[Corruption] = []
        self._cache: dict[tuple[str, bytes], _CacheEntry] = {}
        self._throttle: dict[str, tuple[float, int]] = {}
        self._pupil_order: list[str] = []
        self._isams_ids: dict[str, int] = {}
        self._row_ids: dict[tuple[Any, ...], int] = {}
        self._calendar: SchoolCalendar | None = None
        self._calendar_built = False

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
                return _message(
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
            page = int(request.arg("page", "1") or "1")
            size = int(request.arg("pageSize", str(DEFAULT_PAGE_SIZE)) or DEFAULT_PAGE_SIZE)
        except ValueError:
            return Response.json({"error": "page and pageSize must be whole numbers"}, status=400)
        if page < 1 or size < 1:
            return Response.json({"error": "page and pageSize must be at least 1"}, status=400)
        size = min(size, 1000)  # INFERRED cap
        if self.faults.take(FaultKind.EMPTY_PERMISSION, request.path):
            return Response.json({"students": [], "page": page, "totalPages": 0, "totalCount": 0})
        if page >= 2 and self.faults.take(FaultKind.CHANGING_PAGES, request.path):
            # A pupil record is edited mid-pull and floats to the front of the (undefined)
            # listing order: offsets shift, so one later page repeats a pupil and one is lost.
            order = self._ordered_pupils()
            self._pupil_order = [order[-1].id] + [p.id for p in order[:-1]]
        pupils = self._ordered_pupils()
        total_pages = (len(pupils) + size - 1) // size
        chosen = pupils[(page - 1) * size : page * size]  # beyond totalPages: an empty page
        items = [self._student_json(p) for p in chosen]
        if items and self.faults.take(FaultKind.MALFORMED, request.path):
            self._corrupt_students(items, chosen)
        return Response.json(
            {"students": items, "page": page, "totalPages": total_pages, "totalCount": len(pupils)}
        )

    def _ordered_pupils(self) -> list[Pupil]:
        by_id = {p.id: p for p in self.school.pupils}
        self._pupil_order = [i for i in self._pupil_order if i in by_id]
        known = set(self._pupil_order)
        self._pupil_order += sorted(
            (i for i in by_id if i not in known), key=lambda i: by_id[i].mis_id
        )
        return [by_id[i] for i in self._pupil_order]

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
            "dob": _iso_midnight(pupil.dob),
            "gender": pupil.sex,
            "yearGroup": year,
            "formGroup": pupil.reg_group,
            "enrolmentDate": _iso_midnight(pupil.starting_day),
            "leavingDate": _iso_midnight(pupil.leaving_date),
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
            return _message(
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
            return _message(
                401,
                "InvalidApiKey",
                "Invalid API Key",
                "The API key is invalid.\nPlease contact your iSAMS administrator.",
            )
        throttled = self._throttled(key, xml=True)
        if throttled is not None:
            return throttled
        if self.faults.take(FaultKind.DEADLOCK, request.path):
            return _message(500, "UnhandledException", "Unknown Error", DEADLOCK_DESCRIPTION)

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
                return _message(
                    500,
                    "UnhandledException",
                    "Unknown Error",
                    "Data at the root level is invalid. Line 1, position 1.",
                )
        methods = self._methods(filters)
        refused = [m for m in methods if m not in self.allocated_methods]
        if refused:
            names = ", ".join(m.lower() for m in refused)
            return _message(
                403,
                "MethodsNotAllocatedToKeyException",
                "Methods Not Allocated To Key",
                "The following methods specified in the MethodsToRun filter are not "
                f"allocated to the requested key: {names}",
            )
        ranges: dict[str, tuple[date, date]] = {}
        for method in methods:
            if method in FILTERED_METHODS:
                found = _date_filter(filters, FILTERED_METHODS[method])
                if found is None:
                    return _message(
                        400,
                        "FiltersRequiredException",
                        "Filters Required",
                        f'Method "{_DISPLAY_NAME[method]}" requires at least one '
                        "filter. No filters have been supplied.",
                    )
                if isinstance(found, str):
                    return _message(500, "UnhandledException", "Unknown Error", found)
                ranges[method] = found

        cache_key = (key, request.body)
        cached = self._cache.get(cache_key)
        if cached is not None and self.faults.take(FaultKind.STALE_CACHE, request.path):
            return _xml_response(200, cached.body)
        if cached is not None and self.clock() - cached.stored_at < self.cache_seconds:
            return _xml_response(200, cached.body)
        if self.faults.take(FaultKind.EMPTY_PERMISSION, request.path):
            # The methods silently did not run: a 200 with none of their sections.
            return _xml_response(200, b"<iSAMS />")
        corrupt = self.faults.take(FaultKind.MALFORMED, request.path) is not None
        body = self._document(methods, ranges, corrupt=corrupt)
        if not corrupt:
            self._cache[cache_key] = _CacheEntry(stored_at=self.clock(), body=body)
        return _xml_response(200, body)

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

    # -- the <iSAMS> document ---------------------------------------------------------------

    def _document(
        self, methods: Iterable[str], ranges: Mapping[str, tuple[date, date]], *, corrupt: bool
    ) -> bytes:
        root = etree.Element("iSAMS")
        methods = set(methods)
        if PUPILS in methods:
            self._pupil_manager(etree.SubElement(root, "PupilManager"), corrupt)
        if methods & {PRESENT_CODES, REGISTRATION_STATUS, AUDIT}:
            manager = etree.SubElement(root, "RegistrationManager")
            if PRESENT_CODES in methods:
                codes = etree.SubElement(manager, "PresentCodes")
                for ident, code, name in PRESENT_CODE_TABLE:
                    element = etree.SubElement(codes, "PresentCode", Id=str(ident))
                    _child(element, "Code", code)
                    _child(element, "Name", name)
            if REGISTRATION_STATUS in methods:
                self._statuses(
                    etree.SubElement(manager, "RegistrationStatuses"),
                    *ranges[REGISTRATION_STATUS],
                    corrupt=corrupt,
                )
            if AUDIT in methods:
                self._audits(
                    etree.SubElement(manager, "RegistrationAudits"), *ranges[AUDIT], corrupt=corrupt
                )
        if TERMS in methods:
            self._terms(etree.SubElement(etree.SubElement(root, "SchoolManager"), "Terms"))
        return etree.tostring(root, encoding="utf-8", pretty_print=True)

    def _today(self) -> date:
        return self.school.as_of or datetime.now(LONDON).date()

    def _isams_id(self, pupil: Pupil) -> int:
        return self._isams_ids.setdefault(pupil.id, 700 + len(self._isams_ids))

    def _pupil_manager(self, manager: etree._Element, corrupt: bool) -> None:
        current = etree.SubElement(manager, "CurrentPupils")
        today = self._today()
        on_roll = [
            p for p in self._ordered_pupils() if p.leaving_date is None or p.leaving_date >= today
        ]
        for index, pupil in enumerate(on_roll):
            element = etree.SubElement(
                current,
                "Pupil",
                Id=str(self._isams_id(pupil)),
                PersonGuid=str(uuid.uuid5(uuid.NAMESPACE_URL, f"isams:{pupil.id}")),
            )
            values: list[tuple[str, str | None]] = [
                ("UPN", pupil.upn),
                ("SchoolCode", self.school.school.id.upper()),
                ("SchoolId", pupil.mis_id),
                ("Forename", pupil.legal_forename),
                ("Surname", pupil.legal_surname),
                ("Middlename", pupil.middle_names),
                ("Preferredname", pupil.preferred_forename),
                (
                    "Fullname",
                    " ".join(
                        n
                        for n in (
                            pupil.preferred_forename or pupil.legal_forename,
                            pupil.legal_surname,
                        )
                        if n
                    )
                    or None,
                ),
                ("Gender", pupil.sex),
                ("DOB", _iso_midnight(pupil.dob)),
                ("Form", pupil.reg_group),
                ("NCYear", pupil.nc_year),
                ("PupilType", "Boarder" if pupil.boarder else "Day"),
                ("EnrolmentDate", _iso_midnight(pupil.starting_day)),
            ]
            if corrupt and index == 0:
                values = [
                    (
                        k,
                        f"{(pupil.dob or date(2012, 1, 1)).year}-02-31T00:00:00"
                        if k == "DOB"
                        else v,
                    )
                    for k, v in values
                ]
                self.corrupted.append(
                    Corruption("CurrentPupils", f"CurrentPupils {pupil.mis_id}", "DOB", pupil.id)
                )
            if corrupt and index == 1:
                values = [(k, v) for k, v in values if k != "SchoolId"]
                self.corrupted.append(
                    Corruption("CurrentPupils", "CurrentPupils (no SchoolId)", "SchoolId", pupil.id)
                )
            for tag, value in values:
                _child(element, tag, value)

    def _session_time(self, day: date, session: Session) -> datetime:
        """When the session's register is taken, in local time (what RegistrationDateTime
        carries: no AM/PM flag)."""
        times = self.school.calendar.register_times
        return datetime.combine(day, times.am_open if session is Session.AM else times.pm_open)

    def _school_calendar(self) -> SchoolCalendar | None:
        if not self._calendar_built:
            self._calendar_built = True
            try:
                self._calendar = SchoolCalendar(self.school.calendar)
            except CalendarError:
                self._calendar = None  # no terms: no Registered = 0 rows can be placed
        return self._calendar

    def _row_id(self, *key: Any) -> int:
        return self._row_ids.setdefault(key, 55_001 + len(self._row_ids))

    def _statuses(self, section: etree._Element, start: date, end: date, *, corrupt: bool) -> None:
        pupils = {p.id: p for p in self.school.pupils}
        mis_of = {pid: p.mis_id for pid, p in pupils.items()}
        rows: list[_Row] = []
        marked: set[tuple[str, date, Session]] = set()
        for mark in sorted(
            (m for m in self.school.marks if start <= m.date <= end),
            key=lambda m: (m.date, m.session.value, mis_of.get(m.pupil_id, "")),
        ):
            key = (mark.pupil_id, mark.date, mark.session)
            marked.add(key)
            rows.append(self._mark_row(mark, mis_of))
        # Pupils on roll on a school session with no mark: Registered = 0 ("missing mark").
        calendar = self._school_calendar()
        if calendar is not None:
            last = min(end, self._today())
            for day, session in calendar.school_sessions(start, last) if start <= last else []:
                for pupil in pupils.values():
                    if pupil.on_roll(day) and (pupil.id, day, session) not in marked:
                        rows.append(
                            _Row(
                                id=self._row_id(pupil.id, day, session.value),
                                mis_id=pupil.mis_id,
                                when=self._session_time(day, session),
                                registered=False,
                            )
                        )
        rows.sort(key=lambda r: (r.when, r.mis_id))
        if self.duplicate_rows:
            rows = self._with_duplicates(rows)
        if corrupt:
            self._corrupt_rows(rows)
        for row in rows:
            self._status_element(section, row)

    def _mark_row(self, mark: Mark, mis_of: Mapping[str, str]) -> _Row:
        return _Row(
            id=self._row_id(mark.pupil_id, mark.date, mark.session.value),
            mis_id=mis_of.get(mark.pupil_id, mark.pupil_id.split(":", 1)[-1]),
            when=self._session_time(mark.date, mark.session),
            registered=True,
            code=mark.code,
            minutes_late=mark.minutes_late,
            comment=mark.comment,
            last_updated=mark.recorded_at,
            truth=(mark.pupil_id, mark.date, mark.session),
        )

    def _with_duplicates(self, rows: list[_Row]) -> list[_Row]:
        """iSAMS repeats rows for one pupil and period (ideas MIS-I-3511). Some marks get an
        older superseded row before them (an N later corrected; earlier LastUpdated), some an
        exact repeat after them: the adapter's de-duplication must pick the current one."""
        out: list[_Row] = []
        registered = 0
        for row in rows:
            if not row.registered:
                out.append(row)
                continue
            registered += 1
            if registered % 7 == 3:
                assert row.truth is not None
                row.duplicated = True
                out.append(
                    _Row(
                        id=self._row_id(*row.truth, "superseded"),
                        mis_id=row.mis_id,
                        when=row.when,
                        registered=True,
                        code="N" if row.code != "N" else "O",
                        last_updated=row.last_updated - timedelta(hours=1)
                        if row.last_updated
                        else None,
                        truth=row.truth,
                        duplicated=True,
                    )
                )
                out.append(row)
            elif registered % 11 == 5:
                assert row.truth is not None
                row.duplicated = True
                out.append(row)
                out.append(
                    _Row(
                        id=self._row_id(*row.truth, "repeat"),
                        mis_id=row.mis_id,
                        when=row.when,
                        registered=True,
                        code=row.code,
                        minutes_late=row.minutes_late,
                        comment=row.comment,
                        last_updated=row.last_updated,
                        truth=row.truth,
                        duplicated=True,
                    )
                )
            else:
                out.append(row)
        return out

    def _corrupt_rows(self, rows: list[_Row]) -> None:
        """A bad date, an unknown code and a missing PupilId, on marks that have no duplicate
        (so the truth for the rest is still exactly recoverable)."""
        plain = [r for r in rows if r.registered and not r.duplicated][:3]
        for row, field_name in zip(
            plain, ("RegistrationDateTime", "Code", "PupilId"), strict=False
        ):
            if field_name == "RegistrationDateTime":
                row.fields[field_name] = f"{row.when.year}-02-30T{row.when:%H:%M:%S}"
            elif field_name == "Code":
                row.fields.update(Code="QQ", PresentCode="0")
            else:
                row.fields[field_name] = None  # the element is left out
            self.corrupted.append(
                Corruption(
                    "RegistrationStatus", f"RegistrationStatus {row.id}", field_name, row.truth
                )
            )

    def _status_element(self, section: etree._Element, row: _Row) -> None:
        element = etree.SubElement(section, "RegistrationStatus", Id=str(row.id))
        present = _PRESENT_ID.get(row.code or "", 0) if row.registered else 0
        values: dict[str, str | None] = {
            "PupilId": row.mis_id,
            "RegistrationDateTime": row.when.isoformat(timespec="seconds"),
            "Registered": "1" if row.registered else "0",
            "PresentCode": str(present),
            "Code": row.code if row.registered and not present else None,
            # INFERRED extras: present only when there is something to say.
            "MinutesLate": None if row.minutes_late is None else str(row.minutes_late),
            "Comment": row.comment,
            "LastUpdated": _local_naive(row.last_updated),
        }
        values.update(row.fields)
        for tag, value in values.items():
            _child(element, tag, value)

    def _audits(self, section: etree._Element, start: date, end: date, *, corrupt: bool) -> None:
        """INFERRED resource: the school's amendment records in iSAMS style."""
        mis_of = {p.id: p.mis_id for p in self.school.pupils}
        chosen = sorted(
            (a for a in self.school.amendments if start <= a.date <= end),
            key=lambda a: (
                a.date,
                a.session.value,
                mis_of.get(a.pupil_id, ""),
                a.amended_at or datetime.min.replace(tzinfo=LONDON),
            ),
        )
        for index, amendment in enumerate(chosen):
            ident = self._row_id(
                "audit",
                amendment.pupil_id,
                amendment.date,
                amendment.session.value,
                amendment.amended_at,
                amendment.amended_code,
            )
            element = etree.SubElement(section, "RegistrationAudit", Id=str(ident))
            values = self._audit_values(amendment, mis_of)
            if corrupt and index == 0:
                values["AmendedCode"] = "QQ"
                self.corrupted.append(
                    Corruption(
                        "RegistrationAudit", f"RegistrationAudit {ident}", "AmendedCode", amendment
                    )
                )
            for tag, value in values.items():
                _child(element, tag, value)

    def _audit_values(
        self, amendment: Amendment, mis_of: Mapping[str, str]
    ) -> dict[str, str | None]:
        return {
            "PupilId": mis_of.get(amendment.pupil_id, amendment.pupil_id.split(":", 1)[-1]),
            "RegistrationDateTime": self._session_time(amendment.date, amendment.session).isoformat(
                timespec="seconds"
            ),
            "OriginalCode": amendment.original_code,
            "AmendedCode": amendment.amended_code,
            "Reason": amendment.reason,
            "AmendedDateTime": _local_naive(amendment.amended_at),
            "AmendedBy": amendment.amended_by_name,
            "AmendedByPosition": amendment.amended_by_position,
        }

    def _terms(self, terms: etree._Element) -> None:
        for index, term in enumerate(
            sorted(self.school.calendar.terms, key=lambda t: t.start), start=1
        ):
            element = etree.SubElement(terms, "Term", Id=str(index))
            _child(element, "SchoolYear", str(school_year_of(term.start)))
            _child(element, "Name", _term_name(term.start))
            _child(element, "StartDate", _iso_midnight(term.start))
            _child(element, "FinishDate", _iso_midnight(term.end))


# -- helpers ----------------------------------------------------------------------------------


def _child(parent: etree._Element, tag: str, value: str | None) -> None:
    if value is not None:
        etree.SubElement(parent, tag).text = value


def _iso_midnight(day: date | None) -> str | None:
    return None if day is None else f"{day.isoformat()}T00:00:00"


def _local_naive(instant: datetime | None) -> str | None:
    """An instant as iSAMS writes it: Europe/London wall time, no offset."""
    if instant is None:
        return None
    return instant.astimezone(LONDON).replace(tzinfo=None).isoformat()


def _term_name(start: date) -> str:
    return "Autumn" if start.month >= 8 else "Spring" if start.month <= 3 else "Summer"


def _date_filter(filters: etree._Element | None, name: str) -> tuple[date, date] | str | None:
    """The StartDate/EndDate of filter ``name``: None when absent, a .NET-style error text when
    unreadable. Accepts the official form (``<Registration><RegistrationStatus .../>``) and the
    variants seen in the wild (``<RegistrationManager>``, ``<RegistrationStatuses>`` wrappers,
    lower-case attribute names); unknown nodes are ignored."""
    if filters is None:
        return None
    for element in filters.iter(name):
        attrs = {str(k).lower(): str(v) for k, v in element.attrib.items()}
        if "startdate" not in attrs or "enddate" not in attrs:
            continue
        try:
            return (
                date.fromisoformat(attrs["startdate"][:10]),
                date.fromisoformat(attrs["enddate"][:10]),
            )
        except ValueError:
            return "String was not recognized as a valid DateTime."
    return None
