"""Queuing: a validated artefact becomes outbox items, each once, each with a key.

What one item is:

- ``dfe-daily``: the whole file, one per school and date (pupil None, episode = the date). The
  DfE takes the day's file, not pupils one by one.
- An LA notification: one item per pupil episode (pupil id and the episode, usually its first
  date). The LA's duty is per pupil, and a re-render tomorrow that lists yesterday's pupil again
  plus a new one must send only the new one: a key over the whole file would change with every
  new pupil and resend the old ones. A rendered file holding several records is split into one
  artefact per record (:func:`split_records`), each validated again before it is queued.

The idempotency key is derived from (return kind, school, pupil, episode) and nothing else: not
the bytes, which change with the ``generated_at`` stamped in the header, and not the schema
version. Queuing the same return again finds the key already there and leaves the stored item
untouched (``created=False``), whatever state it is in, so nothing is sent twice. The SHA-256
stored with the item is of the exact bytes that will be sent.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from lxml import etree

from registerwatch.errors import SubmissionError
from registerwatch.exports import base
from registerwatch.exports.base import RenderedReturn, ReturnRecordKey
from registerwatch.logging import get_logger
from registerwatch.outbox.transports import DFE_RETURNS, SUBMITTED_RETURNS
from registerwatch.store import OutboxItem, Store

log = get_logger(__name__)

_KEY_DIGEST_CHARS = 32  # 128 bits of SHA-256: collisions are not a practical concern


def idempotency_key(
    return_kind: str, school_id: str, pupil_id: str | None, episode: str | None
) -> str:
    """``<kind>.<school>.<32 hex>``: readable where it is safe to be (kind and school are slugs),
    a digest where it is not (a pupil id may hold any character). Also the file name, the
    email Message-ID's local part and the HTTP Idempotency-Key, so it stays a dot-atom."""
    parts = json.dumps([return_kind, school_id, pupil_id, episode], separators=(",", ":"))
    digest = hashlib.sha256(parts.encode("utf-8")).hexdigest()[:_KEY_DIGEST_CHARS]
    return f"{return_kind}.{school_id}.{digest}"


@dataclass(frozen=True)
class QueuedItem:
    """One outbox item for a queued return: the stored item and what this call did to it."""

    item: OutboxItem
    created: bool  # False: the key was already queued (or sent); the stored item was kept
    differs: bool = False  # the stored artefact's bytes differ from this render's

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.item.id,
            "return_kind": self.item.return_kind,
            "school_id": self.item.school_id,
            "pupil_id": self.item.pupil_id,
            "episode": self.item.episode,
            "idempotency_key": self.item.idempotency_key,
            "sha256": self.item.sha256,
            "state": self.item.state,
            "created": self.created,
            "differs": self.differs,
        }


@dataclass(frozen=True)
class _Part:
    rendered: RenderedReturn
    pupil_id: str | None
    episode: str | None
    whole: bool  # the part is the rendered file itself (so artefact_path describes it)


def queue_return(
    store: Store,
    rendered: RenderedReturn,
    *,
    artefact_path: str | Path | None = None,
    at: datetime | None = None,
) -> list[QueuedItem]:
    """Validate ``rendered`` and queue it: one item per artefact (see the module docs).

    Raises ExportValidationError (nothing queued) when the XML, or any per-record artefact split
    from it, does not validate; SubmissionError when the return is not one the outbox submits
    or its records cannot be told apart. All items of one call are queued in one transaction.
    ``artefact_path`` is where the caller wrote the file (``write_return``); it is stored with
    the item that is that whole file, and a CSV beside it is attached when it is sent.
    """
    if rendered.kind not in SUBMITTED_RETURNS:
        raise SubmissionError(
            f"{rendered.kind} for school {rendered.school_id!r} is not submitted through the "
            f"outbox (only {', '.join(SUBMITTED_RETURNS)} are)"
        )
    base.validate(rendered)
    parts = _parts(rendered)
    for part in parts:
        if not part.whole:
            base.validate(part.rendered)
    queued: list[QueuedItem] = []
    with store.transaction() as conn:
        for part in parts:
            key = idempotency_key(rendered.kind, rendered.school_id, part.pupil_id, part.episode)
            item, created = store.enqueue_outbox(
                return_kind=rendered.kind,
                school_id=rendered.school_id,
                idempotency_key=key,
                payload=part.rendered.xml,
                sha256=part.rendered.sha256,
                pupil_id=part.pupil_id,
                episode=part.episode,
                artefact_path=str(artefact_path) if artefact_path and part.whole else None,
                at=at,
                conn=conn,
            )
            queued.append(QueuedItem(item, created, differs=item.sha256 != part.rendered.sha256))
    log.info(
        "outbox.queued",
        return_kind=rendered.kind,
        school=rendered.school_id,
        created=sum(q.created for q in queued),
        already_queued=sum(not q.created for q in queued),
    )
    return queued


def _parts(rendered: RenderedReturn) -> list[_Part]:
    if rendered.kind in DFE_RETURNS:
        return [_Part(rendered, None, _day_of(rendered), whole=True)]
    records = rendered.records
    where = f"{rendered.kind} for school {rendered.school_id!r}"
    missing = [i for i, r in enumerate(records) if not r.pupil_id]
    if missing:
        raise SubmissionError(
            f"{where}: record {missing[0] + 1} has no pupil id; an LA "
            "notification is about one pupil (fix the return's render)"
        )
    seen: set[tuple[str | None, str | None]] = set()
    for r in records:
        if (r.pupil_id, r.episode) in seen:
            raise SubmissionError(
                f"{where}: pupil {r.pupil_id} episode {r.episode} appears twice; each pupil "
                "episode must be one record (fix the return's render)"
            )
        seen.add((r.pupil_id, r.episode))
    if len(records) == 1:
        return [_Part(rendered, records[0].pupil_id, records[0].episode, whole=True)]
    return [
        _Part(part, part.records[0].pupil_id, part.records[0].episode, whole=False)
        for part in split_records(rendered)
    ]


def _day_of(rendered: RenderedReturn) -> str:
    """The date a dfe-daily file covers: its ``period``, else the one episode its records share."""
    if rendered.period:
        return rendered.period
    days = {r.episode for r in rendered.records if r.episode}
    if len(days) == 1:
        return days.pop()
    raise SubmissionError(
        f"{rendered.kind} for school {rendered.school_id!r} does not say which day it covers "
        f"(period is empty and its records name {len(days)} different days); set period"
    )


_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, remove_blank_text=True
)


def split_records(rendered: RenderedReturn) -> list[RenderedReturn]:
    """One RenderedReturn per record of a multi-record LA return, each a complete document: the
    root, the header and that one record.

    A record is the element holding a ``RecordKey`` (``PupilRef`` and ``Episode``, as in
    ``la-common-1.xsd``); each ``rendered.records`` entry must match exactly one of them, by
    value, not by position. The header's ``RecordCount`` becomes 1 (the XSDs cannot check it, so
    nothing else would). CSV rows go with their record when there is one row per record.
    Raises SubmissionError when the records cannot be matched: a split is never guessed.
    """
    where = f"{rendered.kind} for school {rendered.school_id!r}"
    count = len(rendered.records)
    parts: list[RenderedReturn] = []
    rows_match = len(rendered.csv_rows) == count
    for index, key in enumerate(rendered.records):
        # A fresh tree per part: each keeps one record and drops the others.
        root = etree.fromstring(rendered.xml, _PARSER)
        elements = _record_elements(root, rendered.records, where)
        for position, element in enumerate(elements):
            if position != index:
                parent = element.getparent()
                assert parent is not None  # a record is never the root
                parent.remove(element)
        for counter in root.iter("RecordCount"):
            if (counter.text or "").strip() == str(count):
                counter.text = "1"
        parts.append(
            replace(
                rendered,
                xml=base.xml_bytes(root),
                csv_rows=[rendered.csv_rows[index]] if rows_match else [],
                file_stem=f"{rendered.file_stem}.{index + 1}",
                records=[ReturnRecordKey(key.pupil_id, key.episode)],
            )
        )
    return parts


def _record_elements(
    root: etree._Element, records: list[ReturnRecordKey], where: str
) -> list[etree._Element]:
    """The record elements in ``records`` order, matched on their RecordKey."""
    found: dict[tuple[str | None, str | None], list[etree._Element]] = {}
    for element in root.iter():
        if isinstance(element.tag, str) and element.find("RecordKey") is not None:
            key = (element.findtext("RecordKey/PupilRef"), element.findtext("RecordKey/Episode"))
            found.setdefault(key, []).append(element)
    matched = [found.get((r.pupil_id, r.episode), []) for r in records]
    if sum(len(v) for v in found.values()) != len(records) or any(len(m) != 1 for m in matched):
        raise SubmissionError(
            f"{where}: cannot split it into one artefact per pupil episode: its records list "
            f"({len(records)}) does not match the RecordKey elements in the XML "
            f"({sum(len(v) for v in found.values())}) one to one (fix the return's render, or "
            "render one RenderedReturn per pupil episode)"
        )
    return [m[0] for m in matched]
