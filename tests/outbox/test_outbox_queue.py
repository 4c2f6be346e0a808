"""Queuing: only valid artefacts, one item per pupil episode (LA) or per school and day (DfE),
and never a second item for the same key."""

from __future__ import annotations

from datetime import timedelta

import pytest
from lxml import etree
from outbox_support import NOW, TEST_SCHEMAS, dfe_return, la_return

from registerwatch.errors import ExportValidationError, SubmissionError
from registerwatch.exports.base import RenderedReturn, ReturnRecordKey, write_return
from registerwatch.outbox import idempotency_key, queue_return, split_records

PUPILS = [
    ("oakfield-p1", "2025-09-15"),
    ("oakfield-p2", "2025-09-22"),
    ("oakfield-p3", "2025-09-29"),
]


def pupils_in(xml: bytes) -> list[tuple[str, str]]:
    root = etree.fromstring(xml)
    return [
        (r.findtext("RecordKey/PupilRef"), r.findtext("RecordKey/Episode"))
        for r in root.iterfind("Records/Record")
    ]


def test_the_key_depends_on_kind_school_pupil_and_episode_only():
    key = idempotency_key("la-sickness", "oakfield", "oakfield-p1", "2025-09-15")
    assert key == idempotency_key("la-sickness", "oakfield", "oakfield-p1", "2025-09-15")
    assert key.startswith("la-sickness.oakfield.") and len(key.rsplit(".", 1)[1]) == 32
    others = {
        idempotency_key("la-cme", "oakfield", "oakfield-p1", "2025-09-15"),
        idempotency_key("la-sickness", "brook", "oakfield-p1", "2025-09-15"),
        idempotency_key("la-sickness", "oakfield", "oakfield-p2", "2025-09-15"),
        idempotency_key("la-sickness", "oakfield", "oakfield-p1", "2025-09-16"),
        idempotency_key("la-sickness", "oakfield", None, "2025-09-15"),
    }
    assert key not in others and len(others) == 5


def test_queuing_the_same_return_twice_creates_one_item(store):
    rendered = la_return(PUPILS[:1])
    first = queue_return(store, rendered, at=NOW)
    assert [(q.created, q.differs) for q in first] == [(True, False)]
    # Rendered again the next day: the header's timestamp changes the bytes, not the key.
    again = la_return(PUPILS[:1], generated=NOW + timedelta(days=1))
    assert again.sha256 != rendered.sha256
    second = queue_return(store, again, at=NOW + timedelta(days=1))
    assert [(q.created, q.differs) for q in second] == [(False, True)]
    items = store.outbox_items()
    assert len(items) == 1
    item = items[0]
    assert second[0].item == item
    assert item.payload == rendered.xml and item.sha256 == rendered.sha256  # the first kept
    assert (
        item.return_kind,
        item.school_id,
        item.pupil_id,
        item.episode,
        item.state,
        item.attempts,
    ) == ("la-sickness", "oakfield", "oakfield-p1", "2025-09-15", "queued", 0)
    assert item.idempotency_key == idempotency_key(
        "la-sickness", "oakfield", "oakfield-p1", "2025-09-15"
    )


def test_an_item_already_sent_is_not_queued_again(store):
    [queued] = queue_return(store, la_return(PUPILS[:1]), at=NOW)
    store.update_outbox(queued.item.id, state="acknowledged", receipt="LA-1", at=NOW)
    [again] = queue_return(store, la_return(PUPILS[:1]), at=NOW)
    assert not again.created and again.item.state == "acknowledged"
    assert store.outbox_items(state="queued") == []


def test_an_invalid_artefact_is_never_queued(store):
    bad = la_return([("oakfield-p1", "not-a-date")])
    with pytest.raises(ExportValidationError) as caught:
        queue_return(store, bad, at=NOW)
    assert any("Episode" in e for e in caught.value.errors)
    assert store.outbox_items() == []


def test_a_multi_record_la_return_is_one_item_per_pupil_episode(store):
    rendered = la_return(PUPILS)
    queued = queue_return(store, rendered, artefact_path="/exports/whole.xml", at=NOW)
    assert [q.created for q in queued] == [True, True, True]
    items = store.outbox_items()
    assert [(i.pupil_id, i.episode) for i in items] == PUPILS
    for item, pupil in zip(items, PUPILS, strict=True):
        assert pupils_in(item.payload) == [pupil]  # its own record only
        header = etree.fromstring(item.payload).find("Header")
        assert (header.findtext("School"), header.findtext("RecordCount")) == ("oakfield", "1")
        assert item.artefact_path is None  # the written file holds all three, not this one
    assert len({i.idempotency_key for i in items}) == 3

    # Tomorrow's render lists two of them again and a new pupil: only the new one is queued.
    tomorrow = la_return(
        [PUPILS[1], PUPILS[2], ("oakfield-p4", "2025-10-06")], generated=NOW + timedelta(days=1)
    )
    again = queue_return(store, tomorrow, at=NOW + timedelta(days=1))
    assert [q.created for q in again] == [False, False, True]
    assert len(store.outbox_items()) == 4


def test_a_single_record_return_keeps_its_written_artefact_path(store, tmp_path):
    rendered = la_return(PUPILS[:1], kind="la-new-pupil")
    written = write_return(rendered, tmp_path / "exports")
    [queued] = queue_return(store, rendered, artefact_path=written.xml_path, at=NOW)
    assert queued.item.artefact_path == str(written.xml_path)
    assert queued.item.payload == written.xml_path.read_bytes()


def test_split_records_keeps_the_header_and_pairs_csv_rows():
    parts = split_records(la_return(PUPILS))
    assert [p.records[0].pupil_id for p in parts] == ["oakfield-p1", "oakfield-p2", "oakfield-p3"]
    assert [p.csv_rows for p in parts] == [[list(p)] for p in PUPILS]
    assert parts[0].xml.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert [child.tag for child in etree.fromstring(parts[2].xml)] == ["Header", "Records"]
    assert pupils_in(parts[2].xml) == [PUPILS[2]]


def test_dfe_daily_is_one_item_per_school_and_day(store):
    day = dfe_return("2025-10-06", [("oakfield-p1", "/"), ("oakfield-p2", "N")])
    [queued] = queue_return(store, day, at=NOW)
    assert (queued.item.pupil_id, queued.item.episode) == (None, "2025-10-06")
    assert queued.item.payload == day.xml
    assert queued.item.idempotency_key == idempotency_key(
        "dfe-daily", "oakfield", None, "2025-10-06"
    )
    corrected = dfe_return("2025-10-06", [("oakfield-p1", "/"), ("oakfield-p2", "I")])
    [again] = queue_return(store, corrected, at=NOW)
    assert (again.created, again.differs) == (False, True)
    [other_day] = queue_return(store, dfe_return("2025-10-07", [("oakfield-p1", "/")]), at=NOW)
    assert other_day.created and len(store.outbox_items()) == 2


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: setattr(r, "kind", "census-attendance"), "not submitted through the outbox"),
        (lambda r: r.records.append(r.records[0]), "appears twice"),
        (
            lambda r: r.records.__setitem__(0, ReturnRecordKey(None, "2025-09-15")),
            "has no pupil id",
        ),
    ],
)
def test_returns_the_outbox_cannot_key_are_refused(store, change, message):
    rendered: RenderedReturn = la_return(PUPILS[:2])
    change(rendered)
    with pytest.raises(SubmissionError, match=message):
        queue_return(store, rendered, at=NOW)
    assert store.outbox_items() == []


@pytest.mark.parametrize(
    "records",
    [
        [
            ReturnRecordKey("oakfield-p1", "2025-09-15"),
            ReturnRecordKey("oakfield-p9", "2025-09-01"),
        ],
        [
            ReturnRecordKey("oakfield-p1", "2025-09-15"),
            ReturnRecordKey("oakfield-p2", "2025-09-22"),
            ReturnRecordKey("oakfield-p3", "2025-09-29"),
        ],
    ],
)
def test_records_that_do_not_match_the_xml_are_refused_not_guessed(store, records):
    rendered = la_return(PUPILS[:2])
    rendered.records[:] = records
    with pytest.raises(SubmissionError, match="does not match the RecordKey elements"):
        queue_return(store, rendered, at=NOW)
    assert store.outbox_items() == []


def test_a_split_part_that_does_not_validate_stops_the_whole_return(store, monkeypatch):
    # A schema wanting at least two pupils accepts the whole file but not a part of it.
    monkeypatch.setitem(
        TEST_SCHEMAS,
        "test-la-1.xsd",
        TEST_SCHEMAS["test-la-1.xsd"].replace(
            b'name="Record" maxOccurs', b'name="Record" minOccurs="2" maxOccurs'
        ),
    )
    with pytest.raises(ExportValidationError):
        queue_return(store, la_return(PUPILS), at=NOW)
    assert store.outbox_items() == []
