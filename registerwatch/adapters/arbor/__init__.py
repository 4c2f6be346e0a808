"""Arbor-style MIS adapter (REST v2, HTTP Basic): see docs/adapters/arbor.md.

``ArborAdapter`` wires the folder together: ``client.py`` (the vendor's facts, auth, paging
and failure classes), ``streams.py`` (one class per resource) and ``mapping.py`` (vendor
fields to schema values).

What it reads (paths INFERRED where docs/adapters/arbor.md says so):

- pupils: ``students`` + each student's ``person``; ``upn-assignments``,
  ``academic-level-memberships``, ``registration-form-memberships``,
  ``sen-status-assignments`` and ``in-care-status-assignments``, listed once and joined by
  student href; the stubs they name (persons, forms, years...) are fetched ``workers`` at a
  time. An empty ``students`` list is a permission gap (Arbor answers a missing
  permission with an empty 200), never "a school with no pupils": ``FatalApiError``.
- registers: ``attendance-registers`` in the window (``filters.startDatetime.from/to``).
- marks: ``attendance-records`` in the window, checked against ``attendance-records/changelog``
  (see ``_records_in``); session from the register's type. A window longer than
  ``listing_window_days`` is listed as consecutive shorter windows, ``workers`` at a time.
- amendments: ``attendance-record-amendments``, an INFERRED resource; 404 means the MIS exposes
  no amendment records (``exposes_amendments`` False) and sync falls back to diffing.
- calendar: ``terms`` (terms only).

Listings are offset-paged, so data that changes while a listing is read can shift items
between pages. Two guards make the result correct rather than merely plausible: an item that
comes back on a later page makes the whole listing be read again (``ListingChangedError``); and
a marks listing is compared with the changelog (every record carries ``revisionId``) so that a
stale cached answer, or a change the paging could not see, is re-pulled and, failing that,
patched from the changelog's own copies of the changed records.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import date, timedelta
from typing import Any

import requests

from registerwatch.adapters.arbor.client import (
    DEFAULT_PAGE_SIZE,
    FACTS,
    ArborClient,
    ArborNotFoundError,
    ArborPaginator,
    resource_path,
)
from registerwatch.adapters.arbor.mapping import MarkKey, arbor_value, stub_href
from registerwatch.adapters.arbor.streams import (
    AmendmentsStream,
    MarksStream,
    PupilsStream,
    RegistersStream,
    StudentRelations,
    TermsStream,
)
from registerwatch.adapters.base import (
    DEFAULT_TIMEOUT,
    AdapterBase,
    Batch,
    ListingChangedError,
    Quarantined,
    RetryPolicy,
    drop_repeats,
    quarantine,
    read_consistently,
)
from registerwatch.errors import ConfigError, FatalApiError, InvalidRecord
from registerwatch.logging import get_logger
from registerwatch.schema import Amendment, Calendar, Mark, Pupil, Register

log = get_logger(__name__)

# Reads of a marks listing that the changelog says is behind, before patching from the
# changelog instead (a cache that stays stale must not stop the run).
MAX_FRESH_ATTEMPTS = 2

# Requests in flight at once for independent reads: the stubs a school's pupils name (their
# persons, forms, years; see ArborClient.prefetch) and the date windows a long marks listing is
# split into (see _listed_records). Small, so a school's MIS sees a handful at a time.
DEFAULT_WORKERS = 8
# A marks window longer than this many days is listed as consecutive windows of this length,
# ``workers`` at a time (a first sync's school year so far: a dozen or more listings).
LISTING_WINDOW_DAYS = 14

# The per-student resources joined onto ``students``: StudentRelations attribute -> path.
STUDENT_RELATIONS = {
    "upns": "upn-assignments",
    "levels": "academic-level-memberships",
    "forms": "registration-form-memberships",
    "sen": "sen-status-assignments",
    "in_care": "in-care-status-assignments",
}


class ArborAdapter(AdapterBase):
    """Reads one Arbor school into the common schema. See the module docstring."""

    facts = FACTS

    def __init__(
        self,
        *,
        school_id: str,
        base_url: str,
        credentials: Mapping[str, Any],
        credential_hint: str = FACTS.credential_hint,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        page_size: int = DEFAULT_PAGE_SIZE,
        session: requests.Session | None = None,
        max_records_per_page: int | None = None,
        workers: int = DEFAULT_WORKERS,
        listing_window_days: int = LISTING_WINDOW_DAYS,
    ) -> None:
        missing = [key for key in ("username", "password") if not credentials.get(key)]
        if missing:
            raise ConfigError(
                f"school {school_id!r}: the Arbor credentials have no "
                f"{' or '.join(missing)} — set {credential_hint}"
            )
        self.school_id = school_id
        self.client = ArborClient(
            base_url,
            school_id=school_id,
            username=_secret(credentials["username"]),
            password=_secret(credentials["password"]),
            credential_hint=credential_hint,
            timeout=timeout,
            retry=retry,
            sleep=sleep,
            session=session,
            page_size=page_size,
            max_records_per_page=max_records_per_page,
        )
        self.workers = workers
        self.listing_window_days = listing_window_days
        self._exposes_amendments: bool | None = None
        # The registers registers() listed, by window, for marks() over the same window to
        # resolve its records against in the same sync rather than list them again.
        self._registers_listed: dict[tuple[date, date], list[Any]] = {}
        self._mark_table_loaded = False
        # None until asked; False once Arbor answered 404 for attendance-records/changelog.
        self.changelog_available: bool | None = None
        # Terms that would not map on the last calendar() call (calendar() returns no Batch).
        self.calendar_quarantined: list[Quarantined] = []

    # -- the protocol -----------------------------------------------------------------------

    def begin_sync(self, as_of: date) -> None:
        super().begin_sync(as_of)
        self._registers_listed.clear()

    @property
    def exposes_amendments(self) -> bool:
        """True when the (INFERRED) amendment resource answers; asked once per adapter."""
        if self._exposes_amendments is None:
            try:
                self.client.list_page(AmendmentsStream.path, page_size=1)
                self._exposes_amendments = True
            except ArborNotFoundError:
                self._exposes_amendments = False
        return self._exposes_amendments

    def pupils(self) -> Batch[Pupil]:
        before = self.client.request_count
        students = self._list_all(PupilsStream.path)
        if not students:
            raise FatalApiError(
                f"school {self.school_id!r}: Arbor returned no students — check the API "
                "user's permission to read students (Arbor answers a missing permission with "
                "an empty list, not an error)"
            )
        relations = StudentRelations(school_id=self.school_id)
        for attribute, path in STUDENT_RELATIONS.items():
            relations.add(attribute, path, self._list_all(path))
        self._prefetch_pupil_stubs(students, relations)
        batch = PupilsStream(
            self.client.resolve, school_id=self.school_id, relations=relations
        ).map_records(students)
        empty_persons = [
            q for q in batch.quarantined if q.field == "person" and "came back empty" in q.reason
        ]
        if len(empty_persons) == len(students):
            raise FatalApiError(
                f"school {self.school_id!r}: Arbor returned empty person records for all "
                f"{len(students)} students — check the API user's permission to read persons"
            )
        batch.quarantined[:0] = relations.quarantined
        batch.requests = self.client.request_count - before
        return batch

    def registers(self, start: date, end: date) -> Batch[Register]:
        before = self.client.request_count
        registers = self._registers_in(start, end)
        self._registers_listed[(start, end)] = registers
        if not registers and self.client.list_page(
            MarksStream.path, _window(start, end), page_size=1
        ):
            raise FatalApiError(
                f"school {self.school_id!r}: Arbor returned no attendance registers for "
                f"{start}..{end} although it has attendance records there — check the API "
                "user's permission to read attendance registers"
            )
        batch = RegistersStream(self.client.resolve, school_id=self.school_id).map_records(
            registers
        )
        batch.requests = self.client.request_count - before
        return batch

    def marks(self, start: date, end: date) -> Batch[Mark]:
        before = self.client.request_count
        self._load_mark_table()
        # Kept (records resolve their register): as registers() listed them in this sync.
        registers = self._registers_listed.pop((start, end), None)
        if registers is None:
            registers = self._registers_in(start, end)
        records = self._records_in(start, end)
        if not records and any(
            isinstance(r, Mapping) and r.get("completedDatetime") for r in registers
        ):
            raise FatalApiError(
                f"school {self.school_id!r}: Arbor returned no attendance records for "
                f"{start}..{end} although registers there were completed — check the API "
                "user's permission to read attendance records"
            )
        if not registers and any(
            isinstance(r, Mapping) and r.get("attendanceRegister") for r in records
        ):
            raise FatalApiError(
                f"school {self.school_id!r}: Arbor returned no attendance registers for "
                f"{start}..{end} although its attendance records name registers — check the "
                "API user's permission to read attendance registers"
            )
        # isRedundant (OBSERVED property; meaning INFERRED): a record superseded by another
        # for the same session. Only the live one is the register entry.
        live = [
            r
            for r in records
            if not ((type(r) is dict or isinstance(r, Mapping)) and r.get("isRedundant"))
        ]
        batch = MarksStream(self.client.resolve, school_id=self.school_id).map_records(live)
        if batch.sources:
            # Only a pull whose keys repeat has anything to drop: map_records remembers the
            # raw records of every repeated key (and only those) in batch.sources.
            drop_repeats(batch)
        batch.requests = self.client.request_count - before
        return batch

    def amendments(self, start: date, end: date) -> Batch[Amendment]:
        before = self.client.request_count
        if not self.exposes_amendments:
            return Batch(requests=self.client.request_count - before)
        self._load_mark_table()
        rows = self._list_all(AmendmentsStream.path, _window(start, end))
        batch = AmendmentsStream(self.client.resolve, school_id=self.school_id).map_records(rows)
        batch.requests = self.client.request_count - before
        return batch

    def calendar(self) -> Calendar | None:
        try:
            rows = self._list_all(TermsStream.path)
        except ArborNotFoundError:
            return None
        batch = TermsStream(self.client.resolve, school_id=self.school_id).map_records(rows)
        self.calendar_quarantined = batch.quarantined
        if not batch.records:
            return None
        return Calendar(
            school_id=self.school_id, terms=sorted(batch.records, key=lambda term: term.start)
        )

    def changes_since(self, revision: int) -> tuple[set[MarkKey], int]:
        """Keys of the marks created, changed or deleted after ``revision``, and the newest
        revision seen (``revision`` itself when nothing changed). Raises ``ArborNotFoundError``
        when Arbor serves no changelog: sync then re-pulls its trailing window."""
        stream = MarksStream(self.client.resolve, school_id=self.school_id)
        keys: set[MarkKey] = set()
        newest = revision
        for position, change in enumerate(
            self.client.changelog(MarksStream.path, revision), start=1
        ):
            if isinstance(change.get("toRevision"), int):
                newest = max(newest, change["toRevision"])
            changed = change.get("changedObject")
            ref = stream.record_ref(changed, str(position))
            try:
                if not isinstance(changed, Mapping):
                    raise InvalidRecord("change has no changedObject", record_ref=ref)
                keys.add(stream.key(changed, ref))
            except InvalidRecord as exc:
                # Sync still re-pulls its trailing window; the entry is visible in the log.
                quarantine(
                    exc,
                    changed,
                    vendor=self.vendor,
                    school=self.school_id,
                    resource=f"{MarksStream.path}/changelog",
                    record_ref=ref,
                )
        return keys, newest

    def close(self) -> None:
        self.client.http.close()

    # -- listings ---------------------------------------------------------------------------

    def _list_all(
        self, path: str, params: Mapping[str, Any] | None = None, *, keep: bool = False
    ) -> list[Any]:
        """Every item of a listing, read again from page 1 when items moved between pages."""
        return read_consistently(
            lambda: list(self.client.paginate(path, params, keep=keep)),
            what=f"school {self.school_id!r}: arbor {path}",
            vendor=self.vendor,
            school=self.school_id,
        )

    def _prefetch_pupil_stubs(self, students: list[Any], relations: StudentRelations) -> None:
        """Fetch, several at a time, the objects the pupils' mapping will resolve one by one:
        persons, forms, year groups and SEN statuses, then the persons' genders and the
        years' curriculum grades (see ``ArborClient.prefetch``)."""
        first = [
            *_stub_hrefs(students, "person"),
            *_stub_hrefs(_rows(relations.forms), "registrationForm"),
            *_stub_hrefs(_rows(relations.levels), "academicLevel"),
            *_stub_hrefs(_rows(relations.sen), "senStatus"),
        ]
        self.client.prefetch(first, workers=self.workers)
        fetched = [self.client.cached(href) for href in first]
        self.client.prefetch(
            [
                *_stub_hrefs(fetched, "gender"),
                *_stub_hrefs(fetched, "curriculumGrade"),
            ],
            workers=self.workers,
        )

    def _registers_in(self, start: date, end: date) -> list[Any]:
        return self._list_all(RegistersStream.path, _window(start, end), keep=True)

    def _load_mark_table(self) -> None:
        """The AttendanceMark table, cached so record stubs resolve without a request each."""
        if not self._mark_table_loaded:
            self._list_all("attendance-marks", keep=True)
            self._mark_table_loaded = True

    def _records_in(self, start: date, end: date) -> list[Any]:
        """The window's attendance records, as of the changelog's latest revision.

        A listing is behind when the changelog holds a change to one of the window's records
        that the listing does not show (an older ``revisionId``, a record missing, a deleted
        one still there): a stale cached answer, or a change made while paging. Such a
        listing is read again; if it is still behind, the changelog's own copies of the
        changed records are applied to it.
        """
        records = self._listed_records(start, end)
        behind: dict[str, dict[str, Any]] = {}
        for attempt in range(1, MAX_FRESH_ATTEMPTS + 1):
            behind = self._unreflected(records, start, end)
            if not behind:
                return records
            log.warning(
                "adapter.listing_behind_changelog",
                vendor=self.vendor,
                school=self.school_id,
                resource=MarksStream.path,
                changes=len(behind),
                attempt=attempt,
            )
            if attempt < MAX_FRESH_ATTEMPTS:
                records = self._listed_records(start, end)
        log.warning(
            "adapter.listing_patched_from_changelog",
            vendor=self.vendor,
            school=self.school_id,
            resource=MarksStream.path,
            changes=len(behind),
        )
        return _patch(records, behind)

    def _listed_records(self, start: date, end: date) -> list[Any]:
        """The window's attendance records as listed: one listing, or (a window longer than
        ``listing_window_days``, and more than one worker) one listing per consecutive
        sub-window, ``workers`` at a time. A record's ``startDatetime`` puts it in exactly one
        sub-window, and each listing keeps its own consistency checks (``_list_all``)."""
        windows = _split(start, end, self.listing_window_days)
        if self.workers <= 1 or len(windows) == 1:
            return self._list_all(MarksStream.path, _window(start, end))
        parts = self.client.in_parallel(
            [
                functools.partial(self._list_all, MarksStream.path, _window(*window))
                for window in windows
            ],
            workers=self.workers,
        )
        return [record for part in parts for record in part]

    def _unreflected(self, records: list[Any], start: date, end: date) -> dict[str, dict[str, Any]]:
        """Changelog entries (last per record) that the listing does not reflect."""
        listed: dict[str, int] = {}
        for record in records:
            # type() first: a year's records are dicts, and an ABC's isinstance is slow
            if type(record) is dict or isinstance(record, Mapping):
                href, revision = record.get("href"), record.get("revisionId")
                if isinstance(href, str) and isinstance(revision, int):
                    listed[resource_path(href)] = revision
        if not listed or self.changelog_available is False:
            return {}  # nothing to compare with
        try:
            changes = list(self.client.changelog(MarksStream.path, max(listed.values())))
        except ArborNotFoundError:
            self.changelog_available = False
            log.info(
                "adapter.changelog_unavailable",
                vendor=self.vendor,
                school=self.school_id,
                resource=MarksStream.path,
            )
            return {}
        self.changelog_available = True
        final: dict[str, dict[str, Any]] = {}
        for change in changes:
            changed, revision = change.get("changedObject"), change.get("toRevision")
            if not (
                isinstance(changed, Mapping)
                and isinstance(changed.get("href"), str)
                and isinstance(revision, int)
                and _in_window(changed, start, end)
            ):
                continue
            key = resource_path(changed["href"])
            if key not in final or final[key]["toRevision"] <= revision:
                final[key] = change
        behind = {}
        for key, change in final.items():
            seen = listed.get(key)
            if change.get("changeType") == "delete":
                if seen is not None and seen < change["toRevision"]:
                    behind[key] = change
            elif seen is None or seen < change["toRevision"]:
                behind[key] = change
        return behind


def _rows(grouped: Mapping[str, list[Mapping[str, Any]]]) -> list[Mapping[str, Any]]:
    return [row for rows in grouped.values() for row in rows]


def _stub_hrefs(records: Iterable[Any], key: str) -> list[str]:
    """The hrefs of well-formed ``key`` stubs in ``records`` (others are left to mapping,
    which quarantines them)."""
    return [href for r in records if isinstance(r, Mapping) and (href := stub_href(r.get(key)))]


def _secret(value: Any) -> str:
    """A credential as text: config hands over pydantic ``SecretStr`` values, tests plain str."""
    reveal = getattr(value, "get_secret_value", None)
    return str(reveal() if callable(reveal) else value)


def _window(start: date, end: date) -> dict[str, str]:
    """Arbor filters for sessions starting on ``start``..``end`` inclusive (local times)."""
    return {
        f"filters.{MarksStream.replication_key}.from": f"{start.isoformat()} 00:00:00",
        f"filters.{MarksStream.replication_key}.to": f"{end.isoformat()} 23:59:59",
    }


def _split(start: date, end: date, days: int) -> list[tuple[date, date]]:
    """``start``..``end`` as consecutive windows of at most ``days`` days, in order."""
    windows = []
    while start <= end:
        last = min(end, start + timedelta(days=max(1, days) - 1))
        windows.append((start, last))
        start = last + timedelta(days=1)
    return windows


def _in_window(record: Mapping[str, Any], start: date, end: date) -> bool:
    try:
        day = date.fromisoformat(str(arbor_value(record.get("startDatetime")))[:10])
    except ValueError:
        return False
    return start <= day <= end


def _patch(records: list[Any], changes: Mapping[str, Mapping[str, Any]]) -> list[Any]:
    """The listing with the changelog's final state of each changed record applied."""
    by_key: dict[str, Any] = {}
    unkeyed = []
    for record in records:
        if isinstance(record, Mapping) and isinstance(record.get("href"), str):
            by_key[resource_path(record["href"])] = record
        else:
            unkeyed.append(record)
    for key, change in changes.items():
        if change.get("changeType") == "delete":
            by_key.pop(key, None)
        else:
            by_key[key] = change["changedObject"]
    return [*by_key.values(), *unkeyed]


__all__ = [
    "FACTS",
    "ArborAdapter",
    "ArborClient",
    "ArborNotFoundError",
    "ArborPaginator",
    "ListingChangedError",
]
