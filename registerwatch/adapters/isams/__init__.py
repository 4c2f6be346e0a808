"""iSAMS-style adapter: REST (OAuth2 client credentials) and the Batch XML API.

See ``docs/adapters/isams.md`` for what is read, the field mapping and what is inferred.
``IsamsAdapter`` is the Adapter protocol over an iSAMS school; it wires ``client.py`` (the
vendor's facts, auth, paging and failure classes), ``streams.py`` (one class per resource) and
``mapping.py`` (the XML and vendor fields to schema values).

Which API serves what:

- pupils: REST ``/api/students`` when a client id/secret is configured (it lists leavers with
  their leaving date); otherwise Batch ``Pupil_GetCurrentPupils`` (current pupils only).
- marks: Batch ``Registration_GetRegistrationStatus`` with ``Registration_GetPresentCodes``,
  asked for in windows of ``BATCH_WINDOW_DAYS`` so one answer stays a manageable size (the Batch
  API has no paging). Over the API key (the windows after the first then two at a time, see
  ``IsamsAdapter._answers``), or over OAuth when only a client id/secret is set.
  The session comes from ``RegistrationDateTime`` and ``pm_cutoff``; only each session's first
  registration period counts; ``Registered = 0`` rows are no mark; rows repeated for one pupil
  and period are collapsed by ``dedupe_marks``.
- amendments: Batch ``Registration_GetRegistrationAudit``, an INFERRED resource; a key without
  it means the MIS exposes no amendment records (``exposes_amendments`` is then False).
- calendar: Batch ``School_GetSchoolTerms`` (terms only).
- registers: none. iSAMS exposes no register-taking events or saved times (none is publicly
  FOUND), so ``registers()`` is always empty and ``exposes_registers`` is False: the REG rules
  that need a register's completion time cannot be checked for an iSAMS school.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import closing
from typing import Any

import structlog
from lxml import etree

from registerwatch.adapters.base import (
    DEFAULT_TIMEOUT,
    AdapterBase,
    Batch,
    Quarantined,
    RetryPolicy,
    drop_repeats,
    fetch_in_order,
    raw_text,
)
from registerwatch.adapters.base.duplicates import record_key
from registerwatch.adapters.isams.client import (
    FACTS,
    REST_PAGE_SIZE,
    IsamsClient,
    MethodsNotAllocatedError,
)
from registerwatch.adapters.isams.mapping import (
    DEFAULT_PM_CUTOFF,
    IsamsMessage,
    XmlDocumentError,
    element_record,
    parse_message,
    parse_xml,
    session_of,
)
from registerwatch.adapters.isams.streams import (
    AmendmentsStream,
    BatchPupilsStream,
    MarksStream,
    PresentCode,
    PresentCodesStream,
    RestPupilsStream,
    Stream,
    TermsStream,
)
from registerwatch.errors import PermissionGapError
from registerwatch.gcpause import collector_paused
from registerwatch.schema import (
    SESSION_ORDER,
    Amendment,
    Calendar,
    Mark,
    Pupil,
    Register,
    Term,
)

log = structlog.get_logger("registerwatch.adapters.isams")

# Batch answers asked for at once after the first (see IsamsAdapter._answers). INFERRED: iSAMS
# documents a per-key request count limit, not a limit on concurrent requests; two keep the
# MIS's load per school modest and the next answer arriving while one is mapped.
BATCH_FETCHERS = 2

# Days per Batch registration request. INFERRED: no limit is documented; a month of a large
# school (1,500 pupils x 2 sessions x 23 days, ~70k rows) is a few MB of XML.
BATCH_WINDOW_DAYS = 31


def date_windows(start: dt.date, end: dt.date, days: int) -> Iterator[tuple[dt.date, dt.date]]:
    """Consecutive inclusive windows of at most ``days`` days covering [start, end]."""
    cursor = start
    while cursor <= end:
        last = min(end, cursor + dt.timedelta(days=days - 1))
        yield cursor, last
        cursor = last + dt.timedelta(days=1)


def _element_records(section: etree._Element, tag: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for index, element in enumerate(section.iterchildren(tag), start=1):
        yield f"{tag}[{index}]", element_record(element)


class IsamsAdapter(AdapterBase):
    """Reads one iSAMS school into the common schema. See the module docstring for sources."""

    facts = FACTS
    # No register-taking events in any public iSAMS API (FACTS.capabilities.registers is
    # False): REG rules on saved/closed times cannot be checked for iSAMS schools
    # (documented in docs/adapters/isams.md).

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
        pm_cutoff: dt.time = DEFAULT_PM_CUTOFF,
        max_records_per_page: int | None = None,
    ) -> None:
        self.school_id = school_id
        self.pm_cutoff = pm_cutoff
        self.client = IsamsClient(
            base_url,
            school_id=school_id,
            credentials=credentials,
            credential_hint=credential_hint,
            timeout=timeout,
            retry=retry,
            sleep=sleep,
            max_records_per_page=max_records_per_page,
        )
        self._exposes_amendments: bool | None = None
        self.rest_page_size = REST_PAGE_SIZE
        # Terms that would not map on the last calendar() call (calendar() returns no Batch).
        self.calendar_quarantined: list[Quarantined] = []

    # -- pupils -----------------------------------------------------------------------------

    def pupils(self) -> Batch[Pupil]:
        before = self.client.request_count
        stream: Stream[Pupil]
        if self.client.has_rest:
            stream = RestPupilsStream(school_id=self.school_id)
            records = self._rest_records(RestPupilsStream.path, RestPupilsStream.root_key)
            batch = stream.map_records(records)
        else:
            stream = BatchPupilsStream(school_id=self.school_id)
            root = self.client.batch([BatchPupilsStream.method])
            section = self.client.batch_section(
                root, BatchPupilsStream.section, BatchPupilsStream.method
            )
            batch = stream.map_records(_element_records(section, "Pupil"))
        batch.requests = self.client.request_count - before
        if not batch.records and not batch.quarantined:
            # A school with nobody on roll is not plausible; an empty 200 is how a missing
            # permission looks, so say so instead of "syncing" an empty school.
            raise PermissionGapError(
                f"school {self.school_id!r}: iSAMS returned no pupils from "
                f"{'/api/students' if self.client.has_rest else BatchPupilsStream.method} — the "
                "credentials probably lack permission to read pupils; ask the iSAMS "
                f"administrator to check the access granted to {self.client.credential_hint}"
            )
        self._log_fetched(stream.name, batch)
        return batch

    def _rest_records(self, path: str, root_key: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
        for number, items in self.client.rest_pages(path, root_key, self.rest_page_size):
            for index, item in enumerate(items, start=1):
                # A non-object item maps to an empty record, so it is quarantined with its place.
                yield f"page {number} item {index}", item if isinstance(item, Mapping) else {}

    # -- registers --------------------------------------------------------------------------

    def registers(self, start: dt.date, end: dt.date) -> Batch[Register]:
        """Always empty: iSAMS does not expose register-taking events (see module docstring)."""
        return Batch()

    # -- marks ------------------------------------------------------------------------------

    def marks(self, start: dt.date, end: dt.date) -> Batch[Mark]:
        # A first sync maps the school year so far in one go: tens of thousands of rows and
        # marks, all alive until returned, and no reference cycles. Automatic collections
        # meanwhile would rescan them all again and again (about half the mapping's CPU).
        with collector_paused():
            return self._marks(start, end)

    def _marks(self, start: dt.date, end: dt.date) -> Batch[Mark]:
        result: Batch[Mark] = Batch()
        rows_of: dict[int, tuple[Mapping[str, Any], str]] = {}
        before = self.client.request_count
        methods = [PresentCodesStream.method, MarksStream.method]
        with closing(self._answers(methods, MarksStream.filter_name, start, end)) as answers:
            for (first, last), root in answers:
                codes = PresentCodesStream(school_id=self.school_id).map_records(
                    _element_records(
                        self.client.batch_section(
                            root, PresentCodesStream.section, PresentCodesStream.method
                        ),
                        "PresentCode",
                    )
                )
                result.quarantined.extend(codes.quarantined)
                stream = MarksStream(
                    school_id=self.school_id,
                    pm_cutoff=self.pm_cutoff,
                    present_codes=_present_table(codes.records),
                )
                section = self.client.batch_section(root, MarksStream.section, MarksStream.method)
                records = list(_element_records(section, "RegistrationStatus"))
                if not records and _has_past_weekday(first, last):
                    # Could be a holiday, could be a permission gap on the data: say so, no more.
                    log.warning(
                        "adapter.window_without_rows",
                        vendor="isams",
                        school=self.school_id,
                        start=first.isoformat(),
                        end=last.isoformat(),
                    )
                mapped = stream.map_rows(records)
                rows = mapped.batch
                result.quarantined.extend(rows.quarantined)
                if mapped.later:
                    log.info(
                        "adapter.later_periods_ignored",
                        vendor="isams",
                        school=self.school_id,
                        rows=mapped.later,
                    )
                outside = [m for m in rows.records if not first <= m.date <= last]
                if outside:
                    log.warning(
                        "adapter.records_outside_window",
                        vendor="isams",
                        school=self.school_id,
                        resource=MarksStream.name,
                        count=len(outside),
                    )
                result.records.extend(m for m in rows.records if first <= m.date <= last)
                rows_of.update(mapped.rows_of)
        total = len(result.records)
        _drop_repeats(result, rows_of)
        result.records.sort(key=lambda m: (m.pupil_id, m.date, SESSION_ORDER[m.session]))
        result.requests = self.client.request_count - before
        self._log_fetched(MarksStream.name, result, duplicates=total - len(result.records))
        return result

    # -- amendments (INFERRED resource) -----------------------------------------------------

    @property
    def exposes_amendments(self) -> bool:
        """Whether this iSAMS key serves amendment records (probed once, then remembered)."""
        if self._exposes_amendments is None:
            today = dt.date.today()
            self.amendments(today, today)
        return bool(self._exposes_amendments)

    def amendments(self, start: dt.date, end: dt.date) -> Batch[Amendment]:
        result: Batch[Amendment] = Batch()
        if self._exposes_amendments is False:
            return result
        before = self.client.request_count
        stream = AmendmentsStream(school_id=self.school_id, pm_cutoff=self.pm_cutoff)
        methods = [AmendmentsStream.method]
        with closing(self._answers(methods, AmendmentsStream.filter_name, start, end)) as answers:
            try:
                for _window, root in answers:
                    self._exposes_amendments = True
                    section = self.client.batch_section(
                        root, AmendmentsStream.section, AmendmentsStream.method
                    )
                    records = _element_records(section, "RegistrationAudit")
                    result.extend(stream.map_records(records))
            except MethodsNotAllocatedError as exc:
                if AmendmentsStream.method.lower() not in exc.methods:
                    raise
                # Expected for a real iSAMS school: no vendor exposes an amendment audit.
                self._exposes_amendments = False
                log.info("adapter.amendments_unavailable", vendor="isams", school=self.school_id)
                return Batch(requests=self.client.request_count - before)
        result.requests = self.client.request_count - before
        self._log_fetched(AmendmentsStream.name, result)
        return result

    # -- Batch answers by date window -------------------------------------------------------

    def _answers(
        self, methods: list[str], filter_name: str, start: dt.date, end: dt.date
    ) -> Generator[tuple[tuple[dt.date, dt.date], etree._Element], None, None]:
        """Each date window's ``<iSAMS>`` answer, in window order.

        The first window is asked for alone (a key refused the method says so once). With an
        API key the rest are then asked for ``BATCH_FETCHERS`` at a time in the background
        while the caller maps what has arrived: the MIS serves the next window and lxml parses
        it (without holding the GIL) meanwhile, so a month's mapping overlaps the next month's
        round trip. Over OAuth they are asked for one by one: the Bearer token is state shared
        by every request and renewed on a 401, and concurrent renewals would race.
        """
        windows = list(date_windows(start, end, BATCH_WINDOW_DAYS))
        if not windows:
            return

        def fetch(window: tuple[dt.date, dt.date]) -> etree._Element:
            return self.client.batch(methods, {filter_name: window})

        first = fetch(windows[0])
        rest = windows[1:]
        if not rest or not self.client.api_key:
            yield windows[0], first
            for window in rest:
                yield window, fetch(window)
            return
        answers = fetch_in_order(
            fetch, rest, max_in_flight=BATCH_FETCHERS, thread_name_prefix="isams-batch"
        )
        # Stopped early (an error, or the caller gave up): closing asks for no more windows.
        with closing(answers):
            yield windows[0], first
            yield from zip(rest, answers, strict=True)

    # -- calendar ---------------------------------------------------------------------------

    def calendar(self) -> Calendar | None:
        """Terms from ``School_GetSchoolTerms``; None when the school lists none.

        iSAMS exposes no closures or register times, so those stay at the config's values.
        Terms that will not map are logged and kept in ``calendar_quarantined``.
        """
        root = self.client.batch([TermsStream.method])
        section = self.client.batch_section(root, TermsStream.section, TermsStream.method)
        batch = TermsStream(school_id=self.school_id).map_records(_element_records(section, "Term"))
        self.calendar_quarantined = list(batch.quarantined)
        terms = sorted(set(batch.records), key=lambda t: (t.start, t.end))
        terms = _drop_overlaps(terms, self.calendar_quarantined)
        if not terms:
            log.warning("adapter.calendar_empty", vendor="isams", school=self.school_id)
            return None
        return Calendar(school_id=self.school_id, terms=terms)

    def close(self) -> None:
        self.client.http.close()

    # -- helpers ----------------------------------------------------------------------------

    def _log_fetched(self, resource: str, batch: Batch[Any], **extra: int) -> None:
        # Counts only: record refs and values may identify pupils and stay out of logs.
        log.info(
            "adapter.resource_fetched",
            vendor="isams",
            school=self.school_id,
            resource=resource,
            records=len(batch.records),
            quarantined=len(batch.quarantined),
            requests=batch.requests,
            **extra,
        )


def _has_past_weekday(first: dt.date, last: dt.date) -> bool:
    today = dt.date.today()
    return any(
        (first + dt.timedelta(days=n)).weekday() < 5
        for n in range((min(last, today - dt.timedelta(days=1)) - first).days + 1)
    )


def _drop_repeats(batch: Batch[Mark], rows_of: Mapping[int, tuple[Mapping[str, Any], str]]) -> None:
    """iSAMS repeats rows for one pupil and session: the shared, tested rule (``drop_repeats``)
    keeps the latest-recorded one, else the last in the feed. It is run over the marks whose
    key repeats (the rule judges each key on its own; the rest, nearly all, pass unchanged),
    and the raw rows of keys still repeated after it are kept for sync's duplicate policy:
    the only versions it quarantines, with the MIS's own text."""
    keys = [record_key(m) for m in batch.records]
    counts = Counter(keys)
    if len(counts) == len(keys):
        return
    repeated: Batch[Mark] = Batch(
        records=[m for m, key in zip(batch.records, keys, strict=True) if counts[key] > 1]
    )
    drop_repeats(repeated, in_write_order=FACTS.repeats_in_write_order)
    batch.exact_duplicates += repeated.exact_duplicates
    batch.records = [m for m, key in zip(batch.records, keys, strict=True) if counts[key] == 1]
    batch.records.extend(repeated.records)
    left = Counter(record_key(m) for m in repeated.records)
    for mark in repeated.records:
        if left[record_key(mark)] > 1 and id(mark) in rows_of:
            record, ref = rows_of[id(mark)]
            batch.remember(mark, raw_text(record), ref)


def _present_table(codes: list[PresentCode]) -> dict[str, PresentCode]:
    return {code.id: code for code in codes}


def _drop_overlaps(terms: list[Term], quarantined: list[Quarantined]) -> list[Term]:
    """Terms sorted by start with any that overlap an earlier one set aside: the calendar
    refuses overlapping terms, and one bad MIS row must not lose the whole calendar."""
    kept: list[Term] = []
    for term in terms:
        if kept and term.start <= kept[-1].end:
            quarantined.append(
                Quarantined(
                    resource=TermsStream.name,
                    record_ref=f"Term {term.start}..{term.end}",
                    field="StartDate",
                    reason=f"overlaps the term {kept[-1].start}..{kept[-1].end}",
                    raw=f"{term.start}..{term.end}",
                )
            )
            continue
        kept.append(term)
    return kept


__all__ = [
    "BATCH_WINDOW_DAYS",
    "DEFAULT_PM_CUTOFF",
    "FACTS",
    "IsamsAdapter",
    "IsamsClient",
    "IsamsMessage",
    "MethodsNotAllocatedError",
    "XmlDocumentError",
    "parse_message",
    "parse_xml",
    "session_of",
]
