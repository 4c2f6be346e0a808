"""Decoding AttendanceMarks strings, directly and through parse_ctf (property-tested)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from registerwatch.adapters.ctf import (
    NOT_IN_SESSION,
    VENDOR_SINGLE_CHARACTER_CODES,
    MisalignedMarksError,
    decode_attendance_marks,
    parse_ctf,
)
from registerwatch.codes import ALL_CODES, is_known_code
from registerwatch.schema import Session

AM, PM = Session.AM, Session.PM
MONDAY = date(2024, 9, 2)

# Every character a CTF may validly hold: the single-character national codes (2024 and legacy
# 2006), the vendor characters for C1/C2/J1, and "#" (not in session, no mark).
NATIONAL_SINGLE = sorted({c.code for c in ALL_CODES if len(c.code) == 1} - {NOT_IN_SESSION})
VALID_CHARACTERS = NATIONAL_SINGLE + sorted(VENDOR_SINGLE_CHARACTER_CODES) + [NOT_IN_SESSION]


def as_tuples(decoded):
    return [(s.offset, s.date, s.session, s.code, s.vendor_code) for s in decoded.sessions]


def test_vendor_table_is_the_documented_one():
    assert dict(VENDOR_SINGLE_CHARACTER_CODES) == {"<": "C1", ">": "C2", "?": "J1"}
    assert all(is_known_code(code) for code in VENDOR_SINGLE_CHARACTER_CODES.values())
    # No vendor character shadows a national code.
    assert not set(VENDOR_SINGLE_CHARACTER_CODES) & set(NATIONAL_SINGLE)


def test_two_characters_per_date_am_then_pm():
    decoded = decode_attendance_marks(MONDAY, "/\\<\\I>")
    assert as_tuples(decoded) == [
        (0, MONDAY, AM, "/", "/"),
        (1, MONDAY, PM, "\\", "\\"),
        (2, date(2024, 9, 3), AM, "C1", "<"),
        (3, date(2024, 9, 3), PM, "\\", "\\"),
        (4, date(2024, 9, 4), AM, "I", "I"),
        (5, date(2024, 9, 4), PM, "C2", ">"),
    ]
    assert (decoded.undecodable, decoded.not_in_session) == ([], 0)


def test_hash_dates_make_no_mark_but_keep_the_calendar_moving():
    # Friday INSET day, then the weekend, all "##"; Monday's marks land on Monday.
    decoded = decode_attendance_marks(date(2024, 9, 6), "######?N")
    assert as_tuples(decoded) == [
        (6, date(2024, 9, 9), AM, "J1", "?"),
        (7, date(2024, 9, 9), PM, "N", "N"),
    ]
    assert decoded.not_in_session == 6


def test_a_half_day_closure_keeps_the_other_session():
    decoded = decode_attendance_marks(MONDAY, "/#")
    assert as_tuples(decoded) == [(0, MONDAY, AM, "/", "/")]


def test_unknown_characters_are_reported_with_offset_date_and_session():
    decoded = decode_attendance_marks(MONDAY, "/\\q/ \\")
    assert [(u.offset, u.date, u.session, u.character, u.reason) for u in decoded.undecodable] == [
        (2, date(2024, 9, 3), AM, "q", "unknown attendance code 'q'"),
        (4, date(2024, 9, 4), AM, " ", "attendance code is missing"),
    ]
    assert [s.offset for s in decoded.sessions] == [0, 1, 3, 5]


@pytest.mark.parametrize("character", ["n", "1", "-", "*", "Ã"])
def test_lower_case_and_other_characters_are_not_guessed(character):
    decoded = decode_attendance_marks(MONDAY, f"/{character}")
    assert [u.character for u in decoded.undecodable] == [character]


def test_surrounding_whitespace_is_formatting():
    assert as_tuples(decode_attendance_marks(MONDAY, "\n      /N\n    ")) == [
        (0, MONDAY, AM, "/", "/"),
        (1, MONDAY, PM, "N", "N"),
    ]


def test_an_odd_length_string_is_refused_whole():
    # "C1" written inline shifts every later date by one session.
    with pytest.raises(MisalignedMarksError, match="has 5 characters, an odd number"):
        decode_attendance_marks(MONDAY, "/\\C1/")


def test_month_and_leap_day_boundaries():
    decoded = decode_attendance_marks(date(2024, 2, 28), "/\\/\\/\\")
    assert sorted({s.date for s in decoded.sessions}) == [
        date(2024, 2, 28),
        date(2024, 2, 29),
        date(2024, 3, 1),
    ]


def test_empty_string_gives_nothing():
    decoded = decode_attendance_marks(MONDAY, "")
    assert (decoded.sessions, decoded.undecodable, decoded.not_in_session) == ([], [], 0)


# -- property: encode, parse the whole CTF, get the same marks back --------------------------------


def days_of_characters(max_days: int) -> st.SearchStrategy[list[str]]:
    """An even-length list of valid characters: (AM, PM) for each of up to ``max_days`` days."""
    character = st.sampled_from(VALID_CHARACTERS)
    return st.lists(st.tuples(character, character), max_size=max_days).map(
        lambda days: [c for day in days for c in day]
    )


def encode(start: date, marks: dict[tuple[date, Session], str], days: int) -> str:
    """A test-only AttendanceMarks writer: '#' for every session without a mark."""
    return "".join(
        marks.get((start + timedelta(days=d), s), NOT_IN_SESSION)
        for d in range(days)
        for s in (AM, PM)
    )


def ctf_with_marks(start: date, marks_string: str) -> bytes:
    root = etree.Element("CTfile")
    header = etree.SubElement(root, "Header")
    etree.SubElement(header, "CTFversion").text = "25.0"
    pupil = etree.SubElement(etree.SubElement(root, "CTFpupilData"), "Pupil")
    etree.SubElement(pupil, "UPN").text = "E893400116001"
    sessions = etree.SubElement(
        etree.SubElement(etree.SubElement(pupil, "Attendance"), "YearData"), "AttendSessions"
    )
    etree.SubElement(sessions, "AttendanceStartDate").text = start.isoformat()
    etree.SubElement(sessions, "AttendanceMarks").text = marks_string  # lxml escapes < and >
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


@settings(max_examples=150, deadline=None)
@given(
    start=st.dates(min_value=date(2000, 1, 1), max_value=date(2035, 12, 31)),
    characters=days_of_characters(max_days=60),
)
def test_encoding_then_parsing_gives_back_the_same_marks(start, characters):
    days = len(characters) // 2
    sessions = [(start + timedelta(days=d), s) for d in range(days) for s in (AM, PM)]
    written = {key: c for key, c in zip(sessions, characters, strict=True) if c != NOT_IN_SESSION}
    document = parse_ctf(ctf_with_marks(start, encode(start, written, days)), school_id="s")

    expected = sorted(
        (day, session.value, VENDOR_SINGLE_CHARACTER_CODES.get(c, c), c)
        for (day, session), c in written.items()
    )
    got = sorted((m.date, m.session.value, m.code, m.vendor_code) for m in document.marks.records)
    assert got == expected
    assert document.marks.quarantined == []
    assert {m.pupil_id for m in document.marks.records} <= {"s:E893400116001"}


@given(
    start=st.dates(min_value=date(2000, 1, 1), max_value=date(2035, 12, 31)),
    characters=days_of_characters(max_days=30),
)
def test_decoded_sessions_are_in_order_and_account_for_every_character(start, characters):
    decoded = decode_attendance_marks(start, "".join(characters))
    offsets = [s.offset for s in decoded.sessions]
    assert offsets == sorted(offsets)
    assert len(decoded.sessions) + decoded.not_in_session == len(characters)
    assert decoded.undecodable == []
    for entry in decoded.sessions:
        assert entry.date == start + timedelta(days=entry.offset // 2)
        assert entry.session == (AM if entry.offset % 2 == 0 else PM)
