"""The DfE daily return for a trust: ``dfe-daily`` for N schools for one day.

    .venv/bin/python bench/bench_dfe_daily.py                          # 20 schools, SQLite
    .venv/bin/python bench/bench_dfe_daily.py --store postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/bench_dfe_daily.py --schools 20 --pupils 300 --day 2025-11-28

It generates ``--schools`` schools (vendors in turn: Arbor, iSAMS, Go4Schools), syncs each from
a loopback simulator into the store (``--store``: default a fresh SQLite file; a PostgreSQL URL
is used in a fresh database of its own on that server, dropped after), then makes, validates
and writes each school's DfE daily return for ``--day`` exactly as the night's ``dfe-daily``
step does (``registerwatch.jobs.returns.export_school``). It prints one JSON line per figure:
the whole export's wall time and CPU time, the per-school median and slowest, the records written, and this
process's peak RSS. A benchmark, not a test: it asserts only that every return was written.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from registerwatch.config import parse_config
from registerwatch.exports.registry import ExportRequest
from registerwatch.jobs.returns import export_school
from registerwatch.logging import configure_logging
from registerwatch.simulator.server import SimulatorServer
from registerwatch.simulator.vendors import serve_mixed_schools
from registerwatch.store import Store
from registerwatch.sync import sync_all


def emit(figure: str, value: Any, **extra: Any) -> None:
    print(
        json.dumps(
            {"bench": "dfe-daily", "figure": figure, "value": value, "cpus": os.cpu_count()} | extra
        ),
        flush=True,
    )


@contextmanager
def store_url(given: str | None, folder: Path) -> Iterator[str]:
    if given is None or not given.startswith("postgresql"):
        yield given or f"sqlite:///{folder / 'trust.sqlite'}"
        return
    import psycopg

    server = sa.make_url(given)
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    database = f"bench_dfe_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    try:
        yield server.set(database=database).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=None, help="a store URL (default: SQLite)")
    parser.add_argument("--schools", type=int, default=20)
    parser.add_argument("--pupils", type=int, default=300)
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2025, 12, 1))
    parser.add_argument("--day", type=date.fromisoformat, default=date(2025, 11, 28))
    args = parser.parse_args(argv)
    configure_logging(level="WARNING")
    servers: list[SimulatorServer] = []
    env: dict[str, str] = {}
    tables: list[dict[str, Any]] = []
    try:
        generated, env_added = serve_mixed_schools(args.schools, args.pupils, args.as_of, servers)
        tables.extend(generated)
        env.update(env_added)
        with (
            tempfile.TemporaryDirectory(prefix="bench-dfe-") as tmp,
            store_url(args.store, Path(tmp)) as url,
        ):
            settings = parse_config(
                {"store": {"url": url}, "sync": {"timeout_seconds": 120}, "schools": tables}
            )
            with Store.open(url) as store:
                started = time.monotonic()
                synced = sync_all(settings, store, as_of=args.as_of, environ=env)
                if synced.failed:
                    raise SystemExit(f"sync failed: {[r.error for r in synced.failed]}")
                emit("sync_seconds", round(time.monotonic() - started, 1), schools=args.schools)
                per_school: list[float] = []
                records = 0
                started = time.monotonic()
                # This process's CPU time: the simulators in it are idle during the export, so it
                # is the export's own, and less disturbed by other work than the wall time.
                cpu_started = time.process_time()
                for school in settings.schools:
                    one = time.monotonic()
                    request = ExportRequest(
                        school=school,
                        store=store,
                        as_of=args.as_of,
                        generated_at=datetime.now(UTC),
                        day=args.day,
                    )
                    made = export_school("dfe-daily", request, Path(tmp) / "returns")
                    if made.failures or not made.exported:
                        raise SystemExit(f"{school.id}: {[str(f.error) for f in made.failures]}")
                    records += sum(item.rendered.record_count for item in made.exported)
                    per_school.append(time.monotonic() - one)
                wall = time.monotonic() - started
                cpu = time.process_time() - cpu_started
        common = {"schools": args.schools, "pupils": args.pupils, "day": args.day.isoformat()}
        backend = "postgresql" if url.startswith("postgresql") else "sqlite"
        emit("export_wall_seconds", round(wall, 2), store=backend, records=records, **common)
        emit("export_cpu_seconds", round(cpu, 2), store=backend, **common)
        emit("school_median_seconds", round(statistics.median(per_school), 3), **common)
        emit("school_slowest_seconds", round(max(per_school), 3), **common)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        emit("peak_rss_mb", round(peak, 1), note="whole process, simulators included", **common)
    finally:
        for server in servers:
            server.stop()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
