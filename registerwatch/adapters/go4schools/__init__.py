"""GO 4 Schools-style adapter ("customer v1"): see docs/adapters/go4schools.md.

``Go4SchoolsAdapter`` is what sync asks of a GO 4 Schools-style MIS (the Adapter protocol); it
wires ``client.py`` (the vendor's facts, auth, paging and failure classes), ``streams.py`` (one
class per resource) and ``mapping.py`` (vendor fields to schema values).

What it can and cannot give:
- pupils: ``students`` + ``students/education-details`` for one academic year;
- marks: one request per date (plus its cursor pages) — only weekdays are asked, or the dates
  sync passes (its school days); ``day_workers`` dates (default 4) are asked at a time, each
  on a connection of its own (``DayReader``), and mapped in date order;
- registers: NOT exposed by GO 4 Schools (no register-taken time or taker). ``registers()``
  returns nothing and ``exposes_registers`` is False, so REG002 (register-not-saved) and REG003
  (register-closed-late) cannot be checked for these schools; REG001 still can, from marks;
- amendments: INFERRED resource, used only when the MIS answers it (probed once; a 404 means
  not exposed, and sync falls back to the amendments it observes by diffing);
- calendar: ``timetables/calendar`` rows rebuilt into terms and closures (meaning INFERRED).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import closing
from dataclasses import replace
from datetime import date, timedelta
from typing import Any, TypeVar

import structlog

from registerwatch.adapters.base import (
    DEFAULT_TIMEOUT,
    AdapterBase,
    Batch,
    Quarantined,
    RetryPolicy,
    drop_repeats,
)
from registerwatch.adapters.go4schools.client import (
    FACTS,
    CursorPaginator,
    DayReader,
    Go4SchoolsClient,
    ResourceNotFoundError,
    academic_year_of,
    normalise_academic_year,
)
from registerwatch.adapters.go4schools.mapping import CodeTable
from registerwatch.adapters.go4schools.streams import (
    AmendmentsStream,
    CalendarStream,
    CodesStream,
    PupilsStream,
    SessionMarksStream,
)
from registerwatch.calendar import SchoolCalendar
from registerwatch.errors import (
    CalendarError,
    ConfigError,
    FatalApiError,
    PagingError,
    PermissionGapError,
)
from registerwatch.schema import Amendment, Calendar, Mark, Pupil, Register

log = structlog.get_logger("registerwatch.adapters.go4schools")

T = TypeVar("T")
_UNSET: Any = object()

# Dates whose marks are fetched at the same time, per school. INFERRED: GO 4 Schools publishes
# no concurrency limit (and answers bursts with 429s, which are retried with backoff); four
# keeps a school's first sync from waiting on one round trip at a time without a burst.
DAY_WORKERS = 4


class Go4SchoolsAdapter(AdapterBase):
    """One school's GO 4 Schools-style API, mapped to the common schema."""

    facts = FACTS

    def __init__(
        self,
        *,
        school_id: str,
        base_url: str,
        credentials: Mapping[str, str],
        credential_hint: str = FACTS.credential_hint,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        academic_year: str | None = None,
        max_records_per_page: int | None = None,
        day_workers: int = DAY_WORKERS,
    ) -> None:
        api_key = (credentials.get("api_key") or "").strip()
        if not api_key:
            raise ConfigError(
                f"school {school_id!r}: no GO 4 Schools API key was given — set {credential_hint}"
            )
        try:
            self.academic_year = (
                normalise_academic_year(academic_year) if academic_year is not None else None
            )
        except ValueError as exc:
            raise ConfigError(f"school {school_id!r}: {exc}") from None
        if day_workers < 1:
            raise ConfigError(f"school {school_id!r}: day_workers must be at least 1")
        self.school_id = school_id

        def make_client() -> Go4SchoolsClient:
            return Go4SchoolsClient(
                base_url,
                school_id=school_id,
                api_key=api_key,
                credential_hint=credential_hint,
                timeout=timeout,
                retry=retry,
                sleep=sleep,
                max_records_per_page=max_records_per_page,
            )

        self.client = make_client()
        # Per-date marks and amendments, a few dates at a time (see DayReader).
        self.days = DayReader(self.client, make_client, day_workers)
        self._codes: dict[str, CodeTable] = {}
        self._school: Any = _UNSET
        self._calendar: Any = _UNSET
        self._exposes_amendments: bool | None = None
        # The calendar is one object, not a Batch: rows it could not read are kept here.
        self.calendar_quarantined: list[Quarantined] = []

    def __repr__(self) -> str:
        return f"Go4SchoolsAdapter(school_id={self.school_id!r}, base_url={self.client.base_url!r})"

    # -- what the MIS offers -------------------------------------------------------------------

    @property
    def exposes_amendments(self) -> bool:
        """Does this MIS answer the (INFERRED) amendment history resource? Asked once.

        The probe reads one date's amendments; 404 means the resource is not offered, and sync
        then relies on the amendments it observes by diffing pulls.
        """
        if self._exposes_amendments is None:
            year = self._current_year()
            probe = date(int(year) - 1, 9, 1)
            try:
                self.client.get_json(
                    self.client.year_path(
                        year, AmendmentsStream.path.format(date=probe.isoformat())
                    )
                )
                self._exposes_amendments = True
            except ResourceNotFoundError:
                self._exposes_amendments = False
            log.info(
                "adapter.amendments_probed",
                vendor=self.vendor,
                school=self.school_id,
                exposed=self._exposes_amendments,
            )
        return self._exposes_amendments

    @exposes_amendments.setter
    def exposes_amendments(self, value: bool) -> None:  # config may switch the probe off
        self._exposes_amendments = value

    # -- the Adapter protocol ------------------------------------------------------------------

    def pupils(self) -> Batch[Pupil]:
        before = self.client.request_count
        year = self._current_year()
        students = self.client.collect(self.client.year_path(year, PupilsStream.path))
        if not students:
            raise PermissionGapError(
                f"school {self.school_id!r}: GO 4 Schools returned no students for academic "
                f"year {year} (HTTP 200, empty list). A school always has pupils, so the API key "
                "most likely lacks the Students permission (or the academic year is wrong): ask "
                "the school's GO 4 Schools data officer to grant it"
            )
        details = self.client.collect(self.client.year_path(year, PupilsStream.details_path))
        if not details:
            raise PermissionGapError(
                f"school {self.school_id!r}: GO 4 Schools returned {len(students)} students but "
                f"no education details for academic year {year} (HTTP 200, empty list): the API "
                "key most likely lacks the education-details permission; ask the school's GO 4 "
                "Schools data officer to grant it"
            )
        batch = PupilsStream(self.school_id).map(students, details)
        batch.requests = self.client.request_count - before
        self._fetched("students", batch)
        return batch

    def registers(self, start: date, end: date) -> Batch[Register]:
        # Not exposed by the vendor (see module docstring): nothing to read, nothing to guess.
        return Batch()

    def marks(self, start: date, end: date, dates: Iterable[date] | None = None) -> Batch[Mark]:
        """Marks for each date in [start, end]: ``dates`` if given (sync's school days), else
        every weekday. One request per date, as the API requires."""
        days = self._days(start, end, dates)
        before = self.days.request_count
        batch: Batch[Mark] = Batch()
        empty: list[date] = []
        unmarked = 0
        years = [self._year_for(day) for day in days]
        # One stream per year (its caches span the days), its code table read before the marks.
        streams = {
            year: SessionMarksStream(self.school_id, self._code_table(year))
            for year in dict.fromkeys(years)
        }
        paths = [
            self.client.year_path(year, SessionMarksStream.path.format(date=day.isoformat()))
            for day, year in zip(days, years, strict=True)
        ]
        with closing(self.days.collect_each(paths)) as pages:
            for day, year, rows in zip(days, years, pages, strict=False):
                if not rows:
                    empty.append(day)
                mapped, blank = streams[year].map(rows, day)
                unmarked += blank
                batch.extend(mapped)
        if batch.sources:
            # A key repeated within a day (the stream remembered both versions). Keys never
            # repeat across days (a mark's date is its request's), so with none remembered
            # there is nothing to drop and the pass would only copy the list.
            drop_repeats(batch)
        batch.requests = self.days.request_count - before
        self._check_empty_days(start, end, dates, days, empty, batch)
        if unmarked:
            log.info(
                "adapter.sessions_unmarked",
                vendor=self.vendor,
                school=self.school_id,
                sessions=unmarked,
            )
        self._fetched("student-session-marks", batch)
        return batch

    def amendments(
        self, start: date, end: date, dates: Iterable[date] | None = None
    ) -> Batch[Amendment]:
        """MIS amendment records for sessions dated in [start, end] (INFERRED resource)."""
        if not self.exposes_amendments:
            return Batch()
        before = self.days.request_count
        batch: Batch[Amendment] = Batch()
        days = self._days(start, end, dates)
        years = [self._year_for(day) for day in days]
        tables = {year: self._code_table(year) for year in dict.fromkeys(years)}
        paths = [
            self.client.year_path(year, AmendmentsStream.path.format(date=day.isoformat()))
            for day, year in zip(days, years, strict=True)
        ]
        with closing(self.days.collect_each(paths)) as pages:
            for day, year, rows in zip(days, years, pages, strict=False):
                batch.extend(AmendmentsStream(self.school_id, tables[year]).map(rows, day))
        batch.requests = self.days.request_count - before
        self._fetched("student-session-mark-amendments", batch)
        return batch

    def calendar(self) -> Calendar | None:
        """Terms and closures from ``timetables/calendar``; None when the MIS does not serve it."""
        if self._calendar is not _UNSET:
            return self._calendar  # type: ignore[no-any-return]
        rows: list[Any] = []
        try:
            for year in self._calendar_years():
                rows.extend(self.client.collect(self.client.year_path(year, CalendarStream.path)))
        except ResourceNotFoundError:
            self._calendar = None
            return None
        calendar, quarantined = CalendarStream(self.school_id).read(rows)
        self.calendar_quarantined = [replace(q, school=self.school_id) for q in quarantined]
        self._calendar = calendar
        return calendar

    def close(self) -> None:
        self.client.http.close()
        self.days.close()

    # -- academic years ----------------------------------------------------------------------

    def _school_details(self) -> dict[str, Any] | None:
        if self._school is _UNSET:
            self._school = self.client.school_details()
        return self._school  # type: ignore[no-any-return]

    def _current_year(self) -> str:
        """The configured year, else the MIS's current one, else the year of the sync's day,
        else today's (in that order)."""
        if self.academic_year is not None:
            return self.academic_year
        details = self._school_details() or {}
        current = details.get("current_academic_year")
        if current is not None:
            try:
                return normalise_academic_year(current)
            except ValueError:
                pass
        # The day sync runs to (begin_sync): a sync with --as-of in an earlier year reads that
        # year, not the machine's.
        return academic_year_of(self.sync_day or date.today())

    def _year_for(self, day: date) -> str:
        return self.academic_year or academic_year_of(day)

    def _calendar_years(self) -> list[str]:
        if self.academic_year is not None:
            return [self.academic_year]
        current = int(self._current_year())
        offered: set[str] = set()
        for value in (self._school_details() or {}).get("academic_years") or []:
            try:
                offered.add(normalise_academic_year(value))
            except ValueError:
                continue
        # The current year and the one before cover any trailing window across the summer.
        wanted = [str(current - 1), str(current)]
        return [y for y in wanted if not offered or y in offered]

    def _code_table(self, year: str) -> CodeTable:
        if year not in self._codes:
            rows = self.client.collect(self.client.year_path(year, CodesStream.path))
            if not rows:
                raise PermissionGapError(
                    f"school {self.school_id!r}: GO 4 Schools returned an empty attendance code "
                    f"table for academic year {year} (HTTP 200): the API key most likely lacks "
                    "the Attendance permission; ask the school's GO 4 Schools data officer to "
                    "grant it"
                )
            table, quarantined = CodesStream(self.school_id).read(rows)
            if quarantined:
                # A code row that will not read is not a record of any resource sync stores;
                # one counted line (a mark using the code is quarantined on its own).
                log.warning(
                    "adapter.code_rows_quarantined",
                    vendor=self.vendor,
                    school=self.school_id,
                    count=len(quarantined),
                    fields=sorted({str(q.field) for q in quarantined}),
                )
            self._codes[year] = table
        return self._codes[year]

    # -- dates and empty answers -------------------------------------------------------------

    @staticmethod
    def _days(start: date, end: date, dates: Iterable[date] | None) -> list[date]:
        if dates is not None:
            return sorted({d for d in dates if start <= d <= end})
        days = []
        day = start
        while day <= end:
            if day.weekday() < 5:  # registers are not taken at weekends
                days.append(day)
            day += timedelta(days=1)
        return days

    def _expected_school_days(
        self, start: date, end: date, dates: Iterable[date] | None, days: list[date]
    ) -> set[date]:
        """Days that must have marks: the caller's ``dates``, else the served calendar's school
        days before ``end``. Today and later are left out: their registers may not be taken
        yet; so is ``end`` when it comes from the calendar, because sync's window ends on its
        as_of day ("today, before registration") and a simulated today is not the clock's."""
        today = date.today()
        if dates is not None:
            expected = set(days)
        else:
            today = min(today, end)
            try:
                calendar = self.calendar()
            except (FatalApiError, PagingError) as exc:
                log.info(
                    "adapter.calendar_unavailable",
                    vendor=self.vendor,
                    school=self.school_id,
                    reason=type(exc).__name__,
                )
                calendar = None
            if calendar is None:
                return set()
            try:
                expected = set(SchoolCalendar(calendar).school_days(start, end))
            except CalendarError:
                return set()
        return {d for d in expected if d < today}

    def _check_empty_days(
        self,
        start: date,
        end: date,
        dates: Iterable[date] | None,
        days: list[date],
        empty: list[date],
        batch: Batch[Mark],
    ) -> None:
        """A 200 with an empty list is how a missing permission looks: fail when
        every school day is empty; warn for single empty school days (sync re-pulls them)."""
        if not empty:
            return
        expected = self._expected_school_days(start, end, dates, days)
        empty_school_days = sorted(expected.intersection(empty))
        if not empty_school_days:
            return
        if len(empty_school_days) == len(expected) and not batch.records and not batch.quarantined:
            raise PermissionGapError(
                f"school {self.school_id!r}: GO 4 Schools returned no session marks for any of "
                f"the {len(expected)} school days from {start} to {end} (HTTP 200, empty "
                "lists). The API key most likely lacks the Attendance permission: ask the "
                "school's GO 4 Schools data officer to grant it"
            )
        for day in empty_school_days:
            log.warning(
                "adapter.school_day_without_marks",
                vendor=self.vendor,
                school=self.school_id,
                date=day.isoformat(),
            )

    def _fetched(self, resource: str, batch: Batch[T]) -> None:
        batch.quarantined = [replace(q, school=self.school_id) for q in batch.quarantined]
        log.info(
            "adapter.stream_fetched",
            vendor=self.vendor,
            school=self.school_id,
            resource=resource,
            records=len(batch.records),
            quarantined=len(batch.quarantined),
            requests=batch.requests,
        )


__all__ = [
    "DAY_WORKERS",
    "FACTS",
    "CursorPaginator",
    "Go4SchoolsAdapter",
    "Go4SchoolsClient",
    "ResourceNotFoundError",
    "normalise_academic_year",
]
