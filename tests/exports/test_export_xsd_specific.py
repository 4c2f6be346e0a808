"""XSD checks that belong to one return (the checks every return shares are the template's,
tests/exports/test_export_returns.py)."""

from __future__ import annotations

import dataclasses
import string
from datetime import date
from importlib import resources
from pathlib import Path

import export_cases_la as la_cases
import pytest
from export_returns_spec import render_all
from lxml import etree
from test_export_cli_fixtures import (
    add_after,
    assert_rejected,
    make_request,
    mutated,
    open_store,
    set_text,
)

from registerwatch.codes import CODES_2024, CTF_NOT_IN_SESSION, CTF_SINGLE_CHARACTER_CODES
from registerwatch.errors import ExportValidationError
from registerwatch.exports import ctf
from registerwatch.exports.base import RenderedReturn, load_schema, validate
from registerwatch.exports.census_attendance import ABSENCE_CODES

DFE_FIRST = "Records/Record[1]"
CTF_MARKS = "CTFpupilData/Pupil[1]/Attendance/YearData/AttendSessions/AttendanceMarks"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, RenderedReturn]:
    return render_all(tmp_path_factory)


# -- dfe-daily ------------------------------------------------------------------------------------


def test_dfe_daily_error_lists_every_problem_at_once(rendered) -> None:
    def two_problems(root) -> None:
        set_text(f"{DFE_FIRST}/Session", "EV")(root)
        set_text(f"{DFE_FIRST}/URN", "1")(root)

    message = assert_rejected(rendered["dfe-daily"], two_problems, "'Session'", "'URN'")
    assert message.count("\n  - ") >= 2


def test_dfe_daily_two_records_sharing_a_upn_still_validate(rendered) -> None:
    """A duplicated UPN is UPN002's finding to fix; the day's return still goes (keyed by the
    MIS's own id), so the DfE is not left without the school's attendance."""
    root = etree.fromstring(rendered["dfe-daily"].xml)
    first, *others = root.findall("Records/Record")
    second = next(
        r
        for r in others
        if r.findtext("PupilRef") != first.findtext("PupilRef")
        and r.findtext("Session") == first.findtext("Session")
    )
    assert first.find("UPN") is not None and second.find("UPN") is not None
    second.find("UPN").text = first.findtext("UPN")
    copy = dataclasses.replace(
        rendered["dfe-daily"], xml=etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    )
    validate(copy)


# -- census-attendance ----------------------------------------------------------------------------


def test_census_absence_codes_are_the_2024_absence_codes() -> None:
    # the XSD's AbsenceReasonType is checked against the same list by the template
    assert list(ABSENCE_CODES) == [c.code for c in CODES_2024 if c.authorised or c.unauthorised]


# -- ctf ------------------------------------------------------------------------------------------


def test_ctf_marks_alphabet_is_the_single_character_codes_vendor_characters_and_hash(
    rendered,
) -> None:
    """Every printable character is tried: exactly the expected ones are accepted."""
    expected = (
        {c.code for c in CODES_2024 if len(c.code) == 1}
        | set(CTF_SINGLE_CHARACTER_CODES)
        | {CTF_NOT_IN_SESSION}
    )
    accepted = set()
    for character in sorted(set(string.printable) - set(string.whitespace)):
        try:
            validate(mutated(rendered["ctf"], set_text(CTF_MARKS, character * 2)))
        except ExportValidationError:
            continue
        accepted.add(character)
    assert accepted == expected


@pytest.mark.parametrize("placeholder", ["MMMMMMM", "XXXXXXX", "8812001"])
def test_ctf_destination_placeholders_are_valid(
    tmp_path_factory: pytest.TempPathFactory, placeholder: str
) -> None:
    store = open_store(tmp_path_factory.mktemp("dest") / "store.db")
    try:
        [result] = ctf.build(
            make_request(store, as_of=date(2026, 1, 5), options={"ctf_destination": placeholder})
        )
    finally:
        store.close()
    validate(result)


def test_ctf_destination_mixing_digits_and_placeholders_is_rejected(rendered) -> None:
    def mixed(root) -> None:
        add_after("Header/SourceSchool", "DestSchool")(root)
        dest = root.find("Header/DestSchool")
        for tag, text in (("LEA", "MMM"), ("Estab", "12X4")):
            child = dest.makeelement(tag, {})
            child.text = text
            dest.append(child)

    assert_rejected(rendered["ctf"], mixed, "'Estab'", "pattern")


# -- the LA returns -------------------------------------------------------------------------------


def test_la_xsd_cases_cover_every_kind() -> None:
    covered = {kind for case in la_cases.CASES for kind in case.kinds}
    assert covered == set(la_cases.ALL)
    assert len({c.constraint for c in la_cases.CASES}) == len(la_cases.CASES)


def test_la_xsd_includes_resolve_from_the_package() -> None:
    """xs:include of la-common-1.xsd is resolved next to each XSD by base.load_schema (the
    schema is parsed from the package file, so lxml knows its location)."""
    for kind in la_cases.ALL:
        schema = load_schema(f"{kind}-1.xsd")
        assert isinstance(schema, etree.XMLSchema)
    folder = resources.files("registerwatch.exports.schemas")
    for kind in la_cases.ALL:
        text = folder.joinpath(f"{kind}-1.xsd").read_text(encoding="utf-8")
        assert '<xs:include schemaLocation="la-common-1.xsd"/>' in text
    assert isinstance(folder.joinpath("la-common-1.xsd"), Path)  # a real file, not a zip member
