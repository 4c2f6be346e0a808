"""Benchmark (b), sync throughput: marks per second of a first sync from each loopback simulator.

    .venv/bin/python bench/bench_sync.py                          # every vendor, SQLite, 0/50 ms
    .venv/bin/python bench/bench_sync.py --vendor arbor --pupils 300 --repeat 1
    REGISTERWATCH_BENCH_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/bench_sync.py --store sqlite --store postgresql

For each vendor it generates one school (seeded; marks from the first term day to the day
before ``--as-of``, default the first school day of December) and serves it from a simulator
in a child process on 127.0.0.1 (in another process, as a real MIS would be: in this one the
simulator's own JSON work would share the GIL with the sync it is serving). Then, for each
store and each ``--latency-ms`` (added by the simulator to every request), it runs ``sync_all``
``--repeat`` times, each into a fresh store (a fresh SQLite file; a fresh PostgreSQL schema),
and prints one JSON line per figure: the median marks/s of the first sync (the whole school
year so far: every mark new, written, diffed and ledgered), with the fetch/write split (from
the progress events), every run's figure, the sync process's own CPU time (marks per CPU second is the figure least
disturbed by other work on the machine), and the machine's CPU count and load.

Before the measured syncs of each vendor, store and latency, one first sync is run and
discarded (``--no-warm-up`` to measure it too): a process's first sync also pays one-off costs
(lazy imports, the ``holidays`` tables, the store's first connection), which a night of several
schools pays once. The JSON line says ``"warm_up": true``.

``--fetch-only`` measures the fetch side alone, with no store: the adapter's pull of the same
school year (pupils, registers, marks, amendments, calendar) per vendor and latency, printing
the sync process's CPU seconds and marks per CPU second of fetching and mapping, and the
simulator's own CPU seconds per request (read in its process), so a simulator that costs more
to serve a page than the adapter spends on it shows.

A benchmark, not a test: it asserts nothing beyond each sync succeeding. The machine may be
shared: read the load average next to each figure.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from registerwatch.config import parse_config
from registerwatch.logging import configure_logging
from registerwatch.store import Store
from registerwatch.sync import ResourceFetched, SchoolFinished, SchoolStarted, SyncEvent, sync_all

VENDORS = ("arbor", "isams", "go4schools")
STORES = ("sqlite", "postgresql")
PG_URL_ENV = "REGISTERWATCH_BENCH_PG_URL"
ENV = {
    "BENCH_USER": "registerwatch",
    "BENCH_PASSWORD": "simulator",
    "BENCH_CLIENT_ID": "registerwatch",
    "BENCH_CLIENT_SECRET": "simulator",
    "BENCH_KEY": "simulator-key",
}


def mis_table(vendor: str, url: str) -> dict[str, Any]:
    if vendor == "arbor":
        return {
            "vendor": "arbor",
            "base_url": f"{url}/rest-v2",
            "username_env": "BENCH_USER",
            "password_env": "BENCH_PASSWORD",
        }
    if vendor == "isams":
        return {
            "vendor": "isams",
            "base_url": url,
            "client_id_env": "BENCH_CLIENT_ID",
            "client_secret_env": "BENCH_CLIENT_SECRET",
            "api_key_env": "BENCH_KEY",
        }
    return {"vendor": "go4schools", "base_url": f"{url}/customer/v1", "api_key_env": "BENCH_KEY"}


# -- the simulator, in a child process ------------------------------------------------------------


def serve_school(
    vendor: str, pupils: int, seed: int, as_of: date | None, channel: Connection
) -> None:
    """Child process: generate the school, serve it, answer ("latency", ms) / ("stop",)."""
    from registerwatch.simulator.generate import generate_school
    from registerwatch.simulator.server import SimulatorServer
    from registerwatch.simulator.vendors import build_app

    started = time.perf_counter()
    school = generate_school(seed, pupils, vendor=vendor, as_of=as_of, inject_breaches=False)
    generated = time.perf_counter() - started
    app = build_app(vendor, school)
    with SimulatorServer(app) as server:
        s = school.school
        channel.send(
            {
                "url": server.url,
                "generated_seconds": generated,
                "marks": len(school.marks),
                "pupils": len(school.pupils),
                "as_of": school.as_of,
                "school": {
                    "id": s.id,
                    "urn": s.urn,
                    "laestab": s.laestab,
                    "name": s.name,
                    "la_code": s.la_code,
                    "phase": s.phase,
                    "calendar": {
                        "terms": [t.model_dump() for t in school.calendar.terms],
                        "closures": [c.model_dump() for c in school.calendar.closures],
                        "register_times": school.calendar.register_times.model_dump(),
                    },
                },
            }
        )
        while True:
            command = channel.recv()
            if command[0] == "latency":
                app.latency_seconds = command[1] / 1000
                app.requests.clear()
                channel.send("ok")
            elif command[0] == "requests":
                channel.send(sum(app.requests.values()))
            elif command[0] == "cpu":
                # The simulator's own CPU time (every thread of this process), so a figure can
                # say what serving a request costs next to what consuming it costs.
                channel.send(time.process_time())
            else:
                return


@dataclass
class Simulator:
    process: multiprocessing.Process
    channel: Connection
    info: dict[str, Any]

    def set_latency(self, ms: float) -> None:
        self.channel.send(("latency", ms))
        self.channel.recv()

    def requests(self) -> int:
        self.channel.send(("requests",))
        return int(self.channel.recv())

    def cpu_seconds(self) -> float:
        self.channel.send(("cpu",))
        return float(self.channel.recv())


@contextmanager
def simulator(vendor: str, pupils: int, seed: int, as_of: date | None) -> Iterator[Simulator]:
    ours, theirs = multiprocessing.Pipe()
    process = multiprocessing.Process(
        target=serve_school, args=(vendor, pupils, seed, as_of, theirs), daemon=True
    )
    process.start()
    try:
        yield Simulator(process, ours, ours.recv())
    finally:
        try:
            ours.send(("stop",))
        except OSError:
            pass
        process.join(10)
        if process.is_alive():
            process.terminate()


# -- stores --------------------------------------------------------------------------------------


@contextmanager
def fresh_store_url(kind: str, folder: Path, pg_url: str | None) -> Iterator[str]:
    if kind == "sqlite":
        path = folder / f"{uuid.uuid4().hex}.sqlite"
        try:
            yield f"sqlite:///{path}"
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    if not pg_url:
        raise SystemExit(f"--store postgresql needs --pg-url or {PG_URL_ENV}")
    schema = f"rw_bench_sync_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(pg_url, poolclass=NullPool)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        url = make_url(pg_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


# -- one sync ------------------------------------------------------------------------------------


@dataclass
class Timing:
    fetch: float = 0.0
    write: float = 0.0
    marks: int = 0
    cpu: float = 0.0  # this process's CPU time (the simulator's is in its own process)


class Clock:
    """Splits a school's sync into fetch and write time from its progress events."""

    def __init__(self) -> None:
        self.timing = Timing()
        self._mark = 0.0

    def __call__(self, event: SyncEvent) -> None:
        now = time.perf_counter()
        if isinstance(event, SchoolStarted):
            self._mark = now
        elif isinstance(event, ResourceFetched):
            if event.resource == "marks":
                self.timing.marks = event.records
            if event.resource == "amendments":  # the last resource fetched
                self.timing.fetch = now - self._mark
                self._mark = now
        elif isinstance(event, SchoolFinished):
            if event.status != "ok":
                raise SystemExit(f"sync failed: {event.error}")
            self.timing.write = now - self._mark


def first_sync(sim: Simulator, vendor: str, store_url: str) -> tuple[float, Timing]:
    info = sim.info
    settings = parse_config(
        {
            "store": {"url": store_url},
            "sync": {"timeout_seconds": 120},
            "schools": [{**info["school"], "mis": mis_table(vendor, info["url"])}],
        }
    )
    store = Store.open(settings.store.url)
    try:
        clock = Clock()
        started, cpu_started = time.perf_counter(), time.process_time()
        summary = sync_all(settings, store, as_of=info["as_of"], environ=ENV, progress=clock)
        wall = time.perf_counter() - started
        clock.timing.cpu = time.process_time() - cpu_started
    finally:
        store.close()
    (result,) = summary.schools
    if result.status != "ok" or result.marks_new != clock.timing.marks:
        raise SystemExit(f"{vendor}: unexpected first sync: {result}")
    return wall, clock.timing


def fetch_only(sim: Simulator, vendor: str) -> dict[str, Any]:
    """What a first sync fetches (pupils, registers, marks and amendments over the school year
    so far, and the MIS calendar), through the vendor's adapter, without a store: the CPU the
    sync process spends fetching and mapping, and the CPU the simulator spends serving it."""
    from registerwatch.adapters.registry import build_adapter
    from registerwatch.calendar import calendar_for, school_year_of

    info = sim.info
    settings = parse_config(
        {
            "store": {"url": "sqlite:///:memory:"},
            "sync": {"timeout_seconds": 120},
            "schools": [{**info["school"], "mis": mis_table(vendor, info["url"])}],
        }
    )
    (school,) = settings.schools
    as_of = info["as_of"]
    start = calendar_for(school).school_year_start(school_year_of(as_of))
    requests_before, sim_cpu_before = sim.requests(), sim.cpu_seconds()
    started, cpu_started = time.perf_counter(), time.process_time()
    adapter = build_adapter(school, settings.sync, ENV)
    try:
        adapter.begin_sync(as_of)
        counts = {"pupils": len(adapter.pupils().records)}
        counts["registers"] = len(adapter.registers(start, as_of).records)
        counts["marks"] = len(adapter.marks(start, as_of).records)
        counts["amendments"] = len(adapter.amendments(start, as_of).records)
        adapter.calendar()
    finally:
        adapter.close()
    cpu = time.process_time() - cpu_started
    wall = time.perf_counter() - started
    requests = sim.requests() - requests_before
    sim_cpu = sim.cpu_seconds() - sim_cpu_before
    return {"wall": wall, "cpu": cpu, "counts": counts, "requests": requests, "sim_cpu": sim_cpu}


def report_fetch_only(
    runs: list[dict[str, Any]], vendor: str, sim: Simulator, latency: float
) -> None:
    marks = runs[0]["counts"]["marks"]
    requests = runs[0]["requests"]
    figure(
        figure="fetch_only_marks_per_cpu_s",
        vendor=vendor,
        latency_ms=latency,
        pupils=sim.info["pupils"],
        records=runs[0]["counts"],
        requests=requests,
        wall_s=round(statistics.median(r["wall"] for r in runs), 2),
        cpu_s=round(statistics.median(r["cpu"] for r in runs), 2),
        marks_per_cpu_s=round(statistics.median(marks / r["cpu"] for r in runs if r["cpu"])),
        marks_per_s=round(statistics.median(marks / r["wall"] for r in runs)),
        simulator_cpu_s=round(statistics.median(r["sim_cpu"] for r in runs), 2),
        simulator_cpu_ms_per_request=round(
            statistics.median(1000 * r["sim_cpu"] / max(1, r["requests"]) for r in runs), 2
        ),
        simulator_marks_per_cpu_s=round(
            statistics.median(marks / r["sim_cpu"] for r in runs if r["sim_cpu"])
        ),
    )


def figure(**fields: Any) -> None:
    line = {
        "bench": "sync",
        **fields,
        "cpu_count": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "python": sys.version.split()[0],
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    print(json.dumps(line, default=str), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vendor", choices=VENDORS, action="append")
    parser.add_argument("--store", choices=STORES, action="append")
    parser.add_argument("--latency-ms", type=float, action="append")
    parser.add_argument("--pupils", type=int, default=1500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--as-of", type=date.fromisoformat, default=None)
    parser.add_argument("--pg-url", default=os.environ.get(PG_URL_ENV))
    parser.add_argument(
        "--fetch-only",
        action="store_true",
        help="fetch and map through the adapter only (no store): the fetch side's CPU per mark "
        "and the simulator's CPU per request",
    )
    parser.add_argument(
        "--warm-up",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run one discarded first sync per vendor, store and latency before the measured "
        "ones (default on): the figures are a running process's, as in a night of several "
        "schools",
    )
    args = parser.parse_args(argv)
    configure_logging("WARNING")  # stdout carries only the JSON lines
    latencies = args.latency_ms if args.latency_ms is not None else [0.0, 50.0]
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        for vendor in args.vendor or VENDORS:
            with simulator(vendor, args.pupils, args.seed, args.as_of) as sim:
                for latency in latencies:
                    sim.set_latency(latency)
                    if args.fetch_only:
                        fetched = [fetch_only(sim, vendor) for _ in range(args.repeat)]
                        report_fetch_only(fetched, vendor, sim, latency)
                        continue
                    for kind in args.store or ["sqlite"]:
                        if args.warm_up:
                            # Discarded: the process's first sync also pays its one-off costs
                            # (lazy imports of the adapter and the store's write path, the
                            # holidays tables, the store engine's first connection).
                            with fresh_store_url(kind, Path(tmp), args.pg_url) as url:
                                first_sync(sim, vendor, url)
                            sim.set_latency(latency)  # clears the request count
                        runs: list[tuple[float, Timing]] = []
                        requests = 0
                        for _ in range(args.repeat):
                            with fresh_store_url(kind, Path(tmp), args.pg_url) as url:
                                runs.append(first_sync(sim, vendor, url))
                            requests = sim.requests()
                            sim.set_latency(latency)  # clears the request count
                        marks = runs[0][1].marks
                        rates = [marks / wall for wall, _ in runs]
                        figure(
                            figure="first_sync_marks_per_s",
                            vendor=vendor,
                            store=kind,
                            latency_ms=latency,
                            pupils=sim.info["pupils"],
                            marks=marks,
                            requests=requests,
                            median=round(statistics.median(rates)),
                            runs=[round(r) for r in rates],
                            warm_up=args.warm_up,
                            wall_s=round(statistics.median(w for w, _ in runs), 2),
                            fetch_s=round(statistics.median(t.fetch for _, t in runs), 2),
                            write_s=round(statistics.median(t.write for _, t in runs), 2),
                            # Less sensitive to a shared machine than wall time: the sync's own
                            # CPU seconds, and marks per CPU second.
                            cpu_s=round(statistics.median(t.cpu for _, t in runs), 2),
                            marks_per_cpu_s=round(
                                statistics.median(marks / t.cpu for _, t in runs if t.cpu)
                            ),
                        )


if __name__ == "__main__":
    main()
