"""Hostile or implausible records are quarantined with a named field, never fatal."""

from __future__ import annotations

from datetime import date

import pytest

from registerwatch.adapters.base.mapping import plausible_until, refuse_implausible
from registerwatch.errors import InvalidRecord
from registerwatch.schema.models import Pupil

BASE = {"id": "oak:1", "school_id": "oak", "mis_id": "1", "legal_surname": "Smith"}


def pupil(**kw: object) -> Pupil:
    return Pupil.model_validate({**BASE, **kw})


@pytest.mark.parametrize(
    "fields, field, reason",
    [
        ({"legal_forename": "Av\x07a"}, "legal_forename", "control character"),
        ({"legal_forename": "Ava\u202e"}, "legal_forename", "control character"),
        ({"legal_surname": None}, "name", "no name"),
        ({"dob": date(1, 1, 1)}, "dob", "outside"),
        ({"dob": date(2999, 1, 1)}, "dob", "outside"),
        ({"dob": date(1995, 1, 1)}, "dob", "school-age"),
        ({"starting_day": date(9999, 12, 30)}, "starting_day", "outside"),
        ({"legal_forename": "x" * 5000}, "legal_forename", "longer than"),
    ],
)
def test_quarantined_with_the_field_named_and_no_value_quoted(fields, field, reason) -> None:
    with pytest.raises(InvalidRecord) as caught:
        refuse_implausible(pupil(**fields), resource="pupils", record_ref="1")
    assert caught.value.field == field and reason in caught.value.reason
    assert "Av" not in str(caught.value)
    if field == "dob":
        assert fields["dob"].isoformat() not in str(caught.value)  # type: ignore[attr-defined]


def test_an_ordinary_pupil_passes() -> None:
    refuse_implausible(
        pupil(legal_forename="Ava", dob=date(date.today().year - 10, 3, 4)),
        resource="pupils",
        record_ref="1",
    )


def test_the_plausible_window_from_a_leap_day() -> None:
    # 29 February two years on does not exist: every sync that day used to crash.
    assert plausible_until(date(2028, 2, 29)) == date(2030, 2, 28)
    assert plausible_until(date(2027, 3, 1)) == date(2029, 3, 1)
    refuse_implausible(
        pupil(legal_forename="Ava", dob=date(2018, 3, 4)),
        resource="pupils",
        record_ref="1",
        today=date(2028, 2, 29),
    )
