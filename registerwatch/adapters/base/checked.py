"""The schema's ``Mark`` for each record of a pull, without pydantic re-checking what every
adapter has already checked.

A first sync maps every mark of the school year so far (tens of thousands per school), and
building each ``Mark`` through pydantic's validation was a sixth of the adapters' CPU. Every
vendor's ``to_schema`` hands over values that are already of the schema's types: a stripped
pupil id, a ``date``, a ``Session``, a national code it looked up, an aware instant. For those
values validation is the identity, so :func:`build_mark` checks exactly the conditions under
which that is so (the ``Mark`` model's types, ``str_strip_whitespace``, the code's length and
table, ``minutes_late >= 0``, an aware ``recorded_at``) and then sets the fields directly, as
``Mark.model_construct`` does. Any other value goes through ``Mark(**fields)`` itself, so a bad
value still raises the same ``ValidationError`` (and so the same quarantine entry) as before.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from registerwatch.codes import is_known_code
from registerwatch.schema import Mark, Session

_MARK_FIELDS = tuple(Mark.model_fields)
_MARK_FIELD_NAMES = frozenset(_MARK_FIELDS)
_MARK_DEFAULTS = {name: info.default for name, info in Mark.model_fields.items()}
_OPTIONAL_TEXT = ("vendor_code", "comment", "recorded_by", "source_ref")
_EVERY_FIELD_SET = set(_MARK_FIELDS)


def _validation_is_identity(fields: dict[str, Any]) -> bool:
    """True when ``Mark(**fields)`` would keep every value as given (see the module docstring).

    ``str.strip`` removes every character pydantic's whitespace stripping removes (and a few
    more), so a value equal to its ``strip()`` is one pydantic leaves alone.
    """
    pupil_id = fields.get("pupil_id")
    code = fields.get("code")
    if not (
        fields.keys() <= _MARK_FIELD_NAMES  # the model forbids extra fields
        and type(pupil_id) is str
        and pupil_id == pupil_id.strip()
        and type(fields.get("date")) is date
        and type(fields.get("session")) is Session
        and type(code) is str
        and 1 <= len(code) <= 2
        and code == code.strip()
        and is_known_code(code)
    ):
        return False
    for name in _OPTIONAL_TEXT:
        value = fields.get(name)
        if value is not None and (type(value) is not str or value != value.strip()):
            return False
    minutes = fields.get("minutes_late")
    if minutes is not None and (type(minutes) is not int or minutes < 0):
        return False
    recorded_at = fields.get("recorded_at")
    return recorded_at is None or (type(recorded_at) is datetime and recorded_at.tzinfo is not None)


def _set_directly(fields: dict[str, Any]) -> Mark:
    """What ``Mark.model_construct(**fields)`` builds, without its per-call walk over aliases
    and defaults: the same four instance attributes (checked by :func:`_same_as_validated`)."""
    if tuple(fields) == _MARK_FIELDS:  # every field, in order (as the adapters pass them)
        values = fields
    else:
        values = {name: fields.get(name, _MARK_DEFAULTS[name]) for name in _MARK_FIELDS}
    return _assembled(values, set(fields))


def _assembled(values: dict[str, Any], fields_set: set[str]) -> Mark:
    """A ``Mark`` with exactly these instance attributes, as ``Mark.model_construct`` sets
    them: ``values`` (every field, in declaration order) and the names given."""
    mark = object.__new__(Mark)
    object.__setattr__(mark, "__dict__", values)
    object.__setattr__(mark, "__pydantic_fields_set__", fields_set)
    object.__setattr__(mark, "__pydantic_extra__", None)
    object.__setattr__(mark, "__pydantic_private__", None)
    return mark


def _same_as_validated(construct: Callable[[dict[str, Any]], Mark]) -> bool:
    """Does ``construct`` build what validation builds? Asked once at import, so a pydantic
    upgrade that changes a model's instance attributes turns the shortcut off, not wrong."""
    probe: dict[str, Any] = {
        "pupil_id": "probe:1",
        "date": date(2025, 9, 3),
        "session": Session.PM,
        "code": "L",
        "minutes_late": 5,
        "recorded_at": datetime(2025, 9, 3, 13, 50, tzinfo=UTC),
        "source_ref": "probe",
    }
    every_field = {name: probe.get(name) for name in _MARK_FIELDS}
    return all(
        _builds_the_same(construct(dict(fields)), Mark(**fields)) for fields in (probe, every_field)
    )


def _builds_the_same(fast: Mark, validated: Mark) -> bool:
    return (
        fast == validated
        and list(fast.__dict__.items()) == list(validated.__dict__.items())
        and fast.model_fields_set == validated.model_fields_set
        and fast.__pydantic_extra__ == validated.__pydantic_extra__
        and fast.__pydantic_private__ == validated.__pydantic_private__
        and fast.model_dump_json() == validated.model_dump_json()
        and hash(fast) == hash(validated)
    )


_SHORTCUT = _same_as_validated(_set_directly)


def build_mark(**fields: Any) -> Mark:
    """``Mark(**fields)``, skipping validation only where it would change nothing.

    Cheapest when ``fields`` names every field of ``Mark`` in declaration order (the keyword
    arguments then become the instance's own dict)."""
    if _SHORTCUT and _validation_is_identity(fields):
        return _set_directly(fields)
    return Mark(**fields)


def checked_mark(fields: dict[str, Any]) -> Mark:
    """``build_mark(**fields)`` for a fast path that has itself established every condition of
    :func:`_validation_is_identity` (checking each distinct value once rather than each mark's
    every value): ``fields`` must name every field of ``Mark``, in declaration order. Its
    tests hold it equal to ``build_mark`` over the same records."""
    if not _SHORTCUT:
        return Mark(**fields)
    return _assembled(fields, _EVERY_FIELD_SET.copy())
