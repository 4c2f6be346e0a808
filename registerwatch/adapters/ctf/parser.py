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

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import structlog
from lxml import etree

from registerwatch.adapters.ctf.document import (
    ROOT_ELEMENT,
    VERSION_ELEMENTS,
    CtfDocument,
    CtfHeader,
    CtfSchool,
    child_text,
    children,
)
from registerwatch.adapters.ctf.pupils import read_pupil
from registerwatch.errors import InputFileError

log = structlog.get_logger("registerwatch.adapters.ctf")

LONDON = ZoneInfo("Europe/London")


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
    except ValueError:  # found by tests/fuzz: a NUL in "XML text" that does not start with "<"
        raise CtfFileError(
            name or "<string>",
            "is neither XML text (it does not start with '<') nor a file path",
        ) from None
    except OSError as exc:
        raise CtfFileError(
            str(path),
            f"cannot be read ({exc.strerror or exc}) — check the path and its permissions",
        ) from None
    return raw, str(path), name or path.name, None


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
    pupils = children(root.find("CTFpupilData"), "Pupil")
    for index, element in enumerate(pupils, start=1):
        read_pupil(
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
        document_name=child_text(header, "DocumentName"),
        version=child_text(header, *VERSION_ELEMENTS),
        created=_datetime_or_none(child_text(header, "DateTime")),
        qualifier=child_text(header, "DocumentQualifier"),
        supplier_id=child_text(header, "SupplierID"),
        source_school=_school(header.find("SourceSchool")),
        dest_school=_school(header.find("DestSchool")),
    )


def _school(element: etree._Element | None) -> CtfSchool | None:
    if element is None:
        return None
    return CtfSchool(
        lea=child_text(element, "LEA"),
        estab=child_text(element, "Estab"),
        name=child_text(element, "SchoolName"),
        academic_year=child_text(element, "AcademicYear"),
        urn=child_text(element, "URN"),
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
