"""Writing the parts every LA return shares, in XML (lxml) and in CSV cells.

The element names and order here are those of ``exports/schemas/la-common-1.xsd``; each return's
XSD includes that file. A missing item (items.Missing) is written as an empty nil element with
its status, ``<DOB xsi:nil="true" status="not-held"/>``: the XSD declares such elements
nillable, so an empty element that is *not* marked nil still fails its type (a UPN must match its
pattern, an address must have a part), and a nil one may carry no content.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from lxml import etree

from registerwatch.exports.base import (
    RenderedReturn,
    ReturnRecordKey,
    sub,
    xml_bytes,
    yes_no,
)
from registerwatch.exports.la_common.inputs import ReturnHeader
from registerwatch.exports.la_common.items import (
    NOT_HELD,
    AddressItem,
    Item,
    Missing,
    ParentItems,
    PupilItems,
)
from registerwatch.exports.la_common.reference import SCHEMA_VERSION, schema_name
from registerwatch.schema import SessionRef

XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"
_NIL: Final = f"{{{XSI}}}nil"


def new_root(tag: str, header: ReturnHeader, record_count: int) -> etree._Element:
    """The document element with its Header; records go in the returned root's ``Records``."""
    root = etree.Element(tag, nsmap={"xsi": XSI})
    head = sub(root, "Header")
    sub(head, "ReturnKind", header.kind)
    sub(head, "SchemaVersion", SCHEMA_VERSION)
    sub(head, "GeneratedAt", header.generated_at_utc)
    sub(head, "AsOf", header.as_of)
    school = sub(head, "School")
    sub(school, "LA", header.la_code)
    sub(school, "Estab", header.estab)
    sub(school, "URN", header.urn)
    sub(school, "Name", header.school_name)
    sub(head, "RecordCount", record_count)
    sub(root, "Records")
    return root


def records_of(root: etree._Element) -> etree._Element:
    records = root.find("Records")
    assert records is not None  # new_root made it
    return records


def missing(parent: etree._Element, tag: str, item: Missing) -> etree._Element:
    element = sub(parent, tag)
    element.set(_NIL, "true")
    element.set("status", item.status)
    return element


def item(parent: etree._Element, tag: str, value: Item) -> etree._Element:
    if isinstance(value, Missing):
        return missing(parent, tag, value)
    return sub(parent, tag, value)


def optional_item(parent: etree._Element, tag: str, value: str | None) -> None:
    if value is not None:
        sub(parent, tag, value)


def address(parent: etree._Element, tag: str, value: AddressItem | Missing) -> None:
    if isinstance(value, Missing):
        missing(parent, tag, value)
        return
    element = sub(parent, tag)
    for line in value.lines:
        sub(element, "Line", line)
    optional_item(element, "Town", value.town)
    optional_item(element, "Postcode", value.postcode)


def record_key(parent: etree._Element, key: ReturnRecordKey) -> None:
    element = sub(parent, "RecordKey")
    sub(element, "PupilRef", key.pupil_id)
    sub(element, "Episode", key.episode)


def pupil(parent: etree._Element, items: PupilItems) -> None:
    element = sub(parent, "Pupil")
    item(element, "UPN", items.upn)
    item(element, "LegalSurname", items.legal_surname)
    item(element, "LegalForename", items.legal_forename)
    optional_item(element, "MiddleNames", items.middle_names)
    optional_item(element, "PreferredSurname", items.preferred_surname)
    optional_item(element, "PreferredForename", items.preferred_forename)
    item(element, "Sex", items.sex)
    item(element, "DOB", items.dob)
    item(element, "NCYear", items.nc_year)
    address(element, "Address", items.address)


def parents(
    parent: etree._Element, tag: str, value: list[ParentItems] | Missing, *, with_lives_with: bool
) -> None:
    if isinstance(value, Missing):
        missing(parent, tag, value)
        return
    element = sub(parent, tag)
    for p in value:
        entry = sub(element, "Parent")
        item(entry, "Name", p.name)
        optional_item(entry, "Relationship", p.relationship)
        address(entry, "Address", p.address)
        item(entry, "EmergencyPhone", p.phone)
        if with_lives_with:
            sub(entry, "LivesWith", yes_no(p.lives_with))


def session_date(parent: etree._Element, tag: str, ref: SessionRef) -> None:
    sub(parent, tag, ref.date).set("session", ref.session.value)


def session_counts(parent: etree._Element, counts: Sequence[tuple[str, int]]) -> None:
    """``<Sessions><Count code="G">20</Count>...</Sessions>``; nil when the store holds no
    register entries for the episode any more."""
    if not counts:
        missing(parent, "Sessions", NOT_HELD)
        return
    element = sub(parent, "Sessions")
    for code, n in counts:
        sub(element, "Count", n).set("code", code)


def finish(
    root: etree._Element,
    header: ReturnHeader,
    *,
    keys: list[ReturnRecordKey],
    csv_header: Sequence[str],
    csv_rows: list[Sequence[object]],
) -> RenderedReturn:
    return RenderedReturn(
        kind=header.kind,
        school_id=header.school_id,
        schema_name=schema_name(header.kind),
        xml=xml_bytes(root),
        csv_header=csv_header,
        csv_rows=csv_rows,
        file_stem=f"{header.kind}_{header.school_id}_{header.as_of.isoformat()}",
        records=keys,
        period=header.as_of.isoformat(),
    )


# -- CSV: one row per record, for people --------------------------------------------------------

PUPIL_COLUMNS: Final = (
    "upn",
    "legal_surname",
    "legal_forename",
    "middle_names",
    "preferred_surname",
    "preferred_forename",
    "sex",
    "dob",
    "nc_year",
    "address",
)


def pupil_cells(items: PupilItems) -> list[str]:
    return [
        str(items.upn),
        str(items.legal_surname),
        str(items.legal_forename),
        items.middle_names or "",
        items.preferred_surname or "",
        items.preferred_forename or "",
        str(items.sex),
        str(items.dob),
        str(items.nc_year),
        str(items.address),
    ]


def parents_cell(value: list[ParentItems] | Missing, *, with_lives_with: bool) -> str:
    """``Name (Relationship), address, tel 0770...; lives with: Y | ...`` per parent."""
    if isinstance(value, Missing):
        return str(value)
    parts = []
    for p in value:
        who = f"{p.name} ({p.relationship})" if p.relationship else str(p.name)
        text = f"{who}; address: {p.address}; tel: {p.phone}"
        if with_lives_with:
            text += f"; lives with: {yes_no(p.lives_with)}"
        parts.append(text)
    return " | ".join(parts)


def counts_cell(counts: Sequence[tuple[str, int]]) -> str:
    return " ".join(f"{code}={n}" for code, n in counts) if counts else str(NOT_HELD)
