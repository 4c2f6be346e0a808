"""Arbor's vendor fields -> the common schema's values: codes, sexes, sessions, Arbor's local
times and ``{"entityType", "href"}`` stubs, shared by the streams in ``streams.py``.

Property names are OBSERVED in Arbor's SDK models unless marked INFERRED. Reasons never quote a
pupil's personal data (names, UPN, date of birth): quarantine entries end up in reports and logs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time
from typing import Any, Literal, TypedDict

from registerwatch.adapters.arbor.client import FACTS
from registerwatch.adapters.base import parse_instant
from registerwatch.calendar import LONDON
from registerwatch.errors import InvalidRecord
from registerwatch.schema import Session

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
