"""The Arbor simulator's HTTP face: routing, Basic auth, list paging and filters, the
changelog, the attendance records that change between syncs, and the vendor-shaped faults."""

from __future__ import annotations

import base64
import binascii
import copy
import hmac
import json
from datetime import date
from typing import Any

from registerwatch.schema import Mark, Session
from registerwatch.simulator.arbor.data import ArborData, MarkKey
from registerwatch.simulator.arbor.protocol import (
    AMENDMENTS,
    BASELINE_REVISION,
    CHANGELOG_RESOURCES,
    KINDS,
    MALFORMATIONS,
    RESOURCE_ALIASES,
    SCHOOL_DEFINED_MARK,
    dashed,
    error_envelope,
    href,
    stub,
)
from registerwatch.simulator.arbor.query import (
    BadQuery,
    api_parts,
    filters_of,
    id_of,
    matches,
    paging,
)
from registerwatch.simulator.common import page_of
from registerwatch.simulator.model import GeneratedSchool
from registerwatch.simulator.server import FaultInjector, FaultKind, Request, Response


class ArborApp(ArborData):
    """Serves ``school`` under ``/rest-v2/`` (or ``/{anything}/rest-v2/``) in Arbor's style."""

    vendor = "arbor"

    def __init__(
        self,
        school: GeneratedSchool,
        faults: FaultInjector | None = None,
        *,
        serve_amendments: bool = True,
        username: str = "registerwatch",
        password: str = "simulator",
    ) -> None:
        super().__init__(school, faults, serve_amendments=serve_amendments)
        self._credentials = (username, password)
        self.revision = BASELINE_REVISION
        # The snapshot STALE_CACHE serves: the marks, ids and revisions the school started with.
        self._initial_marks: list[Mark] = list(school.marks)
        self._initial_book = self._book.copy()
        self._changes: list[dict[str, Any]] = []  # changelog entries after the baseline
        self.corrupted: list[str] = []  # hrefs MALFORMED damaged, for tests to check against
        self._views: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        # Rendered list pages, by view key, page number and size: a page is serialised once,
        # as a real MIS caches a query's answer. Each keeps the view list it was cut from and
        # that list's length, so a view rebuilt or grown since (tests append to ``_static``
        # and drop views) is rendered afresh.
        self._pages: dict[tuple[Any, ...], tuple[list[dict[str, Any]], int, bytes]] = {}
        self._baseline: list[dict[str, Any]] | None = None  # the changelog's revision 1
        self._by_href: dict[str, tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]] = {}

    # -- attendance records: the part that changes --------------------------------------------

    def _records(self, stale: bool) -> list[dict[str, Any]]:
        """Every record, most recently changed first (INFERRED order), cached per revision."""
        cache_key = ("records", "stale" if stale else self.revision)
        if cache_key not in self._views:
            marks, book = (
                (self._initial_marks, self._initial_book)
                if stale
                else (self.school.marks, self._book)
            )
            twin = ("records", BASELINE_REVISION if stale else "stale")
            if self.revision == BASELINE_REVISION and twin in self._views and self._unedited():
                # Nothing has changed since the start: the snapshot is the current list.
                self._views[cache_key] = self._views[twin]
            else:
                rendered = [self._record(mark, book) for mark in marks]
                rendered.sort(key=lambda r: (r["revisionId"], id_of(r)), reverse=True)
                self._views[cache_key] = rendered
        return self._views[cache_key]

    def _unedited(self) -> bool:
        """The school's marks are still the very objects the app started with."""
        marks, initial = self.school.marks, self._initial_marks
        return len(marks) == len(initial) and all(
            a is b for a, b in zip(marks, initial, strict=True)
        )

    def set_mark(self, pupil_id: str, day: date, session: Session, code: str) -> None:
        with self.lock:
            key = (pupil_id, day, Session(session))
            created = key not in self._book.ids
            super().set_mark(pupil_id, day, session, code)
            self._log_change("create" if created else "update", key)

    def delete_mark(self, pupil_id: str, day: date, session: Session) -> bool:
        with self.lock:
            key = (pupil_id, day, Session(session))
            before = self.school.marks_by_key().get(key)
            if before is None or not super().delete_mark(pupil_id, day, session):
                return False
            self.revision += 1
            self._book.revisions[key] = self.revision
            gone = self._record(before, self._book)
            del self._book.ids[key], self._book.revisions[key]
            self._append_change("delete", gone)
            return True

    def _log_change(self, change_type: str, key: MarkKey) -> None:
        self.revision += 1
        self._book.assign(key, self.revision)
        mark = self.school.marks_by_key()[key]
        self._append_change(change_type, self._record(mark, self._book))

    def _append_change(self, change_type: str, record: dict[str, Any]) -> None:
        self._changes.append(
            {
                "changedObject": record,
                "changeType": change_type,
                "fromRevision": self.revision - 1,
                "toRevision": self.revision,
            }
        )
        # Views keyed by an older revision can never be asked for again.
        self._views = {k: v for k, v in self._views.items() if k[1] in ("static", "stale")}
        self._pages = {k: v for k, v in self._pages.items() if k[1] in ("static", "stale")}

    def _changelog(self, after: int = 0) -> list[dict[str, Any]]:
        """The changes after revision ``after``: the baseline (every record the school started
        with, revision 1) is rendered once, and only for a reader asking from before it."""
        if after >= BASELINE_REVISION:
            return self._changes
        if self._baseline is None:
            self._baseline = [
                {
                    "changedObject": record,
                    "changeType": "create",
                    "fromRevision": 0,
                    "toRevision": BASELINE_REVISION,
                }
                for record in sorted(self._records(stale=True), key=id_of)
            ]
        return self._baseline + self._changes

    # -- HTTP ---------------------------------------------------------------------------------

    def route(self, request: Request) -> Response:
        parts = api_parts(request.path)
        if parts is None:
            return error_envelope(
                404, "Not Found", "ResourceNotFoundException", f"No API at {request.path}"
            )
        if not self._authorised(request):
            return error_envelope(
                401,
                "Unauthorized",
                "AuthenticationException",
                "Invalid application credentials",
                **{"WWW-Authenticate": 'Basic realm="Arbor"'},
            )
        if request.method != "GET":
            return error_envelope(
                405,
                "Method Not Allowed",
                "MethodNotAllowedException",
                "The simulator serves reads only",
            )
        resource = dashed(parts[0])
        resource = RESOURCE_ALIASES.get(resource, resource)
        if resource not in KINDS or (resource == AMENDMENTS and not self.serve_amendments):
            return error_envelope(
                404, "Not Found", "ResourceNotFoundException", f"Invalid resource name: {parts[0]}"
            )
        try:
            if len(parts) == 1:
                return self._list(request, resource)
            if len(parts) == 2 and parts[1] == "changelog" and resource in CHANGELOG_RESOURCES:
                return self._changelog_response(request)
            if len(parts) == 2:
                return self._item(request, resource, parts[1])
        except BadQuery as exc:
            return error_envelope(400, "Bad Request", "InvalidQueryException", str(exc))
        return error_envelope(
            404, "Not Found", "ResourceNotFoundException", f"No such path: {request.path}"
        )

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(token, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(user, self._credentials[0]) and hmac.compare_digest(
            password, self._credentials[1]
        )

    def _item(self, request: Request, resource: str, ident: str) -> Response:
        kind = KINDS[resource]
        if self.faults.take(FaultKind.EMPTY_PERMISSION, request.path):
            return Response.json({})  # no access: a silent empty object (OBSERVED in Arbor's SDK)
        items = (
            self._records(stale=False)
            if resource == "attendance-records"
            else self._static[resource]
        )
        item = self._indexed(resource, items).get(href(resource, ident))
        if item is not None:
            return Response.json({kind.single: item})
        return error_envelope(
            404, "Not Found", "ResourceNotFoundException", f"{kind.entity} {ident} not found"
        )

    def _indexed(self, resource: str, items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """``items`` by href (a school's persons are fetched one by one: no scan per request),
        rebuilt when the list is another or has grown."""
        cached = self._by_href.get(resource)
        if cached is None or cached[0] is not items or len(cached[1]) > len(items):
            cached = (items, {})
        index = cached[1]
        if len(index) != len(items):
            index.clear()
            for item in items:
                index.setdefault(item["href"], item)  # the first, as the scan it replaces
            self._by_href[resource] = cached
        return index

    def _list(self, request: Request, resource: str) -> Response:
        kind = KINDS[resource]
        number, size = paging(request)
        if self.faults.take(FaultKind.EMPTY_PERMISSION, request.path):
            return Response.json({kind.plural: []})
        stale = (
            resource == "attendance-records"
            and self.faults.take(FaultKind.STALE_CACHE, request.path) is not None
        )
        view, items = self._filtered(request, resource, stale)
        page = page_of(items, number, size)
        if (
            resource in MALFORMATIONS
            and page
            and self.faults.take(FaultKind.MALFORMED, request.path)
        ):
            response = Response.json({kind.plural: self._malform(resource, page)})
        else:
            response = Response(body=self._page_body(view, items, number, size, kind.plural))
        if (
            resource == "attendance-records"
            and number == 1
            and items
            and self.faults.take(FaultKind.CHANGING_PAGES, request.path)
        ):
            self._resave_last(items)
        return response

    def _page_body(
        self,
        view: tuple[Any, ...],
        items: list[dict[str, Any]],
        number: int,
        size: int,
        root: str,
    ) -> bytes:
        """The JSON of page ``number`` of a view, serialised once (``Response.json``'s bytes)."""
        key = (*view, number, size)
        cached = self._pages.get(key)
        if cached is None or cached[0] is not items or cached[1] != len(items):
            body = json.dumps({root: page_of(items, number, size)}, default=str).encode()
            cached = (items, len(items), body)
            self._pages[key] = cached
        return cached[2]

    def _filtered(
        self, request: Request, resource: str, stale: bool
    ) -> tuple[tuple[Any, ...], list[dict[str, Any]]]:
        """The view's key and its items: the resource's list under the query's filters."""
        filters = filters_of(request, KINDS[resource])
        version = (
            ("stale" if stale else self.revision) if resource == "attendance-records" else "static"
        )
        cache_key = (resource, version, tuple(filters))
        if cache_key not in self._views:
            items = (
                self._records(stale) if resource == "attendance-records" else self._static[resource]
            )
            for prop, operator, value in filters:
                try:
                    items = [i for i in items if matches(i.get(prop), operator, value)]
                except ValueError:
                    raise BadQuery(
                        f"filters.{prop}.{operator}: {value!r} is not a date (Y-m-d or Y-m-d H:i:s)"
                    ) from None
            self._views[cache_key] = items
        return cache_key, self._views[cache_key]

    def _malform(self, resource: str, page: list[dict[str, Any]]) -> list[dict[str, Any]]:
        page = copy.deepcopy(page)
        for record, (field, damage) in zip(page, MALFORMATIONS[resource], strict=False):
            self.corrupted.append(record["href"])
            if damage == "bad date":
                record[field] = "2024-02-30 08:45:00" if "Datetime" in field else "2024-02-30"
            elif damage == "unknown code":
                record[field] = stub("attendance-marks", SCHOOL_DEFINED_MARK[0])
            else:
                record.pop(field, None)
        return page

    def _resave_last(self, items: list[dict[str, Any]]) -> None:
        """A teacher saves a record again mid-listing: it jumps to the front of the order."""
        ident = id_of(items[-1])
        for key, record_id in self._book.ids.items():
            if record_id == ident:
                mark = self.school.marks_by_key()[key]
                self.set_mark(mark.pupil_id, mark.date, mark.session, mark.code)
                return

    def _changelog_response(self, request: Request) -> Response:
        number, size = paging(request)
        try:
            low = int(request.arg("from-revision", "0") or 0)
            high = int(request.arg("to-revision", "0") or 0) or self.revision
        except ValueError:
            raise BadQuery("from-revision and to-revision must be integers") from None
        changes = [c for c in self._changelog(low) if low < c["toRevision"] <= high]
        return Response.json({"changes": page_of(changes, number, size)})
