"""The report's deadlines chart (findings by days past due), the reason given for every finding
without a due date, and `[schools.report] include_names` (names for that school only, with the
warning banner). Numbers are worked out from report_world's hand-made findings."""

from __future__ import annotations

from typing import Any

import pytest
from report_world import AS_OF, GENERATED_AT, SMALL_CALENDAR, World, school_settings

from registerwatch.config import parse_config
from registerwatch.errors import ConfigError
from registerwatch.reports import DUE_BUCKETS, build_report_data, render_html, write_report

# brook on 19 November 2025: fp-n-overdue (error) was due 18 Nov, fp-n-today (warning) is due
# today, fp-new-pupil (error) is due 25 Nov; the other three have no due date.
BROOK_BUCKETS = {
    "due in 1-7 days": (1, 0, 0),
    "due today": (0, 1, 0),
    "1-7 days overdue": (1, 0, 0),
    "8-14 days overdue": (0, 0, 0),
    "15-28 days overdue": (0, 0, 0),
    "over 28 days overdue": (0, 0, 0),
}
BROOK_NO_DUE = {
    "fp-register": "no deadline: fix when found",
    "fp-persistent": "no deadline: check when found",
    "fp-amendments": "no deadline: for information",
}


def brook_report(world: World, settings: Any = None) -> Any:
    data = build_report_data(
        world.store, settings or world.settings, as_of=AS_OF, generated_at=GENERATED_AT
    )
    return data, next(s for s in data.schools if s.school_id == "brook")


def test_findings_by_days_past_due_in_fixed_buckets(small: World) -> None:
    _, brook = brook_report(small)
    assert [b.label for b in brook.due_buckets] == [label for label, _, _ in DUE_BUCKETS]
    assert {b.label: (b.errors, b.warnings, b.info) for b in brook.due_buckets} == BROOK_BUCKETS
    as_json = brook.to_dict()["due_buckets"]
    assert as_json[2] == {
        "label": "1-7 days overdue",
        "min_days": 1,
        "max_days": 7,
        "errors": 1,
        "warnings": 0,
        "info": 0,
        "total": 1,
    }


def test_every_finding_has_a_due_date_or_says_why_none_applies(small: World) -> None:
    _, brook = brook_report(small)
    notes = {f.fingerprint: f.due_note for f in brook.findings if f.due is None}
    assert notes == BROOK_NO_DUE
    assert all(f.due_note is None for f in brook.findings if f.due is not None)
    html = render_html(build_report_data(small.store, small.settings, as_of=AS_OF,
                                         generated_at=GENERATED_AT))  # fmt: skip
    for note in set(BROOK_NO_DUE.values()):
        assert f'<span class="no-due">{note}</span>' in html


def test_the_deadlines_chart_replaces_findings_by_rule(small: World) -> None:
    html = render_html(build_report_data(small.store, small.settings, as_of=AS_OF,
                                         generated_at=GENERATED_AT))  # fmt: skip
    assert 'aria-label="Open findings by days past their due date"' in html
    assert "Open findings by rule and severity" not in html
    # three of brook's six open findings have no deadline, and the caption says so
    assert "3 with no deadline not shown" in html


def named_brook_settings(world: World, include_names: object = True) -> Any:
    brook = school_settings("brook", "Brook Academy", "140001", SMALL_CALENDAR)
    fern = school_settings("fern", "Fern Primary & Nursery", "140002", SMALL_CALENDAR)
    brook["report"] = {"include_names": include_names}
    return parse_config({"store": {"url": world.settings.store.url}, "schools": [brook, fern]})


def test_include_names_in_the_config_names_that_schools_pupils_only(small: World) -> None:
    settings = named_brook_settings(small)
    assert [s.report.include_names for s in settings.schools] == [True, False]
    data, brook = brook_report(small, settings)
    fern = next(s for s in data.schools if s.school_id == "fern")
    assert data.include_names and brook.include_names and not fern.include_names
    assert {f.pupil: f.pupil_name for f in brook.findings if f.pupil} == {
        "1001": "Ada Lovelace",
        "1002": "Alan Turing",
    }
    assert all(f.pupil_name is None for f in fern.findings)
    html = render_html(data)
    assert "This report names pupils</strong> at Brook Academy:" in html
    assert "Do not forward or print it" in html


def test_names_are_off_by_default_and_the_banner_says_ids_only(small: World) -> None:
    data, brook = brook_report(small)
    assert not data.include_names and all(f.pupil_name is None for f in brook.findings)
    html = render_html(data)
    assert "This report names pupils" not in html and "Ada Lovelace" not in html
    assert "Pupils are shown by their MIS id;" in html


def test_the_nightly_report_honours_the_config(small: World, tmp_path) -> None:
    # write_report is what the night's report step calls, with the settings and no flag
    files = write_report(
        small.store,
        named_brook_settings(small),
        tmp_path / "night",
        as_of=AS_OF,
        generated_at=GENERATED_AT,
    )
    html = files.html.read_text(encoding="utf-8")
    assert "Ada Lovelace" in html and "This report names pupils" in html
    assert "pupil_name" in files.findings_csv.read_text(encoding="utf-8-sig").splitlines()[0]


@pytest.mark.parametrize("value", ["yes", 1, "true"])
def test_include_names_must_be_true_or_false(small: World, value: object) -> None:
    with pytest.raises(ConfigError) as exc:
        named_brook_settings(small, value)
    assert "include_names" in str(exc.value)
