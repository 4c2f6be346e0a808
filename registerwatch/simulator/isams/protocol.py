"""What iSAMS's wire looks like: paths, Batch method names, the ``<Message>`` error bodies,
and the XML and date-time helpers the document and the app share.

OBSERVED and INFERRED as the package docstring says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from xml.sax.saxutils import escape

from lxml import etree

from registerwatch.simulator.common import london_wall_clock
from registerwatch.simulator.server import Response

TOKEN_PATH = "/auth/connect/token"
STUDENTS_PATH = "/api/students"
BATCH_PATH = "/api/batch/1.0/xml.ashx"

# OBSERVED vendor default ("API Key Cache Expiry", 24 hours).
ISAMS_DEFAULT_CACHE_SECONDS = 86_400
DEFAULT_PAGE_SIZE = 50  # INFERRED: iSAMS documents no page size
MAX_PAGE_SIZE = 1000  # INFERRED cap

PUPILS = "Pupil_GetCurrentPupils"
PRESENT_CODES = "Registration_GetPresentCodes"
REGISTRATION_STATUS = "Registration_GetRegistrationStatus"
TERMS = "School_GetSchoolTerms"
AUDIT = "Registration_GetRegistrationAudit"  # INFERRED: no vendor documents an audit resource

# Methods that refuse to run without a date filter, and the filter element each reads.
FILTERED_METHODS = {REGISTRATION_STATUS: "RegistrationStatus", AUDIT: "RegistrationAudit"}
# How iSAMS names a method in the FiltersRequiredException text ("SchoolReports - GetReports").
DISPLAY_NAME = {
    REGISTRATION_STATUS: "Registration - GetRegistrationStatus",
    AUDIT: "Registration - GetRegistrationAudit",
}

# INFERRED: a school's present-code table. iSAMS marks presence by a present-code id, not a
# letter; "Present" stands for both / (AM) and \ (PM).
PRESENT_CODE_TABLE: tuple[tuple[int, str, str], ...] = ((1, "/", "Present"), (2, "L", "Late"))
PRESENT_ID = {"/": 1, "\\": 1, "L": 2}


def message_body(message_id: str, title: str, description: str) -> bytes:
    """An iSAMS ``<Message>`` in the recorded examples' exact shape: a UTF-16 declaration over
    ASCII bytes, two-space indents, LF line ends, no final newline."""
    return (
        '<?xml version="1.0" encoding="utf-16"?>\n<Message>\n'
        f"  <MessageId>{escape(message_id)}</MessageId>\n"
        f"  <MessageName>{escape(message_id)}</MessageName>\n"
        f"  <Title>{escape(title)}</Title>\n"
        f"  <Description>{escape(description)}</Description>\n"
        "</Message>"
    ).encode("ascii", "xmlcharrefreplace")


DEADLOCK_DESCRIPTION = (
    "Transaction (Process ID 118) was deadlocked on lock resources with "
    "another process and has been chosen as the deadlock victim. Rerun the "
    "transaction."
)


def xml_response(status: int, body: bytes, **headers: str) -> Response:
    return Response(status=status, body=body, content_type="text/xml", headers=dict(headers))


def message(status: int, message_id: str, title: str, description: str, **headers: str) -> Response:
    return xml_response(status, message_body(message_id, title, description), **headers)


@dataclass(frozen=True)
class Corruption:
    """One record the MALFORMED fault broke: where, which field, and the truth it stood for."""

    resource: str
    record_ref: str
    field: str
    truth: Any  # a Pupil id, or a (pupil id, date, session) mark key, or an amendment


def child(parent: etree._Element, tag: str, value: str | None) -> None:
    if value is not None:
        etree.SubElement(parent, tag).text = value


# What lxml refuses in text ("All strings must be XML compatible"): C0 controls other than tab,
# line feed and carriage return, surrogates, and the two non-characters U+FFFE and U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})


def xml_text(value: str) -> str:
    """``value`` as element text, escaped exactly as lxml escapes it; ValueError, as lxml
    raises, for characters XML cannot carry."""
    if value.isprintable() and "&" not in value and "<" not in value and ">" not in value:
        return value  # nearly every value: ids, times, codes (no control is printable)
    if _NOT_XML.search(value):
        raise ValueError(
            "All strings must be XML compatible: Unicode or ASCII, no NULL bytes or control "
            "characters"
        )
    return value.translate(_ESCAPES)


def local_naive(instant: datetime | None) -> str | None:
    """An instant as iSAMS writes it: Europe/London wall time, no offset."""
    if instant is None:
        return None
    return london_wall_clock(instant).isoformat()


def term_name(start: date) -> str:
    return "Autumn" if start.month >= 8 else "Spring" if start.month <= 3 else "Summer"


def date_filter(filters: etree._Element | None, name: str) -> tuple[date, date] | str | None:
    """The StartDate/EndDate of filter ``name``: None when absent, a .NET-style error text when
    unreadable. Accepts the official form (``<Registration><RegistrationStatus .../>``) and the
    variants seen in the wild (``<RegistrationManager>``, ``<RegistrationStatuses>`` wrappers,
    lower-case attribute names); unknown nodes are ignored."""
    if filters is None:
        return None
    for element in filters.iter(name):
        attrs = {str(k).lower(): str(v) for k, v in element.attrib.items()}
        if "startdate" not in attrs or "enddate" not in attrs:
            continue
        try:
            return (
                date.fromisoformat(attrs["startdate"][:10]),
                date.fromisoformat(attrs["enddate"][:10]),
            )
        except ValueError:
            return "String was not recognized as a valid DateTime."
    return None
