"""SQLite and PostgreSQL agree: the same simulated school, synced from its loopback simulator into
each backend, gives the same scan findings, the same returns (byte for byte) and the same ledger
hashes. Needs REGISTERWATCH_TEST_PG_URL (a PostgreSQL schema of its own, dropped after)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

import pytest
from support.pg import pg_base_url, pg_schema_url
from sync_support import ENV, make_app, mis_table, school_config, serve

from registerwatch.config import Settings, parse_config
from registerwatch.exports.registry import RETURN_MODULES, ExportRequest, builder
from registerwatch.scan.output import scan_document
from registerwatch.scan.pipeline import run_scan
from registerwatch.simulator.generate import generate_school
from registerwatch.store import Store
from registerwatch.store.changes import first_seen_marks
from registerwatch.sync import sync_all

pytestmark = pytest.mark.postgres

# Late in the autumn term: a term's worth of marks, findings of most families.
AS_OF = date(2025, 11, 26)
SYNCED_AT = datetime(2025, 11, 26, 19, 0, tzinfo=UTC)
SCANNED_AT = datetime(2025, 11, 26, 20, 0, tzinfo=UTC)
EXPORTED_AT = datetime(2025, 11, 26, 21, 0, tzinfo=UTC)


@contextmanager
def postgres_store() -> Iterator[Store]:
    # A session time zone far from UTC: instants must still come back the same.
    with pg_schema_url("agree", time_zone="Pacific/Auckland") as url:
        store = Store.open(url)
        try:
            yield store
        finally:
            store.close()


def sync_scan_export(settings: Settings, store: Store) -> dict[str, Any]:
    """Everything the two backends must agree on, from one sync, one scan and every return."""
    (synced,) = sync_all(settings, store, as_of=AS_OF, environ=ENV, clock=lambda: SYNCED_AT).schools
    assert synced.status == "ok", synced.error
    scan = run_scan(store, settings, as_of=AS_OF, clock=lambda: SCANNED_AT)
    assert scan.ok
    document = scan_document(scan)
    document.pop("run_id", None)  # the runs table's own numbering, not a finding
    school = settings.schools[0]
    returns: dict[str, Any] = {}
    for kind in RETURN_MODULES:
        request = ExportRequest(
            school=school,
            store=store,
            as_of=AS_OF,
            generated_at=EXPORTED_AT,
            day=date(2025, 11, 25),
            term="autumn-2025",
            allow_incomplete=True,
        )
        try:
            rendered = builder(kind)(request)
        except Exception as exc:  # a return with nothing to send refuses: both must refuse
            returns[kind] = f"{type(exc).__name__}: {exc}"
            continue
        returns[kind] = [(r.file_stem, r.xml, r.csv_bytes(), r.records) for r in rendered]
    ledger = store.ledger()
    check = store.check_ledger()
    assert check.ok, check.reason
    return {
        "marks_new": synced.marks_new,
        "ledger": [(r.seq, r.hash, r.prev_hash) for r in ledger],
        "marks_ledgered": sum(len(first_seen_marks(r)) for r in ledger),
        "ledger_tip": check.last_hash,
        "scan": document,
        "returns": returns,
    }


@pytest.mark.parametrize("vendor", ["arbor", "isams", "go4schools"])
def test_sqlite_and_postgresql_agree_on_findings_returns_and_ledger(vendor: str, tmp_path):
    pg_base_url()  # skips without a PostgreSQL server, before the school is generated
    school = generate_school(5, 80, vendor=vendor, as_of=AS_OF, inject_breaches=True)
    server = serve(make_app(vendor, school))
    try:

        def settings_for(url: str) -> Settings:
            return parse_config(
                {
                    "store": {"url": url},
                    "sync": {"timeout_seconds": 30},
                    "schools": [school_config(school, mis_table(vendor, server.url))],
                }
            )

        sqlite_url = f"sqlite:///{tmp_path / 'store.db'}"
        with Store.open(sqlite_url) as lite:
            on_sqlite = sync_scan_export(settings_for(sqlite_url), lite)
        with postgres_store() as pg:
            on_postgres = sync_scan_export(
                settings_for(pg.url.render_as_string(hide_password=False)), pg
            )
    finally:
        server.stop()

    # The comparison is only worth something if there was plenty to compare.
    assert on_sqlite["marks_new"] > 1_000
    assert on_sqlite["marks_ledgered"] == on_sqlite["marks_new"]
    assert on_sqlite["scan"]["findings"], "the breaches injected should give findings"
    made = [kind for kind, value in on_sqlite["returns"].items() if isinstance(value, list)]
    assert made, on_sqlite["returns"]

    assert on_postgres["ledger"] == on_sqlite["ledger"]
    assert on_postgres["ledger_tip"] == on_sqlite["ledger_tip"]
    assert on_postgres["scan"] == on_sqlite["scan"]
    for kind in RETURN_MODULES:
        assert on_postgres["returns"][kind] == on_sqlite["returns"][kind], kind
