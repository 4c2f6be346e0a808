"""GO 4 Schools-style resources, one small class each, mapping vendor records to the schema.

Every stream subclasses the shared :class:`~registerwatch.adapters.base.Stream`, as Arbor's and
iSAMS's do: its path (relative to ``academic-years/{year}/``), its keys, and one ``to_schema()``
per record; a record that will not map raises InvalidRecord inside ``to_schema`` and the base
turns it into a ``Quarantined`` entry (school, resource, record_ref, field, reason and the raw
record) — never an exception that stops the run — with the base's checks for hostile values
(control characters, implausible dates, nameless pupils). No stream has a replication key:
GO 4 Schools has no modified-since filter, so sync re-pulls a trailing window of dates and
diffs. The code table and the calendar are one object each, built from their rows by
``read()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any, ClassVar, TypeVar, cast

from pydantic import ValidationError

from registerwatch.adapters.base import (
    Batch,
    Quarantined,
    Stream,
    build_mark,
    parse_date,
    parse_instant,
    require,
)
from registerwatch.adapters.base.duplicates import mark_key
from registerwatch.adapters.base.mapping import refuse_implausible
from registerwatch.adapters.base.streams import remember_duplicate
from registerwatch.adapters.go4schools.client import FACTS
from registerwatch.adapters.go4schools.mapping import (
    DAY_TYPES,
    SEX_CODES,
    CodeEntry,
    CodeTable,
    check_day,
    clean_text,
    flags_of,
    national_code,
    session_of,
    terms_of,
    whole_number,
)
from registerwatch.errors import InvalidRecord
from registerwatch.schema import (
    Amendment,
    AmendmentSource,
    Calendar,
    Closure,
    ClosureKind,
    Mark,
    Pupil,
    Session,
)

T = TypeVar("T")


class Go4SchoolsStream(Stream[T]):
    """The shared stream base with GO 4 Schools' references: ``student 1001``, and ``#n`` (the
    record's place in the answer) when the id itself is missing."""

    vendor: ClassVar[str] = FACTS.vendor
    label: ClassVar[str] = "record"

    def __init__(self, school_id: str = "") -> None:
        self.school_id = school_id

    def record_ref(self, record: Any, position: str) -> str:
        key = self.keys[0] if self.keys else ""
        if isinstance(record, Mapping) and record.get(key) is not None:
            return f"{self.label} {record[key]}"
        return f"{self.label} {position}"

    def each(self, records: Iterable[Any]) -> Batch[T]:
        """Map records, numbering them ``#1``, ``#2``... for references."""
        return self.map_positioned((f"#{n}", r) for n, r in enumerate(records, start=1))


# -- attendance codes ----------------------------------------------------------------------------

# A code row: its entry, its aliases (those read before a bad one), the problem with an alias
# if any (the code itself still loads; the row is quarantined), and the row as sent.
CodeRow = tuple[CodeEntry, list[tuple[int, CodeEntry]], InvalidRecord | None, Mapping[str, Any]]


class CodesStream(Go4SchoolsStream[CodeRow]):
    """``attendance/codes``: the school's code table with aliases (root ``attendanceCodes``)."""

    name: ClassVar[str] = "attendance-codes"
    path: ClassVar[str] = "attendance/codes"
    keys: ClassVar[tuple[str, ...]] = ("id",)
    label: ClassVar[str] = "code"

    def read(self, records: Iterable[Any]) -> tuple[CodeTable, list[Quarantined]]:
        """The code table from its rows, and the rows set aside."""
        batch = self.each(records)
        table = CodeTable()
        quarantined = list(batch.quarantined)
        for entry, aliases, problem, record in batch.records:
            table.codes[entry.id] = entry
            for alias_id, alias in aliases:
                table.aliases[alias_id] = (entry.id, alias)
            if problem is not None:
                quarantined.append(self.quarantine(problem, record, problem.record_ref or ""))
        return table, quarantined

    def to_schema(self, record: Mapping[str, Any], ref: str) -> CodeRow:
        code_id = whole_number(
            require(record, "id", resource=self.name, record_ref=ref),
            resource=self.name,
            record_ref=ref,
            field="id",
        )
        raw = str(require(record, "code", resource=self.name, record_ref=ref)).strip()
        entry = CodeEntry(id=code_id, vendor_code=raw, national=national_code(raw))
        aliases: list[tuple[int, CodeEntry]] = []
        try:
            listed = record.get("aliases") or []
            if not isinstance(listed, list):  # found by tests/fuzz: "aliases": true
                raise InvalidRecord(
                    "aliases is not a list", resource=self.name, record_ref=ref, field="aliases"
                )
            for alias in listed:
                aliases.append(self._alias(alias, entry, ref))
        except InvalidRecord as problem:
            return entry, aliases, problem, record
        return entry, aliases, None, record

    def _alias(self, alias: Any, entry: CodeEntry, ref: str) -> tuple[int, CodeEntry]:
        if not isinstance(alias, Mapping):
            raise InvalidRecord(
                "an alias is not an object", resource=self.name, record_ref=ref, field="aliases"
            )
        alias_id = whole_number(
            alias.get("alias_id"), resource=self.name, record_ref=ref, field="aliases.alias_id"
        )
        alias_code = str(alias.get("alias_code") or "").strip()
        return alias_id, CodeEntry(
            id=alias_id,
            vendor_code=alias_code,
            national=national_code(alias_code) or entry.national,
        )


# -- pupils ----------------------------------------------------------------------------------------


class EducationDetailsStream(Go4SchoolsStream[tuple[int, Mapping[str, Any]]]):
    """``students/education-details``: UPN, year, group, admission, flags; joined to students."""

    name: ClassVar[str] = "education-details"
    path: ClassVar[str] = "students/education-details"
    keys: ClassVar[tuple[str, ...]] = ("student_id",)
    label: ClassVar[str] = "student"

    def to_schema(self, record: Mapping[str, Any], ref: str) -> tuple[int, Mapping[str, Any]]:
        student_id = whole_number(
            require(record, "student_id", resource=self.name, record_ref=ref),
            resource=self.name,
            record_ref=ref,
            field="student_id",
        )
        return student_id, record


class PupilsStream(Go4SchoolsStream[Pupil]):
    """``students`` joined with ``students/education-details`` on ``id`` = ``student_id``."""

    name: ClassVar[str] = "students"
    path: ClassVar[str] = "students"
    details_name: ClassVar[str] = EducationDetailsStream.name
    details_path: ClassVar[str] = EducationDetailsStream.path
    keys: ClassVar[tuple[str, ...]] = ("id",)
    label: ClassVar[str] = "student"

    def __init__(self, school_id: str) -> None:
        super().__init__(school_id)
        self._details: dict[int, Mapping[str, Any]] = {}

    def map(self, students: Sequence[Any], details: Sequence[Any]) -> Batch[Pupil]:
        joined = EducationDetailsStream(self.school_id).each(details)
        self._details = dict(joined.records)
        batch = self.each(students)
        batch.quarantined[:0] = joined.quarantined
        return batch

    def to_schema(self, student: Mapping[str, Any], ref: str) -> Pupil:
        student_id = whole_number(
            require(student, "id", resource=self.name, record_ref=ref),
            resource=self.name,
            record_ref=ref,
            field="id",
        )
        ref = f"student {student_id}"
        details = self._details.get(student_id)
        if details is None:
            # Without education details there is no UPN, year or admission date: storing the
            # pupil anyway would raise false UPN and roll findings.
            raise InvalidRecord(
                "no education details (UPN, year, admission) were returned for this student",
                resource=self.details_name,
                record_ref=ref,
                field="student_id",
            )
        dob = student.get("date_of_birth")
        sex = student.get("sex")
        if sex is not None and str(sex).strip().upper() not in SEX_CODES:
            raise InvalidRecord(
                f"sex {sex!r} is not M, F or U", resource=self.name, record_ref=ref, field="sex"
            )
        flags = flags_of(details.get("student_education_attributes"))
        admission = details.get("admission_date")
        leaving = details.get("leaving_date")
        return Pupil(
            id=f"{self.school_id}:{student_id}",
            school_id=self.school_id,
            mis_id=str(student_id),
            upn=clean_text(details.get("upn")),
            former_upn=clean_text(details.get("former_upn")),
            legal_forename=clean_text(student.get("legal_first_name")),
            legal_surname=clean_text(student.get("legal_last_name")),
            middle_names=clean_text(student.get("middle_names")),
            preferred_forename=clean_text(student.get("preferred_first_name")),
            preferred_surname=clean_text(student.get("preferred_last_name")),
            dob=parse_date(dob, resource=self.name, record_ref=ref, field="date_of_birth")
            if dob
            else None,
            sex=SEX_CODES[str(sex).strip().upper()] if sex is not None else None,
            nc_year=clean_text(details.get("national_curriculum_year")),
            reg_group=clean_text(details.get("registration_group")),
            starting_day=parse_date(
                admission, resource=self.details_name, record_ref=ref, field="admission_date"
            )
            if admission
            else None,
            leaving_date=parse_date(
                leaving, resource=self.details_name, record_ref=ref, field="leaving_date"
            )
            if leaving
            else None,
            ehcp=flags.get("ehcp", False),
            sen_support=flags.get("sen_support", False),
            fsm=flags.get("fsm", False),
            looked_after=flags.get("looked_after", False),
            has_social_worker=flags.get("has_social_worker", False),
            boarder=flags.get("boarder", False),
        )


# -- session marks ---------------------------------------------------------------------------------


class SessionMarksStream(Go4SchoolsStream[Mark]):
    """``attendance/student-session-marks/date/{date}``: one request (and cursor walk) per date.

    A first sync maps every mark of the year so far, so ``map`` takes a fast path for the
    records that are plainly well formed (a JSON object with an integer student id, the day's
    date text, ``AM``/``PM``, integer code ids, a whole ``minutes_late``, text or no notes):
    what the checks of ``to_schema`` would conclude is cached per distinct value (the day's
    date text, each code id pair), and the plausibility checks every mark takes
    (``refuse_implausible``) run once per day and code pair, plus on each mark with notes: a
    mark without notes differs from the one checked only in digits and AM/PM, which no check
    refuses. Every other record, and any record the fast path would refuse, goes through
    ``to_schema`` as before, so a bad record is quarantined with the same reference, field and
    reason (``map_each`` is that record-at-a-time path in full; the tests hold the two equal).
    """

    name: ClassVar[str] = "student-session-marks"
    path: ClassVar[str] = "attendance/student-session-marks/date/{date}"
    keys: ClassVar[tuple[str, ...]] = ("student_id", "date", "session")

    def __init__(self, school_id: str, codes: CodeTable) -> None:
        super().__init__(school_id)
        self.codes = codes
        self.day = date.min
        # (session_mark_id, session_alias_id) -> (national code, vendor code); None: resolving
        # it refuses the record (the record then takes to_schema, which says why).
        self._resolved: dict[tuple[int, int | None], tuple[str, str] | None] = {}
        # student id -> pupil id: one string per pupil for the whole pull.
        self._pupil_ids: dict[int, str] = {}
        # A school id this long could push a pupil id over the text limit with more digits.
        self._fast = len(school_id) < _MAX_FAST_PREFIX

    def record_ref(self, record: Any, position: str) -> str:
        return _session_ref(record, self.day)

    def map_each(self, records: Sequence[Any], day: date) -> tuple[Batch[Mark], int]:
        """``map`` one record at a time through ``to_schema`` (the path ``map`` must agree with)."""
        self.day = day
        unmarked = sum(1 for r in records if _unmarked(r))
        # A session listed but not yet marked has no register entry: nothing to map.
        return self.each(r for r in records if not _unmarked(r)), unmarked

    def map(self, records: Sequence[Any], day: date) -> tuple[Batch[Mark], int]:
        """Mapped marks for ``day``, and how many sessions came back with no mark entered.

        The same batch as ``map_each`` (records, quarantine entries, remembered duplicates, in
        the same order), faster for well-formed records: see the class docstring."""
        if not self._fast:
            return self.map_each(records, day)
        self.day = day
        batch: Batch[Mark] = Batch()
        # key -> the first mark with it, its raw record and reference (None: not yet made)
        first: dict[tuple[str, date, str], tuple[Mark, Any, str | None]] = {}
        today = date.today()  # the plausible-dates window, asked once per pull (as the base)
        iso = day.isoformat()
        source_prefix = f"go4schools:session-mark:{iso}:"
        dates: dict[str, bool] = {}  # date text -> is it this day
        checked: set[tuple[int, int | None]] = set()  # code pairs whose mark passed, this day
        resolved = self._resolved
        pupil_ids = self._pupil_ids
        position = 0
        unmarked = 0
        for record in records:
            if type(record) is not dict:
                if _unmarked(record):
                    unmarked += 1
                    continue
                position += 1
                self._map_slow(batch, first, record, f"#{position}", today)
                continue
            mark_id = record.get("session_mark_id")
            if mark_id is None and "session_mark_id" in record:
                unmarked += 1
                continue
            position += 1
            student_id = record.get("student_id")
            alias_id = record.get("session_alias_id")
            raw_date = record.get("date")
            late = record.get("session_minutes_late")
            notes = record.get("session_notes")
            raw_session = record.get("session")
            session = _SESSIONS.get(raw_session) if type(raw_session) is str else None
            if (
                session is None
                or type(student_id) is not int
                or not 0 <= student_id < _MAX_FAST_ID
                or type(mark_id) is not int
                or (alias_id is not None and type(alias_id) is not int)
                or (late is not None and (type(late) is not int or late < 0))
                or (notes is not None and type(notes) is not str)
                or type(raw_date) is not str
            ):
                self._map_slow(batch, first, record, f"#{position}", today)
                continue
            on_day = dates.get(raw_date)
            if on_day is None:
                on_day = dates[raw_date] = _is_day(raw_date, day)
            pair = (mark_id, alias_id)
            if pair in resolved:
                codes = resolved[pair]
            else:
                codes = resolved[pair] = self._resolve(mark_id, alias_id)
            if not on_day or codes is None:
                self._map_slow(batch, first, record, f"#{position}", today)
                continue
            pupil_id = pupil_ids.get(student_id)
            if pupil_id is None:
                pupil_id = pupil_ids[student_id] = f"{self.school_id}:{student_id}"
            comment = (notes.strip() or None) if notes is not None else None
            try:
                mark = build_mark(
                    pupil_id=pupil_id,
                    date=day,
                    session=session,
                    code=codes[0],
                    vendor_code=codes[1],
                    minutes_late=late,
                    comment=comment,
                    recorded_at=None,
                    recorded_by=None,
                    # raw_session is "AM" or "PM" exactly here: the value, without the enum's
                    # per-call property lookup
                    source_ref=f"{source_prefix}{student_id}:{raw_session}",
                )
                if comment is not None or pair not in checked:
                    refuse_implausible(
                        mark, resource=self.name, record_ref=_session_ref(record, day), today=today
                    )
                    checked.add(pair)
            except (InvalidRecord, ValidationError):
                # to_schema and the base's checks say what is wrong, exactly as before
                self._map_slow(batch, first, record, f"#{position}", today)
                continue
            batch.records.append(mark)
            key = (pupil_id, day, cast(str, raw_session))
            earlier = first.setdefault(key, (mark, record, None))
            if earlier[0] is not mark:
                self._remember(batch, earlier, day)
                self._remember(batch, (mark, record, None), day)
        return batch, unmarked

    def _map_slow(
        self,
        batch: Batch[Mark],
        first: dict[tuple[str, date, str], tuple[Mark, Any, str | None]],
        record: Any,
        position: str,
        today: date,
    ) -> None:
        """One record as ``Stream.map_positioned`` maps it (through ``to_schema``)."""
        ref = self.safe_ref(record, position)
        mark = self.map_or_quarantine(batch, record, ref, today=today)
        if mark is None:
            return
        batch.records.append(mark)
        key = mark_key(mark)
        earlier = first.setdefault(key, (mark, record, ref))
        if earlier[0] is not mark:
            self._remember(batch, earlier, self.day)
            self._remember(batch, (mark, record, ref), self.day)

    @staticmethod
    def _remember(batch: Batch[Mark], held: tuple[Mark, Any, str | None], day: date) -> None:
        mark, record, ref = held
        remember_duplicate(
            batch, mark, record, ref if ref is not None else _session_ref(record, day)
        )

    def _resolve(self, mark_id: int, alias_id: int | None) -> tuple[str, str] | None:
        try:
            return self.codes.resolve(mark_id, alias_id, resource=self.name, record_ref="")
        except InvalidRecord:
            return None

    def to_schema(self, record: Mapping[str, Any], ref: str) -> Mark:
        day = self.day
        student_id = whole_number(
            require(record, "student_id", resource=self.name, record_ref=ref),
            resource=self.name,
            record_ref=ref,
            field="student_id",
        )
        check_day(record, day, resource=self.name, record_ref=ref)
        session = session_of(record, resource=self.name, record_ref=ref)
        code, vendor_code = self.codes.resolve(
            require(record, "session_mark_id", resource=self.name, record_ref=ref),
            record.get("session_alias_id"),
            resource=self.name,
            record_ref=ref,
        )
        late = record.get("session_minutes_late")
        return build_mark(
            pupil_id=f"{self.school_id}:{student_id}",
            date=day,
            session=session,
            code=code,
            vendor_code=vendor_code,
            minutes_late=whole_number(
                late, resource=self.name, record_ref=ref, field="session_minutes_late", minimum=0
            )
            if late is not None
            else None,
            comment=clean_text(record.get("session_notes")),
            # G4S gives no time or author for a mark (OBSERVED in the vendor docs).
            recorded_at=None,
            recorded_by=None,
            source_ref=f"go4schools:session-mark:{day.isoformat()}:{student_id}:{session.value}",
        )


# -- amendments (INFERRED resource) ----------------------------------------------------------------


class AmendmentsStream(Go4SchoolsStream[Amendment]):
    """INFERRED: ``attendance/student-session-mark-amendments/date/{date}``.

    No vendor publishes an amendment audit; this is the simulator's G4S-style
    design: per session date, ``has_more`` + ``cursor`` (the amendment id), codes by id as on
    marks, ``amended_at`` in UK local time without an offset, ``amended_by_role`` as the
    position. Missing fields stay None: the validator, not the parser, decides they are a breach.
    """

    name: ClassVar[str] = "student-session-mark-amendments"
    path: ClassVar[str] = "attendance/student-session-mark-amendments/date/{date}"
    keys: ClassVar[tuple[str, ...]] = ("id",)
    label: ClassVar[str] = "amendment"

    def __init__(self, school_id: str, codes: CodeTable) -> None:
        super().__init__(school_id)
        self.codes = codes
        self.day = date.min

    def map(self, records: Sequence[Any], day: date) -> Batch[Amendment]:
        self.day = day
        return self.each(records)

    def to_schema(self, record: Mapping[str, Any], ref: str) -> Amendment:
        day = self.day
        student_id = whole_number(
            require(record, "student_id", resource=self.name, record_ref=ref),
            resource=self.name,
            record_ref=ref,
            field="student_id",
        )
        check_day(record, day, resource=self.name, record_ref=ref)
        session = session_of(record, resource=self.name, record_ref=ref)
        original = self._code(record, "original", ref)
        amended = self._code(record, "amended", ref)
        return Amendment(
            pupil_id=f"{self.school_id}:{student_id}",
            date=day,
            session=session,
            original_code=original,
            amended_code=amended,
            reason=clean_text(record.get("reason")),
            amended_at=parse_instant(
                record.get("amended_at"), resource=self.name, record_ref=ref, field="amended_at"
            ),
            amended_by_name=clean_text(record.get("amended_by_name")),
            amended_by_position=clean_text(record.get("amended_by_role")),
            source=AmendmentSource.MIS,
            source_ref=f"go4schools:amendment:{record.get('id')}",
        )

    def _code(self, record: Mapping[str, Any], which: str, ref: str) -> str | None:
        mark_id = record.get(f"{which}_session_mark_id")
        if mark_id is None:
            return None
        code, _ = self.codes.resolve(
            mark_id,
            record.get(f"{which}_session_alias_id"),
            resource=self.name,
            record_ref=ref,
            prefix=f"{which}session_of",
        )
        return code


# -- calendar ------------------------------------------------------------------------------------

# A calendar row: its date, its closure (None: a normal school day), the problem with its day
# type if any (the day is kept as a normal school day and the row is still quarantined), and
# the row as sent (for that quarantine entry).
CalendarRow = tuple[date, tuple[str, ClosureKind] | None, InvalidRecord | None, Mapping[str, Any]]


class CalendarStream(Go4SchoolsStream[CalendarRow]):
    """``timetables/calendar`` (path and row fields OBSERVED; meaning of the rows INFERRED).

    Rows are term weekdays (``date``, ``week``, ``day_type_code``). Terms are rebuilt as runs of
    listed dates whose gaps hold only weekends and England bank holidays; ``day_type_code`` gives
    the closures. Register times are not exposed: they come from the school's config.
    """

    name: ClassVar[str] = "calendar"
    path: ClassVar[str] = "timetables/calendar"
    keys: ClassVar[tuple[str, ...]] = ("date",)

    def record_ref(self, record: Any, position: str) -> str:
        return f"calendar row {position.lstrip('#')}"

    def read(self, records: Sequence[Any]) -> tuple[Calendar | None, list[Quarantined]]:
        """The calendar from its rows (None when no row gave a date), and the rows set aside."""
        batch = self.each(records)
        quarantined = list(batch.quarantined)
        days: set[date] = set()
        closures: list[Closure] = []
        for day, closure, problem, record in batch.records:
            days.add(day)
            if problem is not None:
                quarantined.append(self.quarantine(problem, record, problem.record_ref or ""))
            elif closure is not None:
                closures.append(Closure(date=day, session=closure[0], kind=closure[1]))
        if not days:
            return None, quarantined
        return Calendar(
            school_id=self.school_id,
            terms=terms_of(sorted(days)),
            closures=sorted(closures, key=lambda c: (c.date, c.session)),
        ), quarantined

    def to_schema(self, record: Mapping[str, Any], ref: str) -> CalendarRow:
        day = parse_date(
            require(record, "date", resource=self.name, record_ref=ref),
            resource=self.name,
            record_ref=ref,
            field="date",
        )
        code = str(record.get("day_type_code") or "S").strip().upper()
        if code not in DAY_TYPES:
            problem = InvalidRecord(
                f"unknown day_type_code {code!r}; the day is kept as a normal school day",
                resource=self.name,
                record_ref=f"calendar {day.isoformat()}",
                field="day_type_code",
            )
            return day, None, problem, record
        return day, DAY_TYPES[code], None, record


# -- helpers ---------------------------------------------------------------------------------------


# The fast path of SessionMarksStream.map: the session texts it takes as they are, and bounds
# that keep a pupil id's length (and so the text-length check) the same for every student id.
_SESSIONS = {"AM": Session.AM, "PM": Session.PM}
_MAX_FAST_ID = 10**15
_MAX_FAST_PREFIX = 1000


def _is_day(text: str, day: date) -> bool:
    """Does a record's date text read as ``day`` (as ``check_day`` reads it)?"""
    try:
        return date.fromisoformat(text[:10]) == day
    except ValueError:
        return False


def _unmarked(record: Any) -> bool:
    return (
        isinstance(record, Mapping)
        and "session_mark_id" in record
        and record["session_mark_id"] is None
    )


def _session_ref(record: Any, day: date) -> str:
    if not isinstance(record, Mapping):
        return f"{day.isoformat()}/?/?"
    try:
        return f"{day.isoformat()}/{record.get('student_id', '?')}/{record.get('session', '?')}"
    except RecursionError:  # found by tests/fuzz: an id nested too deeply to print
        return f"{day.isoformat()}/?/?"
