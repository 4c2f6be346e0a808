"""The outbox with the real returns: the rendered golden files of tests/exports, validated
against the real XSDs in exports/schemas, split, queued, submitted and recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree
from outbox_support import NOW, school_table

from registerwatch.config import parse_config
from registerwatch.exports.base import RenderedReturn, ReturnRecordKey, validate
from registerwatch.exports.la_common import notification_for
from registerwatch.outbox import queue_return, submit

GOLDEN = Path(__file__).resolve().parents[1] / "exports" / "golden"


def golden(kind: str, school_id: str) -> RenderedReturn:
    path = GOLDEN / f"{kind}-1.xml"
    if not path.is_file():
        pytest.skip(f"no golden file {path}")
    xml = path.read_bytes()
    root = etree.fromstring(xml)
    if kind == "dfe-daily":
        day = root.findtext("Header/AttendanceDate")
        records = [ReturnRecordKey(None, day)]
    else:
        records = [
            ReturnRecordKey(r.findtext("RecordKey/PupilRef"), r.findtext("RecordKey/Episode"))
            for r in root.iterfind("Records/Record")
        ]
        day = root.findtext("Header/AsOf")
    return RenderedReturn(
        kind=kind,
        school_id=school_id,
        schema_name=f"{kind}-1.xsd",
        xml=xml,
        csv_header=[],
        csv_rows=[],
        file_stem=f"{kind}_{school_id}",
        records=records,
        period=day or "",
    )


def test_a_real_la_return_is_split_into_valid_single_record_returns(tmp_path, store):
    rendered = golden("la-sickness", "elmbrook")
    validate(rendered)  # the real XSD, with its xs:include of la-common-1.xsd
    assert len(rendered.records) == 2
    queued = queue_return(store, rendered, at=NOW)
    assert [q.created for q in queued] == [True, True]

    blank_free = etree.XMLParser(remove_blank_text=True)
    original = etree.fromstring(rendered.xml, blank_free)
    for q, key, record in zip(
        queued, rendered.records, original.iterfind("Records/Record"), strict=True
    ):
        part = etree.fromstring(q.item.payload, blank_free)
        assert (q.item.pupil_id, q.item.episode) == (key.pupil_id, key.episode)
        assert part.findtext("Header/RecordCount") == "1"
        [kept] = part.iterfind("Records/Record")
        assert etree.tostring(kept, with_tail=False) == etree.tostring(
            record, with_tail=False
        )  # the record itself, untouched
        validate(
            RenderedReturn(
                kind="la-sickness",
                school_id="elmbrook",
                schema_name="la-sickness-1.xsd",
                xml=q.item.payload,
                csv_header=[],
                csv_rows=[],
                file_stem="part",
            )
        )

    table = school_table("elmbrook", "881", 9)
    settings = parse_config(
        {
            "store": {"url": "sqlite://"},
            "schools": [table],
            "transports": {"la": {"881": {"kind": "folder", "path": "la881"}}},
        },
        config_dir=tmp_path,
    )
    report = submit(settings, store, clock=lambda: NOW)
    assert [o.outcome for o in report.items] == ["sent", "sent"]
    # What the returns' own package says the outbox must record, so the LAR rule closes.
    assert store.notifications("elmbrook") == [
        notification_for(
            "la-sickness", "elmbrook", key, made_at=NOW, channel="folder", reference=o.receipt
        )
        for key, o in zip(rendered.records, report.items, strict=True)
    ]


def test_a_real_dfe_daily_return_is_one_item(store):
    rendered = golden("dfe-daily", "elmbrook")
    validate(rendered)
    [queued] = queue_return(store, rendered, at=NOW)
    assert queued.item.payload == rendered.xml
    assert (queued.item.pupil_id, queued.item.episode) == (None, "2025-09-09")
