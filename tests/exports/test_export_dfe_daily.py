"""dfe-daily: which pupils and sessions it holds, and when it refuses (its golden file and XSD
cases: tests/exports/test_export_returns.py)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from lxml import etree
from test_export_cli_fixtures import (
    SECRET_COMMENT,
    UNEXPECTED_CLOSURE,
    make_request,
    marks,
    open_store,
    pupils,
)

from registerwatch.exports import dfe_daily
from registerwatch.exports.base import validate
from registerwatch.exports.dfe_daily import (
    ExportRequestError,
    IncompleteRegisterError,
    ReturnDataError,
)
from registerwatch.schema import Mark, Session

GOLDEN_DAY = date(2025, 9, 9)  # a Tuesday: Ben is U with 40 minutes late (and a comment)


@pytest.fixture
def store(tmp_path: Path):
    opened = open_store(tmp_path / "store.db")
    yield opened
    opened.close()


def build_one(store, **kwargs):
    [rendered] = dfe_daily.build(make_request(store, **kwargs))
    return rendered


def records(rendered) -> list[etree._Element]:
    return etree.fromstring(rendered.xml).findall("Records/Record")


def test_one_record_per_registered_pupil_on_roll_per_session(store) -> None:
    rendered = build_one(store, as_of=date(2025, 9, 10), day=GOLDEN_DAY)
    found = [
        (
            r.findtext("UPN"),
            r.findtext("Session"),
            r.findtext("AttendanceCode"),
            r.findtext("MinutesLate"),
        )
        for r in records(rendered)
    ]
    # 1003 has not started yet (15 Sept), 1006 is a boarder: neither appears.
    assert found == [
        ("D893400125001", "AM", "/", None),
        ("D893400125001", "PM", "\\", None),
        ("T893400125002", "AM", "U", "40"),
        ("T893400125002", "PM", "\\", None),
        ("W893400125004", "AM", "/", None),
        ("W893400125004", "PM", "\\", None),
        ("K893400125005", "AM", "/", None),
        ("K893400125005", "PM", "X", None),
    ]
    assert [k.pupil_id for k in rendered.records][::2] == [
        "wenlock:1001",
        "wenlock:1002",
        "wenlock:1004",
        "wenlock:1005",
    ]
    assert rendered.records[0].episode == "2025-09-09/AM"
    ben = records(rendered)[2]
    assert [
        ben.findtext(t)
        for t in (
            "Forename",
            "Surname",
            "DOB",
            "Sex",
            "NCyearActual",
            "URN",
            "LACode",
            "AdmissionDate",
            "SENSupport",
            "EHCPlan",
            "FSM",
            "LookedAfter",
        )
    ] == ["Ben", "Brook", "2016-11-02", "M", "4", "123456", "893", "2024-09-04", "N", "Y", "N", "Y"]
    assert ben.find("LeavingDate") is None
    assert records(rendered)[4].findtext("LeavingDate") == "2025-10-10"


def test_default_day_is_the_last_school_day_before_as_of(store) -> None:
    # Monday 15 September: the return covers Friday 12 September.
    rendered = build_one(store, as_of=date(2025, 9, 15))
    header = etree.fromstring(rendered.xml).find("Header")
    assert header.findtext("AttendanceDate") == "2025-09-12"
    assert header.findtext("GeneratedAt") == "2026-01-05T17:30:00+00:00"


def test_mis_comments_are_never_exported(store) -> None:
    for day in (date(2025, 9, 9), date(2025, 9, 24)):  # both days carry a commented mark
        rendered = build_one(store, as_of=date(2025, 10, 1), day=day)
        assert (
            store.marks(
                "wenlock", day, day, pupil_id="wenlock:1001" if day.day == 24 else "wenlock:1002"
            )[0].comment
            == SECRET_COMMENT
        )
        for payload in (rendered.xml, rendered.csv_bytes()):
            assert b"COMMENT-NEVER-EXPORTED" not in payload
            assert b"safeguarding" not in payload
        assert b"<Comment" not in rendered.xml


def test_refuses_unmarked_sessions_naming_mis_ids_and_sessions_only(tmp_path: Path) -> None:
    everyone = pupils()
    skip = [("wenlock:1002", GOLDEN_DAY, Session.PM), ("wenlock:1004", GOLDEN_DAY, Session.AM)]
    store = open_store(tmp_path / "s.db", everyone, marks(everyone, skip=skip))
    try:
        with pytest.raises(IncompleteRegisterError) as raised:
            build_one(store, as_of=date(2025, 9, 10), day=GOLDEN_DAY)
    finally:
        store.close()
    error = raised.value
    assert error.errors == [
        "pupil 1002: 2025-09-09 PM has no mark",
        "pupil 1004: 2025-09-09 AM has no mark",
    ]
    assert "--allow-incomplete" in str(error)
    for secret in ("Brook", "Dale", "Ben", "T893400125002", "2016-11-02"):
        assert secret not in str(error)


def test_allow_incomplete_writes_unmarked_sessions_explicitly(tmp_path: Path) -> None:
    everyone = pupils()
    skip = [("wenlock:1002", GOLDEN_DAY, Session.PM)]
    store = open_store(tmp_path / "s.db", everyone, marks(everyone, skip=skip))
    try:
        rendered = build_one(store, as_of=date(2025, 9, 10), day=GOLDEN_DAY, allow_incomplete=True)
    finally:
        store.close()
    validate(rendered)
    root = etree.fromstring(rendered.xml)
    assert root.findtext("Header/UnmarkedSessions") == "1"
    ben_pm = records(rendered)[3]
    assert ben_pm.findtext("Session") == "PM"
    assert ben_pm.find("Unmarked") is not None and ben_pm.find("AttendanceCode") is None
    rows = rendered.csv_bytes().decode("utf-8").splitlines()
    assert rows[4].endswith(",2025-09-09,PM,unmarked,,")
    assert rows[3].endswith(",2025-09-09,AM,marked,U,40")


@pytest.mark.parametrize(
    ("day", "reason"),
    [
        (date(2025, 9, 13), "is a Saturday"),
        (date(2025, 11, 14), "planned closure"),  # INSET day
        (date(2026, 5, 4), "England bank holiday"),  # early May bank holiday, in term
        (date(2025, 8, 20), "outside the configured terms"),
    ],
)
def test_non_school_day_is_a_clear_error(store, day: date, reason: str) -> None:
    with pytest.raises(ExportRequestError) as raised:
        build_one(store, as_of=date(2026, 6, 1), day=day)
    message = str(raised.value)
    assert reason in message and "not a school day" in message and day.isoformat() in message


def test_a_day_after_as_of_is_refused(store) -> None:
    with pytest.raises(ExportRequestError, match="after the as-of date"):
        build_one(store, as_of=date(2025, 9, 10), day=date(2025, 9, 11))


def test_planned_afternoon_closure_leaves_only_the_morning(store) -> None:
    rendered = build_one(store, as_of=date(2025, 11, 3), day=date(2025, 10, 24))
    root = etree.fromstring(rendered.xml)
    assert [s.text for s in root.findall("Header/Sessions/Session")] == ["AM"]
    assert {r.findtext("Session") for r in records(rendered)} == {"AM"}
    assert len(records(rendered)) == 4  # 1001, 1002, 1003, 1005 (1004 has left)


def test_unexpected_closure_is_still_a_register_day_coded_y4(store) -> None:
    rendered = build_one(store, as_of=date(2025, 11, 21), day=UNEXPECTED_CLOSURE)
    assert {r.findtext("AttendanceCode") for r in records(rendered)} == {"Y4"}
    assert len(records(rendered)) == 8


def test_a_legacy_code_is_refused_naming_pupil_session_and_code(tmp_path: Path) -> None:
    everyone = pupils()
    bad = [
        m
        if (m.pupil_id, m.date, m.session) != ("wenlock:1001", GOLDEN_DAY, Session.AM)
        else Mark(pupil_id=m.pupil_id, date=m.date, session=m.session, code="H")
        for m in marks(everyone)
    ]
    store = open_store(tmp_path / "s.db", everyone, bad)
    try:
        with pytest.raises(ReturnDataError) as raised:
            build_one(store, as_of=date(2025, 9, 10), day=GOLDEN_DAY)
    finally:
        store.close()
    assert raised.value.errors == [
        (
            "pupil 1001: 2025-09-09 AM is marked 'H', which is not a 2024 national code on that "
            "date (SI 2024/208 reg 10)"
        )
    ]


def test_a_pupil_without_a_upn_is_sent_without_one(tmp_path: Path) -> None:
    everyone = [p.model_copy(update={"upn": None}) if p.mis_id == "1001" else p for p in pupils()]
    store = open_store(tmp_path / "s.db", everyone)
    try:
        rendered = build_one(store, as_of=date(2025, 9, 10), day=GOLDEN_DAY)
    finally:
        store.close()
    validate(rendered)
    first = records(rendered)[0]
    assert first.find("UPN") is None and first.findtext("Forename") == "Ava"


def test_a_malformed_upn_is_refused_without_echoing_it(tmp_path: Path) -> None:
    everyone = [
        p.model_copy(update={"upn": "I12345"}) if p.mis_id == "1002" else p for p in pupils()
    ]
    store = open_store(tmp_path / "s.db", everyone)
    try:
        with pytest.raises(ReturnDataError) as raised:
            build_one(store, as_of=date(2025, 9, 10), day=GOLDEN_DAY)
    finally:
        store.close()
    assert len(raised.value.errors) == 1
    assert raised.value.errors[0].startswith("pupil 1002: UPN is not 13 characters")
    assert "I12345" not in str(raised.value)


def test_nc_year_is_normalised_to_the_cbds_code(tmp_path: Path) -> None:
    everyone = [
        p.model_copy(update={"nc_year": "04"}) if p.mis_id == "1001" else p for p in pupils()
    ]
    store = open_store(tmp_path / "s.db", everyone)
    try:
        rendered = build_one(store, as_of=date(2025, 9, 10), day=GOLDEN_DAY)
    finally:
        store.close()
    assert records(rendered)[0].findtext("NCyearActual") == "4"


def test_rendering_is_deterministic(store) -> None:
    first = build_one(store, as_of=date(2025, 9, 10), day=GOLDEN_DAY)
    second = build_one(store, as_of=date(2025, 9, 10), day=GOLDEN_DAY)
    assert first.xml == second.xml and first.csv_bytes() == second.csv_bytes()
    assert first.sha256 == second.sha256


def test_a_generated_school_validates_and_never_carries_comments(tmp_path: Path) -> None:
    from test_export_cli_fixtures import school_table, settings

    from registerwatch.simulator.generate import generate_school

    school = generate_school(11, 80, inject_breaches=False)
    s = school.school
    config = settings(
        schools=[
            school_table(s.id, s.urn, s.laestab)
            | {
                "calendar": {
                    "terms": [t.model_dump() for t in school.calendar.terms],
                    "closures": [c.model_dump(mode="json") for c in school.calendar.closures],
                }
            }
        ]
    )
    from registerwatch.store import Store

    store = Store.open(f"sqlite:///{tmp_path / 'gen.db'}")
    try:
        store.upsert_pupils(school.pupils)
        store.upsert_marks(school.marks, s.id)
        assert school.as_of is not None
        # The last day whose marks carry MIS comments.
        day = max(m.date for m in school.marks if m.comment)
        [rendered] = dfe_daily.build(
            make_request(store, as_of=school.as_of, day=day, school_settings=config.school(s.id))
        )
    finally:
        store.close()
    validate(rendered)
    on_roll = [p for p in school.pupils if p.on_roll(day) and not p.boarder]
    assert len(rendered.records) == 2 * len(on_roll)
    comments = {m.comment for m in school.marks if m.comment and m.date == day}
    assert comments
    for comment in comments:
        assert comment.encode() not in rendered.xml
        assert comment.encode() not in rendered.csv_bytes()


def test_codes_a_2024_return_cannot_carry() -> None:
    from registerwatch.exports.registers import invalid_marks

    def mark(day: date, code: str) -> Mark:
        return Mark(pupil_id="wenlock:1001", date=day, session=Session.AM, code=code)

    before, after = date(2024, 7, 1), date(2024, 9, 2)
    candidates = [mark(d, c) for d in (before, after) for c in ("/", "I", "H", "C1", "Y")]
    assert [(m.date, m.code) for m in invalid_marks(candidates)] == [
        (before, "H"),
        (before, "C1"),
        (before, "Y"),
        (after, "H"),
        (after, "Y"),
    ]
