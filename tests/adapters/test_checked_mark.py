"""``build_mark`` builds exactly what ``Mark(**fields)`` builds, and refuses what it refuses;
``refuse_implausible``'s one-pass check names the same field as the field-by-field walk."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from registerwatch.adapters.base import build_mark, checked
from registerwatch.adapters.base.mapping import (
    _CONTROL,
    EARLIEST_SANE_DATE,
    MAX_TEXT_LENGTH,
    refuse_implausible,
)
from registerwatch.calendar import LONDON
from registerwatch.errors import InvalidRecord
from registerwatch.schema import Amendment, Mark, Pupil, Session

GOOD: dict[str, Any] = {
    "pupil_id": "oak:1",
    "date": date(2025, 10, 1),
    "session": Session.AM,
    "code": "/",
    "vendor_code": "/",
    "minutes_late": None,
    "comment": None,
    "recorded_at": datetime(2025, 10, 1, 8, 50, tzinfo=LONDON),
    "recorded_by": None,
    "source_ref": "attendance-records/1",
}


class Shouty(str):
    """A str subclass: validation turns it into a plain str, so no shortcut may keep it."""


def outcome(build: Any, fields: dict[str, Any]) -> tuple[str, Any]:
    try:
        mark = build(**fields)
    except ValidationError as exc:
        return "refused", [(e["loc"], e["type"], e["msg"]) for e in exc.errors()]
    return "built", (
        list(mark.__dict__.items()),
        [type(v) for v in mark.__dict__.values()],
        mark.model_fields_set,
        mark.model_dump_json(),
        hash(mark),
    )


def test_the_shortcut_is_on_for_this_pydantic() -> None:
    # Off, every mark would be validated again: correct, only slower (the benchmark shows it).
    assert checked._SHORTCUT


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"vendor_code": None, "recorded_at": None, "source_ref": None},
        {"code": "C1", "vendor_code": "1", "minutes_late": 0},
        {"minutes_late": 12, "comment": "bus late", "recorded_by": "JS"},
        {"recorded_at": datetime(2025, 10, 1, 7, 50, tzinfo=UTC)},
        {"session": Session.PM, "code": "#"},
    ],
)
def test_values_already_of_the_schemas_types_take_the_shortcut(change: dict[str, Any]) -> None:
    fields = {**GOOD, **change}
    assert checked._validation_is_identity(fields)
    assert outcome(build_mark, fields) == outcome(Mark, fields)


@pytest.mark.parametrize(
    "change",
    [
        {"pupil_id": " oak:1"},  # stripped by the model
        {"pupil_id": "oak:1\u2003"},  # an em space: stripped too
        {"pupil_id": Shouty("oak:1")},
        {"session": "AM"},  # a plain string becomes Session.AM
        {"session": "XX"},
        {"date": "2025-10-01"},
        {"date": datetime(2025, 10, 1)},
        {"code": "ZZ"},
        {"code": "/ "},
        {"code": ""},
        {"code": "BAD"},
        {"vendor_code": " /"},
        {"vendor_code": 7},
        {"minutes_late": -1},
        {"minutes_late": True},
        {"minutes_late": "5"},
        {"minutes_late": 5.0},
        {"recorded_at": datetime(2025, 10, 1, 8, 50)},  # naive
        {"recorded_at": "2025-10-01T08:50:00+01:00"},
        {"comment": "  late  "},
        {"pupil_id": None},
        {"surprise": 1},  # the model forbids extra fields
    ],
)
def test_anything_else_is_validated_as_before(change: dict[str, Any]) -> None:
    fields = {**GOOD, **change}
    assert not checked._validation_is_identity(fields)
    assert outcome(build_mark, fields) == outcome(Mark, fields)


def test_fields_left_out_take_their_defaults_and_stay_unset() -> None:
    fields = {"pupil_id": "oak:1", "date": date(2025, 10, 1), "session": Session.AM, "code": "/"}
    assert outcome(build_mark, fields) == outcome(Mark, fields)
    assert build_mark(**fields).model_fields_set == set(fields)


def test_a_built_mark_is_frozen_like_a_validated_one() -> None:
    mark = build_mark(**GOOD)
    with pytest.raises(ValidationError):
        mark.code = "N"  # type: ignore[misc]
    assert mark.model_copy(update={"code": "N"}).code == "N" and mark.code == "/"


texts = st.one_of(
    st.none(),
    st.text(alphabet=st.sampled_from(" \t\u00a0\u2003\x1fab/:1\u202e\x07"), max_size=6),
)


@given(
    pupil_id=texts,
    code=st.one_of(st.none(), st.sampled_from(["/", "\\", "N", "C1", "c1", "ZZ", " L", "L "])),
    comment=texts,
    vendor_code=texts,
    minutes=st.one_of(st.none(), st.integers(-3, 3), st.booleans()),
    naive=st.booleans(),
)
def test_any_mix_of_values_builds_or_refuses_as_validation_does(
    pupil_id: str | None,
    code: str | None,
    comment: str | None,
    vendor_code: str | None,
    minutes: int | None,
    naive: bool,
) -> None:
    fields = {
        **GOOD,
        "pupil_id": pupil_id,
        "code": code,
        "comment": comment,
        "vendor_code": vendor_code,
        "minutes_late": minutes,
        "recorded_at": datetime(2025, 10, 1, 8, 50, tzinfo=None if naive else LONDON),
    }
    assert outcome(build_mark, fields) == outcome(Mark, fields)


# -- refuse_implausible: the one-pass check against the field-by-field walk -----------------------


def walked(model: BaseModel, today: date) -> tuple[str, str] | None:
    """The check as a plain walk over every field (what refuse_implausible did for every
    record before its one-pass shortcut): the first problem's field and reason."""
    latest = today.replace(year=today.year + 2)

    def walk(value: Any, prefix: str) -> Iterable[tuple[str, Any]]:
        if isinstance(value, BaseModel):
            for name in type(value).model_fields:
                yield from walk(getattr(value, name), f"{prefix}.{name}" if prefix else name)
        elif isinstance(value, (list, tuple)):
            for n, item in enumerate(value):
                yield from walk(item, f"{prefix}[{n}]")
        else:
            yield prefix, value

    for field, value in walk(model, ""):
        if isinstance(value, str) and (_CONTROL.search(value) or len(value) > MAX_TEXT_LENGTH):
            return field, "text"
        day = value.date() if isinstance(value, datetime) else value
        if isinstance(value, date) and not (EARLIEST_SANE_DATE <= day <= latest):
            return field, "date"
    return None


def refused(model: BaseModel, today: date) -> tuple[str, str] | None:
    try:
        refuse_implausible(model, resource="r", record_ref="1", today=today)
    except InvalidRecord as exc:
        assert exc.field is not None
        return exc.field, "date" if "outside" in exc.reason else "text"
    return None


hostile = st.one_of(
    st.none(),
    st.text(alphabet=st.sampled_from("ab \t\n\x00\x1b\x85\u202a\u2069\x7f"), max_size=5),
    st.just("x" * (MAX_TEXT_LENGTH + 1)),
)
days = st.dates(min_value=date(1980, 1, 1), max_value=date(2035, 12, 31))


@given(
    comment=hostile,
    recorded_by=hostile,
    source_ref=hostile,
    day=days,
    recorded=st.one_of(st.none(), days),
)
def test_a_mark_is_refused_naming_the_field_the_walk_names(
    comment: str | None,
    recorded_by: str | None,
    source_ref: str | None,
    day: date,
    recorded: date | None,
) -> None:
    mark = Mark.model_construct(
        **{
            **GOOD,
            "date": day,
            "comment": comment,
            "recorded_by": recorded_by,
            "source_ref": source_ref,
            "recorded_at": None
            if recorded is None
            else datetime(recorded.year, recorded.month, recorded.day, tzinfo=UTC),
        }
    )
    today = date(2026, 12, 7)
    assert refused(mark, today) == walked(mark, today)


@given(reason=hostile, by=hostile, day=days)
def test_an_amendment_is_refused_naming_the_field_the_walk_names(
    reason: str | None, by: str | None, day: date
) -> None:
    amendment = Amendment(
        pupil_id="oak:1",
        date=day,
        session=Session.PM,
        reason=reason,
        amended_by_name=by,
        amended_at=datetime(2025, 10, 1, tzinfo=timezone(timedelta(hours=1))),
    )
    assert refused(amendment, date(2026, 12, 7)) == walked(amendment, date(2026, 12, 7))


@given(line=hostile, town=hostile)
def test_a_pupils_nested_address_is_still_walked(line: str | None, town: str | None) -> None:
    pupil = Pupil.model_validate(
        {
            "id": "oak:1",
            "school_id": "oak",
            "mis_id": "1",
            "legal_surname": "Smith",
            "address": {"lines": [line or "1 High St"], "town": town},
        }
    )
    assert refused(pupil, date(2026, 12, 7)) == walked(pupil, date(2026, 12, 7))


@given(names=st.lists(hostile.map(lambda name: name or "Parent"), max_size=3), surname=hostile)
def test_a_pupils_contacts_are_walked_and_none_is_nothing_to_walk(
    names: list[str], surname: str | None
) -> None:
    """An empty contacts list is passed over (nothing in it to check); any contact is walked."""
    pupil = Pupil.model_validate(
        {
            "id": "oak:1",
            "school_id": "oak",
            "mis_id": "1",
            "legal_forename": "Ava",
            "legal_surname": surname,
            "contacts": [{"name": name} for name in names],
        }
    )
    assert refused(pupil, date(2026, 12, 7)) == walked(pupil, date(2026, 12, 7))
