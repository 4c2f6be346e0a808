"""The XSD negative cases of the LA returns, and what their XSDs accept.

Each case takes a valid document (the Elmbrook scenario, rendered), breaks exactly one thing with
lxml (XPath from the root) and expects a validation error line naming the element and the broken
facet. The shared constraints live in la-common-1.xsd, which each return's XSD includes, so they
are checked against every return that uses them. Run by tests/exports/test_export_returns.py.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

from lxml import etree

SICKNESS, CA, CME, NEW, DELETION = (
    "la-sickness",
    "la-continuous-absence",
    "la-cme",
    "la-new-pupil",
    "la-deletion",
)
ALL = (SICKNESS, CA, CME, NEW, DELETION)
ABSENCE = (SICKNESS, CA, CME)
RUN = (CA, CME)
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"


# -- mutations ------------------------------------------------------------------------------------

Mutation = Callable[[etree._Element], None]


def at(root: etree._Element, xpath: str) -> etree._Element:
    found = root.xpath(xpath)
    assert found, f"the valid document has no {xpath}"
    element = found[0]
    assert isinstance(element, etree._Element)
    return element


def value(xpath: str, text: str) -> Mutation:
    """Give the element a value (dropping any nil marking, so only the value is judged)."""

    def mutate(root: etree._Element) -> None:
        element = at(root, xpath)
        for name in (XSI_NIL, "status"):
            element.attrib.pop(name, None)
        for child in list(element):
            element.remove(child)
        element.text = text

    return mutate


def attribute(xpath: str, name: str, text: str | None) -> Mutation:
    def mutate(root: etree._Element) -> None:
        element = at(root, xpath)
        if text is None:
            del element.attrib[name]
        else:
            element.set(name, text)

    return mutate


def remove(xpath: str) -> Mutation:
    def mutate(root: etree._Element) -> None:
        for element in root.xpath(xpath) or [at(root, xpath)]:
            element.getparent().remove(element)

    return mutate


def address_lines(xpath: str, *lines: str) -> Mutation:
    """Replace an address (held or nil) by these lines alone."""

    def mutate(root: etree._Element) -> None:
        value(xpath, "")(root)
        element = at(root, xpath)
        element.text = None
        for line in lines:
            etree.SubElement(element, "Line").text = line

    return mutate


def duplicate(xpath: str) -> Mutation:
    def mutate(root: etree._Element) -> None:
        element = at(root, xpath)
        element.addnext(copy.deepcopy(element))

    return mutate


def append(xpath: str, tag: str, text: str | None = None) -> Mutation:
    def mutate(root: etree._Element) -> None:
        etree.SubElement(at(root, xpath), tag).text = text

    return mutate


def insert_after(xpath: str, tag: str) -> Mutation:
    def mutate(root: etree._Element) -> None:
        at(root, xpath).addnext(etree.Element(tag))

    return mutate


def nil(xpath: str) -> Mutation:
    def mutate(root: etree._Element) -> None:
        element = at(root, xpath)
        element.text = None
        element.set(XSI_NIL, "true")
        element.set("status", "not-held")

    return mutate


def nil_with_content(root: etree._Element) -> None:
    at(root, "(//*[@status])[1]").text = "something"


@dataclass(frozen=True)
class Case:
    constraint: str
    kinds: tuple[str, ...]
    mutate: Mutation
    expect: tuple[str, ...]  # all found in one error line


FIRST = "(//Record)[1]"
CASES = [
    # header (la-common-1.xsd: SchoolType, HeaderBody; each return fixes kind and version)
    Case(
        "return-kind-fixed", ALL, value("//Header/ReturnKind", "la-other"), ("ReturnKind", "fixed")
    ),
    Case(
        "schema-version-fixed",
        ALL,
        value("//Header/SchemaVersion", "2"),
        ("SchemaVersion", "fixed"),
    ),
    Case(
        "generated-at-has-offset",
        ALL,
        value("//Header/GeneratedAt", "2025-11-21T07:30:00"),
        ("GeneratedAt", "pattern"),
    ),
    Case(
        "generated-at-is-datetime",
        ALL,
        value("//Header/GeneratedAt", "2025-11-21"),
        ("GeneratedAt", "not a valid value"),
    ),
    Case("as-of-is-date", ALL, value("//Header/AsOf", "21/11/2025"), ("AsOf", "xs:date")),
    Case("la-code-3-digits", ALL, value("//Header/School/LA", "88"), ("'LA'", "pattern")),
    Case("estab-4-digits", ALL, value("//Header/School/Estab", "401"), ("Estab", "pattern")),
    Case("urn-6-digits", ALL, value("//Header/School/URN", "14000"), ("URN", "pattern")),
    Case("school-name-not-empty", ALL, value("//Header/School/Name", "  "), ("Name", "minLength")),
    Case(
        "record-count-positive",
        ALL,
        value("//Header/RecordCount", "0"),
        ("RecordCount", "positiveInteger"),
    ),
    Case("header-required", ALL, remove("//Header"), ("Header",)),
    # records
    Case("at-least-one-record", ALL, remove("//Records/Record"), ("Records", "Missing child")),
    Case("one-record-per-episode", ALL, duplicate(FIRST), ("OneRecordPerEpisode", "Duplicate")),
    Case(
        "episode-key-is-date",
        ALL,
        value(f"{FIRST}/RecordKey/Episode", "2025-13-01"),
        ("Episode", "xs:date"),
    ),
    Case("pupil-ref-required", ALL, remove(f"{FIRST}/RecordKey/PupilRef"), ("PupilRef",)),
    Case(
        "unknown-element-refused",
        ALL,
        append(f"{FIRST}/Pupil", "Nickname", "Bo"),
        ("Nickname", "not expected"),
    ),
    # pupil (PupilType)
    Case("upn-pattern", ALL, value(f"{FIRST}/Pupil/UPN", "I881400119001"), ("UPN", "pattern")),
    Case("upn-empty-needs-nil", ALL, value(f"{FIRST}/Pupil/UPN", ""), ("UPN", "pattern")),
    Case("legal-surname-required", ALL, remove(f"{FIRST}/Pupil/LegalSurname"), ("LegalSurname",)),
    Case(
        "legal-forename-not-empty",
        ALL,
        value(f"{FIRST}/Pupil/LegalForename", " "),
        ("LegalForename", "minLength"),
    ),
    Case("sex-enumeration", ALL, value(f"{FIRST}/Pupil/Sex", "X"), ("Sex", "enumeration")),
    Case("dob-is-date", ALL, value(f"{FIRST}/Pupil/DOB", "2012-02-30"), ("DOB", "xs:date")),
    Case("nc-year-pattern", ALL, value(f"{FIRST}/Pupil/NCYear", "Y9"), ("NCYear", "pattern")),
    Case(
        "address-needs-a-part",
        ALL,
        value(f"{FIRST}/Pupil/Address", ""),
        ("Address", "Missing child"),
    ),
    Case(
        "address-line-not-empty",
        ALL,
        address_lines(f"{FIRST}/Pupil/Address", " "),
        ("Line", "minLength"),
    ),
    Case("parent-phone-required", ALL, remove("(//Parent)[1]/EmergencyPhone"), ("EmergencyPhone",)),
    # missing items: nil with a status, and only where declared nillable
    Case(
        "status-enumeration",
        ALL,
        attribute("(//*[@status])[1]", "status", "unknown"),
        ("status", "enumeration"),
    ),
    Case("nil-has-no-content", ALL, nil_with_content, ("nilled",)),
    Case("key-not-nillable", ALL, nil(f"{FIRST}/RecordKey/Episode"), ("nillable",)),
    # the absence episode (EpisodeSpan, EpisodeSessionsAndCause)
    Case(
        "session-enumeration",
        ABSENCE,
        attribute(f"{FIRST}/Episode/Start", "session", "XM"),
        ("session", "enumeration"),
    ),
    Case(
        "session-required",
        ABSENCE,
        attribute(f"{FIRST}/Episode/End", "session", None),
        ("session", "required"),
    ),
    Case(
        "episode-end-is-date",
        ABSENCE,
        value(f"{FIRST}/Episode/End", "2025-11-31"),
        ("End", "xs:date"),
    ),
    Case(
        "ongoing-yes-no",
        ABSENCE,
        value(f"{FIRST}/Episode/Ongoing", "Yes"),
        ("Ongoing", "enumeration"),
    ),
    Case(
        "code-from-2024-table",
        ABSENCE,
        attribute(f"{FIRST}/Episode/Sessions/Count", "code", "H"),
        ("code", "enumeration"),
    ),
    Case(
        "code-required",
        ABSENCE,
        attribute(f"{FIRST}/Episode/Sessions/Count", "code", None),
        ("code", "required"),
    ),
    Case(
        "count-non-negative",
        ABSENCE,
        value(f"{FIRST}/Episode/Sessions/Count", "-1"),
        ("Count", "nonNegativeInteger"),
    ),
    Case(
        "one-count-per-code",
        ABSENCE,
        duplicate(f"{FIRST}/Episode/Sessions/Count"),
        ("OneCountPerCode", "Duplicate"),
    ),
    Case(
        "sessions-need-a-count",
        ABSENCE,
        remove(f"{FIRST}/Episode/Sessions/Count"),
        ("Sessions", "Missing child"),
    ),
    Case("cause-required", ABSENCE, remove(f"{FIRST}/Episode/Cause"), ("Cause",)),
    # sickness
    Case(
        "illness-days-non-negative",
        (SICKNESS,),
        value(f"{FIRST}/Episode/IllnessDays", "-0.5"),
        ("IllnessDays", "minInclusive"),
    ),
    Case(
        "illness-days-half-days",
        (SICKNESS,),
        value(f"{FIRST}/Episode/IllnessDays", "10.25"),
        ("IllnessDays", "fractionDigits"),
    ),
    Case(
        "threshold-reached-or-expected",
        (SICKNESS,),
        insert_after(f"{FIRST}/Episode/ThresholdReached", "ThresholdExpected"),
        ("ThresholdExpected", "not expected"),
    ),
    Case(
        "threshold-required",
        (SICKNESS,),
        remove(f"{FIRST}/Episode/ThresholdReached"),
        ("ThresholdReached",),
    ),
    Case(
        "reached-on-is-date",
        (SICKNESS,),
        value(f"{FIRST}/Episode/ThresholdReached/ReachedOn", "soon"),
        ("ReachedOn", "xs:date"),
    ),
    Case(
        "spell-days-positive",
        (SICKNESS,),
        value("(//Episode/ThresholdExpected/SpellDays)[1]", "0"),
        ("SpellDays", "positiveInteger"),
    ),
    # continuous absence and CME
    Case(
        "school-days-positive",
        RUN,
        value(f"{FIRST}/Episode/SchoolDays", "0"),
        ("SchoolDays", "positiveInteger"),
    ),
    Case(
        "threshold-day-is-date",
        RUN,
        value(f"{FIRST}/Episode/ThresholdDay", "tomorrow"),
        ("ThresholdDay", "xs:date"),
    ),
    Case(
        "record-type-required",
        (CA,),
        remove(f"{FIRST}/Episode/RecordType"),
        ("RecordType",),
    ),
    Case(
        "record-type-enumeration",
        (CA,),
        value(f"{FIRST}/Episode/RecordType", "sporadic"),
        ("RecordType", "enumeration"),
    ),
    Case(
        "school-cause-not-empty",
        (CA,),
        value(f"{FIRST}/Episode/SchoolCause", ""),
        ("SchoolCause",),
    ),
    Case(
        "school-cause-required",
        (CA,),
        remove(f"{FIRST}/Episode/SchoolCause"),
        ("SchoolCause",),
    ),
    # new pupil
    Case("lives-with-required", (NEW,), remove("(//Parents/Parent)[1]/LivesWith"), ("LivesWith",)),
    Case(
        "lives-with-yes-no",
        (NEW,),
        value("(//Parents/Parent)[1]/LivesWith", "true"),
        ("LivesWith", "enumeration"),
    ),
    Case(
        "starting-day-required", (NEW,), remove(f"{FIRST}/Admission/StartingDay"), ("StartingDay",)
    ),
    Case(
        "boarder-yes-no",
        (NEW,),
        value(f"{FIRST}/Admission/Boarder", "true"),
        ("Boarder", "enumeration"),
    ),
    # deletion
    Case(
        "ground-pattern",
        (DELETION,),
        value(f"{FIRST}/Deletion/Ground", "9(1)(p)"),
        ("Ground", "pattern"),
    ),
    Case(
        "ground-is-a-reg-9-reference",
        (DELETION,),
        value(f"{FIRST}/Deletion/Ground", "Registered at another school"),
        ("Ground", "pattern"),
    ),
    Case(
        "leaving-date-required",
        (DELETION,),
        remove(f"{FIRST}/Deletion/LeavingDate"),
        ("LeavingDate",),
    ),
    Case(
        "future-arrangements-required",
        (DELETION,),
        remove(f"{FIRST}/FutureArrangements"),
        ("FutureArrangements",),
    ),
]


def cases_for(kind: str) -> list[tuple[str, Mutation, tuple[str, ...]]]:
    return [(case.constraint, case.mutate, case.expect) for case in CASES if kind in case.kinds]


ACCEPTED: list[tuple[str, str, Mutation]] = [
    (DELETION, "ground-9-3", value(f"{FIRST}/Deletion/Ground", "9(3)(b)")),
    (DELETION, "ground-9-1-o", value(f"{FIRST}/Deletion/Ground", "9(1)(o)")),
    (SICKNESS, "temporary-upn", value(f"{FIRST}/Pupil/UPN", "G80120000101A")),
    (SICKNESS, "generated-at-z", value("//Header/GeneratedAt", "2025-11-21T07:30:00Z")),
    (CA, "dob-nil-not-held", nil(f"{FIRST}/Pupil/DOB")),
    (CA, "address-town-postcode-only", remove(f"{FIRST}/Pupil/Address/Line")),
    (NEW, "nc-year-reception", value(f"{FIRST}/Pupil/NCYear", "R")),
]
