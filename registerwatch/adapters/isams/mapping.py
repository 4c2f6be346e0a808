"""iSAMS's wire formats and vendor fields -> the common schema's values.

The XML is read safely (no DTD, no entities, no network; the encoding sniffed, never trusted
from the declaration) into flat records (``element_record``: attributes as ``@Name``); its
``<Message>`` error bodies are parsed here for the client to classify. The value helpers turn
iSAMS's local times, flags, dates, sexes and present symbols into schema values for the streams
in ``streams.py``, and ``PlainRows`` works out a plain RegistrationStatus row's values once
per distinct text for ``MarksStream.map_rows``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from lxml import etree

from registerwatch.adapters.base import Batch, build_mark, parse_date, parse_instant
from registerwatch.adapters.base.mapping import is_plain_text, is_plausible_day
from registerwatch.calendar import LONDON
from registerwatch.errors import InvalidRecord
from registerwatch.schema import Mark, Session

if TYPE_CHECKING:
    from registerwatch.adapters.isams.streams import MarksStream


@dataclass(frozen=True)
class IsamsMessage:
    """An iSAMS ``<Message>`` error body."""

    message_id: str
    name: str
    title: str
    description: str


_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*\?>")


def _xml_parser() -> etree.XMLParser:
    # No entity expansion, no DTD loading, no network: MIS responses are untrusted input.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=True,
        encoding="utf-8",
    )


def decode_xml_bytes(data: bytes) -> bytes:
    """The document as UTF-8 bytes with its declaration removed.

    iSAMS error bodies declare ``encoding="utf-16"`` but are ASCII, so the declaration cannot be
    trusted; the encoding is sniffed instead: a BOM, or the NUL pattern of UTF-16 without a BOM,
    else UTF-8 (which ASCII is).
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16")
    elif data.startswith(b"\xef\xbb\xbf"):
        text = data[3:].decode("utf-8")
    elif len(data) >= 4 and data[1:2] == b"\x00" and data[3:4] == b"\x00":
        text = data.decode("utf-16-le")
    elif len(data) >= 4 and data[0:1] == b"\x00" and data[2:3] == b"\x00":
        text = data.decode("utf-16-be")
    else:
        text = data.decode("utf-8")
    return _DECLARATION.sub(b"", text.encode("utf-8"), count=1)


class XmlDocumentError(ValueError):
    """Bytes that are not a usable XML document (malformed, or carrying a DTD)."""


def parse_xml(data: bytes) -> etree._Element:
    """Parse an iSAMS XML body safely; XmlDocumentError if it is malformed or has a DTD."""
    try:
        utf8 = decode_xml_bytes(data)
    except UnicodeDecodeError as exc:
        raise XmlDocumentError(f"not valid UTF-8 or UTF-16 ({exc.reason})") from None
    if re.search(rb"<!DOCTYPE", utf8[:4096], re.IGNORECASE):
        raise XmlDocumentError("the document carries a DTD, which registerwatch refuses")
    try:
        root = etree.fromstring(utf8, _xml_parser())
    except etree.XMLSyntaxError as exc:
        raise XmlDocumentError(f"malformed XML ({exc})") from None
    if root is None:
        raise XmlDocumentError("empty document")
    return root


def parse_message(data: bytes) -> IsamsMessage | None:
    """The ``<Message>`` error in a body, or None when the body is not one."""
    head = data[:512].replace(b"\x00", b"")
    if b"<Message" not in head:
        return None
    try:
        root = parse_xml(data)
    except (XmlDocumentError, ValueError):
        return None
    if root.tag != "Message":
        return None

    def text(tag: str) -> str:
        return (root.findtext(tag) or "").strip()

    return IsamsMessage(
        message_id=text("MessageId"),
        name=text("MessageName"),
        title=text("Title"),
        description=" ".join(text("Description").split()),
    )


def element_record(element: etree._Element) -> dict[str, Any]:
    """An XML record as a flat mapping: attributes as ``@Name``, child elements by tag.

    Unknown children are carried along and ignored by the mapping (iSAMS adds nodes over time:
    see the recorded ``GetCurrentPupilsExtraNode`` example). Empty elements read as None.
    """
    record: dict[str, Any] = {"@" + str(k): str(v) for k, v in element.items()}
    for child in element:
        tag = child.tag
        if type(tag) is not str:
            continue  # comments, processing instructions
        text = child.text
        record[tag] = (text.strip() or None) if text else None
    return record


DEFAULT_PM_CUTOFF = time(12, 0)


# A present code whose letter is one of these means "present": the national symbol depends on
# the session (``/`` morning, ``\`` afternoon), which iSAMS does not record. INFERRED.
PRESENT_SYMBOLS = frozenset({"/", "\\", "PRESENT"})


SESSION_PRESENT = {Session.AM: "/", Session.PM: "\\"}


Sex = Literal["M", "F", "U"]


SEX_CODES: Mapping[str, Sex] = {
    "M": "M",
    "MALE": "M",
    "F": "F",
    "FEMALE": "F",
    "U": "U",
    "UNKNOWN": "U",
    "X": "U",
    "O": "U",
    "OTHER": "U",
}


def session_of(local: datetime, pm_cutoff: time = DEFAULT_PM_CUTOFF) -> Session:
    """AM or PM for a registration time. iSAMS has no session flag: a register at or after the
    cut-off is the afternoon one (the Access Group integration's rule, default midday;
    configurable per school as ``[sync] isams_pm_cutoff``)."""
    return Session.PM if local.time() >= pm_cutoff else Session.AM


def local_datetime(value: Any, *, resource: str, record_ref: str, field: str) -> datetime:
    """An iSAMS local date-time (``2024-09-02T08:40:00``, Europe/London, no offset)."""
    if value in (None, ""):
        raise InvalidRecord(
            f"required field {field!r} is missing",
            resource=resource,
            record_ref=record_ref,
            field=field,
        )
    try:
        return _local(str(value))
    except ValueError:
        raise InvalidRecord(
            f"{value!r} is not a valid date-time",
            resource=resource,
            record_ref=record_ref,
            field=field,
        ) from None


@lru_cache(maxsize=8192)
def _local(value: str) -> datetime:
    # Cached: a month's answer repeats the same few register times tens of thousands of times.
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))  # ValueError if bad
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=LONDON)
    return parsed.astimezone(LONDON)


def parse_flag(value: Any, *, resource: str, record_ref: str, field: str) -> bool:
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "y"):
        return True
    if text in ("0", "false", "no", "n", ""):
        return False
    raise InvalidRecord(
        f"{value!r} is not 0 or 1", resource=resource, record_ref=record_ref, field=field
    )


def optional_date(
    record: Mapping[str, Any], key: str, *, resource: str, record_ref: str
) -> date | None:
    value = record.get(key)
    if value in (None, ""):
        return None
    return parse_date(value, resource=resource, record_ref=record_ref, field=key)


def field_text(record: Mapping[str, Any], key: str) -> str | None:
    value = record.get(key)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def sex_of(record: Mapping[str, Any], key: str, *, resource: str, record_ref: str) -> Sex | None:
    value = field_text(record, key)
    if value is None:
        return None
    sex = SEX_CODES.get(value.upper())
    if sex is None:
        # Personal data: quarantine reasons reach reports, so the value is not quoted.
        raise InvalidRecord(
            "the value is not a recognised gender (M, F or U)",
            resource=resource,
            record_ref=record_ref,
            field=key,
        )
    return sex


# -- the plain RegistrationStatus row, from values worked out once per distinct text ----------


@dataclass
class MappedRows:
    """What ``MarksStream.map_rows`` made of one answer's rows."""

    batch: Batch[Mark] = field(default_factory=Batch)
    later: int = 0  # rows of a later registration period of their session (ignored)
    # id(mark) -> (the row as the MIS sent it, its reference): for Batch.remember.
    rows_of: dict[int, tuple[Mapping[str, Any], str]] = field(default_factory=dict)


class PlainRows:
    """The values of plain rows, each worked out once per distinct text (see ``map_rows``);
    None for anything else, which the general path then maps or quarantines."""

    def __init__(self, stream: MarksStream, latest: date) -> None:
        self.stream = stream
        self.latest = latest
        self.prefix = f"{stream.school_id}:"
        self.whens: dict[Any, tuple[datetime, date, Session] | None] = {}
        self.pupils: dict[Any, str | None] = {}
        self.codes: dict[tuple[Any, Any, Session], tuple[str, str] | None] = {}
        self.instants: dict[Any, tuple[datetime | None] | None] = {}

    def when(self, value: Any) -> tuple[datetime, date, Session] | None:
        try:
            return self.whens[value]
        except KeyError:
            pass
        found: tuple[datetime, date, Session] | None = None
        if value not in (None, ""):
            try:
                parsed = local_datetime(value, resource="", record_ref="", field="")
            except InvalidRecord:
                parsed = None
            if parsed is not None:
                found = (parsed, parsed.date(), session_of(parsed, self.stream.pm_cutoff))
        self.whens[value] = found
        return found

    def period(
        self, record: Mapping[str, Any]
    ) -> tuple[tuple[str, date, Session], datetime] | None:
        """``MarksStream._period``: the row's (pupil, date, session) and time, or None."""
        value = record.get("RegistrationDateTime")
        if type(value) is not str:
            return self.stream.period_of(record)  # not a text from XML: the general way
        pupil = field_text(record, "PupilId")
        found = self.when(value)
        if pupil is None or found is None:
            return None
        when, day, session = found
        return (pupil, day, session), when

    def _plain(self, text: str | None) -> bool:
        return text is None or is_plain_text(text)

    def _in_window(self, day: date) -> bool:
        return is_plausible_day(day, self.latest)

    def pupil_id(self, value: Any) -> str | None:
        if type(value) is not str:
            return None
        try:
            return self.pupils[value]
        except KeyError:
            pass
        text = value.strip()
        pupil_id = f"{self.prefix}{text}" if text else None
        self.pupils[value] = pupil_id if pupil_id is not None and self._plain(pupil_id) else None
        return self.pupils[value]

    def code(self, record: Mapping[str, Any], session: Session) -> tuple[str, str] | None:
        key = (record.get("Code"), record.get("PresentCode"), session)
        if not (_text_or_none(key[0]) and _text_or_none(key[1])):
            return None
        try:
            return self.codes[key]
        except KeyError:
            pass
        try:
            found: tuple[str, str] | None = self.stream.code_of(
                record, session, {"resource": "", "record_ref": ""}
            )
        except InvalidRecord:
            found = None
        if found is not None and not (self._plain(found[0]) and self._plain(found[1])):
            found = None
        self.codes[key] = found
        return found

    def instant(self, value: Any) -> tuple[datetime | None] | None:
        if not _text_or_none(value):
            return None
        try:
            return self.instants[value]
        except KeyError:
            pass
        found: tuple[datetime | None] | None
        try:
            instant = parse_instant(
                value, field="LastUpdated", default_tz=LONDON, resource="", record_ref=""
            )
            plausible = instant is None or self._in_window(instant.date())
            found = (instant,) if plausible else None
        except InvalidRecord:
            found = None
        self.instants[value] = found
        return found

    def mark(self, record: Mapping[str, Any]) -> Mark | None:
        ident = record.get("@Id")
        if type(ident) is not str or not ident.isdigit():
            return None
        value = record.get("RegistrationDateTime")
        if type(value) is not str:
            return None
        found = self.when(value)
        pupil_id = self.pupil_id(record.get("PupilId"))
        if found is None or pupil_id is None or record.get("Registered") != "1":
            return None
        _when, day, session = found
        codes = self.code(record, session)
        recorded = self.instant(record.get("LastUpdated"))
        if codes is None or recorded is None or not self._in_window(day):
            return None
        minutes = record.get("MinutesLate")
        if minutes is None:
            minutes_late = None
        elif type(minutes) is str and minutes.isdigit() and minutes.isascii():
            minutes_late = int(minutes)
        else:
            return None
        comment = field_text(record, "Comment")
        if not self._plain(comment):
            return None
        return build_mark(
            pupil_id=pupil_id,
            date=day,
            session=session,
            code=codes[0],
            vendor_code=codes[1],
            minutes_late=minutes_late,
            comment=comment,
            recorded_at=recorded[0],
            recorded_by=None,
            source_ref=f"{self.stream.name} {ident}",
        )


def _text_or_none(value: Any) -> bool:
    return value is None or type(value) is str
