"""Reading one Common Transfer File (CTF) into the common schema.

No CTF 25 specification or XSD was publicly available: element names
come from exporters' code (DfE GIAP and MTC, Follett Aspen). Where writers disagree the names are
listed together below, canonical first, so one tuple changes when the specification is read.

Security: a CTF holds children's personal data and arrives from outside the school, so it is
parsed with entities, DTD loading and network access off, and any document carrying a DOCTYPE is
refused outright (billion laughs, external entities); see ``load_ctf_tree``.

Privacy: record refs and log events name a pupil by its position in the file
(``<file>#pupil[3]``), never by UPN or name, and quarantine reasons carry no pupil values,
because both may be logged.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import structlog
from lxml import etree
from pydantic import ValidationError

from registerwatch.adapters.base import Batch, Quarantined
from registerwatch.adapters.ctf.marks import MisalignedMarksError, decode_attendance_marks
from registerwatch.errors import InputFileError, InvalidRecord
from registerwatch.schema import Address, Contact, Mark, Pupil
from registerwatch.upn import check_upn

log = structlog.get_logger("registerwatch.adapters.ctf")

LONDON = ZoneInfo("Europe/London")

# -- element names ----------------------------

ROOT_ELEMENT = "CTfile"
# VERIFIED: DfE GIAP, MTC and Follett write CTFversion; SECONDARY: One's documentation shows
# CTFVersion. Both are read.
VERSION_ELEMENTS = ("CTFversion", "CTFVersion")
# VERIFIED: CTF 25 (GIAP) writes Sex; older exporters (CTF 15 writer, Follett) write Gender.
SEX_ELEMENTS = ("Sex", "Gender")
# VERIFIED from code (Follett): AttendSessions / AttendanceStartDate. INFERRED alternatives: some
# descriptions name them SessionAttendance / AttendStartDate; read both until CTF 25 is checked.
ATTEND_SESSIONS_ELEMENTS = ("AttendSessions", "SessionAttendance")
ATTENDANCE_START_ELEMENTS = ("AttendanceStartDate", "AttendStartDate")

SexCode = Literal["M", "F", "U"]
# INFERRED (spellings tolerated beyond the M/F the exporters write); the schema keeps M, F or U.
SEX_VALUES: dict[str, SexCode] = {
    "M": "M",
    "F": "F",
    "U": "U",
    "MALE": "M",
    "FEMALE": "F",
    "UNKNOWN": "U",
}
# INFERRED (CBDS SEN provision codes, from memory; check against the CTF 25 code sets):
# E = EHC plan, S = statement (pre-2014, the EHC plan's predecessor), K = SEN support, N = none.
SEN_PROVISION_EHCP = frozenset({"E", "S"})
SEN_PROVISION_SUPPORT = frozenset({"K"})
# xs:boolean, plus the Y/N some older writers use.
_TRUE = frozenset({"true", "1", "y", "yes"})
_FALSE = frozenset({"false", "0", "n", "no"})

DTD_REFUSED = (
    "CTF files must not contain a DTD or entities (possible billion-laughs / "
    "external-entity attack); refused"
)
# Markers looked for in the raw bytes before parsing, in the encodings a CTF may plausibly use.
# This is the first line of defence; the parsed document's DOCTYPE is checked as well.
_DTD_MARKERS = tuple(
    marker.encode(encoding)
    for marker in ("<!DOCTYPE", "<!ENTITY")
    for encoding in ("ascii", "utf-16-le", "utf-16-be")
)


class CtfFileError(InputFileError):
    """A CTF file that cannot be read at all (unsafe, not XML, not a CTF): fix or remove it.

    Local to the CTF adapter for now; ``file`` and ``problem`` are kept as attributes so the CLI
    can show them.
    """

    def __init__(self, file: str, problem: str) -> None:
        self.file = file
        self.problem = problem
        super().__init__(f"file {file}: {problem}")


# -- results -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CtfSchool:
    """A ``<SourceSchool>`` or ``<DestSchool>`` (no URN: the exporters write none)."""

    lea: str | None
    estab: str | None
    name: str | None = None
    academic_year: str | None = None

    @property
    def laestab(self) -> str | None:
        return f"{self.lea}{self.estab}" if self.lea and self.estab else None


@dataclass(frozen=True, slots=True)
class CtfHeader:
    document_name: str | None
    version: str | None
    created: datetime | None  # <DateTime>, naive school-local time
    qualifier: str | None  # <DocumentQualifier>: "full" or "partial"
    supplier_id: str | None
    source_school: CtfSchool | None
    dest_school: CtfSchool | None


@dataclass(frozen=True, slots=True)
class CtfYearData:
    """One ``<Attendance><YearData>``: the session totals as the exporting MIS counted them.

    ``marks_imported`` is False when the block belongs to another school (its LEA and Estab are
    not the school whose registers are being read), so its marks were not taken as this school's.
    """

    pupil_id: str
    record_ref: str
    year: str | None
    lea: str | None
    estab: str | None
    school_name: str | None
    sessions_possible: int | None
    sessions_authorised: int | None
    sessions_attended: int | None
    sessions_unauthorised: int | None
    marks_imported: bool


@dataclass
class CtfDocument:
    """What one CTF file held: its header, its pupils and their marks, with what was set aside."""

    name: str
    header: CtfHeader
    pupils: Batch[Pupil] = field(default_factory=Batch)
    marks: Batch[Mark] = field(default_factory=Batch)
    attendance_years: list[CtfYearData] = field(default_factory=list)


# -- safe loading -------------------------------------------------------------------------------


def _safe_parser(encoding: str | None = None) -> etree.XMLParser:
    # A fresh parser per document: lxml parsers are not safe to share between threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        encoding=encoding,
    )


def _refuse_dtd_markers(raw: bytes, file: str) -> None:
    if any(marker in raw for marker in _DTD_MARKERS):
        log.warning("ctf.file_refused", file=file, problem="dtd")
        raise CtfFileError(file, DTD_REFUSED)


# libxml2 error types that mean "this document declares or uses entities" (a stray "&" in text
# is ERR_NAME_REQUIRED or ERR_ENTITYREF_SEMICOL_MISSING: plain malformed XML, not listed).
_ENTITY_ERROR_TYPES = frozenset(
    {
        "ERR_UNDECLARED_ENTITY",
        "ERR_UNPARSED_ENTITY",
        "ERR_EXT_ENTITY_STANDALONE",
        "ERR_DOCTYPE_NOT_FINISHED",
        "ERR_ENTITYREF_IN_DTD",
        "ERR_ENTITYREF_IN_PROLOG",
    }
)
_ERROR_TYPE_NAMES = {
    getattr(etree.ErrorTypes, name): name for name in dir(etree.ErrorTypes) if name.isupper()
}


def _is_entity_error(exc: etree.XMLSyntaxError) -> bool:
    # Judge the error raised, not exc.error_log: that log also holds earlier documents' errors.
    name = _ERROR_TYPE_NAMES.get(exc.code, "")  # type: ignore[attr-defined]  # lxml-stubs omit ParseError.code
    if name.startswith(("ERR_ENTITY_", "DTD_")) or name in _ENTITY_ERROR_TYPES:
        return True
    # "Maximum entity amplification factor exceeded": a billion-laughs document.
    return name == "ERR_RESOURCE_LIMIT" and "entity" in (exc.msg or "").lower()


def _parse_refusing_dtd(raw: bytes, file: str, encoding: str | None = None) -> etree._Element:
    """Parse with the safe parser, then refuse any document that declared a DOCTYPE.

    This check does not depend on the byte scan: it also holds for encodings the scan does not
    know. The parser never expands entities or fetches anything, so reaching it is harmless.
    """
    try:
        root = etree.fromstring(raw, _safe_parser(encoding))
    except etree.XMLSyntaxError as exc:
        if _is_entity_error(exc):
            # libxml2 stops some entity attacks itself (amplification, loops) before the
            # DOCTYPE check below can run: give them the same answer.
            log.warning("ctf.file_refused", file=file, problem="dtd")
            raise CtfFileError(file, DTD_REFUSED) from None
        log.warning("ctf.file_refused", file=file, problem="malformed")
        line, column = exc.position if exc.position else (exc.lineno, 0)
        raise CtfFileError(
            file,
            f"is not well-formed XML: line {line}, column {column}: "
            f"{exc.msg} — the file is damaged or not XML; export it "
            "again",
        ) from None
    docinfo = root.getroottree().docinfo
    doctype: str = docinfo.doctype  # type: ignore[union-attr]  # lxml-stubs omit DocInfo.doctype
    if doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        log.warning("ctf.file_refused", file=file, problem="dtd")
        raise CtfFileError(file, DTD_REFUSED)
    return root


def load_ctf_tree(raw: bytes, file: str, *, encoding: str | None = None) -> etree._Element:
    """The root ``<CTfile>`` element of ``raw``; CtfFileError when unsafe, malformed or not a CTF.

    Namespaces are dropped from tags: CTF has none, and a writer that adds a default namespace
    should not hide every element.
    """
    _refuse_dtd_markers(raw, file)
    root = _parse_refusing_dtd(raw, file, encoding)
    for element in root.iter():
        if isinstance(element.tag, str) and element.tag.startswith("{"):
            element.tag = etree.QName(element).localname
    if root.tag != ROOT_ELEMENT:
        log.warning("ctf.file_refused", file=file, problem="root")
        raise CtfFileError(
            file,
            f"root element is <{root.tag}>, expected <{ROOT_ELEMENT}>: "
            "this is not a Common Transfer File",
        )
    return root


def _read_source(
    source: bytes | str | Path, name: str | None
) -> tuple[bytes, str, str, str | None]:
    """(raw bytes, display name for errors, short name for refs, encoding override)."""
    if isinstance(source, bytes):
        label = name or "<bytes>"
        return source, label, label, None
    if isinstance(source, str) and source.lstrip("\ufeff \t\r\n").startswith("<"):
        # XML text: lxml refuses a str that declares an encoding, so parse its UTF-8 bytes and
        # tell the parser they are UTF-8 whatever the declaration says.
        label = name or "<string>"
        return source.encode("utf-8"), label, label, "utf-8"
    path = Path(source)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CtfFileError(
            str(path),
            f"cannot be read ({exc.strerror or exc}) — check the path and its permissions",
        ) from None
    return raw, str(path), name or path.name, None


# -- element helpers ----------------------------------------------------------------------------


def _first(element: etree._Element | None, names: Iterable[str]) -> etree._Element | None:
    if element is None:
        return None
    for name in names:
        found = element.find(name)
        if found is not None:
            return found
    return None


def _text(element: etree._Element | None, *names: str) -> str | None:
    """Stripped text of the first child named in ``names`` (or of ``element``); "" is None."""
    target = _first(element, names) if names else element
    if target is None or target.text is None:
        return None
    value = target.text.strip()
    return value or None


def _all(element: etree._Element | None, path: str) -> list[etree._Element]:
    return [] if element is None else list(element.iterfind(path))


# -- the parser -----------------------------------------------------------------------------------


def parse_ctf(
    source: bytes | str | Path,
    *,
    school_id: str,
    laestab: str | None = None,
    name: str | None = None,
) -> CtfDocument:
    """Parse one CTF into the common schema.

    ``source`` is the file's bytes, a path (``Path`` or ``str``), or XML text (a ``str`` whose
    first non-blank character is ``<``). ``name`` labels refs and errors when ``source`` is not
    a path. ``laestab`` (7 digits) says whose registers the attendance marks are; by default the
    header's SourceSchool. Raises CtfFileError when the file as a whole cannot be read; a pupil
    or mark that will not map is quarantined and the rest of the file is still read.
    """
    raw, display, short, encoding = _read_source(source, name)
    root = load_ctf_tree(raw, display, encoding=encoding)
    header = _header(root)
    target = laestab or (header.source_school.laestab if header.source_school else None)
    as_of = header.created.date() if header.created else None
    document = CtfDocument(name=short, header=header)
    seen: dict[str, int] = {}
    pupils = _all(root.find("CTFpupilData"), "Pupil")
    for index, element in enumerate(pupils, start=1):
        _read_pupil(
            element,
            index,
            document,
            school_id=school_id,
            target_laestab=target,
            as_of=as_of,
            seen=seen,
        )
    log.info(
        "ctf.file_parsed",
        file=short,
        version=header.version,
        pupils=len(pupils),
        pupils_mapped=len(document.pupils.records),
        marks=len(document.marks.records),
        years_of_other_schools=sum(not y.marks_imported for y in document.attendance_years),
        quarantined=len(document.pupils.quarantined) + len(document.marks.quarantined),
    )
    return document


def _header(root: etree._Element) -> CtfHeader:
    header = root.find("Header")
    if header is None:
        # Every exporter seen writes a Header; a file without one may still carry pupils.
        return CtfHeader(None, None, None, None, None, None, None)
    return CtfHeader(
        document_name=_text(header, "DocumentName"),
        version=_text(header, *VERSION_ELEMENTS),
        created=_datetime_or_none(_text(header, "DateTime")),
        qualifier=_text(header, "DocumentQualifier"),
        supplier_id=_text(header, "SupplierID"),
        source_school=_school(header.find("SourceSchool")),
        dest_school=_school(header.find("DestSchool")),
    )


def _school(element: etree._Element | None) -> CtfSchool | None:
    if element is None:
        return None
    return CtfSchool(
        lea=_text(element, "LEA"),
        estab=_text(element, "Estab"),
        name=_text(element, "SchoolName"),
        academic_year=_text(element, "AcademicYear"),
    )


def _datetime_or_none(value: str | None) -> datetime | None:
    """<DateTime> as naive school-local time (exporters write it without an offset).

    Informational (file ordering, the "as of" date for FSM), so an odd value is dropped, not
    fatal. One with an offset is converted to Europe/London so every file compares alike.
    """
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(LONDON).replace(tzinfo=None)
    return parsed


def derive_mis_id(upn: str | None, application_reference: str | None) -> str | None:
    """The pupil's stable key within the school, or None when the file gives none.

    1. a UPN that passes the DfE check: the UPN, upper-cased (it is meant to last the pupil's
       whole school career);
    2. else ``appref:<ApplicationReference>``;
    3. else ``upn-unchecked:<UPN>`` for a UPN that fails the check: kept, not quarantined, so
       the invalid-upn rule (UPN001) can report it; a corrected UPN starts a new key.
    The prefixes keep the three kinds apart: a valid UPN never contains a colon.
    """
    if upn and check_upn(upn).valid:
        return upn.strip().upper()
    if application_reference:
        return f"appref:{application_reference}"
    if upn:
        return f"upn-unchecked:{upn.strip().upper()}"
    return None


def _read_pupil(
    element: etree._Element,
    index: int,
    document: CtfDocument,
    *,
    school_id: str,
    target_laestab: str | None,
    as_of: date | None,
    seen: dict[str, int],
) -> None:
    record_ref = f"{document.name}#pupil[{index}]"
    upn = _text(element, "UPN")
    mis_id = derive_mis_id(upn, _text(element, "ApplicationReference"))
    if mis_id is None:
        reason = "has no UPN and no ApplicationReference, so it cannot be keyed"
        document.pupils.quarantined.append(Quarantined("pupils", record_ref, "UPN", reason))
        if element.find("Attendance") is not None:
            document.marks.quarantined.append(
                Quarantined(
                    "marks", record_ref, "UPN", f"pupil {reason}: its attendance was set aside"
                )
            )
        return
    if mis_id in seen:
        reason = (
            f"has the same UPN or ApplicationReference as pupil {seen[mis_id]} in this "
            "file (census rule 1520): set aside with its attendance; correct it in the MIS"
        )
        document.pupils.quarantined.append(Quarantined("pupils", record_ref, "UPN", reason))
        if element.find("Attendance") is not None:
            document.marks.quarantined.append(Quarantined("marks", record_ref, "UPN", reason))
        return
    seen[mis_id] = index
    pupil_id = f"{school_id}:{mis_id}"
    try:
        document.pupils.records.append(
            _pupil(element, upn, pupil_id, mis_id, school_id, record_ref, as_of)
        )
    except InvalidRecord as error:
        document.pupils.quarantined.append(Quarantined.from_error(error))
    # A pupil set aside for a bad detail still has a sound key, so its marks are kept: the
    # register is the legal record, and the pupil arrives once the MIS data is fixed.
    _read_attendance(
        element.find("Attendance"),
        document,
        pupil_id=pupil_id,
        record_ref=record_ref,
        target_laestab=target_laestab,
    )


def _invalid(reason: str, record_ref: str, field_name: str) -> InvalidRecord:
    return InvalidRecord(reason, record_ref=record_ref, field=field_name, resource="pupils")


def _detail(element: etree._Element, *names: str) -> str | None:
    """A pupil item written directly under <Pupil> (CTF 25) or under <BasicDetails> (Follett)."""
    value = _text(element, *names)
    return value if value is not None else _text(element.find("BasicDetails"), *names)


def _pupil(
    element: etree._Element,
    upn: str | None,
    pupil_id: str,
    mis_id: str,
    school_id: str,
    record_ref: str,
    as_of: date | None,
) -> Pupil:
    address = _address(element.find("Address"))
    try:
        return Pupil(
            id=pupil_id,
            school_id=school_id,
            mis_id=mis_id,
            upn=upn,
            former_upn=_detail(element, "FormerUPN"),
            legal_forename=_detail(element, "Forename"),
            legal_surname=_detail(element, "Surname"),
            middle_names=_detail(element, "MiddleNames"),
            preferred_forename=_detail(element, "PreferredForename"),
            preferred_surname=_detail(element, "PreferredSurname"),
            dob=_date(_detail(element, "DOB"), record_ref, "DOB"),
            sex=_sex(element, record_ref),
            nc_year=_detail(element, "NCyearActual"),
            address=address,
            contacts=_contacts(element.find("Contacts"), address, record_ref),
            **_sen(element.find("SENhistory"), record_ref),
            fsm=_fsm(element.find("FSMhistory"), record_ref, as_of),
            looked_after=_flag(
                _text(element.find("LookedAfter"), "InCare"), record_ref, "LookedAfter/InCare"
            ),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        # The message, never the input: the input may be a name or a date of birth.
        raise _invalid(
            first["msg"], record_ref, ".".join(str(p) for p in first["loc"]) or "Pupil"
        ) from None


def _date(value: str | None, record_ref: str, field_name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        # No value in the reason: a date of birth is personal data.
        raise _invalid("is not a date in yyyy-mm-dd form", record_ref, field_name) from None


def _flag(value: str | None, record_ref: str, field_name: str) -> bool:
    if value is None:
        return False
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise _invalid(f"{value!r} is not true or false", record_ref, field_name)


def _sex(element: etree._Element, record_ref: str) -> SexCode | None:
    written = {name: _detail(element, name) for name in SEX_ELEMENTS}
    values: set[SexCode] = set()
    for name, value in written.items():
        if value is None:
            continue
        mapped = SEX_VALUES.get(value.upper())
        if mapped is None:
            # No value in the reason: quarantine reasons may be logged.
            raise _invalid("is not one of M, F or U", record_ref, name)
        values.add(mapped)
    if len(values) > 1:
        raise _invalid(f"{' and '.join(SEX_ELEMENTS)} disagree", record_ref, SEX_ELEMENTS[0])
    return values.pop() if values else None


def _address(element: etree._Element | None) -> Address | None:
    """A BS7666 address (SAON, PAON, Street, Locality, Town, PostTown) or AddressLines1-5.

    INFERRED element names (CTF specification, from memory; the reference lists only
    ``Address``): check against CTF 25.
    """
    if element is None:
        return None
    lines: list[str] = []
    town: str | None = None
    bs7666 = element.find("BS7666Address")
    if bs7666 is not None:
        building = " ".join(p for p in (_text(bs7666, "PAON"), _text(bs7666, "Street")) if p)
        lines += [p for p in (_text(bs7666, "SAON"), building, _text(bs7666, "Locality")) if p]
        post_town, place = _text(bs7666, "PostTown"), _text(bs7666, "Town")
        town = post_town or place
        if post_town and place and place != post_town:
            lines.append(place)
    address_lines = element.find("AddressLines")
    if address_lines is not None:
        lines += [
            line
            for i in range(1, 6)
            if (line := _text(address_lines, f"AddressLine{i}")) is not None
        ]
    postcode = _text(element, "PostCode")
    if not lines and town is None and postcode is None:
        return None
    return Address(lines=lines, town=town, postcode=postcode)


def _contacts(
    element: etree._Element | None, pupil_address: Address | None, record_ref: str
) -> list[Contact]:
    """``<Contacts><Contact>``: INFERRED children (Order, Title, Forename, Surname,
    Relationship, AddressAsPupil, Address, Phones/Phone/PhoneNo); see the module docs.

    ``lives_with`` is INFERRED from ``AddressAsPupil``: the CTF has no "lives with" item, and a
    contact at the pupil's address is the parent the pupil normally lives with for reg 8.
    """
    contacts: list[tuple[int, Contact]] = []
    for position, contact in enumerate(_all(element, "Contact"), start=1):
        where = f"Contacts/Contact[{position}]"
        name = " ".join(
            p
            for p in (
                _text(contact, "Title"),
                _text(contact, "Forename"),
                _text(contact, "Surname"),
            )
            if p
        )
        if not name:
            raise _invalid("contact has no name", record_ref, f"{where}/Surname")
        order_text = _text(contact, "Order")
        if order_text is None:
            order = position
        elif order_text.isdigit():
            order = int(order_text)
        else:
            raise _invalid(f"{order_text!r} is not a whole number", record_ref, f"{where}/Order")
        at_pupil_address = _flag(
            _text(contact, "AddressAsPupil"), record_ref, f"{where}/AddressAsPupil"
        )
        phones = [
            phone
            for p in _all(contact, "Phones/Phone")
            if (phone := _text(p, "PhoneNo")) is not None
        ]
        contacts.append(
            (
                order,
                Contact(
                    name=name,
                    relationship=_text(contact, "Relationship"),
                    address=pupil_address
                    if at_pupil_address
                    else _address(contact.find("Address")),
                    phone=phones[0] if phones else None,
                    lives_with=at_pupil_address,
                    priority=order,
                ),
            )
        )
    return [c for _, c in sorted(contacts, key=lambda pair: pair[0])]


def _sen(element: etree._Element | None, record_ref: str) -> dict[str, bool]:
    """ehcp / sen_support from the SEN entry with the latest StartDate (the current one)."""
    latest: tuple[date, int, str] | None = None
    for position, sen in enumerate(_all(element, "SEN"), start=1):
        provision = _text(sen, "SENprovision")
        if provision is None:
            continue
        start = (
            _date(_text(sen, "StartDate"), record_ref, f"SENhistory/SEN[{position}]/StartDate")
            or date.min
        )
        candidate = (start, position, provision.upper())
        if latest is None or candidate[:2] > latest[:2]:
            latest = candidate
    provision = latest[2] if latest else None
    return {
        "ehcp": provision in SEN_PROVISION_EHCP,
        "sen_support": provision in SEN_PROVISION_SUPPORT,
    }


def _fsm(element: etree._Element | None, record_ref: str, as_of: date | None) -> bool:
    """Eligible for free school meals on the file's date.

    INFERRED: an FSMinstance covers the file's DateTime (started on or before it, not ended
    before it); a file without a DateTime counts only open-ended instances.
    """
    for position, instance in enumerate(_all(element, "FSMinstance"), start=1):
        where = f"FSMhistory/FSMinstance[{position}]"
        start = _date(_text(instance, "FSMstartDate"), record_ref, f"{where}/FSMstartDate")
        end = _date(_text(instance, "FSMendDate"), record_ref, f"{where}/FSMendDate")
        if as_of is None:
            if end is None:
                return True
            continue
        if (start is None or start <= as_of) and (end is None or end >= as_of):
            return True
    return False


# -- attendance ---------------------------------------------------------------------------------


def _count(
    year: etree._Element, name: str, year_index: int, document: CtfDocument, record_ref: str
) -> int | None:
    value = _text(year, name)
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    document.marks.quarantined.append(
        Quarantined(
            "marks",
            record_ref,
            name,
            f"{value!r} is not a whole number of sessions (YearData {year_index})",
            value,
        )
    )
    return None


def _read_attendance(
    attendance: etree._Element | None,
    document: CtfDocument,
    *,
    pupil_id: str,
    record_ref: str,
    target_laestab: str | None,
) -> None:
    for year_index, year in enumerate(_all(attendance, "YearData"), start=1):
        lea, estab = _text(year, "LEA"), _text(year, "Estab")
        # INFERRED: a YearData block names the school whose register it summarises; one that
        # names another school (attendance carried from a previous school) is not this
        # school's register. A block that names no school is taken as the target's.
        ours = target_laestab is None or not (lea and estab) or f"{lea}{estab}" == target_laestab
        year_ref = f"{record_ref}/YearData[{year_index}]"
        counted = (year_index, document, record_ref)
        document.attendance_years.append(
            CtfYearData(
                pupil_id=pupil_id,
                record_ref=year_ref,
                year=_text(year, "Year"),
                lea=lea,
                estab=estab,
                school_name=_text(year, "SchoolName"),
                sessions_possible=_count(year, "SessionsPossible", *counted),
                sessions_authorised=_count(year, "SessionsAuthorised", *counted),
                sessions_attended=_count(year, "SessionsAttended", *counted),
                sessions_unauthorised=_count(year, "SessionsUnauthorised", *counted),
                marks_imported=ours,
            )
        )
        if not ours:
            continue
        for sessions in _attend_sessions(year):
            _read_marks(
                sessions,
                year_index,
                document,
                pupil_id=pupil_id,
                record_ref=record_ref,
                year_ref=year_ref,
            )


def _attend_sessions(year: etree._Element) -> Iterator[etree._Element]:
    for name in ATTEND_SESSIONS_ELEMENTS:
        yield from year.iterfind(name)


def _read_marks(
    sessions: etree._Element,
    year_index: int,
    document: CtfDocument,
    *,
    pupil_id: str,
    record_ref: str,
    year_ref: str,
) -> None:
    marks_element = sessions.find("AttendanceMarks")
    # Raw text, not _text(): the decoder decides what surrounding whitespace means.
    marks = marks_element.text if marks_element is not None and marks_element.text else ""
    if not marks.strip():
        return
    start_text = _text(sessions, *ATTENDANCE_START_ELEMENTS)
    start: date | None = None
    if start_text is not None:
        try:
            start = date.fromisoformat(start_text[:10])
        except ValueError:
            start = None
    if start is None:
        document.marks.quarantined.append(
            Quarantined(
                "marks",
                record_ref,
                ATTENDANCE_START_ELEMENTS[0],
                f"YearData {year_index}: AttendanceMarks without a valid start date (yyyy-mm-dd), "
                "so no mark can be dated",
                start_text or "",
            )
        )
        return
    try:
        decoded = decode_attendance_marks(start, marks)
    except MisalignedMarksError as error:
        document.marks.quarantined.append(
            Quarantined(
                "marks",
                record_ref,
                "AttendanceMarks",
                f"YearData {year_index}: AttendanceMarks {error}; none of them were imported",
            )
        )
        return
    for bad in decoded.undecodable:
        document.marks.quarantined.append(
            Quarantined(
                "marks",
                record_ref,
                f"AttendanceMarks[{bad.offset}]",
                f"{bad.reason} for {bad.date.isoformat()} {bad.session.value} "
                f"(YearData {year_index})",
                bad.character,
            )
        )
    for entry in decoded.sessions:
        document.marks.records.append(
            Mark(
                pupil_id=pupil_id,
                date=entry.date,
                session=entry.session,
                code=entry.code,
                vendor_code=entry.vendor_code,
                source_ref=f"{year_ref}/AttendanceMarks[{entry.offset}]",
            )
        )
