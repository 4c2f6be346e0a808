from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from registerwatch.schema import Amendment, Finding, Mark, Pupil, Register, School, Session


def _error_fields(exc: ValidationError) -> set[str]:
    return {".".join(str(p) for p in e["loc"]) for e in exc.errors()}


def test_impossible_date_names_the_field():
    with pytest.raises(ValidationError) as exc:
        Mark(pupil_id="s:1", date="2025-02-30", session="AM", code="/")
    assert _error_fields(exc.value) == {"date"}


def test_unknown_session_names_the_field():
    with pytest.raises(ValidationError) as exc:
        Mark(pupil_id="s:1", date="2025-02-03", session="EVE", code="/")
    assert _error_fields(exc.value) == {"session"}


def test_negative_minutes_late_names_the_field():
    with pytest.raises(ValidationError) as exc:
        Mark(pupil_id="s:1", date="2025-02-03", session="AM", code="L", minutes_late=-5)
    assert _error_fields(exc.value) == {"minutes_late"}


def test_unknown_code_names_the_field():
    with pytest.raises(ValidationError) as exc:
        Mark(pupil_id="s:1", date="2025-02-03", session="AM", code="Q9")
    assert _error_fields(exc.value) == {"code"}
    assert "not a national attendance code" in str(exc.value)


def test_naive_datetime_is_rejected():
    with pytest.raises(ValidationError) as exc:
        Register(
            school_id="s",
            group="7A",
            date=date(2025, 2, 3),
            session=Session.AM,
            opened_at=datetime(2025, 2, 3, 8, 45),
        )
    assert _error_fields(exc.value) == {"opened_at"}


def test_valid_mark_round_trips_through_json():
    mark = Mark(
        pupil_id="s:1",
        date=date(2025, 2, 3),
        session="PM",
        code="\\",
        recorded_at=datetime(2025, 2, 3, 13, 20, tzinfo=UTC),
    )
    assert Mark.model_validate_json(mark.model_dump_json()) == mark
    assert mark.session is Session.PM


def test_pupil_leaving_before_start_is_rejected_and_on_roll_uses_both_dates():
    with pytest.raises(ValidationError) as exc:
        Pupil(
            id="s:1",
            school_id="s",
            mis_id="1",
            starting_day=date(2025, 9, 3),
            leaving_date=date(2025, 9, 1),
        )
    assert _error_fields(exc.value) == {"leaving_date"}
    pupil = Pupil(
        id="s:1",
        school_id="s",
        mis_id="1",
        starting_day=date(2025, 9, 3),
        leaving_date=date(2025, 12, 19),
    )
    assert not pupil.on_roll(date(2025, 9, 2))
    assert pupil.on_roll(date(2025, 9, 3)) and pupil.on_roll(date(2025, 12, 19))
    assert not pupil.on_roll(date(2025, 12, 20))


def test_school_identifiers_are_checked():
    with pytest.raises(ValidationError) as exc:
        School(id="Oak Field", urn="12345", laestab="9999", name="Oakfield")
    assert _error_fields(exc.value) == {"id", "urn", "laestab"}


def test_amendment_keeps_missing_fields_as_none():
    amendment = Amendment(
        pupil_id="s:1", date=date(2025, 2, 3), session="AM", original_code="N", amended_code="I"
    )
    assert amendment.reason is None and amendment.amended_by_name is None


def test_finding_rule_code_shape():
    with pytest.raises(ValidationError):
        Finding(rule="mrk1", severity="error", school_id="s", message="x")
    assert Finding(rule="MRK001", severity="error", school_id="s", message="x").severity == "error"
