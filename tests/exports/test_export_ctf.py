"""ctf: the attendance block, the marks string, the pupils chosen, and the round trip
through the CTF importer (``registerwatch.adapters.ctf.parse_ctf``)."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
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
    school_table,
    settings,
)

from registerwatch.adapters.ctf import VENDOR_SINGLE_CHARACTER_CODES, parse_ctf
from registerwatch.codes import session_statistics
from registerwatch.exports import ctf
from registerwatch.exports.base import validate
from registerwatch.exports.registers import (
    ExportRequestError,
    IncompleteRegisterError,
    ReturnDataError,
)
from registerwatch.schema import Session
from registerwatch.store import Store
from registerwatch.upn import check_letter

AS_OF = date(2026, 1, 5)  # registers to Sunday 4 January: the whole autumn term


@pytest.fixture
def store(tmp_path: Path):
    opened = open_store(tmp_path / "store.db")
    yield opened
    opened.close()


def build_one(store, **kwargs):
    [rendered] = ctf.build(make_request(store, **kwargs))
    return rendered


def year_data(rendered) -> dict[str, etree._Element]:
    root = etree.fromstring(rendered.xml)
    return {
        p.findtext("UPN"): p.find("Attendance/YearData") for p in root.findall("CTFpupilData/Pupil")
    }


def test_header_names_the_source_school_and_the_year(store) -> None:
    header = etree.fromstring(build_one(store, as_of=AS_OF).xml).find("Header")
    assert [
        header.findtext(t)
        for t in ("DocumentName", "CTFversion", "DateTime", "DocumentQualifier", "SupplierID")
    ] == ["Common Transfer File", "25.0", "2026-01-05T17:30:00", "partial", "registerwatch"]
    assert [
        header.findtext(f"SourceSchool/{t}") for t in ("LEA", "Estab", "SchoolName", "AcademicYear")
    ] == ["893", "4001", "Wenlock Primary School", "2025"]
    assert header.find("DestSchool") is None


def test_datetime_is_school_local_time(store) -> None:
    from datetime import UTC, datetime

    from registerwatch.exports.registry import ExportRequest

    summer = ExportRequest(
        school=settings().school("wenlock"),
        store=store,
        as_of=AS_OF,
        generated_at=datetime(2025, 7, 1, 9, 0, tzinfo=UTC),
    )
    [rendered] = ctf.build(summer)
    assert etree.fromstring(rendered.xml).findtext("Header/DateTime") == "2025-07-01T10:00:00"


def test_default_pupils_are_those_on_roll_at_as_of(store) -> None:
    # Dev left in October; Finn is a boarder.
    assert list(year_data(build_one(store, as_of=AS_OF))) == [
        "D893400125001",
        "T893400125002",
        "G893400125003",
        "K893400125005",
    ]


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        ("leavers", ["W893400125004"]),
        (
            "all",
            ["D893400125001", "T893400125002", "G893400125003", "W893400125004", "K893400125005"],
        ),
    ],
)
def test_pupil_selection_option(store, selection: str, expected: list[str]) -> None:
    rendered = build_one(store, as_of=AS_OF, options={"ctf_pupils": selection})
    assert list(year_data(rendered)) == expected


def test_a_leavers_marks_stop_at_the_leaving_date(store) -> None:
    dev = year_data(build_one(store, as_of=AS_OF, options={"ctf_pupils": "leavers"}))[
        "W893400125004"
    ]
    marks_string = dev.findtext("AttendSessions/AttendanceMarks")
    start = date.fromisoformat(dev.findtext("AttendSessions/AttendanceStartDate"))
    assert start == date(2025, 9, 3)
    assert len(marks_string) == 2 * ((date(2025, 10, 10) - start).days + 1)
    assert [
        dev.findtext(t)
        for t in (
            "SessionsPossible",
            "SessionsAuthorised",
            "SessionsAttended",
            "SessionsUnauthorised",
        )
    ] == ["55", "2", "53", "0"]


def test_marks_string_two_characters_per_date_with_vendor_characters(store) -> None:
    found = year_data(build_one(store, as_of=AS_OF))
    ava = found["D893400125001"].findtext("AttendSessions/AttendanceMarks")
    ben = found["T893400125002"].findtext("AttendSessions/AttendanceMarks")
    start = date(2025, 9, 3)

    def at(text: str, day: date) -> str:
        offset = 2 * (day - start).days
        return text[offset : offset + 2]

    assert at(ava, date(2025, 9, 3)) == "/\\"
    assert at(ava, date(2025, 9, 6)) == "##"  # Saturday
    assert at(ava, date(2025, 9, 10)) == "II"
    assert at(ava, date(2025, 10, 1)) == "/<"  # C1
    assert at(ben, date(2025, 11, 5)) == "?\\"  # J1
    assert at(ben, date(2025, 11, 7)) == "/>"  # C2
    assert at(ava, date(2025, 10, 24)) == "/#"  # planned afternoon closure
    assert at(ava, date(2025, 11, 14)) == "##"  # INSET day
    assert at(ava, UNEXPECTED_CLOSURE) == "##"  # Y4: no single character; not possible
    assert at(ava, date(2025, 10, 29)) == "##"  # half term
    assert ava.endswith("/\\") and len(ava) == 2 * ((date(2025, 12, 19) - start).days + 1)


def test_counts_match_the_code_table(store) -> None:
    ava = year_data(build_one(store, as_of=AS_OF))["D893400125001"]
    codes = Counter(m.code for m in store.marks("wenlock", pupil_id="wenlock:1001"))
    stats = session_statistics(codes)
    assert (
        [
            int(ava.findtext(t))
            for t in (
                "SessionsPossible",
                "SessionsAuthorised",
                "SessionsAttended",
                "SessionsUnauthorised",
            )
        ]
        == [stats.possible, stats.authorised, stats.attendance, stats.unauthorised]
        == [141, 4, 133, 4]
    )


def test_round_trip_through_the_ctf_importer(store) -> None:
    rendered = build_one(store, as_of=AS_OF, options={"ctf_pupils": "all"})
    document = parse_ctf(rendered.xml, school_id="wenlock", name="export.xml")
    assert document.pupils.quarantined == [] and document.marks.quarantined == []
    assert document.header.source_school.laestab == "8934001"
    imported = {
        (m.pupil_id.split(":")[1], m.date, m.session): m.code for m in document.marks.records
    }
    upn_of = {p.id: p.upn for p in pupils()}
    stored = {
        (upn_of[m.pupil_id], m.date, m.session): m.code
        for m in store.marks("wenlock")
        if not m.code.startswith("Y")
    }
    assert imported == stored
    assert {"C1", "C2", "J1"} <= set(imported.values())
    by_upn = {y.pupil_id.split(":")[1]: y for y in document.attendance_years}
    ava = by_upn["D893400125001"]
    assert (
        ava.year,
        ava.lea,
        ava.estab,
        ava.sessions_possible,
        ava.sessions_authorised,
        ava.sessions_attended,
        ava.sessions_unauthorised,
        ava.marks_imported,
    ) == ("2025", "893", "4001", 141, 4, 133, 4, True)
    # Identity comes back too.
    [ben] = [p for p in document.pupils.records if p.upn == "T893400125002"]
    assert (ben.legal_forename, ben.legal_surname, ben.dob, ben.sex) == (
        "Ben",
        "Brook",
        date(2016, 11, 2),
        "M",
    )


def test_vendor_characters_are_the_importers_table_inverted() -> None:
    assert ctf.CHARACTER_FOR_CODE == {"C1": "<", "C2": ">", "J1": "?"}
    assert {v: k for k, v in ctf.CHARACTER_FOR_CODE.items()} == dict(VENDOR_SINGLE_CHARACTER_CODES)


def test_unencodable_codes_can_refuse_the_return(store) -> None:
    with pytest.raises(ReturnDataError) as raised:
        build_one(store, as_of=AS_OF, options={"ctf_unencodable": "refuse"})
    errors = raised.value.errors
    assert (
        "pupil 1001: 2025-11-20 AM is marked 'Y4', which has no single-character CTF form" in errors
    )
    assert len(errors) == 8  # four pupils, two Y4 sessions each


def test_destination_option(store) -> None:
    rendered = build_one(store, as_of=AS_OF, options={"ctf_destination": "MMMMMMM"})
    validate(rendered)
    dest = etree.fromstring(rendered.xml).find("Header/DestSchool")
    assert (dest.findtext("LEA"), dest.findtext("Estab")) == ("MMM", "MMMM")
    header = parse_ctf(rendered.xml, school_id="wenlock").header
    assert header.dest_school.lea == "MMM"


@pytest.mark.parametrize(
    ("key", "value"),
    [("ctf_destination", "12345"), ("ctf_pupils", "everyone"), ("ctf_unencodable", "guess")],
)
def test_bad_options_are_refused(store, key: str, value: str) -> None:
    with pytest.raises(ExportRequestError, match=key):
        build_one(store, as_of=AS_OF, options={key: value})


def test_unmarked_sessions_refuse_unless_allowed(tmp_path: Path) -> None:
    everyone = pupils()
    skip = [("wenlock:1002", date(2025, 12, 3), Session.AM)]
    store = open_store(tmp_path / "s.db", everyone, marks(everyone, skip=skip))
    try:
        with pytest.raises(IncompleteRegisterError) as raised:
            build_one(store, as_of=AS_OF)
        rendered = build_one(store, as_of=AS_OF, allow_incomplete=True)
    finally:
        store.close()
    assert raised.value.errors == ["pupil 1002: 1 school session without a mark (2025-12-03 AM)"]
    validate(rendered)
    ben = year_data(rendered)["T893400125002"]
    text = ben.findtext("AttendSessions/AttendanceMarks")
    offset = 2 * (date(2025, 12, 3) - date(2025, 9, 3)).days
    assert text[offset : offset + 2] == "#\\"  # never invented as present
    assert ben.findtext("SessionsPossible") == "140"


def test_a_pupil_without_a_upn_is_refused(tmp_path: Path) -> None:
    everyone = [p.model_copy(update={"upn": None}) if p.mis_id == "1002" else p for p in pupils()]
    store = open_store(tmp_path / "s.db", everyone)
    try:
        with pytest.raises(ReturnDataError, match="pupil 1002: has no UPN"):
            build_one(store, as_of=AS_OF)
    finally:
        store.close()


def test_mis_comments_are_never_exported(store) -> None:
    rendered = build_one(store, as_of=AS_OF, options={"ctf_pupils": "all"})
    assert SECRET_COMMENT.encode() not in rendered.xml + rendered.csv_bytes()


def test_a_pupil_who_starts_today_has_counts_but_no_marks(tmp_path: Path) -> None:
    everyone = pupils()
    upn = check_letter("893400125007") + "893400125007"
    newcomer = everyone[0].model_copy(
        update={"id": "wenlock:1007", "mis_id": "1007", "upn": upn, "starting_day": AS_OF}
    )
    store = open_store(tmp_path / "s.db", [*everyone, newcomer], marks(everyone))
    try:
        rendered = build_one(store, as_of=AS_OF)
    finally:
        store.close()
    validate(rendered)
    new = year_data(rendered)[upn]
    assert new.findtext("SessionsPossible") == "0" and new.find("AttendSessions") is None


def test_generated_school_round_trips(tmp_path: Path) -> None:
    from registerwatch.simulator.generate import generate_school

    school = generate_school(5, 80, inject_breaches=False)
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
    store = Store.open(f"sqlite:///{tmp_path / 'gen.db'}")
    try:
        store.upsert_pupils(school.pupils)
        store.upsert_marks(school.marks, s.id)
        assert school.as_of is not None
        [rendered] = ctf.build(
            make_request(
                store,
                as_of=school.as_of,
                school_settings=config.school(s.id),
                options={"ctf_pupils": "all"},
            )
        )
        stored = store.marks(s.id)
    finally:
        store.close()
    validate(rendered)
    document = parse_ctf(rendered.xml, school_id="copy")
    assert document.marks.quarantined == []
    upn_of = {p.id: p.upn for p in school.pupils}
    last_day = school.as_of - timedelta(days=1)
    pupils_by_id = {p.id: p for p in school.pupils}
    expected = {
        (upn_of[m.pupil_id], m.date, m.session): m.code
        for m in stored
        if len(m.code) == 1 or m.code in ctf.CHARACTER_FOR_CODE
        if m.date <= last_day and pupils_by_id[m.pupil_id].on_roll(m.date) and m.code != "#"
    }
    imported = {
        (m.pupil_id.split(":", 1)[1], m.date, m.session): m.code for m in document.marks.records
    }
    assert imported == expected
    for comment in {m.comment for m in school.marks if m.comment}:
        assert comment.encode() not in rendered.xml
