"""Rule settings in the config: [rules], [las."<code>"] and [schools.rules]; the calendar's
partial closures and per-group register times; config warnings."""

from __future__ import annotations

from datetime import date, time
from typing import Any

import pytest
from test_config import errors_of, valid_data

from registerwatch.config import parse_config
from registerwatch.validators import DEFAULT_SETTINGS


def school(data: dict[str, Any], school_id: str) -> dict[str, Any]:
    return next(s for s in data["schools"] if s["id"] == school_id)


def test_no_rule_tables_gives_the_defaults() -> None:
    settings = parse_config(valid_data())
    assert settings.rule_settings("oakfield") == DEFAULT_SETTINGS
    sources = settings.rule_setting_sources("oakfield")
    assert {s.source for s in sources.values()} == {"default"}
    assert set(sources) == set(type(DEFAULT_SETTINGS).model_fields)


def test_school_over_la_over_global_over_default() -> None:
    data = valid_data()
    data["rules"] = {"penalty_sessions": 12, "cme_days": 8, "la_return_schedule": "termly"}
    data["las"] = {
        "893": {
            "cme_days": 9,
            "la_return_schedule": "dates",
            "la_return_dates": ["2025-10-24", "2025-12-19"],
        }
    }
    school(data, "oakfield")["rules"] = {"cme_days": 11, "cme_codes": ["N", "O"]}
    settings = parse_config(data)

    oak = settings.rule_settings("oakfield")
    assert (oak.penalty_sessions, oak.cme_days, oak.la_return_schedule) == (12, 11, "dates")
    assert oak.cme_codes == frozenset({"N", "O"})
    assert oak.la_return_dates == (date(2025, 10, 24), date(2025, 12, 19))
    wen = settings.rule_settings("wenlock")  # same LA, no school table
    assert (wen.cme_days, wen.cme_codes) == (9, DEFAULT_SETTINGS.cme_codes)
    hill = settings.rule_settings("hillside")  # LA 330: only [rules]
    assert (hill.cme_days, hill.la_return_schedule) == (8, "termly")

    sources = settings.rule_setting_sources("oakfield")
    assert {
        n: sources[n].source
        for n in (
            "penalty_sessions",
            "cme_days",
            "la_return_schedule",
            "cme_codes",
            "sickness_days",
        )
    } == {
        "penalty_sessions": "[rules]",
        "cme_days": "[schools.rules]",
        "la_return_schedule": '[las."893"]',
        "cme_codes": "[schools.rules]",
        "sickness_days": "default",
    }


def test_unknown_and_invalid_keys_are_named_by_toml_path() -> None:
    data = valid_data()
    data["rules"] = {"penalty_sesions": 12}
    data["las"] = {"893": {"la_return_schedule": "weekly"}, "89": {}}
    school(data, "wenlock")["rules"] = {"cme_codes": ["N", "QQ"], "bogus": 1}
    errors = errors_of(data)
    assert "rules.penalty_sesions: unknown key; did you mean 'penalty_sessions'?" in errors
    assert any(e.startswith('las."893".la_return_schedule: must be one of monthly') for e in errors)
    assert any(e.startswith('las."89": must be exactly 3 digits') for e in errors)
    assert "schools[1].rules.cme_codes: not national attendance codes: QQ" in errors
    assert any(e.startswith("schools[1].rules.bogus: unknown key") for e in errors)


def test_settings_that_conflict_only_when_merged_are_reported_at_the_school() -> None:
    data = valid_data()
    data["rules"] = {"persistent_absence": 0.3}
    school(data, "oakfield")["rules"] = {"severe_absence": 0.2}
    assert errors_of(data) == [
        "schools[0].rules: the merged rule settings are invalid: severe_absence must not be "
        "below persistent_absence"
    ]


def test_the_example_config_sets_rules_at_every_level() -> None:
    from registerwatch.config import load_config
    from registerwatch.config.types import EXAMPLE_CONFIG_PATH

    settings = load_config(EXAMPLE_CONFIG_PATH)
    sources = settings.rule_setting_sources("brookside")
    assert sources["la_return_schedule"].source == '[las."330"]'
    assert sources["registers_checked_from"].source == "[rules]"
    assert sources["absence_measures_csa_only"].source == "[schools.rules]"
    assert settings.warnings() == []


# -- the calendar: partial closures, per-group register times, warnings ----------------------


def test_partial_closures_and_group_register_times_load() -> None:
    data = valid_data()
    calendar = school(data, "wenlock")["calendar"]
    calendar["closures"] = [
        {
            "date": "2025-09-03",
            "session": "both",
            "kind": "planned",
            "reason": "staggered start",
            "year_groups": ["8", "9"],
        },
        {"date": "2025-09-03", "reason": "staggered start", "year_groups": ["r"]},
        {"date": "2025-09-03", "session": "AM", "groups": ["10A"]},
    ]
    calendar["register_times"] = {
        "am_open": "08:45",
        "pm_open": "13:15",
        "close_after_minutes": 30,
        "by_group": [
            {"year_groups": ["3", "4"], "pm_open": "12:45"},
            {"groups": ["5W"], "pm_open": "13:30"},
        ],
    }
    cal = parse_config(data).school("wenlock").to_calendar()
    assert [c.year_groups for c in cal.closures] == [["8", "9"], ["R"], None]
    assert cal.closures[2].groups == ["10A"]
    times = cal.register_times
    assert times.for_group("3", "3X") == (time(8, 45), time(12, 45), 30)
    assert times.for_group("5", "5W") == (time(8, 45), time(13, 30), 30)


def test_the_same_pupils_closed_twice_is_an_error_but_other_groups_are_not() -> None:
    data = valid_data()
    school(data, "wenlock")["calendar"]["closures"] = [
        {"date": "2025-09-03", "year_groups": ["8", "9"]},
        {"date": "2025-09-03", "year_groups": ["7"]},
        {"date": "2025-09-03", "session": "PM", "year_groups": ["9"]},
        {"date": "2025-09-04", "year_groups": ["7"]},
        {"date": "2025-09-04"},
    ]
    assert errors_of(data) == [
        "schools[1].calendar.closures[2]: closes 2025-09-03 again (already closed by closures[0])",
        "schools[1].calendar.closures[4]: closes 2025-09-04 again (already closed by closures[3])",
    ]


def test_bad_group_entries_are_errors() -> None:
    data = valid_data()
    calendar = school(data, "wenlock")["calendar"]
    calendar["closures"] = [{"date": "2025-09-03", "year_groups": ["Y7"]}]
    calendar["register_times"] = {
        "am_open": "08:45",
        "pm_open": "13:15",
        "by_group": [
            {"pm_open": "12:45"},
            {"year_groups": ["6"], "am_open": "13:00"},
            {"year_groups": ["5"], "colour": "red"},
        ],
    }
    errors = errors_of(data)
    assert any(e.startswith("schools[1].calendar.closures[0].year_groups[0]:") for e in errors)
    assert (
        "schools[1].calendar.register_times.by_group[0]: register times for groups need "
        "year_groups or groups" in errors
    )
    assert any(
        e.startswith("schools[1].calendar.register_times.by_group[2].colour: unknown key")
        for e in errors
    )


def test_a_group_whose_morning_register_closes_after_its_afternoon_opens_is_an_error() -> None:
    data = valid_data()
    school(data, "wenlock")["calendar"]["register_times"] = {
        "am_open": "08:45",
        "pm_open": "13:15",
        "by_group": [{"year_groups": ["6"], "am_open": "12:50"}],
    }
    assert errors_of(data) == [
        "schools[1].calendar.register_times.by_group[0].pm_open: must be after the morning "
        "register closes (am_open + close_after_minutes = 13:20)"
    ]


def test_a_register_window_over_30_minutes_is_a_warning_not_an_error() -> None:
    data = valid_data()
    school(data, "wenlock")["calendar"]["register_times"] = {
        "close_after_minutes": 45,
        "by_group": [
            {"year_groups": ["12"], "close_after_minutes": 40},
            {"year_groups": ["11"], "close_after_minutes": 30},
        ],
    }
    data["las"] = {"330": {"register_close_minutes": 35}}
    settings = parse_config(data)
    assert settings.warnings() == [
        "schools[1].calendar.register_times.close_after_minutes: a register window of 45 "
        "minutes is longer than the 30 minutes the guidance allows (WTISA)",
        "schools[1].calendar.register_times.by_group[0].close_after_minutes: a register window "
        "of 40 minutes is longer than the 30 minutes the guidance allows (WTISA)",
        'las."330".register_close_minutes: a register window of 35 minutes is longer than the '
        "30 minutes the guidance allows (WTISA)",
    ]


@pytest.mark.parametrize("minutes", [30, 10])
def test_windows_within_30_minutes_give_no_warning(minutes: int) -> None:
    data = valid_data()
    school(data, "wenlock")["calendar"]["register_times"] = {"close_after_minutes": minutes}
    assert parse_config(data).warnings() == []


def test_every_rule_page_names_real_config_keys() -> None:
    """The TOML example on each rule's page loads as [rules] and sets what the page says."""
    import re
    import tomllib
    from pathlib import Path

    from registerwatch.validators import all_rules

    docs = Path(__file__).resolve().parents[2] / "docs" / "rules"
    for rule in all_rules():
        if not rule.settings_used:
            continue
        page = (docs / f"{rule.code}.md").read_text(encoding="utf-8")
        (block,) = re.findall(r"```toml\n(.*?)```", page, re.S)
        table = tomllib.loads(block)
        data = valid_data()
        data.update(table)
        settings = parse_config(data)
        (key,) = table["rules"]
        assert key in rule.settings_used
        assert settings.rule_setting_sources("oakfield")[key].source == "[rules]"
