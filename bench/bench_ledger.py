"""Ledger append throughput: ledgering one first sync's worth of marks first seen.

    .venv/bin/python bench/bench_ledger.py                         # 100,000 marks, SQLite
    .venv/bin/python bench/bench_ledger.py --url postgresql+psycopg://postgres@127.0.0.1/test
    .venv/bin/python bench/bench_ledger.py --keyed                 # HMAC-keyed chain ([ledger])
    .venv/bin/python bench/bench_ledger.py --per-mark              # as stores before 2026-12

A first sync ledgers every mark it sees (a 1,500-pupil school's year so far is ~200k marks in
December): one ``observed_new`` entry per pupil listing the pupil's marks, built by sync's own
``changes.ledger_entries``; ``--per-mark`` appends one entry per mark instead, as sync did
before (the figure to compare with). Each repetition builds and appends the entries for
``--entries`` marks (1,500 pupils) in one transaction to a fresh store (a fresh schema on
PostgreSQL), then walks the chain with ``verify_ledger``. Prints the median of ``--repeat``
runs: wall seconds, and this process's CPU seconds (steadier on a shared machine; PostgreSQL's
own work is in its server process). A benchmark, not a test: it asserts only that the chain
verifies.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from registerwatch.schema import Mark, Session
from registerwatch.store import LedgerEntry, MarkDiff, Store
from registerwatch.store.changes import ledger_entries
from registerwatch.store.ledger_keys import LedgerKeys

OBSERVED_AT = datetime(2025, 12, 1, 19, 0, tzinfo=UTC)
CODES = ("/", "\\", "L", "I", "M", "N", "B")


def marks(count: int) -> list[Mark]:
    """``count`` marks of 1,500 pupils, two sessions a day, each with its code and vendor code."""
    start = date(2025, 9, 3)
    return [
        Mark(
            pupil_id=f"wenlock:{n % 1500}",
            date=start + timedelta(days=n // 3000),
            session=Session.AM if (n // 1500) % 2 == 0 else Session.PM,
            code=CODES[n % len(CODES)],
            vendor_code=CODES[n % len(CODES)],
        )
        for n in range(count)
    ]


def per_mark_entries(seen: list[Mark]) -> list[LedgerEntry]:
    """One entry per mark first seen, as sync ledgered them before (and older stores hold)."""
    return [
        LedgerEntry(
            school_id="wenlock",
            pupil_id=m.pupil_id,
            date=m.date,
            session=m.session,
            kind="observed_new",
            original_code=None,
            new_code=m.code,
            observed_at=OBSERVED_AT,
            payload={"vendor_code": m.vendor_code},
        )
        for m in seen
    ]


def build(seen: list[Mark], per_mark: bool) -> list[LedgerEntry]:
    if per_mark:
        return per_mark_entries(seen)
    return ledger_entries("wenlock", MarkDiff(new=seen), [], [], OBSERVED_AT)


# A fixed key (64 hex characters, as `openssl rand -hex 32` gives): the cost, not the secret.
BENCH_KEY = LedgerKeys("bench", {"bench": b"0123456789abcdef" * 4})


def one_run(url: str, seen: list[Mark], per_mark: bool, keyed: bool = False) -> dict[str, float]:
    store = Store.open(url)
    if keyed:
        store.use_ledger(BENCH_KEY)
    try:
        started, cpu = time.perf_counter(), time.process_time()
        with store.transaction() as tx:
            batch = build(seen, per_mark)  # sync builds them inside its transaction too
            store.append_ledger(batch, conn=tx)
        appended = time.perf_counter() - started
        appended_cpu = time.process_time() - cpu
        started, cpu = time.perf_counter(), time.process_time()
        report = store.verify_ledger()
        verified = time.perf_counter() - started
        verified_cpu = time.process_time() - cpu
        assert report.ok and report.entries == len(batch), report
        return {
            "entries": len(batch),
            "append": appended,
            "append_cpu": appended_cpu,
            "verify": verified,
            "verify_cpu": verified_cpu,
        }
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
    parser.add_argument("--entries", type=int, default=100_000, help="marks first seen")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--url", default=None, help="a PostgreSQL URL (default: SQLite files)")
    parser.add_argument("--keyed", action="store_true", help="sign with an HMAC key")
    parser.add_argument("--per-mark", action="store_true", help="one entry per mark (before)")
    args = parser.parse_args(argv)
    seen = marks(args.entries)
    runs: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
        for n in range(args.repeat):
            if args.url:
                url, schema = pg_schema_url(args.url)
                try:
                    runs.append(one_run(url, seen, args.per_mark, args.keyed))
                finally:
                    drop_schema(args.url, schema)
            else:
                sqlite = f"sqlite:///{Path(tmp) / f'run{n}.sqlite'}"
                runs.append(one_run(sqlite, seen, args.per_mark, args.keyed))

    def median(name: str) -> float:
        return statistics.median(run[name] for run in runs)

    backend = ("postgresql" if args.url else "sqlite") + (" keyed" if args.keyed else "")
    form = "one entry per mark" if args.per_mark else "one entry per pupil"
    print(
        f"{backend}, {form}: {args.entries:,} marks in {int(runs[0]['entries']):,} entries: "
        f"append {median('append'):.2f}s ({median('append_cpu'):.2f} CPU s, "
        f"{args.entries / median('append_cpu'):,.0f} marks per CPU s); "
        f"verify {median('verify'):.2f}s ({median('verify_cpu'):.2f} CPU s) "
        f"(median of {args.repeat}; load {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs)"
    )


if __name__ == "__main__":
    main()
