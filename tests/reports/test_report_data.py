"""build_report_data: the numbers the report shows, checked against data worked out by hand."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime

import pytest
from report_world import (
    ACK_NOTE,
    AS_OF,
    BROOK_ORDER,
    BROOK_WEEKS,
    FERN_N,
    GENERATED_AT,
    SCAN_2,
    SMALL_CALENDAR,
    Scanned,
    World,
)

from registerwatch.calendar import SchoolCalendar
from registerwatch.errors import StoreError
from registerwatch.reports import (
    ReportData,
    SchoolReport,
    build_report_data,
    school_term,
)
from registerwatch.schema import Calendar, Severity, Term
from registerwatch.validators import all_rules


def report(world: World, **kwargs: object) -> ReportData:
    return build_report_data(
        world.store, world.settings, as_of=AS_OF, generated_at=GENERATED_AT, **kwargs
    )  # type: ignore[arg-type]


def school(data: ReportData, school_id: str) -> SchoolReport:
    return next(s for s in data.schools if s.school_id == school_id)


# -- findings -------------------------------------------------------------------------------


def test_open_findings_are_grouped_by_severity_and_ordered_by_deadline(small: World) -> None:
    brook = school(report(small), "brook")

    assert [f.fingerprint for f in brook.findings] == BROOK_ORDER  # fp-upn was resolved
    assert [f.fingerprint for f in brook.by_severity(Severity.ERROR)] == BROOK_ORDER[:3]
    assert [f.fingerprint for f in brook.by_severity(Severity.WARNING)] == BROOK_ORDER[3:5]
    assert [f.fingerprint for f in brook.by_severity(Severity.INFO)] == ["fp-amendments"]
    assert (
        brook.count(Severity.ERROR),
        brook.count(Severity.WARNING),
        brook.count(Severity.INFO),
    ) == (3, 2, 1)


def test_overdue_due_today_status_and_acknowledgement(small: World) -> None:
    rows = {f.fingerprint: f for f in school(report(small), "brook").findings}

    overdue = rows["fp-n-overdue"]  # due 18 November, report day 19 November
    assert (overdue.due, overdue.overdue, overdue.due_today) == (date(2025, 11, 18), True, False)
    today = rows["fp-n-today"]  # due on the report day: the school still has today
    assert (today.overdue, today.due_today) == (False, True)
    later = rows["fp-new-pupil"]
    assert (later.overdue, later.due_today) == (False, False)
    assert not rows["fp-persistent"].overdue and rows["fp-persistent"].due is None

    # new: first seen by the latest scan; open: seen by an earlier one and still there
    assert {k: r.status for k, r in rows.items()} == {
        "fp-n-overdue": "open",
        "fp-n-today": "new",
        "fp-new-pupil": "open",
        "fp-persistent": "open",
        "fp-register": "new",
        "fp-amendments": "new",
    }
    assert later.ack_note == ACK_NOTE and later.acknowledged_at == SCAN_2
    assert rows["fp-n-overdue"].acknowledged_at is None
    assert school(report(small), "brook").findings_updated_at == SCAN_2


def test_rows_carry_rule_metadata_and_mis_ids_but_no_names(small: World) -> None:
    rule = {r.code: r for r in all_rules()}["MRK001"]
    row = school(report(small), "brook").findings[0]

    assert (row.rule, row.rule_name, row.citation, row.fix_hint) == (
        "MRK001",
        "unresolved-n-code",
        rule.citation,
        rule.fix_hint,
    )
    assert row.pupil == "1002" and row.pupil_name is None
    assert row.sessions == "2025-11-11 AM to 2025-11-11 PM"
    school_level = next(
        f for f in school(report(small), "brook").findings if f.fingerprint == "fp-register"
    )
    assert school_level.pupil is None

    named = school(report(small, include_names=True), "brook").findings[0]
    assert named.pupil_name == "Alan Turing"


def test_summary_counts_per_rule_and_severity(small: World) -> None:
    brook = school(report(small), "brook")
    counts = {
        r.code: (r.errors, r.warnings, r.info, r.new, r.overdue) for r in brook.rules if r.total
    }

    assert counts == {
        "MRK001": (1, 1, 0, 1, 1),
        "LAR004": (1, 0, 0, 0, 0),
        "ATT002": (0, 1, 0, 0, 0),
        "REG001": (1, 0, 0, 1, 0),
        "AMD002": (0, 0, 1, 1, 0),
    }
    # every registered rule is listed, in registry order, zeros included (UPN001 was resolved)
    assert [r.code for r in brook.rules] == [r.code for r in all_rules()]
    upn = next(r for r in brook.rules if r.code == "UPN001")
    assert upn.total == 0 and upn.name == "invalid-upn"
    assert (brook.overdue, brook.new) == (1, 3)


def test_scanned_generated_school_counts_match_the_rules_output(scanned: Scanned) -> None:
    data = build_report_data(
        scanned.world.store,
        scanned.world.settings,
        as_of=scanned.as_of,
        generated_at=scanned.generated_at,
    )
    (oak,) = data.schools
    expected = Counter((f.rule, f.severity) for f in scanned.findings)

    assert len(oak.findings) == len(scanned.findings) > 20
    got = Counter({(r.code, s): r.count(s) for r in oak.rules for s in Severity if r.count(s)})
    assert got == expected
    assert {f.fingerprint for f in oak.findings} == {f.fingerprint for f in scanned.findings}
    # one scan so far: everything it found is new
    assert {f.status for f in oak.findings} == {"new"}
    # pupils by MIS id, never the store id
    mis_ids = {p.id: p.mis_id for p in scanned.school.pupils}
    for row, source in [
        (r, next(f for f in scanned.findings if f.fingerprint == r.fingerprint))
        for r in oak.findings
        if r.pupil
    ]:
        assert row.pupil == mis_ids[source.pupil_id]
    # overdue is exactly "the report day is after the due day"
    assert {f.fingerprint for f in oak.findings if f.overdue} == {
        f.fingerprint for f in scanned.findings if f.due and scanned.as_of > f.due
    }


def test_schools_named_by_id_come_from_the_store(small: World) -> None:
    data = build_report_data(small.store, ["fern"], as_of=AS_OF, generated_at=GENERATED_AT)
    (fern,) = data.schools
    assert (fern.school_id, fern.name, fern.urn) == ("fern", "Fern Primary & Nursery", "140002")
    assert fern.term is not None and fern.term.name == "Autumn term 2025"

    with pytest.raises(StoreError, match="'nowhere' is not in the store"):
        build_report_data(small.store, ["nowhere"], as_of=AS_OF, generated_at=GENERATED_AT)
    with pytest.raises(ValueError, match="timezone-aware"):
        build_report_data(
            small.store, ["fern"], as_of=AS_OF, generated_at=datetime(2025, 11, 19, 6, 30)
        )


def test_a_school_without_findings_says_whether_a_scan_ran(small: World) -> None:
    # no scan run recorded: zero findings must not read as a clean register
    data = report(small)
    fern = school(data, "fern")
    assert fern.findings == () and fern.findings_updated_at is None
    assert all(r.total == 0 for r in fern.rules)
    assert fern.notes == (
        (
            "No scan has been run on this store yet, so there are no findings "
            "to show: run `registerwatch scan`."
        ),
    )
    assert (data.last_scan_at, data.last_scan_outcome) == (None, None)

    run = small.store.start_run("scan", at=SCAN_2)
    small.store.finish_run(run, "ok", {}, at=SCAN_2)
    data = report(small)
    assert school(data, "fern").notes == ()  # scanned, and clean
    assert (data.last_scan_at, data.last_scan_outcome) == (SCAN_2, "ok")


# -- weekly rates ---------------------------------------------------------------------------


def test_weekly_rates_from_known_marks(small: World) -> None:
    brook = school(report(small), "brook")

    assert brook.term is not None
    assert (brook.term.name, brook.term.start, brook.term.end) == (
        "Autumn term 2025",
        date(2025, 10, 13),
        date(2025, 12, 19),
    )
    # the half-term week (27 October) has no school day, so it is no school week
    assert [w.week_start for w in brook.weeks] == list(BROOK_WEEKS)
    for week in brook.weeks:
        days, possible, attendance, authorised, unauthorised = BROOK_WEEKS[week.week_start]
        stats = week.statistics
        assert (
            week.school_days,
            stats.possible,
            stats.attendance,
            stats.authorised,
            stats.unauthorised,
        ) == (days, possible, attendance, authorised, unauthorised)
        assert week.attendance_rate == pytest.approx(100 * attendance / possible)
        assert week.overall_absence_rate == pytest.approx(
            100 * (authorised + unauthorised) / possible
        )
    rates = [round(w.attendance_rate, 2) for w in brook.weeks]
    assert rates == [100.0, 90.0, 95.0, 87.5, 100.0]
    assert [w.partial for w in brook.weeks] == [False, False, False, False, True]
    assert brook.weeks[3].unauthorised_absence_rate == pytest.approx(12.5)

    assert brook.term_statistics is not None
    assert (brook.term_statistics.possible, brook.term_statistics.attendance) == (83, 78)


def test_weekly_rates_skip_weeks_with_no_registers(small: World) -> None:
    fern = school(report(small), "fern")  # only N codes, and none in the first week
    by_week = {w.week_start: w.statistics.possible for w in fern.weeks}
    assert by_week[date(2025, 10, 13)] == 0
    assert by_week[date(2025, 11, 17)] == 2  # Mon PM and Tue AM; the report day's N is not in


# -- N ages ---------------------------------------------------------------------------------


def test_unresolved_n_codes_by_age_in_school_days(small: World) -> None:
    fern = school(report(small), "fern")
    calendar = SchoolCalendar(Calendar(school_id="fern", **SMALL_CALENDAR))
    # the ages written beside the data are the calendar's, not weekday counts
    for (_, day, _), age in FERN_N.items():
        if age is not None:
            assert calendar.school_days_after(day, AS_OF) == age

    assert [(b.label, b.sessions, b.pupils) for b in fern.n_ages] == [
        ("0-2", 2, 1),
        ("3-5", 2, 2),
        ("6-10", 1, 1),
        (">10", 3, 2),
    ]
    assert fern.n_sessions_older_than(5) == 4
    # brook's only N codes (11 November) are 5 school days old on the report day
    brook = school(report(small), "brook")
    assert [(b.label, b.sessions) for b in brook.n_ages] == [
        ("0-2", 0),
        ("3-5", 2),
        ("6-10", 0),
        (">10", 0),
    ]


# -- terms ----------------------------------------------------------------------------------


def test_school_term_groups_half_terms_into_autumn_spring_and_summer() -> None:
    spans = [
        ("2025-09-03", "2025-10-24"),
        ("2025-11-03", "2025-12-19"),
        ("2026-01-05", "2026-02-13"),
        ("2026-02-23", "2026-03-27"),
        ("2026-04-13", "2026-05-22"),
        ("2026-06-01", "2026-07-22"),
    ]
    calendar = SchoolCalendar(
        Calendar(
            school_id="x",
            terms=[Term(start=date.fromisoformat(a), end=date.fromisoformat(b)) for a, b in spans],
        )
    )

    def term(day: str) -> tuple[str, date, date] | None:
        found = school_term(calendar, date.fromisoformat(day))
        return None if found is None else (found.name, found.start, found.end)

    assert term("2025-09-02") is None  # before the first school day
    assert term("2025-10-01") == ("Autumn term 2025", date(2025, 9, 3), date(2025, 12, 19))
    assert term("2025-10-29") == term("2025-10-01")  # half-term: the term it falls in
    assert term("2026-01-02") == term("2025-10-01")  # Christmas: the term just ended
    # Easter Sunday 2026 is 5 April: the spring term ends before it, summer starts after
    assert term("2026-03-10") == ("Spring term 2026", date(2026, 1, 5), date(2026, 3, 27))
    assert term("2026-04-13") == ("Summer term 2026", date(2026, 4, 13), date(2026, 7, 22))
    assert term("2026-08-20") == term("2026-04-13")  # the summer holiday
