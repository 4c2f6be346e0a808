"""The synthetic school generator: realism, determinism, and exact ground truth.

``reference_scan`` below is an independent, deliberately plain implementation of the rule
semantics written in docs/simulator.md. The generator's ``expected_findings`` must equal what it
finds, and it must find nothing on ``clean_pupil_ids``: that is the contract the real rules
will be tested against.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, timedelta

from generate_reference import (
    PM,
    keys,
)

from registerwatch.calendar import LONDON, SchoolCalendar
from registerwatch.codes import lookup
from registerwatch.schema import (
    AmendmentSource,
    ClosureKind,
    Mark,
    NotificationKind,
    Register,
)
from registerwatch.school_age import is_compulsory_school_age
from registerwatch.simulator.generate import (
    generate_school,
)
from registerwatch.simulator.generate_marks import build_mark
from registerwatch.simulator.model import GeneratedSchool
from registerwatch.upn import check_upn

# -- determinism -----------------------------------------------------------------------------


def _snapshot(s: GeneratedSchool) -> tuple:
    return (
        s.school,
        s.calendar,
        s.pupils,
        s.registers,
        s.marks,
        s.amendments,
        s.notifications,
        s.expected_findings,
        sorted(s.clean_pupil_ids),
        s.as_of,
    )


def test_same_seed_same_school() -> None:
    assert _snapshot(generate_school(seed=7, pupils=120)) == _snapshot(
        generate_school(seed=7, pupils=120)
    )


def test_different_seed_different_school() -> None:
    a, b = generate_school(seed=7, pupils=120), generate_school(seed=8, pupils=120)
    assert [p.legal_surname for p in a.pupils] != [p.legal_surname for p in b.pupils]
    assert [m.code for m in a.marks] != [m.code for m in b.marks]
    assert keys(a.expected_findings) != keys(b.expected_findings)


# -- the school and its calendar -------------------------------------------------------------


def test_default_school_is_a_primary_in_essex(school: GeneratedSchool) -> None:
    s = school.school
    assert (s.id, s.la_code, s.phase, s.name) == (
        "oakfield",
        "881",
        "primary",
        "Oakfield Primary School",
    )
    assert len(s.urn) == 6 and s.urn.isdigit()
    assert len(s.laestab) == 7 and s.laestab.startswith("881") and s.laestab[3] == "2"
    assert {p.nc_year for p in school.pupils} == {"R", "1", "2", "3", "4", "5", "6"}


def test_large_school_is_an_11_to_18_secondary(big_year: GeneratedSchool) -> None:
    assert big_year.school.phase == "secondary"
    assert big_year.school.vendor is not None and big_year.school.vendor.value == "arbor"
    years = Counter(p.nc_year for p in big_year.pupils)
    assert set(years) == {"7", "8", "9", "10", "11", "12", "13"}
    assert years["12"] < years["7"] / 2  # a small sixth form
    assert sum(years.values()) == 1500
    groups = {p.reg_group for p in big_year.pupils if p.nc_year == "7"}
    assert {"7A", "7B", "7C"} <= groups


def test_calendar_2025_26(school: GeneratedSchool) -> None:
    terms = [(t.start, t.end) for t in school.calendar.terms]
    assert terms == [
        (date(2025, 9, 3), date(2025, 10, 24)),
        (date(2025, 11, 3), date(2025, 12, 19)),
        (date(2026, 1, 5), date(2026, 2, 13)),
        (date(2026, 2, 23), date(2026, 3, 27)),
        (date(2026, 4, 13), date(2026, 5, 22)),
        (date(2026, 6, 1), date(2026, 7, 22)),
    ]
    closures = {(c.date, c.session, c.kind) for c in school.calendar.closures}
    assert closures == {
        (date(2025, 10, 24), "PM", ClosureKind.PLANNED),
        (date(2025, 11, 14), "both", ClosureKind.PLANNED),
        (date(2025, 11, 20), "both", ClosureKind.UNEXPECTED),
        (date(2026, 1, 9), "both", ClosureKind.PLANNED),
    }
    cal = SchoolCalendar(school.calendar)
    assert not cal.is_school_day(date(2026, 5, 4))  # early May bank holiday, from `holidays`
    assert school.as_of == date(2025, 12, 1)


def test_marks_cover_first_term_day_to_the_day_before_as_of(school: GeneratedSchool) -> None:
    days = {m.date for m in school.marks}
    assert min(days) == date(2025, 9, 3)
    assert max(days) == date(2025, 11, 28)
    assert date(2025, 10, 27) not in days  # half-term
    # the INSET day carries exactly one (injected, MRK005) mark; the PM closure none
    assert len([m for m in school.marks if m.date == date(2025, 11, 14)]) == 1
    assert not [m for m in school.marks if (m.date, m.session) == (date(2025, 10, 24), PM)]
    y4 = [m for m in school.marks if m.date == date(2025, 11, 20)]
    assert y4 and {m.code for m in y4} == {"Y4"}


# -- pupils ----------------------------------------------------------------------------------


def test_pupil_ids_unique_and_namespaced(big_year: GeneratedSchool) -> None:
    ids = [p.id for p in big_year.pupils]
    assert len(ids) == len(set(ids)) == 1500
    assert all(
        p.id == f"{p.school_id}:{p.mis_id}" and p.school_id == "oakfield" for p in big_year.pupils
    )


def test_dob_matches_nc_year(big_year: GeneratedSchool) -> None:
    for p in big_year.pupils:
        n = 0 if p.nc_year == "R" else int(p.nc_year)
        assert date(2020 - n, 9, 1) <= p.dob <= date(2021 - n, 8, 31), p


def test_non_compulsory_age_pupils_exist_with_x(
    school: GeneratedSchool, big_year: GeneratedSchool
) -> None:
    for s, year in ((school, "R"), (big_year, "12")):
        young_or_old = [p for p in s.pupils if p.nc_year == year]
        assert young_or_old
        assert not any(is_compulsory_school_age(p.dob, date(2025, 10, 1)) for p in young_or_old)
        xs = {m.pupil_id for m in s.marks if m.code == "X"}
        assert {p.id for p in young_or_old} & xs


def test_flags_and_contacts_are_plausible(big_year: GeneratedSchool) -> None:
    n = len(big_year.pupils)
    share = {
        flag: sum(getattr(p, flag) for p in big_year.pupils) / n
        for flag in ("sen_support", "ehcp", "fsm", "looked_after", "has_social_worker")
    }
    assert 0.08 < share["sen_support"] < 0.16
    assert 0.01 < share["ehcp"] < 0.06
    assert 0.15 < share["fsm"] < 0.25
    assert 0.0 < share["looked_after"] < 0.03
    assert 0.02 < share["has_social_worker"] < 0.07
    for p in big_year.pupils:
        assert 1 <= len(p.contacts) <= 2
        assert any(c.lives_with for c in p.contacts)
        assert all(c.phone and c.phone.startswith(("07700 900", "01632 960")) for c in p.contacts)
        assert p.address is not None and p.address.postcode and p.address.lines


def test_leavers_and_admissions(school: GeneratedSchool) -> None:
    cal = SchoolCalendar(school.calendar)
    leavers = [p for p in school.pupils if p.leaving_date]
    admitted = [p for p in school.pupils if p.starting_day > cal.first_day]
    assert len(leavers) >= 4 and len(admitted) >= 3
    assert all(p.deletion_ground and p.deletion_ground.startswith("9(1)(") for p in leavers)
    kinds = Counter(n.kind for n in school.notifications)
    assert kinds[NotificationKind.DELETION] == len(leavers) - 1  # LAR005's is missing
    assert kinds[NotificationKind.NEW_PUPIL] == len(admitted) - 1  # LAR004's is missing
    assert kinds[NotificationKind.SICKNESS] == 1
    assert kinds[NotificationKind.CONTINUOUS_ABSENCE] == 2 and kinds[NotificationKind.CME] == 1
    assert all(
        n.made_at.tzinfo is not None and n.made_at.date() < school.as_of
        for n in school.notifications
    )


def test_upns_valid_except_injected(big_year: GeneratedSchool) -> None:
    for s in (big_year, generate_school(seed=2)):
        injected = {f.pupil_id for f in s.expected_findings if f.rule == "UPN001"}
        assert len(injected) == 2
        invalid = {p.id for p in s.pupils if not check_upn(p.upn).valid}
        assert invalid == injected
        for p in s.pupils:
            assert p.former_upn is None or check_upn(p.former_upn).valid
        counts = Counter(p.upn for p in s.pupils)
        shared = {p.id for p in s.pupils if counts[p.upn] > 1}
        assert shared == {f.pupil_id for f in s.expected_findings if f.rule == "UPN002"}
        assert len(shared) == 2
    assert any(p.former_upn for p in big_year.pupils)


# -- registers and marks ---------------------------------------------------------------------


def test_registers_per_group_per_session_except_reg001(school: GeneratedSchool) -> None:
    cal = SchoolCalendar(school.calendar)
    groups = {p.reg_group for p in school.pupils}
    sessions = cal.school_sessions(cal.first_day, school.as_of - timedelta(days=1))
    have = Counter((r.group, r.date, r.session) for r in school.registers)
    assert max(have.values()) == 1
    gaps = {(g, d, s) for g in groups for d, s in sessions if (g, d, s) not in have}
    (reg001,) = [f for f in school.expected_findings if f.rule == "REG001"]
    assert gaps == {(reg001.note.removeprefix("group="), *reg001.first_session)}


def test_registers_opened_on_time_and_saved_within_30_minutes(school: GeneratedSchool) -> None:
    cal = SchoolCalendar(school.calendar)
    unsaved = {(f.note, f.first_session) for f in school.expected_findings if f.rule == "REG002"}
    late = {(f.note, f.first_session) for f in school.expected_findings if f.rule == "REG003"}
    for r in school.registers:
        key = (f"group={r.group}", (r.date, r.session))
        assert r.opened_at == cal.register_opens(r.date, r.session)
        assert r.opened_at.tzinfo is UTC and r.taken_by
        if key in unsaved:
            assert r.completed_at is None
        elif key in late:
            assert r.completed_at > cal.register_closes(r.date, r.session)
        else:
            assert r.opened_at < r.completed_at <= cal.register_closes(r.date, r.session)
    Register.model_validate(school.registers[0].model_dump())


def test_sampled_marks_validate(big_year: GeneratedSchool) -> None:
    rng = random.Random(0)
    for m in rng.sample(big_year.marks, 4000):
        assert Mark.model_validate(m.model_dump()) == m
        assert m.recorded_at is not None and m.recorded_at.tzinfo is UTC


def test_fast_mark_builder_matches_model_construct() -> None:
    values = {
        "pupil_id": "a:1",
        "date": date(2025, 9, 4),
        "session": PM,
        "code": "\\",
        "vendor_code": "\\",
        "minutes_late": None,
        "comment": None,
        "recorded_at": None,
        "recorded_by": "x",
        "source_ref": None,
    }
    fast, slow = build_mark(dict(values)), Mark.model_construct(**values)
    assert fast == slow and fast.model_fields_set == slow.model_fields_set
    assert fast.model_copy(update={"code": "I"}).code == "I" and fast.code == "\\"


def test_no_mark_outside_roll_except_mrk004(big_year: GeneratedSchool) -> None:
    for s in (big_year, generate_school(seed=3)):
        pupils = {p.id: p for p in s.pupils}
        outside = {
            (m.pupil_id, m.date, m.session)
            for m in s.marks
            if not pupils[m.pupil_id].on_roll(m.date)
        }
        (mrk004,) = [f for f in s.expected_findings if f.rule == "MRK004"]
        assert outside == {(mrk004.pupil_id, *mrk004.first_session)}


def test_one_mark_per_pupil_session(school: GeneratedSchool) -> None:
    keys_ = Counter((m.pupil_id, m.date, m.session) for m in school.marks)
    assert max(keys_.values()) == 1


def test_absence_is_realistic(big_year: GeneratedSchool) -> None:
    codes = Counter(m.code for m in big_year.marks)
    for code in (
        "/",
        "\\",
        "I",
        "L",
        "U",
        "G",
        "M",
        "N",
        "O",
        "V",
        "P",
        "B",
        "K",
        "X",
        "Y4",
        "C2",
        "R",
    ):
        assert codes[code], code
    possible = sum(n for c, n in codes.items() if lookup(c).possible)
    absent = sum(n for c, n in codes.items() if lookup(c).possible and lookup(c).is_absence)
    assert 0.01 < absent / possible < 0.06
    # every L is within the 30-minute window except MRK006's injected breach
    injected = {
        (f.pupil_id, f.first_session) for f in big_year.expected_findings if f.rule == "MRK006"
    }
    late = [
        m
        for m in big_year.marks
        if m.code == "L" and (m.pupil_id, (m.date, m.session)) not in injected
    ]
    assert len(late) < sum(1 for m in big_year.marks if m.code == "L")
    assert all(m.minutes_late is not None and 0 < m.minutes_late < 30 for m in late)


def test_resolved_ns_have_complete_amendments(school: GeneratedSchool) -> None:
    marks = school.marks_by_key()
    incomplete = {
        (f.pupil_id, f.first_session) for f in school.expected_findings if f.rule == "AMD001"
    }
    assert len(school.amendments) > 20
    for a in school.amendments:
        assert a.source is AmendmentSource.MIS and a.original_code == "N"
        mark = marks[(a.pupil_id, a.date, a.session)]
        assert mark.code == a.amended_code != "N"
        assert a.amended_at is not None and a.amended_at.date() > a.date
        if (a.pupil_id, (a.date, a.session)) not in incomplete:
            assert a.reason and a.amended_by_name and a.amended_by_position
    cal = SchoolCalendar(school.calendar)
    # N resolved within 1-3 school days, except the LAR003/ATT005 N -> O after 5
    delays = Counter(
        cal.school_days_after(a.date, a.amended_at.astimezone(LONDON).date())
        for a in school.amendments
    )
    assert set(delays) <= {1, 2, 3, 5}
