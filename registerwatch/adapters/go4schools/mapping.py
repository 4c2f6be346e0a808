"""GO 4 Schools' vendor fields -> the common schema's values: attendance codes (the school's code
table and the vendor's single-character encodings), sexes, SEN/FSM/LAC attributes, sessions,
whole numbers and the calendar's day types; shared by the streams in ``streams.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from registerwatch.adapters.base import parse_date, require
from registerwatch.adapters.go4schools.client import FACTS
from registerwatch.calendar import england_bank_holidays
from registerwatch.codes import is_known_code
from registerwatch.errors import InvalidRecord
from registerwatch.schema import ClosureKind, Session, Term

# Vendor single-character encodings: the table lives in the vendor's FACTS (client.py).
VENDOR_ENCODINGS: Mapping[str, str] = FACTS.code_aliases


def national_code(vendor_code: Any) -> str | None:
    """The national code a vendor code string stands for, or None.

    Single-character encodings first, then the code as written, then its upper case (schools
    type lower-case variants such as ``i`` or ``c1``).
    """
    if not isinstance(vendor_code, str) or not vendor_code.strip():
        return None
    text = vendor_code.strip()
    if text in VENDOR_ENCODINGS:
        return VENDOR_ENCODINGS[text]
    if is_known_code(text):
        return text
    if is_known_code(text.upper()):
        return text.upper()
    return None


@dataclass(frozen=True)
class CodeEntry:
    """One row of ``attendance/codes``, or one alias hanging off a row."""

    id: int
    vendor_code: str
    national: str | None  # None: the school's code has no national meaning


@dataclass
class CodeTable:
    """``session_mark_id`` / ``session_alias_id`` -> (national code, vendor code).

    An alias that is itself a national code (``C1`` recorded as an alias of ``C``, ``c1`` of
    ``<``) means that code; any other alias (``L1`` "Late - bus") means its parent's code. The
    vendor code kept on the mark is the alias when there is one, else the row's own code.
    """

    codes: dict[int, CodeEntry] = field(default_factory=dict)
    aliases: dict[int, tuple[int, CodeEntry]] = field(default_factory=dict)  # -> (parent, alias)

    def resolve(
        self,
        mark_id: Any,
        alias_id: Any,
        *,
        resource: str,
        record_ref: str,
        prefix: str = "session",
    ) -> tuple[str, str]:
        mark_field, alias_field = f"{prefix}_mark_id", f"{prefix}_alias_id"
        entry = self.codes.get(
            whole_number(mark_id, resource=resource, record_ref=record_ref, field=mark_field)
        )
        if entry is None:
            raise InvalidRecord(
                f"unknown {mark_field} {mark_id!r} (not in the school's attendance code table)",
                resource=resource,
                record_ref=record_ref,
                field=mark_field,
            )
        chosen = entry
        if alias_id is not None:
            found = self.aliases.get(
                whole_number(alias_id, resource=resource, record_ref=record_ref, field=alias_field)
            )
            # An unknown alias may stand for a different national code (C1 under C), so the
            # mark is set aside rather than guessed from its parent.
            if found is None:
                raise InvalidRecord(
                    f"unknown {alias_field} {alias_id!r} (not in the school's "
                    "attendance code table)",
                    resource=resource,
                    record_ref=record_ref,
                    field=alias_field,
                )
            parent, alias = found
            if parent != entry.id:
                raise InvalidRecord(
                    f"{alias_field} {alias_id!r} belongs to code id {parent}, "
                    f"not to {mark_field} {entry.id}",
                    resource=resource,
                    record_ref=record_ref,
                    field=alias_field,
                )
            chosen = alias
        if chosen.national is None:
            raise InvalidRecord(
                f"code {chosen.vendor_code!r} is not a national attendance "
                "code and has no known vendor meaning",
                resource=resource,
                record_ref=record_ref,
                field=alias_field if chosen is not entry else mark_field,
            )
        return chosen.national, chosen.vendor_code


SEX_CODES = {"M": "M", "F": "F", "U": "U", "MALE": "M", "FEMALE": "F", "UNKNOWN": "U"}


YES_VALUES = {"Y", "YES", "TRUE", "1", "T"}


# INFERRED: codes of ``student_education_attributes`` (the shape is OBSERVED, the codes are not
# published). attribute code -> how its latest value sets Pupil flags.
ATTRIBUTE_FLAGS: Mapping[str, Callable[[str], dict[str, bool]]] = {
    "SEN": lambda v: {"ehcp": v == "E", "sen_support": v == "K"},
    "FSM": lambda v: {"fsm": v in YES_VALUES},
    "LAC": lambda v: {"looked_after": v in YES_VALUES},
    "CSW": lambda v: {"has_social_worker": v in YES_VALUES},
    "BRD": lambda v: {"boarder": v in YES_VALUES},
}


def flags_of(attributes: Any) -> dict[str, bool]:
    flags: dict[str, bool] = {}
    if not isinstance(attributes, list):
        return flags
    for attribute in attributes:
        if not isinstance(attribute, Mapping):
            continue
        setter = ATTRIBUTE_FLAGS.get(str(attribute.get("code") or "").strip().upper())
        values = attribute.get("attribute_values")
        if setter is None or not isinstance(values, list) or not values:
            continue
        latest = values[-1]  # values are listed oldest first (INFERRED)
        value = latest.get("value") if isinstance(latest, Mapping) else None
        if value is not None:
            flags.update(setter(str(value).strip().upper()))
    return flags


# INFERRED values of the OBSERVED ``day_type_code`` field: the sessions a closure covers and its
# kind. Change here when a school's calendar shows the real codes.
DAY_TYPES: Mapping[str, tuple[str, ClosureKind] | None] = {
    "S": None,  # a normal school day
    "C": ("both", ClosureKind.PLANNED),
    "CA": ("AM", ClosureKind.PLANNED),
    "CP": ("PM", ClosureKind.PLANNED),
    "Y": ("both", ClosureKind.UNEXPECTED),
    "YA": ("AM", ClosureKind.UNEXPECTED),
    "YP": ("PM", ClosureKind.UNEXPECTED),
}


def terms_of(days: list[date]) -> list[Term]:
    bank = england_bank_holidays(range(days[0].year, days[-1].year + 1))
    terms: list[Term] = []
    start = previous = days[0]
    for day in days[1:]:
        gap = (previous + timedelta(days=n) for n in range(1, (day - previous).days))
        if any(d.weekday() < 5 and d not in bank for d in gap):
            terms.append(Term(start=start, end=previous))
            start = day
        previous = day
    terms.append(Term(start=start, end=previous))
    return terms


def whole_number(
    value: Any, *, resource: str, record_ref: str, field: str, minimum: int | None = None
) -> int:
    if isinstance(value, bool) or value is None:
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    # isdecimal, not isdigit: "²" is a digit that int() refuses (found by tests/fuzz)
    elif isinstance(value, str) and value.strip().lstrip("-").isdecimal():
        number = int(value.strip())
    else:
        number = None
    if number is None:
        raise InvalidRecord(
            f"{value!r} is not a whole number",
            resource=resource,
            record_ref=record_ref,
            field=field,
        )
    if minimum is not None and number < minimum:
        raise InvalidRecord(
            f"{number} is below {minimum}", resource=resource, record_ref=record_ref, field=field
        )
    return number


def session_of(record: Mapping[str, Any], *, resource: str, record_ref: str) -> Session:
    raw = require(record, "session", resource=resource, record_ref=record_ref)
    text = str(raw).strip().upper()
    if text not in ("AM", "PM"):
        raise InvalidRecord(
            f"session {raw!r} is not AM or PM",
            resource=resource,
            record_ref=record_ref,
            field="session",
        )
    return Session(text)


def check_day(record: Mapping[str, Any], day: date, *, resource: str, record_ref: str) -> None:
    record_day = parse_date(
        require(record, "date", resource=resource, record_ref=record_ref),
        resource=resource,
        record_ref=record_ref,
        field="date",
    )
    if record_day != day:
        raise InvalidRecord(
            f"record dated {record_day} came back for {day}",
            resource=resource,
            record_ref=record_ref,
            field="date",
        )


def clean_text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None
