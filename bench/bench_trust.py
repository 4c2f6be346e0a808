"""A trust's night on the task queue: N generated schools in PostgreSQL, with 1 and 2 workers.

    .venv/bin/python bench/bench_trust.py --pg postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/bench_trust.py --pg URL --schools 20 --pupils 300 --workers 1 2

For each worker count it creates a fresh database on the server of ``--pg`` (dropped after),
serves ``--schools`` generated schools (vendors in turn: Arbor, iSAMS, Go4Schools) from loopback
simulators in this process, runs ``registerwatch db upgrade``, starts that many real
``registerwatch worker`` processes (concurrency 1 each), queues the night with
``registerwatch nightly --queue`` and waits for its record to finish. The LA returns go to a
loopback LA receiver and the DfE returns into a folder, as a trust's config sends them (with no
transport the submit step leaves them queued and the night ends partial). It prints one JSON
line per figure: the night's wall time and outcome, per-step times (sum over schools, and the
longest school) with each step's outcome and the reasons of any step not ok, each worker's peak
RSS (VmHWM) and CPU time, and the wall time extrapolated to 90 schools (linear in the number of
schools: every step is per school). ``--keep`` keeps each night's database, config and worker
logs and prints where. A benchmark, not a test: it asserts only that the night finished.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.config_writer import write_config

from registerwatch.simulator.receiver import DEFAULT_TOKEN, ReceiverServer
from registerwatch.simulator.server import SimulatorServer
from registerwatch.simulator.vendors import serve_mixed_schools
from registerwatch.store import Store

CLI = [sys.executable, "-m", "registerwatch.cli"]
EXTRAPOLATE_TO = 90
RECEIVER_TOKEN_ENV = "BENCH_LA_RETURNS_TOKEN"
REASONS_SHOWN = 5  # distinct reasons printed per step; reasons_total counts them all


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


def cpu_seconds(pid: int) -> float | None:
    """The process's own CPU time so far (user + system): less disturbed than wall time by the
    other work on a shared machine."""
    try:
        # The command name (field 2) is in parentheses and may hold spaces: split after it.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    user, system = int(fields[11]), int(fields[12])  # utime and stime, fields 14 and 15
    return round((user + system) / os.sysconf("SC_CLK_TCK"), 1)


def returns_destinations(
    tables: list[dict[str, Any]], receiver: ReceiverServer, dfe_folder: Path
) -> dict[str, Any]:
    """Where the night's returns go, as a trust configures it: each school's LA over HTTP (the
    loopback LA receiver) and the DfE into a folder. Without them the submit step defers every
    LA return ("no transport for LA ...") and the night ends partial however well it went."""
    la = {
        code: {"kind": "http", "url": receiver.url(code), "token_env": RECEIVER_TOKEN_ENV}
        for code in sorted({t["la_code"] for t in tables})
    }
    return {"la": la, "dfe": {"kind": "folder", "path": str(dfe_folder)}}


def not_ok_reasons(records: list[Any]) -> list[str]:
    """The distinct error lines of the step's records that were not ok (a school's own record
    prefixed with its school; a retried school's earlier tries included: they cost time too)."""
    reasons: dict[str, None] = {}
    for r in sorted(records, key=lambda r: r.id):
        if r.outcome == "ok":
            continue
        school = r.counts.get("school")
        errors = r.counts.get("errors") or [f"outcome {r.outcome}, no error recorded"]
        for error in errors:
            reasons.setdefault(f"{school}: {error}" if school else str(error))
    return list(reasons)


def night_once(
    pg: str,
    tables: list[dict[str, Any]],
    env: dict[str, str],
    workers: int,
    as_of: date,
    tmp: Path,
    keep: bool,
    receiver: ReceiverServer,
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
        transports=returns_destinations(tables, receiver, tmp / f"dfe-{workers}"),
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
        cpu: dict[str, float | None] = {}
        while True:
            for n, p in enumerate(procs):
                rss[f"w{n + 1}"] = peak_rss_mb(p.pid)
                cpu[f"w{n + 1}"] = cpu_seconds(p.pid)
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
        # The night's row has each step's outcome (sync and scan combined over the schools);
        # the step records have the reasons: a night that is not "ok" must say which step and
        # why, or nobody can tell a real problem from a bench set up wrongly.
        outcomes: dict[str, str] = record.counts.get("steps", {})
        by_step: dict[str, list[Any]] = {}
        for r in steps:
            by_step.setdefault(r.command.split(":", 1)[1], []).append(r)
        for step in [*outcomes, *(s for s in by_step if s not in outcomes)]:
            records = by_step.get(step, [])
            seconds = [r.counts.get("seconds", 0.0) for r in records]
            reasons = not_ok_reasons(records)
            emit(
                "step_seconds",
                round(sum(seconds), 1),
                step=step,
                outcome=outcomes.get(step),
                longest=round(max(seconds, default=0.0), 1),
                records=len(records),
                **(
                    {"reasons": reasons[:REASONS_SHOWN], "reasons_total": len(reasons)}
                    if reasons
                    else {}
                ),
                **common,
            )
        for name, mb in rss.items():
            emit("worker_peak_rss_mb", mb, worker=name, **common)
        for name, seconds in cpu.items():
            emit("worker_cpu_seconds", seconds, worker=name, **common)
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
        if keep:
            emit("kept", url, workers=workers, config=str(config), logs=str(tmp))
        else:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", required=True, help="a PostgreSQL URL whose server to use")
    parser.add_argument("--schools", type=int, default=20)
    parser.add_argument("--pupils", type=int, default=300)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2025, 12, 1))
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep each night's database, config and worker logs (printed), to inspect them",
    )
    args = parser.parse_args(argv)
    env = {**os.environ}
    env.pop("REGISTERWATCH_CONFIG", None)
    env[RECEIVER_TOKEN_ENV] = DEFAULT_TOKEN
    receiver = ReceiverServer().start()
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
        tmp = tempfile.mkdtemp(prefix="bench-trust-")
        try:
            for workers in args.workers:
                night_once(
                    args.pg, tables, env, workers, args.as_of, Path(tmp), args.keep, receiver
                )
        finally:
            if not args.keep:
                shutil.rmtree(tmp, ignore_errors=True)
    finally:
        for server in servers:
            server.stop()
        receiver.stop()


if __name__ == "__main__":
    main()
