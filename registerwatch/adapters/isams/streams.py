"""One small class per iSAMS resource: where it lives, its keys, and one ``to_schema()``.

Records arrive as flat mappings: REST JSON objects as they are, Batch XML elements through
``mapping.element_record`` (attributes as ``@Name``). ``to_schema`` raises ``InvalidRecord`` for a
record that will not map; ``map_records`` turns that into a ``Quarantined`` entry so one bad
record never stops the run.

Field names are OBSERVED in iSAMS's public docs unless a comment says INFERRED.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, ClassVar, TypeVar

from pydantic import ValidationError

from registerwatch.adapters.base import (
    Batch,
    build_mark,
    normalise_code,
    parse_date,
    parse_instant,
    require,
    validation_error,
)
from registerwatch.adapters.base import Stream as BaseStream
from registerwatch.adapters.base.mapping import plausible_until
from registerwatch.adapters.isams.client import FACTS
from registerwatch.adapters.isams.mapping import (
    DEFAULT_PM_CUTOFF,
    PRESENT_SYMBOLS,
    SESSION_PRESENT,
    MappedRows,
    PlainRows,
    field_text,
    local_datetime,
    optional_date,
    parse_flag,
    session_of,
    sex_of,
)
from registerwatch.calendar import LONDON
from registerwatch.errors import InvalidRecord
from registerwatch.schema import Amendment, AmendmentSource, Mark, Pupil, Session, Term

T = TypeVar("T")


# iSAMS schools configure their own absence codes. A spelling that is not a national code but
# stands for one goes here (vendor spelling -> national code). No iSAMS table is public, so it
# starts empty (INFERRED); ``normalise_code`` already reads c1/c2/j1 in any case.
ISAMS_CODE_ALIASES: Mapping[str, str] = FACTS.code_aliases


class Stream(BaseStream[T]):
    """An iSAMS resource: its name (used in quarantine entries), keys and replication key."""

    vendor = "isams"
    keys: ClassVar[tuple[str, ...]]
    # None: no modified-since exists for iSAMS; sync re-pulls a trailing window and diffs.
    replication_key: ClassVar[str | None] = None
    # What names one record in a quarantine entry (default: the keys).
    ref_keys: ClassVar[tuple[str, ...] | None] = None

    def record_ref(self, record: Any, position: str) -> str:
        """A reference to the record for a quarantine entry: its vendor id, never names."""
        values = [
            str(record[k])
            for k in (self.ref_keys or self.keys)
            if isinstance(record, Mapping) and record.get(k) not in (None, "")
        ]
        return f"{self.name} {'/'.join(values)}" if values else f"{self.name} at {position}"

    def map_records(
        self,
        records: Iterable[tuple[str, Any]],
        keep: Callable[[Mapping[str, Any]], bool] | None = None,
    ) -> Batch[T]:
        """Map ``(position, record)`` pairs; records that will not map are quarantined."""
        return self.map_positioned(records, keep=keep)


# -- pupils -----------------------------------------------------------------------------------


@dataclass
class RestPupilsStream(Stream[Pupil]):
    """``GET /api/students`` (REST, paged). Lists leavers too, with ``leavingDate``."""

    school_id: str
    name: ClassVar[str] = "students"
    path: ClassVar[str] = "/api/students"
    root_key: ClassVar[str] = "students"
    keys: ClassVar[tuple[str, ...]] = ("schoolId",)

    _FIELDS: ClassVar[Mapping[str, str]] = {
        "upn": "uniquePupilNumber",
        "legal_forename": "forename",
        "legal_surname": "surname",
        "dob": "dob",
        "nc_year": "yearGroup",
        "reg_group": "formGroup",
        "starting_day": "enrolmentDate",
        "leaving_date": "leavingDate",
        "sex": "gender",
    }

    def to_schema(self, record: Mapping[str, Any], ref: str | None = None) -> Pupil:
        ref = ref or self.record_ref(record, "an unknown position")
        where = {"resource": self.name, "record_ref": ref}
        mis_id = str(require(record, "schoolId", **where)).strip()
        if not mis_id:
            raise InvalidRecord("required field 'schoolId' is empty", field="schoolId", **where)
        dob = optional_date(record, "dob", **where)
        year = record.get("yearGroup")
        try:
            return Pupil(
                id=f"{self.school_id}:{mis_id}",
                school_id=self.school_id,
                mis_id=mis_id,
                upn=field_text(record, "uniquePupilNumber"),
                legal_forename=field_text(record, "forename"),
                legal_surname=field_text(record, "surname"),
                middle_names=field_text(record, "middlenames"),
                preferred_forename=field_text(record, "preferredName"),
                dob=dob,
                sex=sex_of(record, "gender", **where),
                nc_year=None if year in (None, "") else str(year),
                reg_group=field_text(record, "formGroup"),
                starting_day=optional_date(record, "enrolmentDate", **where),
                leaving_date=optional_date(record, "leavingDate", **where),
                # INFERRED: REST has no pupil type; a boarding house means a boarder.
                boarder=field_text(record, "boardingHouse") is not None,
            )
        except ValidationError as exc:
            raise validation_error(exc, fields=self._FIELDS, **where) from None


@dataclass
class BatchPupilsStream(Stream[Pupil]):
    """Batch ``Pupil_GetCurrentPupils``: ``<PupilManager><CurrentPupils><Pupil>``.

    Current pupils only: leavers need the REST credentials (``/api/students``).
    """

    school_id: str
    name: ClassVar[str] = "CurrentPupils"
    method: ClassVar[str] = "Pupil_GetCurrentPupils"
    section: ClassVar[str] = "PupilManager/CurrentPupils"
    keys: ClassVar[tuple[str, ...]] = ("SchoolId",)

    _FIELDS: ClassVar[Mapping[str, str]] = {
        "upn": "UPN",
        "legal_forename": "Forename",
        "legal_surname": "Surname",
        "dob": "DOB",
        "nc_year": "NCYear",
        "reg_group": "Form",
        "starting_day": "EnrolmentDate",
        "sex": "Gender",
    }

    def to_schema(self, record: Mapping[str, Any], ref: str | None = None) -> Pupil:
        ref = ref or self.record_ref(record, "an unknown position")
        where = {"resource": self.name, "record_ref": ref}
        mis_id = str(require(record, "SchoolId", **where)).strip()
        try:
            return Pupil(
                id=f"{self.school_id}:{mis_id}",
                school_id=self.school_id,
                mis_id=mis_id,
                upn=field_text(record, "UPN"),
                legal_forename=field_text(record, "Forename"),
                legal_surname=field_text(record, "Surname"),
                middle_names=field_text(record, "Middlename"),
                preferred_forename=field_text(record, "Preferredname"),
                dob=optional_date(record, "DOB", **where),
                sex=sex_of(record, "Gender", **where),
                nc_year=field_text(record, "NCYear"),
                reg_group=field_text(record, "Form"),
                starting_day=optional_date(record, "EnrolmentDate", **where),
                boarder=(field_text(record, "PupilType") or "").lower() == "boarder",
            )
        except ValidationError as exc:
            raise validation_error(exc, fields=self._FIELDS, **where) from None


# -- marks ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PresentCode:
    id: str
    code: str
    name: str | None = None


@dataclass
class MarksStream(Stream[Mark]):
    """Batch ``Registration_GetRegistrationStatus``: one row per pupil and registration time.

    ``RegistrationDateTime`` is local time with no session flag: the session comes from the
    cut-off. ``Registered = 0`` means nobody has marked the pupil yet: no mark (not an absence).
    A row names its code either by ``Code`` (an absence code letter) or by ``PresentCode`` (an
    id into the school's present-code table, read from ``Registration_GetPresentCodes``);
    ``Code`` wins when both are set. ``MinutesLate``, ``Comment`` and ``LastUpdated`` are
    INFERRED optional children, read when present.
    """

    school_id: str
    pm_cutoff: time = DEFAULT_PM_CUTOFF
    present_codes: Mapping[str, PresentCode] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=lambda: dict(ISAMS_CODE_ALIASES))
    name: ClassVar[str] = "RegistrationStatus"
    method: ClassVar[str] = "Registration_GetRegistrationStatus"
    filter_name: ClassVar[str] = "RegistrationStatus"
    section: ClassVar[str] = "RegistrationManager/RegistrationStatuses"
    # The natural key; rows repeat it on purpose, so dedupe_marks decides.
    keys: ClassVar[tuple[str, ...]] = ("PupilId", "RegistrationDateTime")
    ref_keys: ClassVar[tuple[str, ...] | None] = ("@Id",)

    _FIELDS: ClassVar[Mapping[str, str]] = {
        "pupil_id": "PupilId",
        "date": "RegistrationDateTime",
        "session": "RegistrationDateTime",
        "code": "Code",
        "minutes_late": "MinutesLate",
        "recorded_at": "LastUpdated",
    }

    @staticmethod
    def is_registered(record: Mapping[str, Any]) -> bool:
        """False for a ``Registered = 0`` row (no mark yet); malformed values are kept so that
        ``to_schema`` quarantines them with the field named."""
        return str(record.get("Registered", "1")).strip() not in ("0", "false", "False")

    def session_registers(
        self, records: Iterable[Mapping[str, Any]]
    ) -> Callable[[Mapping[str, Any]], bool]:
        """A filter keeping only rows of each pupil's first registration period per session.

        iSAMS schools may run more registration periods than the two statutory ones (boarding
        roll-calls in the evening, lesson registers). The session's register is the first period
        of the session: "the first registration after 12:00 is treated as the PM registration"
        (Access Group); likewise the first of the morning is the AM one. Later
        periods are ignored, not quarantined. Rows without a readable pupil or time are kept so
        that ``to_schema`` quarantines them with the field named. The filter recognises the very
        record objects it was built from.
        """
        periods = [(record, self.period_of(record)) for record in records]
        first: dict[tuple[str, date, Session], datetime] = {}
        for _record, period in periods:
            if period is not None:
                key, when = period
                if key not in first or when < first[key]:
                    first[key] = when
        later = {
            id(record)
            for record, period in periods
            if period is not None and period[1] != first[period[0]]
        }

        def keep(record: Mapping[str, Any]) -> bool:
            return id(record) not in later

        return keep

    def period_of(
        self, record: Mapping[str, Any]
    ) -> tuple[tuple[str, date, Session], datetime] | None:
        pupil = field_text(record, "PupilId")
        try:
            when = local_datetime(
                record.get("RegistrationDateTime"),
                resource=self.name,
                record_ref="",
                field="RegistrationDateTime",
            )
        except InvalidRecord:
            return None
        if pupil is None:
            return None
        return (pupil, when.date(), session_of(when, self.pm_cutoff)), when

    def to_schema(self, record: Mapping[str, Any], ref: str | None = None) -> Mark:
        ref = ref or self.record_ref(record, "an unknown position")
        where = {"resource": self.name, "record_ref": ref}
        pupil = str(require(record, "PupilId", **where)).strip()
        when = local_datetime(
            require(record, "RegistrationDateTime", **where), field="RegistrationDateTime", **where
        )
        session = session_of(when, self.pm_cutoff)
        registered = parse_flag(require(record, "Registered", **where), field="Registered", **where)
        if not registered:
            raise InvalidRecord("Registered is 0: there is no mark", field="Registered", **where)
        code, vendor_code = self.code_of(record, session, where)
        minutes = record.get("MinutesLate")
        try:
            minutes_late = None if minutes in (None, "") else int(str(minutes))
        except ValueError:
            raise InvalidRecord(
                f"{minutes!r} is not a whole number of minutes", field="MinutesLate", **where
            ) from None
        recorded_at = parse_instant(
            record.get("LastUpdated"), field="LastUpdated", default_tz=LONDON, **where
        )
        try:
            return build_mark(
                pupil_id=f"{self.school_id}:{pupil}",
                date=when.date(),
                session=session,
                code=code,
                vendor_code=vendor_code,
                minutes_late=minutes_late,
                comment=field_text(record, "Comment"),
                recorded_at=recorded_at,
                recorded_by=None,
                source_ref=ref,
            )
        except ValidationError as exc:
            raise validation_error(exc, fields=self._FIELDS, **where) from None

    # -- the common row, fast --------------------------------------------------------------

    def map_rows(self, rows: Sequence[tuple[str, Mapping[str, Any]]]) -> MappedRows:
        """``map_records(rows, keep=first period and registered)`` in one pass, for a whole
        Batch answer (tens of thousands of rows a month for a large school).

        A row whose every value is of the plain kind (a known time, pupil id, code and present
        code; printable text; dates inside the plausible window) is mapped from values worked
        out once per distinct text: the same ``Mark`` ``to_schema`` builds, and one that
        ``refuse_implausible`` would pass. Any other row goes through ``map_one`` itself, so
        every quarantine entry (record, field, reason) is the one the general path makes.
        Raw rows are not kept here: ``rows_of`` names each mark's row, for the caller to keep
        only those of keys still repeated once superseded versions are dropped.
        """
        today = date.today()
        latest = plausible_until(today)
        fast = PlainRows(self, latest)
        periods = [(position, record, fast.period(record)) for position, record in rows]
        first: dict[tuple[str, date, Session], datetime] = {}
        for _position, _record, period in periods:
            if period is not None:
                key, when = period
                if key not in first or when < first[key]:
                    first[key] = when
        result = MappedRows()
        batch = result.batch
        for position, record, period in periods:
            if period is not None and period[1] != first[period[0]]:
                result.later += 1
                continue
            if not self.is_registered(record):
                continue
            mark = fast.mark(record)
            ref = mark.source_ref if mark is not None else None
            if mark is None:
                ref = self.safe_ref(record, position)
                mark = self.map_or_quarantine(batch, record, ref, today=today)
                if mark is None:
                    continue
            batch.records.append(mark)
            result.rows_of[id(mark)] = (record, ref or "")
        return result

    def code_of(
        self, record: Mapping[str, Any], session: Session, where: Mapping[str, str]
    ) -> tuple[str, str]:
        raw = field_text(record, "Code")
        if raw is not None:
            return normalise_code(raw, self.aliases, field="Code", **where), raw
        present_id = field_text(record, "PresentCode")
        if present_id in (None, "0"):
            raise InvalidRecord(
                "Registered is 1 but the row has neither a Code nor a PresentCode",
                field="Code",
                **where,
            )
        assert present_id is not None
        present = self.present_codes.get(present_id)
        if present is None:
            raise InvalidRecord(
                f"PresentCode {present_id} is not in the school's present-code table",
                field="PresentCode",
                **where,
            )
        if present.code.upper() in PRESENT_SYMBOLS:
            return SESSION_PRESENT[session], present.code
        return normalise_code(
            present.code, self.aliases, field="PresentCode", **where
        ), present.code


@dataclass
class PresentCodesStream(Stream[PresentCode]):
    """Batch ``Registration_GetPresentCodes``. The method name is OBSERVED; the element shape
    (``<PresentCodes><PresentCode Id><Code><Name>``) is INFERRED."""

    school_id: str = ""
    name: ClassVar[str] = "PresentCode"
    method: ClassVar[str] = "Registration_GetPresentCodes"
    section: ClassVar[str] = "RegistrationManager/PresentCodes"
    keys: ClassVar[tuple[str, ...]] = ("@Id",)

    def to_schema(self, record: Mapping[str, Any], ref: str | None = None) -> PresentCode:
        ref = ref or self.record_ref(record, "an unknown position")
        where = {"resource": self.name, "record_ref": ref}
        ident = str(require(record, "@Id", **where)).strip()
        code = field_text(record, "Code")
        if code is None:
            raise InvalidRecord("required field 'Code' is missing", field="Code", **where)
        return PresentCode(id=ident, code=code, name=field_text(record, "Name"))


# -- amendments (INFERRED resource) -----------------------------------------------------------


@dataclass
class AmendmentsStream(Stream[Amendment]):
    """INFERRED: no vendor documents an attendance audit. The simulator serves
    one in iSAMS style as Batch ``Registration_GetRegistrationAudit`` →
    ``<RegistrationManager><RegistrationAudits><RegistrationAudit Id>`` with ``PupilId``,
    ``RegistrationDateTime``, ``OriginalCode``, ``AmendedCode``, ``Reason``,
    ``AmendedDateTime``, ``AmendedBy``, ``AmendedByPosition``. Missing fields stay None: the
    AMD001 rule, not this parser, judges an incomplete record."""

    school_id: str
    pm_cutoff: time = DEFAULT_PM_CUTOFF
    aliases: Mapping[str, str] = field(default_factory=lambda: dict(ISAMS_CODE_ALIASES))
    name: ClassVar[str] = "RegistrationAudit"
    method: ClassVar[str] = "Registration_GetRegistrationAudit"
    filter_name: ClassVar[str] = "RegistrationAudit"
    section: ClassVar[str] = "RegistrationManager/RegistrationAudits"
    keys: ClassVar[tuple[str, ...]] = ("@Id",)

    def to_schema(self, record: Mapping[str, Any], ref: str | None = None) -> Amendment:
        ref = ref or self.record_ref(record, "an unknown position")
        where = {"resource": self.name, "record_ref": ref}
        pupil = str(require(record, "PupilId", **where)).strip()
        when = local_datetime(
            require(record, "RegistrationDateTime", **where), field="RegistrationDateTime", **where
        )

        def code(key: str) -> str | None:
            raw = field_text(record, key)
            if raw is None:
                return None
            if raw.upper() in PRESENT_SYMBOLS:
                return SESSION_PRESENT[session_of(when, self.pm_cutoff)]
            return normalise_code(raw, self.aliases, field=key, **where)

        try:
            return Amendment(
                pupil_id=f"{self.school_id}:{pupil}",
                date=when.date(),
                session=session_of(when, self.pm_cutoff),
                original_code=code("OriginalCode"),
                amended_code=code("AmendedCode"),
                reason=field_text(record, "Reason"),
                amended_at=parse_instant(
                    record.get("AmendedDateTime"),
                    field="AmendedDateTime",
                    default_tz=LONDON,
                    **where,
                ),
                amended_by_name=field_text(record, "AmendedBy"),
                amended_by_position=field_text(record, "AmendedByPosition"),
                source=AmendmentSource.MIS,
                source_ref=ref,
            )
        except ValidationError as exc:
            raise validation_error(exc, fields={}, **where) from None


# -- calendar ---------------------------------------------------------------------------------


@dataclass
class TermsStream(Stream[Term]):
    """Batch ``School_GetSchoolTerms``: ``<SchoolManager><Terms><Term Id>`` with ``StartDate``
    and ``FinishDate`` (OBSERVED, recorded example). iSAMS exposes no closures or register
    times: those come from the school's config."""

    school_id: str = ""
    name: ClassVar[str] = "Term"
    method: ClassVar[str] = "School_GetSchoolTerms"
    section: ClassVar[str] = "SchoolManager/Terms"
    keys: ClassVar[tuple[str, ...]] = ("@Id",)

    def to_schema(self, record: Mapping[str, Any], ref: str | None = None) -> Term:
        ref = ref or self.record_ref(record, "an unknown position")
        where = {"resource": self.name, "record_ref": ref}
        start = parse_date(require(record, "StartDate", **where), field="StartDate", **where)
        end = parse_date(require(record, "FinishDate", **where), field="FinishDate", **where)
        try:
            return Term(start=start, end=end)
        except ValidationError as exc:
            raise validation_error(
                exc, fields={"end": "FinishDate", "start": "StartDate"}, **where
            ) from None
