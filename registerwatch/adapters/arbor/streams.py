"""One small class per Arbor resource: its path, keys, replication key and one ``to_schema()``.

``to_schema`` raises ``InvalidRecord`` for a record that will not map (``map_records`` turns
that into a ``Quarantined`` entry, so one bad record never stops the run). Related objects come
as ``{"entityType", "href"}`` stubs; a stream resolves them through the client, which fetches
each href once per run.

Property names are OBSERVED in Arbor's SDK models unless marked INFERRED.
Reasons never quote a pupil's personal data (names, UPN, date of birth): quarantine entries end
up in reports and logs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, ClassVar, TypeVar

from registerwatch.adapters.arbor.client import ArborNotFoundError, href_id, resource_path
from registerwatch.adapters.arbor.mapping import (
    CODE_ALIASES,
    PM_CUTOFF,
    SEX_CODES,
    MarkKey,
    PlainMarks,
    Resolve,
    Sex,
    Where,
    arbor_value,
    is_open,
    latest,
    local_date,
    local_instant,
    needed_date,
    register_group,
    required,
    stub_href,
    stub_of,
    text,
    whole_minutes,
)
from registerwatch.adapters.base import (
    Batch,
    Quarantined,
    Stream,
    build_mark,
    normalise_code,
    quarantine,
)
from registerwatch.adapters.base.duplicates import mark_key
from registerwatch.adapters.base.mapping import plausible_until
from registerwatch.adapters.base.streams import remember_duplicate
from registerwatch.errors import InvalidRecord
from registerwatch.schema import (
    Amendment,
    AmendmentSource,
    Mark,
    Pupil,
    Register,
    Session,
    Term,
)

T = TypeVar("T")


SEN_EHCP, SEN_SUPPORT = "E", "K"  # DfE SEN provision codes on UkDfe_SenStatus.code


# -- the stream base --------------------------------------------------------------------------


class ArborStream(Stream[T]):
    """A resource: its path (also the ``resource`` of quarantine entries), keys, replication
    key; records are named by their href."""

    vendor = "arbor"
    path: ClassVar[str]
    keys: ClassVar[tuple[str, ...]] = ("href",)

    def __init__(self, resolve: Resolve, *, school_id: str = "") -> None:
        self.resolve = resolve
        self.school_id = school_id
        # What each stub resolved to in this pull (records name a few dozen marks and a few
        # thousand registers). Answers only: a bad stub is refused for every record naming it.
        self._codes_by_href: dict[str, tuple[str, str]] = {}
        self._sessions_by_href: dict[str, Session] = {}
        # A pull's records name a few hundred pupils and repeat their sessions' start times
        # and their registers' save times: each href and date-time text is read once.
        self._pupils_by_href: dict[str, str] = {}
        self._instants_by_text: dict[str, datetime] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "path" in cls.__dict__:
            cls.name = cls.path

    def record_ref(self, record: Any, position: str) -> str:
        """The record's href (an id, never personal data), or its position in the listing."""
        if (type(record) is dict or isinstance(record, Mapping)) and isinstance(
            record.get("href"), str
        ):
            return str(record["href"])
        return f"{self.path} {position}"

    def pupil_id(self, record: Mapping[str, Any], key: str, *, ref: str) -> str:
        """``<school>:<student id>`` from the record's (required) student stub."""
        href = stub_href(record.get(key))
        if href is not None and (known := self._pupils_by_href.get(href)) is not None:
            return known
        student = stub_of(record, key, resource=self.path, record_ref=ref)
        assert student is not None
        pupil_id = f"{self.school_id}:{href_id(student['href'])}"
        if href is not None:
            self._pupils_by_href[href] = pupil_id
        return pupil_id

    def instant(
        self, record: Mapping[str, Any], key: str, *, ref: str, needed: bool = False
    ) -> datetime | None:
        """``local_instant``, parsed once per distinct text (a refused text is refused, with
        its field and reason, on every record that carries it)."""
        value = record.get(key)
        if type(value) is str and (known := self._instants_by_text.get(value)) is not None:
            return known
        parsed = local_instant(record, key, resource=self.path, record_ref=ref, needed=needed)
        if type(value) is str and parsed is not None:
            self._instants_by_text[value] = parsed
        return parsed

    def resolved(
        self, record: Mapping[str, Any], key: str, *, ref: str, needed: bool = True
    ) -> dict[str, Any] | None:
        """The object behind ``record[key]``; InvalidRecord when it is dangling or empty."""
        link = stub_of(record, key, resource=self.path, record_ref=ref, needed=needed)
        if link is None:
            return None
        try:
            target = self.resolve(link)
        except ArborNotFoundError:
            raise InvalidRecord(
                f"{key!r} refers to {link['href']}, which Arbor says does not exist",
                resource=self.path,
                record_ref=ref,
                field=key,
            ) from None
        if not target:
            raise InvalidRecord(
                f"{key!r} ({link['href']}) came back empty — check the API "
                "user's permission to read it",
                resource=self.path,
                record_ref=ref,
                field=key,
            )
        return target

    def session_of_type(
        self, record: Mapping[str, Any], key: str, *, ref: str, needed: bool = True
    ) -> Session | None:
        """AM/PM from an ``AttendanceRegisterType`` (``isMorning`` / ``isAfternoon``)."""
        register_type = self.resolved(record, key, ref=ref, needed=needed)
        if register_type is None:
            return None
        morning, afternoon = register_type.get("isMorning"), register_type.get("isAfternoon")
        if morning is True and afternoon is not True:
            return Session.AM
        if afternoon is True and morning is not True:
            return Session.PM
        raise InvalidRecord(
            f"register type {register_type.get('href')} is neither morning nor afternoon",
            resource=self.path,
            record_ref=ref,
            field=key,
        )

    def mark_code(
        self, record: Mapping[str, Any], key: str, *, ref: str, needed: bool = True
    ) -> tuple[str, str] | None:
        """(national code, Arbor code) from an ``AttendanceMark`` stub."""
        href = stub_href(record.get(key))
        if href is not None and (known := self._codes_by_href.get(href)) is not None:
            return known
        mark = self.resolved(record, key, ref=ref, needed=needed)
        if mark is None:
            return None
        vendor_code = text(mark, "code")
        national = normalise_code(
            vendor_code, CODE_ALIASES, resource=self.path, record_ref=ref, field=key
        )
        if href is not None:
            self._codes_by_href[href] = (national, vendor_code or "")
        return national, vendor_code or ""


# -- pupils -----------------------------------------------------------------------------------


@dataclass
class StudentRelations:
    """Rows of the per-student resources, grouped by student (``students/<id>``)."""

    upns: dict[str, list[Mapping[str, Any]]] = field(default_factory=dict)
    levels: dict[str, list[Mapping[str, Any]]] = field(default_factory=dict)
    forms: dict[str, list[Mapping[str, Any]]] = field(default_factory=dict)
    sen: dict[str, list[Mapping[str, Any]]] = field(default_factory=dict)
    in_care: dict[str, list[Mapping[str, Any]]] = field(default_factory=dict)
    quarantined: list[Quarantined] = field(default_factory=list)
    school_id: str = ""

    def add(self, attribute: str, resource: str, rows: Iterable[Any]) -> None:
        grouped: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        for position, row in enumerate(rows, start=1):
            ref = (
                str(row["href"])
                if isinstance(row, Mapping) and isinstance(row.get("href"), str)
                else f"{resource} item {position}"
            )
            try:
                if not isinstance(row, Mapping):
                    raise InvalidRecord("record is not a JSON object", record_ref=ref)
                student = stub_of(row, "student", resource=resource, record_ref=ref)
                assert student is not None
                grouped[resource_path(student["href"])].append(row)
            except InvalidRecord as exc:
                self.quarantined.append(
                    quarantine(
                        exc,
                        row,
                        vendor="arbor",
                        school=self.school_id,
                        resource=resource,
                        record_ref=ref,
                    )
                )
        setattr(self, attribute, dict(grouped))


class PupilsStream(ArborStream[Pupil]):
    """``students`` (+ ``persons``, UPN assignments, year and form memberships, SEN, in care).

    Not exposed by Arbor-style REST, so left at their defaults: ``deletion_ground``,
    ``address``, ``future_address``, ``new_school``, ``contacts``, ``fsm``,
    ``has_social_worker``, ``boarder``.
    """

    path = "students"
    fields: ClassVar[Mapping[str, str]] = {
        "legal_forename": "legalFirstName",
        "legal_surname": "legalLastName",
        "middle_names": "legalMiddleNames",
        "preferred_forename": "preferredFirstName",
        "preferred_surname": "preferredLastName",
        "dob": "dateOfBirth",
        "sex": "gender",
        "starting_day": "mostRecentEntryDate",
        "leaving_date": "leavingDate",
        "upn": "upn",
        "nc_year": "academicLevel",
        "reg_group": "registrationForm",
    }

    def __init__(self, resolve: Resolve, *, school_id: str, relations: StudentRelations) -> None:
        super().__init__(resolve, school_id=school_id)
        self.relations = relations

    def to_schema(self, record: Mapping[str, Any], ref: str) -> Pupil:
        where: Where = {"resource": self.path, "record_ref": ref}
        student_key = resource_path(str(required(record, "href", **where)))
        mis_id = href_id(student_key)
        person = self.resolved(record, "person", ref=ref)
        assert person is not None
        upn, former_upn = self._upns(student_key)
        sen_codes = self._sen_codes(student_key, ref)
        return Pupil(
            id=f"{self.school_id}:{mis_id}",
            school_id=self.school_id,
            mis_id=mis_id,
            upn=upn,
            former_upn=former_upn,
            legal_forename=text(person, "legalFirstName"),
            legal_surname=text(person, "legalLastName"),
            middle_names=text(person, "legalMiddleNames"),
            preferred_forename=text(person, "preferredFirstName"),
            preferred_surname=text(person, "preferredLastName"),
            dob=local_date(person, "dateOfBirth", personal=True, **where),
            sex=self._sex(person, ref),
            nc_year=self._nc_year(student_key, ref),
            reg_group=self._reg_group(student_key, ref),
            # INFERRED on REST: GraphQL's Student has mostRecentEntryDate and leavingDate.
            starting_day=local_date(record, "mostRecentEntryDate", **where),
            leaving_date=local_date(record, "leavingDate", **where),
            ehcp=SEN_EHCP in sen_codes,
            sen_support=SEN_SUPPORT in sen_codes,
            looked_after=any(
                is_open(row, "endDate") for row in self.relations.in_care.get(student_key, [])
            ),
        )

    def _upns(self, student_key: str) -> tuple[str | None, str | None]:
        """The open assignment is the UPN (a permanent one before a temporary one); the one
        that ended last is the former UPN."""
        rows = self.relations.upns.get(student_key, [])
        current = [r for r in rows if is_open(r, "endDatetime")]
        current.sort(
            key=lambda r: (
                r.get("isTemporary") is not True,
                str(arbor_value(r.get("startDatetime")) or ""),
            )
        )
        ended = latest((r for r in rows if not is_open(r, "endDatetime")), "endDatetime")
        return (
            text(current[-1], "upn") if current else None,
            text(ended, "upn") if ended else None,
        )

    def _sex(self, person: Mapping[str, Any], ref: str) -> Sex | None:
        """M / F / U from the person's Gender; an unknown code quarantines the pupil (as the
        iSAMS adapter does) rather than guessing."""
        if person.get("gender") is None:
            return None
        gender = self.resolved(person, "gender", ref=ref)
        assert gender is not None
        code = (text(gender, "code") or "").upper()
        if code not in SEX_CODES:
            raise InvalidRecord(
                f"gender code {code!r} is not recognised",
                resource=self.path,
                record_ref=ref,
                field="gender",
            )
        return SEX_CODES[code]

    def _current(self, rows: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
        """The open membership; else the one that started last (a leaver's last group)."""
        open_rows = [r for r in rows if is_open(r, "endDate")]
        return latest(open_rows or rows, "startDate")

    def _nc_year(self, student_key: str, ref: str) -> str | None:
        membership = self._current(self.relations.levels.get(student_key, []))
        if membership is None:
            return None
        level = self.resolved(membership, "academicLevel", ref=ref)
        assert level is not None
        grade = self.resolved(level, "curriculumGrade", ref=ref, needed=False)
        return text(grade, "code") if grade else None

    def _reg_group(self, student_key: str, ref: str) -> str | None:
        membership = self._current(self.relations.forms.get(student_key, []))
        if membership is None:
            return None
        form = self.resolved(membership, "registrationForm", ref=ref)
        assert form is not None
        return text(form, "shortName") or text(form, "code") or text(form, "registrationFormName")

    def _sen_codes(self, student_key: str, ref: str) -> set[str]:
        codes = set()
        for row in self.relations.sen.get(student_key, []):
            if is_open(row, "endDate"):
                status = self.resolved(row, "senStatus", ref=ref)
                codes.add((text(status or {}, "code") or "").upper())
        return codes


# -- registers and marks ----------------------------------------------------------------------


class RegistersStream(ArborStream[Register]):
    """``attendance-registers``: one register-taking event per form and session.

    ``startDatetime`` and ``registrationForm`` on the register are INFERRED (Arbor hangs a
    register off an ``event``); who took the register is NOT FOUND in Arbor, so ``taken_by``
    stays None.
    """

    path = "attendance-registers"
    replication_key = "startDatetime"
    fields: ClassVar[Mapping[str, str]] = {
        "opened_at": "openedDatetime",
        "completed_at": "completedDatetime",
        "group": "registrationForm",
        "session": "attendanceRegisterType",
    }

    def __init__(self, resolve: Resolve, *, school_id: str) -> None:
        super().__init__(resolve, school_id=school_id)

    def to_schema(self, record: Mapping[str, Any], ref: str) -> Register:
        where: Where = {"resource": self.path, "record_ref": ref}
        start = local_instant(record, "startDatetime", needed=True, **where)
        assert start is not None
        session = self.session_of_type(record, "attendanceRegisterType", ref=ref)
        form = self.resolved(record, "registrationForm", ref=ref)
        assert form is not None and session is not None
        group = register_group(form)
        if group is None:
            raise InvalidRecord(
                "the registration form has no name", field="registrationForm", **where
            )
        return Register(
            school_id=self.school_id,
            group=group,
            date=start.date(),
            session=session,
            opened_at=local_instant(record, "openedDatetime", **where),
            completed_at=local_instant(record, "completedDatetime", **where),
            source_ref=ref,
        )


class MarksStream(ArborStream[Mark]):
    """``attendance-records``: one record per pupil and session.

    Session: the register's type (``isMorning`` / ``isAfternoon``); a record with no register
    falls back to its start time against ``PM_CUTOFF``. ``recorded_at`` is ``modifiedDatetime``
    (INFERRED on REST, seen in GraphQL); who recorded the mark is NOT FOUND, so ``recorded_by``
    stays None. Arbor writes local times to the second.

    A first sync maps every mark of the year so far, so ``map_records`` takes a fast path for
    a record whose every value is one ``to_schema`` has already mapped for an earlier record
    (its student, register and mark stubs, its date-time texts) and found plain (the checks of
    ``build_mark`` and ``refuse_implausible`` pass for it, asked once per distinct value), and
    whose own values are plain (its href, a whole ``minutesLate``, a text note). Every other
    record goes through ``to_schema`` as before, so a bad record is quarantined with the same
    reference, field and reason (``map_each`` is that record-at-a-time path in full; the tests
    hold the two equal).
    """

    path = "attendance-records"
    replication_key = "startDatetime"
    fields: ClassVar[Mapping[str, str]] = {
        "minutes_late": "minutesLate",
        "comment": "recordNote",
        "recorded_at": "modifiedDatetime",
        "code": "attendanceMark",
        "date": "startDatetime",
    }

    def __init__(self, resolve: Resolve, *, school_id: str) -> None:
        super().__init__(resolve, school_id=school_id)

    def map_each(
        self, records: Iterable[Any], keep: Callable[[Mapping[str, Any]], bool] | None = None
    ) -> Batch[Mark]:
        """Each record through ``to_schema`` (the path ``map_records`` must agree with)."""
        return super().map_records(records, keep=keep)

    def map_records(
        self, records: Iterable[Any], keep: Callable[[Mapping[str, Any]], bool] | None = None
    ) -> Batch[Mark]:
        """``map_each``'s batch (records, quarantine entries, remembered repeats, in the same
        order), faster for well-formed records: see the class docstring."""
        if keep is not None:
            return self.map_each(records, keep=keep)
        today = date.today()  # the plausible-dates window, asked once per pull (as the base)
        try:
            plain = PlainMarks(self, plausible_until(today))
        except ValueError:  # 29 February: refuse_implausible decides what then happens
            return self.map_each(records)
        batch: Batch[Mark] = Batch()
        # key -> the first mark with it, its raw record and reference (as map_positioned)
        first: dict[tuple[str, date, str], tuple[Mark, Any, str]] = {}
        for number, record in enumerate(records, start=1):
            made = plain.mark(record) if type(record) is dict else None
            if made is not None:
                mark, key = made
                ref = record["href"]
            else:
                ref = self.safe_ref(record, f"item {number}")
                slow = self.map_or_quarantine(batch, record, ref, today=today)
                if slow is None:
                    continue
                mark, key = slow, mark_key(slow)
            batch.records.append(mark)
            earlier = first.setdefault(key, (mark, record, ref))
            if earlier[0] is not mark:
                remember_duplicate(batch, *earlier)
                remember_duplicate(batch, mark, record, ref)
        return batch

    def to_schema(self, record: Mapping[str, Any], ref: str) -> Mark:
        pupil_id = self.pupil_id(record, "student", ref=ref)
        start = self.instant(record, "startDatetime", ref=ref, needed=True)
        assert start is not None
        session = self._session(record, start, ref)
        code = self.mark_code(record, "attendanceMark", ref=ref)
        assert code is not None
        minutes = record.get("minutesLate")
        return build_mark(
            pupil_id=pupil_id,
            date=start.date(),
            session=session,
            code=code[0],
            vendor_code=code[1],
            minutes_late=None
            if minutes is None
            else whole_minutes(minutes, resource=self.path, record_ref=ref),
            comment=text(record, "recordNote"),
            recorded_at=self.instant(record, "modifiedDatetime", ref=ref),
            recorded_by=None,
            source_ref=ref,
        )

    def _session(self, record: Mapping[str, Any], start: datetime, ref: str) -> Session:
        href = stub_href(record.get("attendanceRegister"))
        if href is not None and (known := self._sessions_by_href.get(href)) is not None:
            return known
        register = self.resolved(record, "attendanceRegister", ref=ref, needed=False)
        if register is not None:
            session = self.session_of_type(register, "attendanceRegisterType", ref=ref)
            assert session is not None
            if href is not None:
                self._sessions_by_href[href] = session
            return session
        return Session.PM if start.time() >= PM_CUTOFF else Session.AM

    def key(self, record: Mapping[str, Any], ref: str) -> MarkKey:
        """(pupil id, date, session) of a record, for the change feed."""
        student = stub_of(record, "student", resource=self.path, record_ref=ref)
        assert student is not None
        start = local_instant(
            record, "startDatetime", resource=self.path, record_ref=ref, needed=True
        )
        assert start is not None
        return (
            f"{self.school_id}:{href_id(student['href'])}",
            start.date(),
            self._session(record, start, ref),
        )


class AmendmentsStream(ArborStream[Amendment]):
    """``attendance-record-amendments``: INFERRED resource (no vendor publishes an audit).

    One row per change to a register entry: ``student``, ``startDatetime`` (the session),
    ``attendanceRegisterType``, ``originalAttendanceMark`` / ``amendedAttendanceMark`` stubs
    (null when unknown), ``reason``, ``amendedDatetime``, ``amendedByName``,
    ``amendedByPosition``. Missing fields stay None: rule AMD001 judges them, not the parser.
    """

    path = "attendance-record-amendments"
    replication_key = "startDatetime"
    fields: ClassVar[Mapping[str, str]] = {
        "amended_at": "amendedDatetime",
        "reason": "reason",
        "amended_by_name": "amendedByName",
        "amended_by_position": "amendedByPosition",
    }

    def __init__(self, resolve: Resolve, *, school_id: str) -> None:
        super().__init__(resolve, school_id=school_id)

    def to_schema(self, record: Mapping[str, Any], ref: str) -> Amendment:
        where: Where = {"resource": self.path, "record_ref": ref}
        student = stub_of(record, "student", **where)
        assert student is not None
        start = local_instant(record, "startDatetime", needed=True, **where)
        assert start is not None
        session = self.session_of_type(record, "attendanceRegisterType", ref=ref, needed=False)
        if session is None:
            session = Session.PM if start.time() >= PM_CUTOFF else Session.AM
        original = self.mark_code(record, "originalAttendanceMark", ref=ref, needed=False)
        amended = self.mark_code(record, "amendedAttendanceMark", ref=ref, needed=False)
        return Amendment(
            pupil_id=f"{self.school_id}:{href_id(student['href'])}",
            date=start.date(),
            session=session,
            original_code=original[0] if original else None,
            amended_code=amended[0] if amended else None,
            reason=text(record, "reason"),
            amended_at=local_instant(record, "amendedDatetime", **where),
            amended_by_name=text(record, "amendedByName"),
            amended_by_position=text(record, "amendedByPosition"),
            source=AmendmentSource.MIS,
            source_ref=ref,
        )


# -- calendar ---------------------------------------------------------------------------------


class TermsStream(ArborStream[Term]):
    """``terms`` (OBSERVED properties ``startDate`` / ``endDate``; path INFERRED by the SDK's
    pluralise-and-dash rule). Closures and register times are not read from Arbor."""

    path = "terms"
    fields: ClassVar[Mapping[str, str]] = {"start": "startDate", "end": "endDate"}

    def to_schema(self, record: Mapping[str, Any], ref: str) -> Term:
        where: Where = {"resource": self.path, "record_ref": ref}
        return Term(
            start=needed_date(record, "startDate", **where),
            end=needed_date(record, "endDate", **where),
        )
