"""parse_ctf: header, pupil mapping, marks and quarantine on hand-written CTF files."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from registerwatch.adapters.ctf import CtfFileError, CtfSchool, derive_mis_id, parse_ctf
from registerwatch.schema import Address, Contact, Session

DATA = Path(__file__).parent / "data"
CTF25 = DATA / "ctf25_wenlock.xml"
PROBLEMS = DATA / "ctf25_problems.xml"
LEGACY = DATA / "ctf15_legacy_gender.xml"

ADA = "wenlock:E893400116001"
CHARLES = "wenlock:U893400116002"


def marks_of(document, pupil_id):
    return [
        (m.date, m.session, m.code, m.vendor_code)
        for m in document.marks.records
        if m.pupil_id == pupil_id
    ]


# -- CTF 25 style ----------------------------------------------------------------------------------


def test_header_is_read():
    header = parse_ctf(CTF25, school_id="wenlock").header
    assert header.document_name == "Common Transfer File"
    assert header.version == "25.0"
    assert header.created == datetime(2024, 9, 10, 16, 30)
    assert header.qualifier == "full"
    assert header.supplier_id == "HANDWRITTEN"
    assert header.source_school == CtfSchool(
        lea="893", estab="4001", name="Wenlock Primary School", academic_year="2024"
    )
    assert header.source_school.laestab == "8934001"
    assert header.dest_school == CtfSchool(lea="893", estab="4001")


def test_pupil_details_map_to_the_schema():
    document = parse_ctf(CTF25, school_id="wenlock")
    assert [p.id for p in document.pupils.records] == [ADA, CHARLES]
    assert document.pupils.quarantined == []
    ada = document.pupils.records[0]
    assert ada.school_id == "wenlock"
    assert ada.mis_id == "E893400116001"
    assert ada.upn == "E893400116001"
    assert ada.former_upn == "B801200005001"
    assert (ada.legal_forename, ada.legal_surname) == ("Ada", "Lovelace")
    assert ada.middle_names == "Augusta Grace"
    assert (ada.preferred_forename, ada.preferred_surname) == ("Addie", "Lovelace")
    assert ada.dob == date(2016, 3, 14)
    assert ada.sex == "F"
    assert ada.nc_year == "4"
    assert ada.address == Address(
        lines=["Flat 2", "12 Sheinton Street", "Bourton"], town="Much Wenlock", postcode="TF13 6AA"
    )
    # The latest SEN entry (EHC plan, May 2024) wins over the earlier SEN support one.
    assert (ada.ehcp, ada.sen_support) == (True, False)
    # An open FSM instance covers the file's date; the ended 2022 one does not matter.
    assert ada.fsm is True
    assert ada.looked_after is False
    charles = document.pupils.records[1]
    assert (charles.sex, charles.nc_year, charles.address, charles.contacts) == ("M", "R", None, [])
    assert (charles.ehcp, charles.sen_support, charles.fsm) == (False, False, False)


def test_contacts_are_ordered_and_take_the_pupils_address_when_they_live_there():
    ada = parse_ctf(CTF25, school_id="wenlock").pupils.records[0]
    assert ada.contacts == [
        Contact(
            name="Mrs Anne Byron",
            relationship="PAM",
            phone="07700 900123",
            address=ada.address,
            lives_with=True,
            priority=1,
        ),
        Contact(
            name="Mr William King",
            relationship="PAF",
            phone=None,
            address=Address(lines=["3 Barrow Street", "Much Wenlock"], postcode="TF13 6EN"),
            lives_with=False,
            priority=2,
        ),
    ]


def test_marks_are_two_characters_per_date_am_then_pm():
    document = parse_ctf(CTF25, school_id="wenlock")
    AM, PM = Session.AM, Session.PM
    assert marks_of(document, ADA) == [
        (date(2024, 9, 2), AM, "/", "/"),
        (date(2024, 9, 2), PM, "\\", "\\"),
        (date(2024, 9, 3), AM, "C1", "<"),
        (date(2024, 9, 3), PM, "\\", "\\"),
        (date(2024, 9, 4), AM, "I", "I"),
        (date(2024, 9, 4), PM, "C2", ">"),
        (date(2024, 9, 5), AM, "J1", "?"),
        (date(2024, 9, 5), PM, "N", "N"),
        # 6-8 September are "##": not in session, no mark.
        (date(2024, 9, 9), AM, "/", "/"),
        (date(2024, 9, 9), PM, "G", "G"),
    ]
    assert marks_of(document, CHARLES) == [
        (date(2024, 9, 9), AM, "L", "L"),
        (date(2024, 9, 9), PM, "\\", "\\"),
    ]
    assert document.marks.quarantined == []


def test_mark_source_ref_names_file_pupil_position_and_offset():
    document = parse_ctf(CTF25, school_id="wenlock")
    g = next(m for m in document.marks.records if m.code == "G")
    assert g.source_ref == "ctf25_wenlock.xml#pupil[1]/YearData[1]/AttendanceMarks[15]"
    assert all(m.recorded_at is None and m.minutes_late is None for m in document.marks.records)


def test_another_schools_year_data_keeps_its_totals_but_not_its_marks():
    document = parse_ctf(CTF25, school_id="wenlock")
    years = [
        (
            y.record_ref,
            y.year,
            y.lea,
            y.estab,
            y.sessions_possible,
            y.sessions_authorised,
            y.sessions_attended,
            y.sessions_unauthorised,
            y.marks_imported,
        )
        for y in document.attendance_years
        if y.pupil_id == ADA
    ]
    assert years == [
        ("ctf25_wenlock.xml#pupil[1]/YearData[1]", "2024", "893", "4001", 10, 4, 4, 2, True),
        ("ctf25_wenlock.xml#pupil[1]/YearData[2]", "2023", "201", "1234", 4, 0, 4, 0, False),
    ]
    # The previous school's July 2024 marks are not this school's register.
    assert not [m for m in document.marks.records if m.date.month == 7]


def test_laestab_chooses_whose_register_the_marks_are():
    document = parse_ctf(CTF25, school_id="wenlock", laestab="2011234")
    assert [(m.date, m.session, m.code) for m in document.marks.records] == [
        (date(2024, 7, 15), Session.AM, "/"),
        (date(2024, 7, 15), Session.PM, "\\"),
        (date(2024, 7, 16), Session.AM, "/"),
        (date(2024, 7, 16), Session.PM, "\\"),
    ]


# -- older CTF: <Gender>, <CTFVersion>, ISO-8859-1 -------------------------------------------------


def test_older_ctf_with_gender_and_capital_v_version():
    document = parse_ctf(LEGACY, school_id="wenlock")
    assert document.header.version == "15.0"
    assert document.header.qualifier == "partial"
    assert document.header.dest_school == CtfSchool(
        lea="894", estab="2002", name="Telford Junior School"
    )
    [pupil] = document.pupils.records
    assert pupil.sex == "M"
    assert pupil.legal_surname == "Brünel"  # decoded from ISO-8859-1
    assert pupil.nc_year == "2"
    assert pupil.looked_after is True  # <InCare>Y</InCare>
    assert pupil.address == Address(lines=["1 High Street", "Much Wenlock"], postcode="TF13 6AB")
    # 2 January 2023 (bank holiday) is "##"; legacy 2006 codes H and F are kept as written:
    # whether they were valid on the date is rule MRK002's question, not the parser's.
    assert [(m.date.day, m.session.value, m.code) for m in document.marks.records] == [
        (3, "AM", "/"),
        (3, "PM", "\\"),
        (4, "AM", "H"),
        (4, "PM", "H"),
        (5, "AM", "F"),
        (5, "PM", "F"),
        (6, "AM", "/"),
        (6, "PM", "\\"),
    ]


# -- problems are quarantined, the file goes on ----------------------------------------------------


def test_problem_pupils_are_quarantined_and_the_rest_are_read():
    document = parse_ctf(PROBLEMS, school_id="wenlock")
    assert [p.id for p in document.pupils.records] == [
        "wenlock:E893400116001",
        "wenlock:appref:APP-0042",
        "wenlock:U893400116002",
        "wenlock:Y201123415007",
    ]
    assert [(q.resource, q.record_ref, q.field, q.reason) for q in document.pupils.quarantined] == [
        (
            "pupils",
            "ctf25_problems.xml#pupil[3]",
            "UPN",
            "has no UPN and no ApplicationReference, so it cannot be keyed",
        ),
        ("pupils", "ctf25_problems.xml#pupil[4]", "DOB", "is not a date in yyyy-mm-dd form"),
        (
            "pupils",
            "ctf25_problems.xml#pupil[5]",
            "UPN",
            "has the same UPN or ApplicationReference as pupil 1 in this file (census rule 1520): "
            "set aside with its attendance; correct it in the MIS",
        ),
        ("pupils", "ctf25_problems.xml#pupil[6]", "Sex", "Sex and Gender disagree"),
    ]


def test_a_pupil_with_an_invalid_upn_is_kept_for_the_upn_rule_keyed_by_application_reference():
    document = parse_ctf(PROBLEMS, school_id="wenlock")
    grace = next(p for p in document.pupils.records if p.mis_id == "appref:APP-0042")
    assert grace.upn == "A801200005001"  # kept as written: UPN001 reports it


def test_unknown_characters_are_quarantined_by_offset_without_pupil_data():
    document = parse_ctf(PROBLEMS, school_id="wenlock")
    bad = [
        (q.record_ref, q.field, q.reason, q.raw)
        for q in document.marks.quarantined
        if q.record_ref.endswith("#pupil[2]")
    ]
    assert bad == [
        (
            "ctf25_problems.xml#pupil[2]",
            "AttendanceMarks[3]",
            "unknown attendance code 'q' for 2024-09-03 PM (YearData 1)",
            "q",
        ),
        (
            "ctf25_problems.xml#pupil[2]",
            "AttendanceMarks[4]",
            "attendance code is missing for 2024-09-04 AM (YearData 1)",
            " ",
        ),
    ]
    # The good characters around them are still marks.
    assert marks_of(document, "wenlock:appref:APP-0042") == [
        (date(2024, 9, 2), Session.AM, "/", "/"),
        (date(2024, 9, 2), Session.PM, "\\", "\\"),
        (date(2024, 9, 3), Session.AM, "/", "/"),
        (date(2024, 9, 4), Session.PM, "\\", "\\"),
    ]


def test_marks_of_unkeyable_duplicate_misaligned_and_undated_pupils_are_set_aside():
    document = parse_ctf(PROBLEMS, school_id="wenlock")
    by_pupil = {
        q.record_ref.rsplit("#", 1)[1]: (q.field, q.reason)
        for q in document.marks.quarantined
        if q.field in ("UPN", "AttendanceMarks", "AttendanceStartDate")
    }
    assert by_pupil == {
        "pupil[3]": (
            "UPN",
            "pupil has no UPN and no ApplicationReference, so it cannot be "
            "keyed: its attendance was set aside",
        ),
        "pupil[5]": (
            "UPN",
            "has the same UPN or ApplicationReference as pupil 1 in this file "
            "(census rule 1520): set aside with its attendance; correct it in "
            "the MIS",
        ),
        "pupil[7]": (
            "AttendanceMarks",
            "YearData 1: AttendanceMarks has 5 characters, an odd "
            "number: two characters (AM, PM) per date are expected, so the dates of "
            "these marks cannot be trusted; none of them were imported",
        ),
        "pupil[8]": (
            "AttendanceStartDate",
            "YearData 1: AttendanceMarks without a valid start "
            "date (yyyy-mm-dd), so no mark can be dated",
        ),
    }
    ids = {m.pupil_id for m in document.marks.records}
    # Pupil 1 keeps its own marks ("/\"), not the duplicate's "OO".
    assert marks_of(document, "wenlock:E893400116001") == [
        (date(2024, 9, 2), Session.AM, "/", "/"),
        (date(2024, 9, 2), Session.PM, "\\", "\\"),
    ]
    assert "wenlock:U893400116002" not in ids  # misaligned: nothing imported
    assert "wenlock:Y201123415007" not in ids  # no start date


def test_a_pupil_set_aside_for_a_bad_detail_keeps_its_marks():
    document = parse_ctf(PROBLEMS, school_id="wenlock")
    assert "wenlock:H801200001001" not in {p.id for p in document.pupils.records}
    assert marks_of(document, "wenlock:H801200001001") == [
        (date(2024, 9, 2), Session.AM, "M", "M"),
        (date(2024, 9, 2), Session.PM, "M", "M"),
    ]


PUPIL_DATA = (
    "E893400116001",
    "A801200005001",
    "APP-0042",
    "Lovelace",
    "Ada",
    "Hopper",
    "Grace",
    "Turing",
    "Franklin",
    "Rosalind",
    "2016-03-14",
    "2016-02-30",
    "2016-12-09",
    "Babbage",
    "Noether",
)


def test_no_pupil_data_in_quarantine_refs_reasons_or_log_events():
    with capture_logs() as events:
        document = parse_ctf(PROBLEMS, school_id="wenlock")
        parse_ctf(CTF25, school_id="wenlock")
    quarantined = document.pupils.quarantined + document.marks.quarantined
    text = repr([(q.record_ref, q.field, q.reason) for q in quarantined]) + repr(events)
    assert [value for value in PUPIL_DATA if value.lower() in text.lower()] == []
    assert [e["event"] for e in events] == ["ctf.file_parsed", "ctf.file_parsed"]
    assert {
        k: events[0][k]
        for k in ("file", "version", "pupils", "pupils_mapped", "marks", "quarantined")
    } == {
        "file": "ctf25_problems.xml",
        "version": "25.0",
        "pupils": 8,
        "pupils_mapped": 4,
        "marks": 8,
        "quarantined": 10,
    }
    assert events[1]["years_of_other_schools"] == 1


# -- small inline documents ------------------------------------------------------------------------


def ctf(pupils: str, header: str = "<Header><CTFversion>25.0</CTFversion></Header>") -> str:
    return f"<CTfile>{header}<CTFpupilData>{pupils}</CTFpupilData></CTfile>"


def test_xml_text_bytes_and_str_paths_are_all_accepted(tmp_path):
    text = ctf("<Pupil><UPN>E893400116001</UPN></Pupil>")
    path = tmp_path / "one.xml"
    path.write_text(text, encoding="utf-8")
    for source, name in (
        (text, "<string>"),
        (text.encode(), "<bytes>"),
        (str(path), "one.xml"),
        (path, "one.xml"),
    ):
        document = parse_ctf(source, school_id="s")
        assert (document.name, [p.id for p in document.pupils.records]) == (
            name,
            ["s:E893400116001"],
        )
    assert parse_ctf(text.encode(), school_id="s", name="upload.xml").name == "upload.xml"


def test_xml_text_with_an_encoding_declaration_is_read():
    text = '<?xml version="1.0" encoding="ISO-8859-1"?>' + ctf(
        "<Pupil><UPN>E893400116001</UPN><Surname>Brünel</Surname></Pupil>"
    )
    assert parse_ctf(text, school_id="s").pupils.records[0].legal_surname == "Brünel"


def test_alternative_attendance_element_names_are_read():
    # INFERRED names seen in some descriptions (reference §4): SessionAttendance/AttendStartDate.
    document = parse_ctf(
        ctf(
            "<Pupil><UPN>E893400116001</UPN><Attendance><YearData><SessionAttendance>"
            "<AttendStartDate>2024-09-02</AttendStartDate><AttendanceMarks>/N</AttendanceMarks>"
            "</SessionAttendance></YearData></Attendance></Pupil>"
        ),
        school_id="s",
    )
    assert [(m.date, m.session, m.code) for m in document.marks.records] == [
        (date(2024, 9, 2), Session.AM, "/"),
        (date(2024, 9, 2), Session.PM, "N"),
    ]


def test_a_default_namespace_does_not_hide_the_elements():
    text = ctf("<Pupil><UPN>E893400116001</UPN><Sex>F</Sex></Pupil>").replace(
        "<CTfile>", '<CTfile xmlns="urn:example:ctf">'
    )
    [pupil] = parse_ctf(text, school_id="s").pupils.records
    assert pupil.sex == "F"


def test_file_without_pupils_gives_empty_batches():
    document = parse_ctf("<CTfile><Header/></CTfile>", school_id="s")
    assert (document.pupils.records, document.marks.records, document.attendance_years) == (
        [],
        [],
        [],
    )
    assert document.header.version is None


@pytest.mark.parametrize(
    ("pupil", "field", "reason"),
    [
        ("<Sex>X</Sex>", "Sex", "is not one of M, F or U"),
        (
            "<LookedAfter><InCare>maybe</InCare></LookedAfter>",
            "LookedAfter/InCare",
            "'maybe' is not true or false",
        ),
        (
            "<Contacts><Contact><Relationship>PAM</Relationship></Contact></Contacts>",
            "Contacts/Contact[1]/Surname",
            "contact has no name",
        ),
        (
            "<Contacts><Contact><Surname>Byron</Surname><Order>first</Order></Contact></Contacts>",
            "Contacts/Contact[1]/Order",
            "'first' is not a whole number",
        ),
        (
            "<FSMhistory><FSMinstance><FSMstartDate>soon</FSMstartDate></FSMinstance></FSMhistory>",
            "FSMhistory/FSMinstance[1]/FSMstartDate",
            "is not a date in yyyy-mm-dd form",
        ),
        (
            "<SENhistory><SEN><StartDate>2024-13-01</StartDate><SENprovision>K</SENprovision></SEN>"
            "</SENhistory>",
            "SENhistory/SEN[1]/StartDate",
            "is not a date in yyyy-mm-dd form",
        ),
    ],
)
def test_bad_pupil_details_quarantine_the_pupil_with_field_and_reason(pupil, field, reason):
    document = parse_ctf(ctf(f"<Pupil><UPN>E893400116001</UPN>{pupil}</Pupil>"), school_id="s")
    assert document.pupils.records == []
    assert [(q.record_ref, q.field, q.reason) for q in document.pupils.quarantined] == [
        ("<string>#pupil[1]", field, reason)
    ]


def test_bad_session_count_is_quarantined_and_left_empty():
    document = parse_ctf(
        ctf(
            "<Pupil><UPN>E893400116001</UPN><Attendance><YearData>"
            "<SessionsPossible>ten</SessionsPossible></YearData></Attendance></Pupil>"
        ),
        school_id="s",
    )
    assert document.attendance_years[0].sessions_possible is None
    assert [(q.field, q.reason) for q in document.marks.quarantined] == [
        ("SessionsPossible", "'ten' is not a whole number of sessions (YearData 1)")
    ]


@pytest.mark.parametrize(
    ("created", "fsm"),
    [
        ("2024-09-10T16:30:00", False),  # the instance ended in July
        ("2024-06-01T09:00:00", True),
        (None, False),  # without a date only open-ended instances count
    ],
)
def test_fsm_is_judged_on_the_files_date(created, fsm):
    header = f"<Header><DateTime>{created}</DateTime></Header>" if created else "<Header/>"
    document = parse_ctf(
        ctf(
            "<Pupil><UPN>E893400116001</UPN><FSMhistory><FSMinstance>"
            "<FSMstartDate>2024-01-08</FSMstartDate><FSMendDate>2024-07-19</FSMendDate>"
            "</FSMinstance></FSMhistory></Pupil>",
            header,
        ),
        school_id="s",
    )
    assert document.pupils.records[0].fsm is fsm


def test_sen_support_and_no_sen():
    def sen(provision: str) -> tuple[bool, bool]:
        pupil = parse_ctf(
            ctf(
                f"<Pupil><UPN>E893400116001</UPN><SENhistory><SEN><StartDate>2024-01-01</StartDate>"
                f"<SENprovision>{provision}</SENprovision></SEN></SENhistory></Pupil>"
            ),
            school_id="s",
        ).pupils.records[0]
        return pupil.ehcp, pupil.sen_support

    assert (sen("K"), sen("E"), sen("S"), sen("N")) == (
        (False, True),
        (True, False),
        (True, False),
        (False, False),
    )


@pytest.mark.parametrize(
    ("upn", "reference", "expected"),
    [
        ("E893400116001", "APP-1", "E893400116001"),
        (" e893400116001 ", None, "E893400116001"),
        ("A801200005001", "APP-1", "appref:APP-1"),
        ("A801200005001", None, "upn-unchecked:A801200005001"),
        (None, "APP-1", "appref:APP-1"),
        (None, None, None),
    ],
)
def test_derive_mis_id(upn, reference, expected):
    assert derive_mis_id(upn, reference) == expected


def test_unreadable_path_names_the_file(tmp_path):
    missing = tmp_path / "gone.xml"
    with pytest.raises(CtfFileError) as caught:
        parse_ctf(missing, school_id="s")
    assert caught.value.file == str(missing)
    assert str(caught.value).startswith(f"file {missing}: cannot be read (")
