"""GO 4 Schools-style resources, one small class each, mapping vendor records to the schema.

Every stream has its path (relative to ``academic-years/{year}/``), its keys, and one
``to_schema()``; a record that will not map raises InvalidRecord inside ``to_schema`` and
becomes a ``Quarantined`` entry (resource, record_ref, field, reason) — never an exception that
stops the run. No stream has a replication key: GO 4 Schools has no modified-since
filter, so sync re-pulls a trailing window of dates and diffs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date
from typing import Any, ClassVar, TypeVar

from pydantic import ValidationError

from registerwatch.adapters.base import (
    Batch,
    Quarantined,
    parse_date,
    parse_instant,
    quarantine,
    raw_text,
    require,
)
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
    Mark,
    Pupil,
)

T = TypeVar("T")

# -- attendance codes ----------------------------------------------------------------------------


class CodesStream:
    """``attendance/codes``: the school's code table with aliases (root ``attendanceCodes``)."""

    name: ClassVar[str] = "attendance-codes"
    path: ClassVar[str] = "attendance/codes"
    keys: ClassVar[tuple[str, ...]] = ("id",)

    def to_schema(self, records: Iterable[Any]) -> tuple[CodeTable, list[Quarantined]]:
        table = CodeTable()
        quarantined: list[Quarantined] = []
        for index, record in enumerate(records):
            ref = f"code {_ref(record, 'id', index)}"
            try:
                if not isinstance(record, Mapping):
                    raise InvalidRecord(
                        "record is not an object", resource=self.name, record_ref=ref
                    )
                code_id = whole_number(
                    require(record, "id", resource=self.name, record_ref=ref),
                    resource=self.name,
                    record_ref=ref,
                    field="id",
                )
                raw = str(require(record, "code", resource=self.name, record_ref=ref)).strip()
                entry = CodeEntry(id=code_id, vendor_code=raw, national=national_code(raw))
                table.codes[code_id] = entry
                for alias in record.get("aliases") or []:
                    if not isinstance(alias, Mapping):
                        raise InvalidRecord(
                            "an alias is not an object",
                            resource=self.name,
                            record_ref=ref,
                            field="aliases",
                        )
                    alias_id = whole_number(
                        alias.get("alias_id"),
                        resource=self.name,
                        record_ref=ref,
                        field="aliases.alias_id",
                    )
                    alias_code = str(alias.get("alias_code") or "").strip()
                    table.aliases[alias_id] = (
                        code_id,
                        CodeEntry(
                            id=alias_id,
                            vendor_code=alias_code,
                            national=national_code(alias_code) or entry.national,
                        ),
                    )
            except InvalidRecord as error:
                quarantined.append(_quarantine(error, record))
            except RecursionError:  # found by tests/fuzz: a record nested too deeply
                quarantined.append(_too_deep(self.name, ref, record))
        return table, quarantined


# -- pupils ----------------------------------------------------------------------------------------


class PupilsStream:
    """``students`` joined with ``students/education-details`` on ``id`` = ``student_id``."""

    name: ClassVar[str] = "students"
    path: ClassVar[str] = "students"
    details_name: ClassVar[str] = "education-details"
    details_path: ClassVar[str] = "students/education-details"
    keys: ClassVar[tuple[str, ...]] = ("id",)

    def __init__(self, school_id: str) -> None:
        self.school_id = school_id

    def map(self, students: Sequence[Any], details: Sequence[Any]) -> Batch[Pupil]:
        batch: Batch[Pupil] = Batch()
        by_student: dict[int, Mapping[str, Any]] = {}
        for index, record in enumerate(details):
            ref = f"student {_ref(record, 'student_id', index)}"
            try:
                if not isinstance(record, Mapping):
                    raise InvalidRecord(
                        "record is not an object", resource=self.details_name, record_ref=ref
                    )
                student_id = whole_number(
                    require(record, "student_id", resource=self.details_name, record_ref=ref),
                    resource=self.details_name,
                    record_ref=ref,
                    field="student_id",
                )
                by_student[student_id] = record
            except InvalidRecord as error:
                batch.quarantined.append(_quarantine(error, record))
            except RecursionError:  # found by tests/fuzz: a record nested too deeply
                batch.quarantined.append(_too_deep(self.details_name, ref, record))
        for index, record in enumerate(students):
            ref = f"student {_ref(record, 'id', index)}"
            try:
                if not isinstance(record, Mapping):
                    raise InvalidRecord(
                        "record is not an object", resource=self.name, record_ref=ref
                    )
                student_id = whole_number(
                    require(record, "id", resource=self.name, record_ref=ref),
                    resource=self.name,
                    record_ref=ref,
                    field="id",
                )
                batch.records.append(self.to_schema(record, by_student.get(student_id)))
            except InvalidRecord as error:
                batch.quarantined.append(_quarantine(error, record))
            except RecursionError:  # found by tests/fuzz: a record nested too deeply
                batch.quarantined.append(_too_deep(self.name, ref, record))
            except ValidationError as error:
                batch.quarantined.append(_from_validation(error, self.name, ref, record))
        return batch

    def to_schema(self, student: Mapping[str, Any], details: Mapping[str, Any] | None) -> Pupil:
        student_id = int(student["id"])
        ref = f"student {student_id}"
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


class SessionMarksStream:
    """``attendance/student-session-marks/date/{date}``: one request (and cursor walk) per date."""

    name: ClassVar[str] = "student-session-marks"
    path: ClassVar[str] = "attendance/student-session-marks/date/{date}"
    keys: ClassVar[tuple[str, ...]] = ("student_id", "date", "session")

    def __init__(self, school_id: str, codes: CodeTable) -> None:
        self.school_id = school_id
        self.codes = codes

    def map(self, records: Sequence[Any], day: date) -> tuple[Batch[Mark], int]:
        """Mapped marks for ``day``, and how many sessions came back with no mark entered."""
        batch: Batch[Mark] = Batch()
        unmarked = 0
        for record in records:
            ref = _session_ref(record, day)
            try:
                if not isinstance(record, Mapping):
                    raise InvalidRecord(
                        "record is not an object", resource=self.name, record_ref=ref
                    )
                if "session_mark_id" in record and record["session_mark_id"] is None:
                    unmarked += 1  # listed but not yet marked: no register entry exists
                    continue
                batch.records.append(self.to_schema(record, day))
            except InvalidRecord as error:
                batch.quarantined.append(_quarantine(error, record))
            except RecursionError:  # found by tests/fuzz: a record nested too deeply
                batch.quarantined.append(_too_deep(self.name, ref, record))
            except ValidationError as error:
                batch.quarantined.append(_from_validation(error, self.name, ref, record))
        return batch, unmarked

    def to_schema(self, record: Mapping[str, Any], day: date) -> Mark:
        ref = _session_ref(record, day)
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
        return Mark(
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
            # G4S gives no time or author for a mark (OBSERVED in the vendor docs): recorded_at stays None.
            source_ref=f"go4schools:session-mark:{day.isoformat()}:{student_id}:{session.value}",
        )


# -- amendments (INFERRED resource) ----------------------------------------------------------------


class AmendmentsStream:
    """INFERRED: ``attendance/student-session-mark-amendments/date/{date}``.

    No vendor publishes an amendment audit; this is the simulator's G4S-style
    design: per session date, ``has_more`` + ``cursor`` (the amendment id), codes by id as on
    marks, ``amended_at`` in UK local time without an offset, ``amended_by_role`` as the
    position. Missing fields stay None: the validator, not the parser, decides they are a breach.
    """

    name: ClassVar[str] = "student-session-mark-amendments"
    path: ClassVar[str] = "attendance/student-session-mark-amendments/date/{date}"
    keys: ClassVar[tuple[str, ...]] = ("id",)

    def __init__(self, school_id: str, codes: CodeTable) -> None:
        self.school_id = school_id
        self.codes = codes

    def map(self, records: Sequence[Any], day: date) -> Batch[Amendment]:
        return _map_each(
            self.name,
            records,
            lambda r: self.to_schema(r, day),
            lambda r, i: f"amendment {_ref(r, 'id', i)}",
        )

    def to_schema(self, record: Mapping[str, Any], day: date) -> Amendment:
        ref = f"amendment {record.get('id')}"
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


class CalendarStream:
    """``timetables/calendar`` (path and row fields OBSERVED; meaning of the rows INFERRED).

    Rows are term weekdays (``date``, ``week``, ``day_type_code``). Terms are rebuilt as runs of
    listed dates whose gaps hold only weekends and England bank holidays; ``day_type_code`` gives
    the closures. Register times are not exposed: they come from the school's config.
    """

    name: ClassVar[str] = "calendar"
    path: ClassVar[str] = "timetables/calendar"
    keys: ClassVar[tuple[str, ...]] = ("date",)

    def __init__(self, school_id: str) -> None:
        self.school_id = school_id

    def to_schema(self, records: Sequence[Any]) -> tuple[Calendar | None, list[Quarantined]]:
        quarantined: list[Quarantined] = []
        days: set[date] = set()
        closures: list[Closure] = []
        for index, record in enumerate(records):
            ref = f"calendar row {index + 1}"
            try:
                if not isinstance(record, Mapping):
                    raise InvalidRecord(
                        "record is not an object", resource=self.name, record_ref=ref
                    )
                day = parse_date(
                    require(record, "date", resource=self.name, record_ref=ref),
                    resource=self.name,
                    record_ref=ref,
                    field="date",
                )
                days.add(day)
                code = str(record.get("day_type_code") or "S").strip().upper()
                if code not in DAY_TYPES:
                    raise InvalidRecord(
                        f"unknown day_type_code {code!r}; the day is kept as a normal school day",
                        resource=self.name,
                        record_ref=f"calendar {day.isoformat()}",
                        field="day_type_code",
                    )
                closure = DAY_TYPES[code]
                if closure is not None:
                    closures.append(
                        Closure(
                            date=day,
                            session=closure[0],
                            kind=closure[1],
                        )
                    )
            except InvalidRecord as error:
                quarantined.append(_quarantine(error, record))
            except RecursionError:  # found by tests/fuzz: a record nested too deeply
                quarantined.append(_too_deep(self.name, ref, record))
        if not days:
            return None, quarantined
        return Calendar(
            school_id=self.school_id,
            terms=terms_of(sorted(days)),
            closures=sorted(closures, key=lambda c: (c.date, c.session)),
        ), quarantined


# -- helpers ---------------------------------------------------------------------------------------


def _map_each(
    resource: str,
    records: Sequence[Any],
    to_schema: Callable[[Any], T],
    ref_of: Callable[[Any, int], str],
) -> Batch[T]:
    batch: Batch[T] = Batch()
    for index, record in enumerate(records):
        ref = ref_of(record, index)
        try:
            if not isinstance(record, Mapping):
                raise InvalidRecord("record is not an object", resource=resource, record_ref=ref)
            batch.records.append(to_schema(record))
        except InvalidRecord as error:
            batch.quarantined.append(_quarantine(error, record))
        except RecursionError:  # found by tests/fuzz: a record nested too deeply
            batch.quarantined.append(_too_deep(resource, ref, record))
        except ValidationError as error:
            batch.quarantined.append(_from_validation(error, resource, ref, record))
    return batch


def _too_deep(resource: str, ref: str, record: Any) -> Quarantined:
    return _quarantine(
        InvalidRecord("record nested too deeply", resource=resource, record_ref=ref), record
    )


def _quarantine(error: InvalidRecord, record: Any) -> Quarantined:
    # The shared policy (school filled in by the adapter, which knows it).
    return quarantine(
        error,
        record,
        vendor=FACTS.vendor,
        school="",
        resource=error.resource or "",
        record_ref=error.record_ref or "",
    )


def _from_validation(error: ValidationError, resource: str, ref: str, record: Any) -> Quarantined:
    first = error.errors()[0]
    field_name = ".".join(str(p) for p in first.get("loc", ())) or None
    return Quarantined(
        resource=resource,
        record_ref=ref,
        field=field_name,
        reason=str(first.get("msg", "invalid value")),
        raw=_raw(record),
    )


_raw = raw_text


def _ref(record: Any, key: str, index: int) -> str:
    if isinstance(record, Mapping) and record.get(key) is not None:
        try:
            return str(record[key])
        except RecursionError:  # found by tests/fuzz: an id nested too deeply to print
            pass
    return f"#{index + 1}"  # the id itself is missing: point at the record's position


def _session_ref(record: Any, day: date) -> str:
    if not isinstance(record, Mapping):
        return f"{day.isoformat()}/?/?"
    try:
        return f"{day.isoformat()}/{record.get('student_id', '?')}/{record.get('session', '?')}"
    except RecursionError:  # found by tests/fuzz: an id nested too deeply to print
        return f"{day.isoformat()}/?/?"
