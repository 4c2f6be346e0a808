"""The app's lean reads (registerwatch.web.reads) against the store's own, on SQLite and
PostgreSQL: the same findings, pupils, counts and outbox items, and a memoised finding is
replaced as soon as its row changes (an acknowledgement), because the memo is keyed by the row
itself."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from support.generated_context import context
from support.pg import pg_schema_url
from web_world import AS_OF, BIRCH, NOW, OAK, copy_store

from registerwatch.simulator.generate import generate_school
from registerwatch.store import Store
from registerwatch.validators import run_rules
from registerwatch.web import reads
from registerwatch.web.app import create_app
from registerwatch.web.context import RoutePaths


def _fill(store: Store) -> None:
    """Two generated schools as a sync and a scan leave them, with an outbox item each."""
    for seed, school_id in enumerate((OAK, BIRCH), start=1):
        school = generate_school(seed, 80, school_id=school_id, as_of=AS_OF)
        store.upsert_school(school.school, at=NOW)
        store.upsert_pupils(school.pupils, at=NOW)
        store.upsert_marks(school.marks, school_id, at=NOW)
        store.save_findings(run_rules(context(school, AS_OF)), at=NOW)
        store.record_sync_success(school_id, AS_OF, at=NOW)
        store.enqueue_outbox(
            return_kind="la-sickness",
            school_id=school_id,
            idempotency_key=f"web-reads-{school_id}",
            payload=b"<Return/>",
            pupil_id=school.pupils[0].id,
            at=NOW,
        )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, template: Path, tmp_path: Path) -> Iterator[Store]:
    """The world's store on SQLite; two generated schools on PostgreSQL."""
    if request.param == "sqlite":
        with Store(copy_store(template, tmp_path / "store.db")) as opened:
            yield opened
        return
    with pg_schema_url("web") as url, Store.open(url) as opened:
        _fill(opened)
        yield opened


def test_findings_are_the_ones_the_store_loads(store: Store) -> None:
    with store.snapshot() as conn:
        for school_id in (OAK, BIRCH):
            expected = list(store.load_findings(school_id).values())
            assert expected
            assert reads.stored_findings(conn, school_id) == expected
            assert reads.stored_findings(conn, school_id) == expected  # memoised: the same
            one = expected[-1]
            fingerprint = one.finding.fingerprint
            assert reads.stored_findings(conn, school_id, fingerprint=fingerprint) == [one]
            pupil_id = next(s.finding.pupil_id for s in expected if s.finding.pupil_id)
            assert reads.stored_findings(conn, school_id, pupil_id=pupil_id) == [
                s for s in expected if s.finding.pupil_id == pupil_id
            ]


def test_a_changed_finding_row_is_read_again(store: Store) -> None:
    stored = next(iter(store.load_findings(OAK).values()))
    fingerprint = stored.finding.fingerprint or ""
    with store.snapshot() as conn:
        assert reads.stored_findings(conn, OAK, fingerprint=fingerprint) == [stored]
    store.acknowledge_finding(fingerprint, "seen by the office", at=NOW)
    with store.snapshot() as conn:
        (after,) = reads.stored_findings(conn, OAK, fingerprint=fingerprint)
    assert after == replace(stored, acknowledged_at=NOW, ack_note="seen by the office")


def test_pupils_are_the_stores_without_their_contacts(store: Store) -> None:
    with store.snapshot() as conn:
        views = reads.pupil_views(conn, OAK)
        full = store.pupils(OAK)
        assert [v.id for v in views] == [p.id for p in full]
        for view, pupil in zip(views, full, strict=True):
            for name in ("mis_id", "upn", "nc_year", "reg_group", "starting_day", "leaving_date"):
                assert getattr(view, name) == getattr(pupil, name)
        assert reads.pupil_view(conn, full[0].id) == views[0]
        assert reads.pupil_view(conn, "no-such-pupil") is None


def test_counts_are_the_stores_per_school_counts(store: Store) -> None:
    today = NOW.date()
    with store.snapshot() as conn:
        findings = reads.open_finding_counts(conn, None, today)
        outbox = reads.outbox_state_counts(conn, None)
        statuses = reads.sync_statuses(conn, None)
        only_oak = reads.open_finding_counts(conn, [OAK], today)
    for school_id in (OAK, BIRCH):
        assert findings[school_id] == store.open_finding_counts(school_id, today)
        assert outbox[school_id] == store.outbox_state_counts(school_id)
        assert statuses[school_id] == store.sync_status(school_id)
    assert set(only_oak) == {OAK}


def test_outbox_listing_is_the_outbox_without_artefacts(store: Store) -> None:
    with store.snapshot() as conn:
        listed = reads.outbox_listing(conn, school_ids=[OAK])
        every = reads.outbox_listing(conn)
    expected = store.outbox_items(school_id=OAK)
    assert expected
    assert listed == [replace(item, payload=b"") for item in expected]
    assert len(every) == len(store.outbox_items())


def test_route_paths_are_starlettes(store: Store) -> None:
    app = create_app(store, secret=b"k" * 32)
    paths = RoutePaths(app.routes)
    for name, params in [
        ("schools", {}),
        ("finding", {"fingerprint": "ab12"}),
        ("pupil", {"pupil_id": "oakfield:P1"}),
        ("artefact", {"item_id": 7}),
        ("static", {"path": "app.css"}),
    ]:
        assert paths(name, **params) == str(app.url_path_for(name, **params))
