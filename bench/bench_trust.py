"""A trust's night on the task queue: N generated schools in PostgreSQL, with 1 and 2 workers.

    .venv/bin/python bench/bench_trust.py --pg postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/bench_trust.py --pg URL --schools 20 --pupils 300 --workers 1 2

For each worker count it creates a fresh database on the server of ``--pg`` (dropped after),
serves ``--schools`` generated schools (vendors in turn: Arbor, iSAMS, Go4Schools) from loopback
simulators in this process, runs ``registerwatch db upgrade``, starts that many real
``registerwatch worker`` processes (concurrency 1 each), queues the night with
``registerwatch nightly --queue`` and waits for its record to finish. It prints one JSON line
per figure: the night's wall time, per-step times (sum over schools, and the longest school),
each worker's peak RSS (VmHWM), and the wall time extrapolated to 90 schools (linear in the
number of schools: every step is per school). A benchmark, not a test: it asserts only that the
night finished.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.config_writer import write_config

from registerwatch.simulator.server import SimulatorServer
from registerwatch.simulator.vendors import serve_mixed_schools
from registerwatch.store import Store

CLI = [sys.executable, "-m", "registerwatch.cli"]
EXTRAPOLATE_TO = 90


def emit(figure: str, value: Any, **extra: Any) -> None:
    print(
        json.dumps(
            {"bench": "trust", "figure": figure, "value": value, "cpus": os.cpu_count(), **extra}
        ),
        flush=True,
    )


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def night_once(
    pg: str, tables: list[dict[str, Any]], env: dict[str, str], workers: int, as_of: date, tmp: Path
) -> None:
    server = sa.make_url(pg)
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    database = f"bench_trust_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    url = server.set(database=database).render_as_string(hide_password=False)
    config = write_config(
        tmp / f"trust-{workers}.toml",
        url,
        tables,
        logging={"level": "WARNING"},
        sync={"timeout_seconds": 120},
    )
    procs: list[subprocess.Popen[bytes]] = []
    try:
        subprocess.run([*CLI, "db", "upgrade", "--config", str(config)], env=env, check=True)
        for n in range(workers):
            procs.append(
                subprocess.Popen(
                    [*CLI, "worker", "--config", str(config), "--name", f"w{n + 1}"],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=(tmp / f"w{workers}-{n + 1}.log").open("wb"),
                )
            )
        time.sleep(2)  # let the workers connect, as they would be at 02:00
        started = time.monotonic()
        queued = subprocess.run(
            [*CLI, "nightly", "--queue", "--as-of", as_of.isoformat(), "--config", str(config)]
            + ["--format", "json"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        night = json.loads(queued.stdout)["run_id"]
        rss: dict[str, float | None] = {}
        while True:
            for n, p in enumerate(procs):
                rss[f"w{n + 1}"] = peak_rss_mb(p.pid)
                if p.poll() is not None:
                    raise SystemExit(f"worker w{n + 1} exited: see {tmp}")
            with Store(url) as store:
                record = next(r for r in store.runs(command="nightly", limit=10) if r.id == night)
                if record.finished_at is not None:
                    wall = time.monotonic() - started
                    steps = [
                        r
                        for r in store.runs(limit=10_000)
                        if r.command.startswith("nightly:") and r.counts.get("job_run") == night
                    ]
                    break
            time.sleep(0.5)
        common = {"workers": workers, "schools": len(tables)}
        emit("night_wall_seconds", round(wall, 1), outcome=record.outcome, **common)
        by_step: dict[str, list[float]] = {}
        for r in steps:
            by_step.setdefault(r.command.split(":", 1)[1], []).append(r.counts.get("seconds", 0.0))
        for step, seconds in by_step.items():
            emit(
                "step_seconds",
                round(sum(seconds), 1),
                step=step,
                longest=round(max(seconds), 1),
                records=len(seconds),
                **common,
            )
        for name, mb in rss.items():
            emit("worker_peak_rss_mb", mb, worker=name, **common)
        emit(
            "night_wall_seconds_extrapolated",
            round(wall * EXTRAPOLATE_TO / len(tables), 1),
            to_schools=EXTRAPOLATE_TO,
            **common,
        )
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=120)
            except subprocess.TimeoutExpired:
                p.kill()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", required=True, help="a PostgreSQL URL whose server to use")
    parser.add_argument("--schools", type=int, default=20)
    parser.add_argument("--pupils", type=int, default=300)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2025, 12, 1))
    args = parser.parse_args(argv)
    env = {**os.environ}
    env.pop("REGISTERWATCH_CONFIG", None)
    servers: list[SimulatorServer] = []
    tables: list[dict[str, Any]] = []
    started = time.monotonic()
    try:
        generated, env_added = serve_mixed_schools(args.schools, args.pupils, args.as_of, servers)
        tables.extend(generated)
        env.update(env_added)
        emit(
            "generated_seconds",
            round(time.monotonic() - started, 1),
            schools=args.schools,
            pupils=args.pupils,
        )
        import tempfile

        with tempfile.TemporaryDirectory(prefix="bench-trust-") as tmp:
            for workers in args.workers:
                night_once(args.pg, tables, env, workers, args.as_of, Path(tmp))
    finally:
        for server in servers:
            server.stop()


if __name__ == "__main__":
    main()
