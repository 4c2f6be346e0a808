"""Mapping helpers every vendor's ``to_schema`` uses: codes, dates, instants, required fields,
and the one rule for repeated marks."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from pydantic import BaseModel

from registerwatch.adapters.base.contract import Batch
from registerwatch.adapters.base.duplicates import mark_key
from registerwatch.codes import is_known_code
from registerwatch.errors import InvalidRecord
from registerwatch.schema import Mark, Pupil

_CASE_FREE_CODES = frozenset({"C1", "C2", "J1", *(f"Y{i}" for i in range(1, 8))})


def normalise_code(
    vendor_code: str | None,
    aliases: Mapping[str, str],
    *,
    resource: str,
    record_ref: str,
    field: str = "code",
) -> str:
    """A vendor code or alias as a national code; InvalidRecord when it is neither."""
    if vendor_code is None or str(vendor_code).strip() == "":
        raise InvalidRecord(
            "attendance code is missing", resource=resource, record_ref=record_ref, field=field
        )
    raw = str(vendor_code).strip()
    # An alias as written wins. National single-letter codes are case-sensitive (a CTF marks
    # string is, and a lower-case letter is more likely a vendor's private code than a typo);
    # only the two-character codes are read in any case, since "c1" cannot mean anything else.
    upper = raw.upper()
    code = aliases.get(raw) or aliases.get(upper) or (upper if upper in _CASE_FREE_CODES else raw)
    if not is_known_code(code):
        raise InvalidRecord(
            f"unknown attendance code {raw!r}",
            resource=resource,
            record_ref=record_ref,
            field=field,
        )
    return code


def parse_date(value: Any, *, resource: str, record_ref: str, field: str) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except (TypeError, ValueError):
        # A date of birth is personal data: quarantine reasons reach logs and reports, so
        # say what is wrong without quoting it.
        shown = "the value" if _is_personal_date(field) else repr(value)
        raise InvalidRecord(
            f"{shown} is not a valid date", resource=resource, record_ref=record_ref, field=field
        ) from None


_PERSONAL_DATE_FIELDS = {"dob", "dateofbirth", "date_of_birth", "birthdate", "birth_date"}


def _is_personal_date(field: str) -> bool:
    return (
        field.lower().replace("-", "_") in _PERSONAL_DATE_FIELDS
        or field.lower().replace("_", "") in _PERSONAL_DATE_FIELDS
    )


def parse_instant(
    value: Any, *, resource: str, record_ref: str, field: str, default_tz: Any = None
) -> datetime | None:
    """An ISO 8601 instant; naive values are taken in ``default_tz`` (the MIS's local time)."""
    if value in (None, ""):
        return None
    try:
        return _instant(str(value), default_tz)
    except ValueError:
        raise InvalidRecord(
            f"{value!r} is not a valid date-time",
            resource=resource,
            record_ref=record_ref,
            field=field,
        ) from None


@lru_cache(maxsize=1 << 14)
def _instant(text: str, default_tz: Any) -> datetime:
    # Cached: a register's pupils share its start time and usually its save time, so a pull
    # repeats the same few thousand texts (datetimes are immutable: sharing one is safe).
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))  # ValueError if bad
    if parsed.tzinfo is None:
        if default_tz is None:
            from registerwatch.calendar import LONDON

            default_tz = LONDON
        parsed = parsed.replace(tzinfo=default_tz)
    return parsed


def require(record: Mapping[str, Any], key: str, *, resource: str, record_ref: str) -> Any:
    if key not in record or record[key] is None:
        raise InvalidRecord(
            f"required field {key!r} is missing",
            resource=resource,
            record_ref=record_ref,
            field=key,
        )
    return record[key]


def dedupe_marks(marks: Iterable[Mark], *, in_write_order: bool = False) -> list[Mark]:
    """Drop the versions of a mark the MIS itself says are superseded, and exact copies.

    MIS feeds (iSAMS especially) repeat rows for one pupil, date and session. When the versions
    carry ``recorded_at``, only those recorded latest are current; the older ones are history
    and are dropped here. Exact copies of a current version (the same content; only the MIS's
    row id differs) are dropped too, keeping the first. What is left for a key (versions that
    disagree with nothing to order them) is NOT chosen between by feed order: sync's duplicate
    policy (``duplicates.py``) quarantines them all, so a guess never reaches the register.
    :func:`drop_repeats` does the same to a batch and counts the copies for sync's warning.

    ``in_write_order``: the vendor declares (``VendorFacts.repeats_in_write_order``) that it
    lists a session's repeated rows in the order they were written, so among versions with no
    ``recorded_at`` the last listed is the current one: the MIS's own order, not a guess.
    """
    return _dedupe(marks, in_write_order)[0]


def drop_repeats(batch: Batch[Mark], *, in_write_order: bool = False) -> None:
    """:func:`dedupe_marks` on ``batch``, counting exact copies in ``batch.exact_duplicates``."""
    batch.records, copies = _dedupe(batch.records, in_write_order)
    batch.exact_duplicates += copies


def _dedupe(marks: Iterable[Mark], in_write_order: bool) -> tuple[list[Mark], int]:
    groups: dict[tuple[str, date, str], list[Mark]] = {}
    for mark in marks:
        groups.setdefault(mark_key(mark), []).append(mark)
    kept: list[Mark] = []
    copies = 0
    for versions in groups.values():
        if len(versions) == 1:  # nearly every key: nothing superseded, nothing copied
            kept.append(versions[0])
            continue
        stamps = [m.recorded_at for m in versions if m.recorded_at is not None]
        if stamps:
            latest = max(stamps)
            versions = [m for m in versions if m.recorded_at == latest]
        elif in_write_order:
            versions = versions[-1:]
        distinct: dict[str, Mark] = {}
        for mark in versions:
            distinct[mark.model_dump_json(exclude={"source_ref"})] = mark  # the last copy
        copies += len(versions) - len(distinct)
        kept.extend(distinct.values())
    return kept, copies


# -- hostile or implausible values: refused for every vendor, whatever its to_schema did -------

# Tab, line feed and carriage return are ordinary in free text (an address, a reason); any other
# C0/C1 control or a Unicode direction override in a name breaks the XML returns and can hide text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_NAME_FIELDS = ("legal_forename", "legal_surname", "preferred_forename", "preferred_surname")
EARLIEST_SANE_DATE = date(1990, 1, 1)  # no pupil, register or amendment is older
MAX_TEXT_LENGTH = 2000  # longer is a payload, not a field


def refuse_implausible(
    model: BaseModel, *, resource: str, record_ref: str, today: date | None = None
) -> None:
    """Raise InvalidRecord (quarantine) for control characters or oversized text in any text
    field, dates outside a sane window, and a pupil without a name or with an impossible date
    of birth. The field is named; its value is never quoted (it may be a name).

    ``today`` (default: the machine's date) sets the window's end; a caller checking a whole
    pull passes it once rather than asking the clock for every record."""
    today = today or date.today()
    latest = plausible_until(today)
    if not _plainly_plausible(model.__dict__.values(), latest):
        # Something is wrong (or nested): walk the fields in order and name the first problem.
        for field, value in _walk(model):
            _check_value(field, value, latest, resource=resource, record_ref=record_ref)
    if isinstance(model, Pupil):
        if not any((getattr(model, f) or "").strip() for f in _NAME_FIELDS):
            raise InvalidRecord(
                "the pupil has no name", resource=resource, record_ref=record_ref, field="name"
            )
        if model.dob is not None and not (today.year - 26 <= model.dob.year <= today.year - 1):
            raise InvalidRecord(
                "the date of birth is not that of a school-age pupil",
                resource=resource,
                record_ref=record_ref,
                field="dob",
            )


# Values no check looks at (the common ones, skipped before any isinstance test).
_INERT = frozenset({bool, int, float})


def _plainly_plausible(values: Iterable[Any], latest: date) -> bool:
    """True when no value of a flat model can fail a check: the one pass every record of a
    pull takes (tens of thousands per school). False for any problem, and for nested models
    and lists, which the exact walk then judges."""
    texts = []
    for value in values:
        if value is None or type(value) in _INERT:
            continue
        if isinstance(value, str):
            if len(value) > MAX_TEXT_LENGTH:
                return False
            texts.append(value)
        elif isinstance(value, date):
            if not (EARLIEST_SANE_DATE <= _day(value) <= latest):
                return False
        elif isinstance(value, (list, tuple)):
            if value:  # an empty one (a pupil's contacts) holds nothing to check
                return False
        elif isinstance(value, BaseModel):
            return False
    # One search over all the texts: a space between them neither is nor makes a control.
    return _CONTROL.search(" ".join(texts)) is None


def plausible_until(today: date) -> date:
    """The last date ``refuse_implausible`` accepts when it is ``today``: two years on (from
    29 February, 28 February two years on, which is never a leap day)."""
    if today.month == 2 and today.day == 29:
        return today.replace(year=today.year + 2, day=28)
    return today.replace(year=today.year + 2)


def is_plain_text(value: Any) -> bool:
    """A text that no check of a mapped record refuses or changes: stripped, no longer than
    ``MAX_TEXT_LENGTH``, free of control characters (a fast path may take it as it is)."""
    return (
        type(value) is str
        and len(value) <= MAX_TEXT_LENGTH
        and value == value.strip()
        and _CONTROL.search(value) is None
    )


def is_plausible_day(value: date, latest: date) -> bool:
    """A date (or a date-time's day) inside the window ``refuse_implausible`` accepts."""
    return EARLIEST_SANE_DATE <= _day(value) <= latest


def _check_value(field: str, value: Any, latest: date, *, resource: str, record_ref: str) -> None:
    if isinstance(value, str):
        if _CONTROL.search(value):
            problem = "contains a control character"
        elif len(value) > MAX_TEXT_LENGTH:
            problem = f"is longer than {MAX_TEXT_LENGTH} characters"
        else:
            return
        raise InvalidRecord(problem, resource=resource, record_ref=record_ref, field=field)
    if isinstance(value, date) and not (EARLIEST_SANE_DATE <= _day(value) <= latest):
        shown = "the date" if _is_personal_date(field.rsplit(".", 1)[-1]) else repr(value)
        raise InvalidRecord(
            f"{shown} is outside {EARLIEST_SANE_DATE.year}..{latest.year}",
            resource=resource,
            record_ref=record_ref,
            field=field,
        )


def _day(value: date) -> date:
    return value.date() if isinstance(value, datetime) else value


def _walk(value: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _walk(getattr(value, name), f"{prefix}.{name}" if prefix else name)
    elif isinstance(value, (list, tuple)):
        for n, item in enumerate(value):
            yield from _walk(item, f"{prefix}[{n}]")
    else:
        yield prefix, value
