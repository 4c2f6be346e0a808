"""The CTF parser under generated XML: hostile strings, bad dates, deep nesting, broken markup.
A file is either read (every pupil mapped or quarantined with a named reason) or refused as a
whole with CtfFileError; never another exception; no pupil data in any error text."""

from __future__ import annotations

from xml.sax.saxutils import escape

from fuzz_support import dates, fuzz, hostile_text, names, pupil_values, upns
from hypothesis import given
from hypothesis import strategies as st

from registerwatch.adapters.ctf import CtfFileError, parse_ctf

codes = st.text(alphabet="/\\LNIMBCDEGJPRSTUVWXYZ#!<>?-1 ", max_size=20)


def element(name: str, value: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return value.map(lambda v: f"<{name}>{escape(v)}</{name}>")


def optional(*parts: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(*(st.one_of(st.just(""), p) for p in parts)).map("".join)


year_data = optional(
    element("AttendStartDate", dates),
    element("AttendanceMarks", st.one_of(codes, hostile_text)),
    element("LEA", st.one_of(st.sampled_from(["893", "201"]), hostile_text)),
    element("Estab", st.one_of(st.sampled_from(["4001", "9999"]), hostile_text)),
    element("SessionsPossible", hostile_text),
).map(lambda inner: f"<YearData><SessionAttendance>{inner}</SessionAttendance></YearData>")
pupil = optional(
    element("UPN", upns),
    element("ApplicationReference", hostile_text),
    element("Surname", names),
    element("Forename", names),
    element("DOB", dates),
    element("Sex", st.one_of(st.sampled_from(["F", "M", "X"]), hostile_text)),
    optional(
        element("MiddleNames", names),
        element("PreferredSurname", names),
        element("NCyearActual", hostile_text),
        element("EnrolStatus", hostile_text),
    ).map(lambda inner: f"<BasicDetails>{inner}</BasicDetails>"),
    st.lists(year_data, max_size=2).map(lambda ys: f"<Attendance>{''.join(ys)}</Attendance>"),
).map(lambda inner: f"<Pupil>{inner}</Pupil>")
header = optional(
    element("CTFversion", st.one_of(st.sampled_from(["25.0", "15.0"]), hostile_text)),
    element("DateTime", st.one_of(st.sampled_from(["2024-09-10T16:30:00"]), hostile_text)),
    optional(element("LEA", hostile_text), element("Estab", hostile_text)).map(
        lambda inner: f"<SourceSchool>{inner}</SourceSchool>"
    ),
).map(lambda inner: f"<Header>{inner}</Header>")
document = st.tuples(header, st.lists(pupil, max_size=4)).map(
    lambda parts: f"<CTfile>{parts[0]}<CTFpupilData>{''.join(parts[1])}</CTFpupilData></CTfile>"
)


def _values_in(xml: str) -> set[str]:
    """Names (marked Qz), UPN-like and DOB-like texts in the XML: must not reach error text."""
    from lxml import etree

    try:
        root = etree.fromstring(xml.encode())
    except etree.XMLSyntaxError:
        return set()
    found: set[str] = set()
    for el in root.iter():
        if isinstance(el.tag, str) and el.text:
            found |= pupil_values({el.tag: el.text})
    return found


def _check(xml: str | bytes) -> None:
    text = xml if isinstance(xml, str) else xml.decode("utf-8", "replace")
    leaks = _values_in(text) if isinstance(xml, str) else set()
    try:
        parsed = parse_ctf(xml, school_id="s", laestab="8934001", name="fuzz.xml")
    except CtfFileError as exc:
        message = str(exc)
        assert message.strip()
        for value in leaks:
            assert value not in message
        return
    expected = text.count("<Pupil>")
    assert len(parsed.pupils.records) + len(parsed.pupils.quarantined) == expected
    for entry in parsed.pupils.quarantined + parsed.marks.quarantined:
        assert entry.reason.strip()
        for value in leaks:
            assert value not in entry.reason and value not in entry.record_ref


@given(xml=document)
@fuzz
def test_every_generated_ctf_is_read_or_refused_cleanly(xml):
    _check(xml)


@given(
    xml=document,
    cut=st.integers(min_value=0, max_value=400),
    junk=st.sampled_from(["", "\x00", "<!DOCTYPE x [<!ENTITY e 'x'>]>", "&e;", "<", "\ufffe"]),
)
@fuzz
def test_truncated_or_corrupted_ctfs_are_refused_or_read(xml, cut, junk):
    _check(xml[:cut] + junk + xml[cut:] if junk else xml[: max(cut, 1)])


@given(depth=st.sampled_from([100, 5000, 100_000]), where=st.sampled_from(["pupil", "root"]))
@fuzz
def test_deeply_nested_ctfs_are_refused_or_read(depth, where):
    nest = "<a>" * depth + "</a>" * depth
    if where == "pupil":
        xml = f"<CTfile><CTFpupilData><Pupil><UPN>E893400116001</UPN>{nest}</Pupil></CTFpupilData></CTfile>"
    else:
        xml = nest
    _check(xml)


@given(raw=st.binary(max_size=200))
@fuzz
def test_random_bytes_are_refused_cleanly(raw):
    _check(b"<CTfile>" + raw)
