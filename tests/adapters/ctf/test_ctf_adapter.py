"""CtfAdapter: the Adapter protocol over a CTF file or a folder of them."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from registerwatch.adapters.base import Adapter, Batch
from registerwatch.adapters.ctf import CtfAdapter, CtfFileError
from registerwatch.schema import Session

DATA = Path(__file__).parent / "data"
SEPTEMBER = (date(2024, 9, 1), date(2024, 9, 30))
ADA = "wenlock:E893400116001"


def pupil_xml(upn: str, forename: str, marks: str, start: str = "2024-09-02") -> str:
    return (
        f"<Pupil><UPN>{upn}</UPN><Forename>{forename}</Forename><Attendance><YearData>"
        f"<AttendSessions><AttendanceStartDate>{start}</AttendanceStartDate>"
        f"<AttendanceMarks>{marks}</AttendanceMarks></AttendSessions></YearData>"
        "</Attendance></Pupil>"
    )


def write_ctf(path: Path, created: str | None, *pupils: str) -> Path:
    when = f"<DateTime>{created}</DateTime>" if created else ""
    path.write_text(
        f"<CTfile><Header><CTFversion>25.0</CTFversion>{when}</Header>"
        f"<CTFpupilData>{''.join(pupils)}</CTFpupilData></CTfile>",
        encoding="utf-8",
    )
    return path


def test_it_satisfies_the_adapter_contract():
    adapter: Adapter = CtfAdapter(school_id="wenlock", path=DATA / "ctf25_wenlock.xml")
    assert (adapter.vendor, adapter.school_id, adapter.exposes_amendments) == (
        "ctf",
        "wenlock",
        False,
    )
    assert adapter.registers(*SEPTEMBER) == Batch()
    assert adapter.amendments(*SEPTEMBER) == Batch()
    assert adapter.calendar() is None
    assert [p.id for p in adapter.pupils().records] == [ADA, "wenlock:U893400116002"]
    assert len(adapter.marks(*SEPTEMBER).records) == 12
    adapter.close()


def test_marks_are_filtered_to_the_range_inclusive():
    adapter = CtfAdapter(school_id="wenlock", path=DATA / "ctf25_wenlock.xml")
    batch = adapter.marks(date(2024, 9, 4), date(2024, 9, 5))
    assert [(m.date.day, m.session, m.code) for m in batch.records] == [
        (4, Session.AM, "I"),
        (4, Session.PM, "C2"),
        (5, Session.AM, "J1"),
        (5, Session.PM, "N"),
    ]
    assert adapter.marks(date(2024, 10, 1), date(2024, 10, 31)).records == []


def test_a_folder_reads_every_xml_file_in_any_case_and_ignores_others(tmp_path):
    shutil.copy(DATA / "ctf25_wenlock.xml", tmp_path / "8934001_CTF_8934001_001.XML")
    shutil.copy(DATA / "ctf15_legacy_gender.xml", tmp_path / "older.xml")
    (tmp_path / "notes.txt").write_text("not a CTF")
    (tmp_path / "sub").mkdir()
    shutil.copy(DATA / "malformed.xml", tmp_path / "sub" / "ignored.xml")  # not recursive
    adapter = CtfAdapter(school_id="wenlock", path=str(tmp_path))
    assert [p.name for p in adapter.files()] == ["8934001_CTF_8934001_001.XML", "older.xml"]
    # Oldest first by header DateTime: the 2023 file, then the 2024 one.
    assert [d.name for d in adapter.documents()] == ["older.xml", "8934001_CTF_8934001_001.XML"]
    # Charles is in both files; the 2024 file's record wins.
    charles = next(p for p in adapter.pupils().records if p.id == "wenlock:U893400116002")
    assert (charles.legal_forename, charles.nc_year) == ("Charles", "R")
    january = adapter.marks(date(2023, 1, 1), date(2023, 1, 31)).records
    assert [(m.date.day, m.code) for m in january][:2] == [(3, "/"), (3, "\\")]


def test_a_later_file_replaces_the_same_sessions_and_keeps_the_rest(tmp_path):
    # Names are chosen so that name order and DateTime order disagree: DateTime decides.
    write_ctf(
        tmp_path / "a-newer.xml",
        "2024-09-06T16:00:00",
        pupil_xml("E893400116001", "Ada", "/\\IIII"),
    )
    write_ctf(
        tmp_path / "b-older.xml",
        "2024-09-03T16:00:00",
        pupil_xml("E893400116001", "Addie", "/\\NN"),
        pupil_xml("U893400116002", "Charles", "/\\"),
    )
    adapter = CtfAdapter(school_id="wenlock", path=tmp_path)
    pupils = {p.id: p.legal_forename for p in adapter.pupils().records}
    assert pupils == {ADA: "Ada", "wenlock:U893400116002": "Charles"}
    ada = sorted(
        (m.date.day, m.session.value, m.code, m.source_ref)
        for m in adapter.marks(*SEPTEMBER).records
        if m.pupil_id == ADA
    )
    assert ada == [
        (2, "AM", "/", "a-newer.xml#pupil[1]/YearData[1]/AttendanceMarks[0]"),
        (2, "PM", "\\", "a-newer.xml#pupil[1]/YearData[1]/AttendanceMarks[1]"),
        (3, "AM", "I", "a-newer.xml#pupil[1]/YearData[1]/AttendanceMarks[2]"),  # was N
        (3, "PM", "I", "a-newer.xml#pupil[1]/YearData[1]/AttendanceMarks[3]"),
        (4, "AM", "I", "a-newer.xml#pupil[1]/YearData[1]/AttendanceMarks[4]"),
        (4, "PM", "I", "a-newer.xml#pupil[1]/YearData[1]/AttendanceMarks[5]"),
    ]


def test_quarantine_from_every_file_is_returned(tmp_path):
    shutil.copy(DATA / "ctf25_problems.xml", tmp_path / "problems.xml")
    adapter = CtfAdapter(school_id="wenlock", path=tmp_path)
    assert [q.record_ref for q in adapter.pupils().quarantined] == [
        "problems.xml#pupil[3]",
        "problems.xml#pupil[4]",
        "problems.xml#pupil[5]",
        "problems.xml#pupil[6]",
    ]
    # Whatever the range: a misaligned string has no date to filter on.
    assert len(adapter.marks(date(2030, 1, 1), date(2030, 1, 2)).quarantined) == 6


def test_files_are_parsed_once_until_close(tmp_path):
    path = write_ctf(tmp_path / "one.xml", None, pupil_xml("E893400116001", "Ada", "/\\"))
    adapter = CtfAdapter(school_id="wenlock", path=path)
    assert len(adapter.marks(*SEPTEMBER).records) == 2
    write_ctf(path, None, pupil_xml("E893400116001", "Ada", "/\\/\\"))
    assert len(adapter.marks(*SEPTEMBER).records) == 2  # cached for the run
    adapter.close()
    assert len(adapter.marks(*SEPTEMBER).records) == 4


def test_an_empty_folder_gives_empty_batches(tmp_path):
    adapter = CtfAdapter(school_id="wenlock", path=tmp_path)
    assert (adapter.pupils(), adapter.marks(*SEPTEMBER)) == (Batch(), Batch())


def test_a_missing_path_names_the_setting():
    adapter = CtfAdapter(school_id="wenlock", path="/srv/ctf/does-not-exist")
    with pytest.raises(CtfFileError) as caught:
        adapter.pupils()
    assert str(caught.value) == (
        "file /srv/ctf/does-not-exist: does not exist — check the "
        "[schools.mis] path for school 'wenlock'"
    )


def test_an_unsafe_file_in_the_folder_stops_the_read_naming_it(tmp_path):
    shutil.copy(DATA / "ctf25_wenlock.xml", tmp_path / "good.xml")
    shutil.copy(DATA / "xxe_file.xml", tmp_path / "zz-attack.xml")
    adapter = CtfAdapter(school_id="wenlock", path=tmp_path)
    with pytest.raises(CtfFileError, match=r"zz-attack\.xml: CTF files must not contain a DTD"):
        adapter.marks(*SEPTEMBER)


def test_laestab_selects_the_register_in_every_file(tmp_path):
    # The file addressed to school 2011234 (a file addressed elsewhere is refused: see
    # test_ctf_destination.py), whose registers are then the 201/1234 attendance blocks.
    readdressed = tmp_path / "to-2011234.xml"
    readdressed.write_text(
        (DATA / "ctf25_wenlock.xml")
        .read_text(encoding="utf-8")
        .replace(
            "<DestSchool>\n      <LEA>893</LEA>\n      <Estab>4001</Estab>",
            "<DestSchool>\n      <LEA>201</LEA>\n      <Estab>1234</Estab>",
        ),
        encoding="utf-8",
    )
    adapter = CtfAdapter(school_id="wenlock", path=readdressed, laestab="2011234")
    assert adapter.documents() and adapter.refused == []
    assert [(m.date, m.code) for m in adapter.marks(date(2024, 7, 1), date(2024, 9, 30)).records][
        :2
    ] == [(date(2024, 7, 15), "/"), (date(2024, 7, 15), "\\")]
