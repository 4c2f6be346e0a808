"""Ledger append throughput: ``Store.append_ledger`` of one first sync's worth of entries.

    .venv/bin/python bench/bench_ledger.py                         # 100,000 entries, SQLite
    .venv/bin/python bench/bench_ledger.py --url postgresql+psycopg://postgres@127.0.0.1/test
    .venv/bin/python bench/bench_ledger.py --keyed                 # HMAC-keyed chain ([ledger])

A first sync ledgers one ``observed_new`` entry per mark (a 1,500-pupil school's year so far is
~200k marks in December), so appending is a large part of its write time. Each repetition
appends ``--entries`` entries in one transaction to a fresh store (a fresh schema on
PostgreSQL), then walks the chain with ``verify_ledger``. Prints the median of ``--repeat`` runs.
A benchmark, not a test: it asserts only that the chain verifies.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from registerwatch.schema import Session
from registerwatch.store import LedgerEntry, Store
from registerwatch.store.ledger_keys import LedgerKeys

OBSERVED_AT = datetime(2025, 12, 1, 19, 0, tzinfo=UTC)
CODES = ("/", "\\", "L", "I", "M", "N", "B")


def entries(count: int) -> list[LedgerEntry]:
    """What sync's first pull ledgers: each mark first seen, with its code as the payload."""
    start = date(2025, 9, 3)
    return [
        LedgerEntry(
            school_id="wenlock",
            pupil_id=f"wenlock:{n % 1500}",
            date=start + timedelta(days=n // 3000),
            session=Session.AM if n % 2 else Session.PM,
            kind="observed_new",
            original_code=None,
            new_code=CODES[n % len(CODES)],
            observed_at=OBSERVED_AT,
            payload={"code": CODES[n % len(CODES)]},
        )
        for n in range(count)
    ]


# A fixed key (64 hex characters, as `openssl rand -hex 32` gives): the cost, not the secret.
BENCH_KEY = LedgerKeys("bench", {"bench": b"0123456789abcdef" * 4})


def one_run(url: str, batch: list[LedgerEntry], keyed: bool = False) -> tuple[float, float]:
    store = Store.open(url)
    if keyed:
        store.use_ledger(BENCH_KEY)
    try:
        started = time.perf_counter()
        with store.transaction() as tx:
            store.append_ledger(batch, conn=tx)
        appended = time.perf_counter() - started
        started = time.perf_counter()
        report = store.verify_ledger()
        verified = time.perf_counter() - started
        assert report.ok and report.entries == len(batch), report
        return appended, verified
    finally:
        store.close()


def pg_schema_url(base: str) -> tuple[str, str]:
    schema = f"rw_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, poolclass=NullPool)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    admin.dispose()
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False), schema


def drop_schema(base: str, schema: str) -> None:
    admin = sa.create_engine(base, poolclass=NullPool)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    admin.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--url", default=None, help="a PostgreSQL URL (default: SQLite files)")
    parser.add_argument("--keyed", action="store_true", help="sign with an HMAC key")
    args = parser.parse_args(argv)
    batch = entries(args.entries)
    appends: list[float] = []
    verifies: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
        for n in range(args.repeat):
            if args.url:
                url, schema = pg_schema_url(args.url)
                try:
                    appended, verified = one_run(url, batch, args.keyed)
                finally:
                    drop_schema(args.url, schema)
            else:
                sqlite = f"sqlite:///{Path(tmp) / f'run{n}.sqlite'}"
                appended, verified = one_run(sqlite, batch, args.keyed)
            appends.append(appended)
            verifies.append(verified)
    append, verify = statistics.median(appends), statistics.median(verifies)
    backend = ("postgresql" if args.url else "sqlite") + (" keyed" if args.keyed else "")
    print(
        f"{backend}: append {args.entries:,} entries {append:6.2f}s "
        f"({args.entries / append:>9,.0f} entries/s); verify {verify:6.2f}s "
        f"(median of {args.repeat})"
    )


if __name__ == "__main__":
    main()
