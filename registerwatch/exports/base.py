"""What every return shares: the rendered artefact, XSD validation, and writing it out.

A return's ``render.py`` is pure and deterministic (stable order, explicit encoding, the clock
passed in) and produces a ``RenderedReturn``. ``validate`` checks the XML against the return's
own XSD in ``exports/schemas/`` and turns lxml's error log into one ExportValidationError listing
every problem; ``write_return`` writes the XML and the CSV atomically with mode 0600, and only
after validation passed. Submission (``outbox/``) is separate and takes only validated
artefacts.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path

from lxml import etree

from registerwatch.errors import ExportValidationError
from registerwatch.files import spreadsheet_safe, write_private

SCHEMA_PACKAGE = "registerwatch.exports.schemas"


@dataclass(frozen=True)
class ReturnRecordKey:
    """Identifies what one record answers, for the outbox idempotency key."""

    pupil_id: str | None
    # The episode's first date for LA returns (admission / leaving date for new-pupil /
    # deletion); "<date>/<AM|PM>" for a dfe-daily record (the outbox keys dfe-daily by period).
    episode: str | None


@dataclass
class RenderedReturn:
    """One rendered return for one school (and one date, term or episode set)."""

    kind: str  # e.g. "dfe-daily", "la-sickness"
    school_id: str
    schema_name: str  # file name in exports/schemas, e.g. "dfe-daily-1.xsd"
    xml: bytes
    csv_header: Sequence[str]
    csv_rows: Sequence[Sequence[object]]
    file_stem: str  # e.g. "dfe-daily_oakfield_2025-11-28"
    records: list[ReturnRecordKey] = field(default_factory=list)
    period: str = ""  # the date, term or as-of date the return covers

    @property
    def record_count(self) -> int:
        return len(self.records)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.xml).hexdigest()

    def csv_bytes(self) -> bytes:
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(self.csv_header)
        writer.writerows([_csv_cell(v) for v in row] for row in self.csv_rows)
        return buffer.getvalue().encode("utf-8")


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    return spreadsheet_safe(value) if isinstance(value, str) else value


@dataclass(frozen=True)
class WrittenReturn:
    kind: str
    school_id: str
    xml_path: Path
    csv_path: Path
    schema: str
    records: int
    sha256: str

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "school": self.school_id,
            "xml": str(self.xml_path),
            "csv": str(self.csv_path),
            "schema": self.schema,
            "records": self.records,
            "sha256": self.sha256,
        }


@cache
def load_schema(schema_name: str) -> etree.XMLSchema:
    """The XSD shipped in ``exports/schemas`` (parsed once; no network, no entities)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    source = resources.files(SCHEMA_PACKAGE).joinpath(schema_name)
    if not source.is_file():
        raise ExportValidationError(f"no XSD named {schema_name!r} in {SCHEMA_PACKAGE}")
    # base_url lets a return's XSD xs:include the shared types beside it (la-common-1.xsd)
    # wherever the package is installed.
    with source.open("rb") as handle:
        return etree.XMLSchema(etree.parse(handle, parser, base_url=str(source)))


# lxml quotes offending values in XSD messages ("The value 'K8812...' is not accepted",
# "Duplicate key-sequence ['K8812...', 'AM']"); a value may be a UPN, a name or a date of birth,
# and these messages reach terminals, job logs and the outbox's last_error.
_QUOTED_VALUE = re.compile(r"(The value )'[^']*'")
_KEY_SEQUENCE = re.compile(r"(key-sequence )\[[^\]]*\]")


def redact_values(message: str) -> str:
    """An XSD error message with the offending values cut out."""
    return _KEY_SEQUENCE.sub(r"\1[values withheld]", _QUOTED_VALUE.sub(r"\1(withheld)", message))


def validate(rendered: RenderedReturn) -> None:
    """Raise ExportValidationError listing every problem; return when the XML is valid."""
    schema = load_schema(rendered.schema_name)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        document = etree.fromstring(rendered.xml, parser)
    except etree.XMLSyntaxError as exc:
        raise ExportValidationError(
            f"{rendered.kind} for school {rendered.school_id!r} is not well-formed XML",
            errors=[redact_values(str(exc))],
        ) from None
    if schema.validate(document):
        return
    problems = [f"line {e.line}: {redact_values(e.message)}" for e in schema.error_log]  # type: ignore[attr-defined]
    raise ExportValidationError(
        f"{rendered.kind} for school {rendered.school_id!r} does not validate against "
        f"{rendered.schema_name}; nothing was written",
        errors=problems,
    )


def write_return(rendered: RenderedReturn, directory: str | Path) -> WrittenReturn:
    """Validate, then write ``<stem>.xml`` and ``<stem>.csv`` (atomic, mode 0600)."""
    validate(rendered)
    folder = Path(directory)
    xml_path = write_private(folder / f"{rendered.file_stem}.xml", rendered.xml)
    csv_path = write_private(folder / f"{rendered.file_stem}.csv", rendered.csv_bytes())
    return WrittenReturn(
        kind=rendered.kind,
        school_id=rendered.school_id,
        xml_path=xml_path,
        csv_path=csv_path,
        schema=rendered.schema_name,
        records=rendered.record_count,
        sha256=rendered.sha256,
    )


def xml_bytes(root: etree._Element) -> bytes:
    """Serialise deterministically: UTF-8, declaration, pretty-printed, no timestamps."""
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def sub(parent: etree._Element, tag: str, text: object | None = None) -> etree._Element:
    """Append a child element; ``None`` text leaves it empty (callers omit optional ones)."""
    child = etree.SubElement(parent, tag)
    if text is not None:
        child.text = _text(text)
    return child


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def yes_no(value: bool) -> str:
    return "Y" if value else "N"


def sorted_by(items: Iterable[object], *keys: str) -> list[object]:
    return sorted(items, key=lambda item: tuple(getattr(item, k) or "" for k in keys))
