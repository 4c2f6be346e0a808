"""Submitting by folder drop, and which transport each return takes."""

from __future__ import annotations

import stat
from datetime import date

import pytest
from outbox_support import NOW, TOKEN_ENV, dfe_return, la_return, make_settings

from registerwatch.errors import ConfigError
from registerwatch.exports.base import write_return
from registerwatch.outbox import queue_return, submit, transport_for
from registerwatch.outbox.transports import FolderTransport, HttpTransport, SmtpTransport
from registerwatch.schema import Notification, NotificationKind


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path, {"dfe": {"kind": "folder", "path": "drop/dfe"}})


def test_dfe_daily_is_written_under_its_key_and_recorded(tmp_path, settings, store):
    rendered = dfe_return("2025-10-06", [("oakfield-p1", "/"), ("oakfield-p2", "N")])
    written = write_return(rendered, tmp_path / "exports")
    [queued] = queue_return(store, rendered, artefact_path=written.xml_path, at=NOW)
    key = queued.item.idempotency_key

    report = submit(settings, store, clock=lambda: NOW)
    drop = tmp_path / "drop" / "dfe"
    assert sorted(p.name for p in drop.iterdir()) == [f"{key}.csv", f"{key}.xml"]
    xml = drop / f"{key}.xml"
    assert xml.read_bytes() == rendered.xml
    assert (drop / f"{key}.csv").read_bytes() == written.csv_path.read_bytes()
    assert stat.S_IMODE(xml.stat().st_mode) == 0o600
    assert [(o.outcome, o.receipt) for o in report.items] == [("sent", str(xml))]
    item = store.outbox_item(queued.item.id)
    assert (item.state, item.receipt, item.last_error) == ("sent", str(xml), None)
    assert store.notifications("oakfield") == [
        Notification(
            kind=NotificationKind.DFE_DAILY,
            school_id="oakfield",
            pupil_id=None,
            episode_start=date(2025, 10, 6),
            made_at=NOW,
            channel="folder",
            reference=str(xml),
        )
    ]


def test_a_resend_overwrites_the_same_file(tmp_path, settings, store):
    [queued] = queue_return(store, dfe_return("2025-10-06", [("oakfield-p1", "/")]), at=NOW)
    assert submit(settings, store, clock=lambda: NOW).ok
    # As if the run had died before recording it: the item is offered again.
    store.update_outbox(queued.item.id, state="queued", at=NOW)
    assert submit(settings, store, clock=lambda: NOW).ok
    assert [p.name for p in (tmp_path / "drop" / "dfe").iterdir()] == [
        f"{queued.item.idempotency_key}.xml"
    ]  # no CSV was written beside this one


def test_a_folder_that_cannot_be_written_defers_every_item(tmp_path, store):
    (tmp_path / "blocker").write_text("a file where the folder should be")
    settings = make_settings(tmp_path, {"dfe": {"kind": "folder", "path": "blocker/dfe"}})
    queue_return(store, dfe_return("2025-10-06", [("oakfield-p1", "/")]), at=NOW)
    queue_return(store, dfe_return("2025-10-07", [("oakfield-p1", "/")]), at=NOW)
    report = submit(settings, store, clock=lambda: NOW)
    assert [o.outcome for o in report.items] == ["deferred", "deferred"]
    assert "check path in [transports.dfe]" in report.items[0].error
    assert report.items[1].error.startswith("not attempted: DfE transport (folder)")
    assert [i.state for i in store.outbox_items()] == ["queued", "queued"]


def test_each_return_takes_its_own_transport(tmp_path):
    settings = make_settings(
        tmp_path,
        {
            "dfe": {"kind": "folder", "path": "drop/dfe"},
            "la": {
                "881": {
                    "kind": "http",
                    "url": "https://returns.la881.example/api",
                    "token_env": TOKEN_ENV,
                },
                "330": {
                    "kind": "smtp",
                    "host": "smtp.la330.example",
                    "from": "attendance@brook.example",
                    "to": "returns@la330.example",
                },
            },
        },
    )
    oakfield, brook = settings.school("oakfield"), settings.school("brook")
    env = {TOKEN_ENV: "t"}
    dfe = transport_for(settings, "dfe-daily", oakfield, environ=env)
    assert isinstance(dfe, FolderTransport) and dfe.path == tmp_path / "drop" / "dfe"
    http = transport_for(settings, "la-sickness", oakfield, environ=env)
    assert isinstance(http, HttpTransport) and http.url == "https://returns.la881.example/api"
    assert http.label == "LA '881' transport (http)"
    smtp = transport_for(settings, "la-deletion", brook, environ=env)
    assert isinstance(smtp, SmtpTransport)
    assert (smtp.port, smtp.security, smtp.to_addrs) == (587, "starttls", ["returns@la330.example"])
    assert smtp.describe() == "email to returns@la330.example via smtp.la330.example:587 (starttls)"


def test_a_missing_dfe_transport_names_the_table(tmp_path):
    settings = make_settings(tmp_path, {})
    with pytest.raises(ConfigError, match=r"add a \[transports.dfe\] table"):
        transport_for(settings, "dfe-daily", settings.school("oakfield"))
    with pytest.raises(ConfigError, match="not submitted through the outbox"):
        transport_for(settings, "census-attendance", settings.school("oakfield"))


def test_la_returns_for_a_school_go_to_its_own_la(tmp_path, store):
    settings = make_settings(tmp_path, {"la": {"330": {"kind": "folder", "path": "la330"}}})
    queue_return(
        store, la_return([("brook-p1", "2025-09-15")], school="brook", kind="la-new-pupil"), at=NOW
    )
    report = submit(settings, store, clock=lambda: NOW)
    assert [(o.outcome, o.transport) for o in report.items] == [
        ("sent", "LA '330' transport (folder)")
    ]
    assert len(list((tmp_path / "la330").glob("la-new-pupil.brook.*.xml"))) == 1
