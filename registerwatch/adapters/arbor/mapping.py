"""Arbor's vendor fields -> the common schema's values: codes, sexes, sessions, Arbor's local
times and ``{"entityType", "href"}`` stubs, shared by the streams in ``streams.py``; and
``PlainMarks``, the fast path of ``MarksStream.map_records``.

Property names are OBSERVED in Arbor's SDK models unless marked INFERRED. Reasons never quote a
pupil's personal data (names, UPN, date of birth): quarantine entries end up in reports and logs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from registerwatch.adapters.arbor.client import FACTS
from registerwatch.adapters.base import parse_instant
from registerwatch.adapters.base.checked import checked_mark
from registerwatch.adapters.base.mapping import is_plain_text, is_plausible_day
from registerwatch.calendar import LONDON
from registerwatch.codes import is_known_code
from registerwatch.errors import InvalidRecord
from registerwatch.schema import Mark, Session

if TYPE_CHECKING:
    from registerwatch.adapters.arbor.streams import MarksStream

Sex = Literal["M", "F", "U"]


class Where(TypedDict):
    """Where a value came from, for InvalidRecord: the resource and the record's href."""

    resource: str
    record_ref: str


Resolve = Callable[[Mapping[str, Any]], dict[str, Any]]


MarkKey = tuple[str, date, Session]


CODE_ALIASES: Mapping[str, str] = FACTS.code_aliases


# INFERRED: Gender codes; DfE census codes are M / F, Arbor's own names are guesses.
SEX_CODES: Mapping[str, Sex] = {
    "M": "M",
    "MALE": "M",
    "F": "F",
    "FEMALE": "F",
    "U": "U",
    "UNKNOWN": "U",
    "X": "U",
    "NOT_KNOWN": "U",
}


# INFERRED: a record with no register (so no register type) is the afternoon one when its
# session starts at or after midday. Records with a register take AM/PM from its type.
PM_CUTOFF = time(12, 0)


def arbor_value(value: Any) -> Any:
    """Arbor writes dates either plainly or as ``{"entityType": "date", "date": "..."}``."""
    if type(value) is str or value is None:  # most values: no Mapping check (an ABC's is slow)
        return value
    if isinstance(value, Mapping) and "date" in value:
        return value["date"]
    return value


def text(record: Mapping[str, Any], key: str) -> str | None:
    value = arbor_value(record.get(key))
    if value is None:
        return None
    stripped = str(value).strip()
    return stripped or None


def required(record: Mapping[str, Any], key: str, *, resource: str, record_ref: str) -> Any:
    value = arbor_value(record.get(key))
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidRecord(
            f"required field {key!r} is missing",
            resource=resource,
            record_ref=record_ref,
            field=key,
        )
    return value


def local_instant(
    record: Mapping[str, Any], key: str, *, resource: str, record_ref: str, needed: bool = False
) -> datetime | None:
    """An Arbor date-time (``Y-m-d H:i:s``, school-local time) as an aware instant."""
    value = (
        required(record, key, resource=resource, record_ref=record_ref)
        if needed
        else arbor_value(record.get(key))
    )
    parsed = parse_instant(
        value, resource=resource, record_ref=record_ref, field=key, default_tz=LONDON
    )
    return None if parsed is None else parsed.astimezone(LONDON)


def local_date(
    record: Mapping[str, Any], key: str, *, resource: str, record_ref: str, personal: bool = False
) -> date | None:
    """A ``Y-m-d`` (or ``Y-m-d H:i:s``) date. ``personal``: never echo the value (a DOB)."""
    value = arbor_value(record.get(key))
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        shown = "the value" if personal else repr(value)
        raise InvalidRecord(
            f"{shown} is not a valid date (expected Y-m-d)",
            resource=resource,
            record_ref=record_ref,
            field=key,
        ) from None


def needed_date(record: Mapping[str, Any], key: str, *, resource: str, record_ref: str) -> date:
    required(record, key, resource=resource, record_ref=record_ref)
    parsed = local_date(record, key, resource=resource, record_ref=record_ref)
    assert parsed is not None  # required() has ruled out a missing value
    return parsed


def stub_of(
    record: Mapping[str, Any], key: str, *, resource: str, record_ref: str, needed: bool = True
) -> Mapping[str, Any] | None:
    value = record.get(key)
    if value is None:
        if needed:
            raise InvalidRecord(
                f"required field {key!r} is missing",
                resource=resource,
                record_ref=record_ref,
                field=key,
            )
        return None
    if (type(value) is not dict and not isinstance(value, Mapping)) or not isinstance(
        value.get("href"), str
    ):
        raise InvalidRecord(
            f"{key!r} is not an Arbor reference (no href)",
            resource=resource,
            record_ref=record_ref,
            field=key,
        )
    return value


def stub_href(stub: Any) -> str | None:
    """A well-formed stub's href, cheaply (None otherwise: ``stub_of`` then does the checks)."""
    if type(stub) is dict:
        href = stub.get("href")
        if type(href) is str:
            return href
    return None


def is_open(row: Mapping[str, Any], end_key: str) -> bool:
    """An assignment or membership with no end (the current one)."""
    return arbor_value(row.get(end_key)) in (None, "")


def latest(rows: Iterable[Mapping[str, Any]], key: str) -> Mapping[str, Any] | None:
    """The row with the greatest ``key`` (ISO dates sort as text); None when there are none."""
    ordered = sorted(rows, key=lambda r: str(arbor_value(r.get(key)) or ""))
    return ordered[-1] if ordered else None


def register_group(form: Mapping[str, Any]) -> str | None:
    return text(form, "shortName") or text(form, "code") or text(form, "registrationFormName")


def whole_minutes(value: Any, *, resource: str, record_ref: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        minutes = int(value)
    except (TypeError, ValueError):
        minutes = -1
    if minutes < 0 or str(minutes) != str(value).strip():
        raise InvalidRecord(
            f"{value!r} is not a whole number of minutes",
            resource=resource,
            record_ref=record_ref,
            field="minutesLate",
        )
    return minutes


class PlainMarks:
    """The fast path of ``MarksStream.map_records``: a record's mark when every value of it
    maps, and passes the checks, as ``to_schema`` would map and check it (else None: the
    record then takes ``to_schema``, which says what is wrong). A student stub or date-time
    text new to the pull is read with the stream's own readers (as ``to_schema`` reads it);
    each distinct value is checked once."""

    def __init__(self, stream: MarksStream, latest: date) -> None:
        self.stream = stream
        self.latest = latest
        self.pupils: dict[str, str | None] = {}  # student href -> plain pupil id
        self.instants: dict[str, tuple[datetime, date] | None] = {}  # text -> aware, plausible
        self.sessions: dict[str, tuple[Session, str]] = {}  # register href -> session
        self.codes: dict[str, tuple[str, str]] = {}  # mark href -> national, vendor, plain

    def mark(self, record: dict[str, Any]) -> tuple[Mark, tuple[str, date, str]] | None:
        href = record.get("href")
        minutes = record.get("minutesLate")
        note = record.get("recordNote")
        modified = record.get("modifiedDatetime")
        if (
            (minutes is not None and (type(minutes) is not int or minutes < 0))
            or (note is not None and type(note) is not str)
            or not is_plain_text(href)
        ):
            return None
        comment = None if note is None else note.strip() or None
        if comment is not None and not is_plain_text(comment):
            return None
        pupil_id = self._pupil(record)
        start = self._instant(record, "startDatetime")
        recorded = None if modified is None else self._instant(record, "modifiedDatetime")
        if pupil_id is None or start is None or (modified is not None and recorded is None):
            return None
        session = self._session(record)
        code = self._code(record)
        if session is None or code is None:
            return None
        day = start[1]
        mark = checked_mark(
            {
                "pupil_id": pupil_id,
                "date": day,
                "session": session[0],
                "code": code[0],
                "vendor_code": code[1],
                "minutes_late": minutes,
                "comment": comment,
                "recorded_at": None if recorded is None else recorded[0],
                "recorded_by": None,
                "source_ref": href,
            }
        )
        return mark, (pupil_id, day, session[1])

    def _pupil(self, record: dict[str, Any]) -> str | None:
        href = stub_href(record.get("student"))
        if href is None:
            return None
        try:
            return self.pupils[href]
        except KeyError:
            pass
        try:
            pupil_id: str | None = self.stream.pupil_id(record, "student", ref="")
        except InvalidRecord:
            pupil_id = None
        self.pupils[href] = pupil_id if is_plain_text(pupil_id) else None
        return self.pupils[href]

    def _instant(self, record: dict[str, Any], key: str) -> tuple[datetime, date] | None:
        text = record.get(key)
        if type(text) is not str:
            return None
        try:
            return self.instants[text]
        except KeyError:
            pass
        try:
            parsed = self.stream.instant(record, key, ref="")
        except InvalidRecord:
            parsed = None
        self.instants[text] = (
            (parsed, parsed.date())
            if type(parsed) is datetime
            and parsed.tzinfo is not None
            and is_plausible_day(parsed, self.latest)
            else None
        )
        return self.instants[text]

    # Registers and marks are asked of the stream's answers only: a stub new to the pull is
    # resolved by to_schema (through the client, which may send a request for it).

    def _session(self, record: dict[str, Any]) -> tuple[Session, str] | None:
        href = stub_href(record.get("attendanceRegister"))
        known = self.sessions.get(href) if href is not None else None
        if known is None and href is not None:
            session = self.stream._sessions_by_href.get(href)
            if session is not None:
                known = self.sessions[href] = (session, session.value)
        return known

    def _code(self, record: dict[str, Any]) -> tuple[str, str] | None:
        href = stub_href(record.get("attendanceMark"))
        known = self.codes.get(href) if href is not None else None
        if known is None and href is not None:
            codes = self.stream._codes_by_href.get(href)
            # build_mark's conditions for taking the code as it is (checked.py)
            if (
                codes is not None
                and is_plain_text(codes[0])
                and 1 <= len(codes[0]) <= 2
                and is_known_code(codes[0])
                and is_plain_text(codes[1])
            ):
                known = self.codes[href] = codes
        return known
