"""Benchmark (a): the scan of a 1,500-pupil school year, full and nightly, against the plain read.

    .venv/bin/python bench/bench_scan.py                  # 1,500 pupils, a whole school year
    .venv/bin/python bench/bench_scan.py --pupils 300 --repeat 3
    .venv/bin/python bench/bench_scan.py --cache /tmp/bench-scan   # keep the generated store
    .venv/bin/python bench/bench_scan.py --profile full   # a cProfile of one full scan instead

It generates one seeded secondary school with a whole school year of registers (to the
Monday before the end of the summer term: ``--day``, default 2026-07-20) and loads it into a
fresh SQLite store directly through the Store's upserts, as a sync would have left it (pupils,
registers, marks, MIS amendment records, the returns the school made, one ledger entry per
mark, the MIS's capabilities); no HTTP. Then, each repetition on a fresh copy of that store,
each measurement in a child process of its own (so its peak RSS is its own):

  plain_read  the plain SQL read of the four columns the rules need (pupil, date, session,
              code) of every live mark, in key order (``Store.mark_columns``: SQLAlchemy Core,
              typed rows), with the garbage collector paused as the scan pauses it: the floor;
  store_marks ``Store.marks``: every live mark as a Mark object (what the scan read before);
  full        ``run_scan(full=True)`` as of ``--day`` with an empty findings table;
  nightly     the next school day's registers, marks and ledger entries are added as the
              nightly sync would, then ``run_scan`` as of the school day after: incremental
              (the summary the full scan kept, plus the pupil-months that changed);
  nightly_full the same night scanned with ``full=True`` on a copy: what the nightly cost
              before, and a check that both give the same findings (fingerprints, severities).

Prints one JSON line per figure (``{"bench": "scan", "figure": ..., "value": ..., "unit": ...,
"cpus": ...}``): each measurement's median seconds and peak RSS, and the ratios the targets are
stated in (full / plain_read, nightly / full). A benchmark, not a test: it asserts only that
the scans succeeded and agreed.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import pickle
import pstats
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from registerwatch.calendar import SchoolCalendar, england_bank_holidays
from registerwatch.config import parse_config
from registerwatch.logging import configure_logging
from registerwatch.scan import ScanResult, run_scan
from registerwatch.schema import Amendment, Mark, Register
from registerwatch.simulator.generate import generate_school
from registerwatch.simulator.model import GeneratedSchool
from registerwatch.simulator.vendors import school_config
from registerwatch.store import CAPABILITIES_BOOKMARK, LedgerEntry, Store
from registerwatch.validators import all_rules

T = TypeVar("T")
LOADED_AT = datetime(2026, 7, 20, 19, 0, tzinfo=UTC)
NEXT_NIGHT = LOADED_AT + timedelta(days=1)


def timed(action: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    value = action()
    return time.perf_counter() - started, value


def cpu_timed(action: Callable[[], T]) -> tuple[float, float, T]:
    """Wall seconds, this process's CPU seconds (user + system) and the value. On a shared
    machine the CPU seconds are the steadier figure: waiting for a core is not counted."""
    cpu_started = time.process_time()
    seconds, value = timed(action)
    return seconds, time.process_time() - cpu_started, value


def ledger_entries(
    school_id: str, marks: Sequence[Mark], amendments: Sequence[Amendment], at: datetime
) -> list[LedgerEntry]:
    """What sync's first pull ledgers: each mark first seen, each MIS amendment record."""
    entries = [
        LedgerEntry(
            school_id=school_id,
            pupil_id=m.pupil_id,
            date=m.date,
            session=m.session,
            kind="observed_new",
            original_code=None,
            new_code=m.code,
            observed_at=at,
            payload={"code": m.code},
        )
        for m in marks
    ]
    entries += [
        LedgerEntry(
            school_id=school_id,
            pupil_id=a.pupil_id,
            date=a.date,
            session=a.session,
            kind="mis_amendment",
            original_code=a.original_code,
            new_code=a.amended_code,
            observed_at=at,
            payload={},
        )
        for a in amendments
    ]
    return entries


def load_day(
    store: Store,
    school_id: str,
    registers: Sequence[Register],
    marks: Sequence[Mark],
    amendments: Sequence[Amendment],
    at: datetime,
) -> None:
    with store.transaction() as tx:
        store.upsert_registers(registers, at=at, conn=tx)
        store.upsert_marks(marks, school_id, at=at, conn=tx)
        store.insert_amendments(amendments, school_id, at=at, conn=tx)
        store.append_ledger(ledger_entries(school_id, marks, amendments, at), conn=tx)


def load(store: Store, school: GeneratedSchool, before: date) -> None:
    """The school as a first sync and one nightly sync up to ``before`` (exclusive) would
    have stored it."""
    sid = school.school.id
    with store.transaction() as tx:
        store.upsert_school(school.school, at=LOADED_AT, conn=tx)
        store.upsert_calendar(school.calendar, at=LOADED_AT, conn=tx)
        store.upsert_pupils(school.pupils, at=LOADED_AT, conn=tx)
        store.add_notifications(school.notifications, at=LOADED_AT, conn=tx)
        store.set_bookmark(
            sid,
            CAPABILITIES_BOOKMARK,
            json.dumps({"amendments": True, "registers": True}),
            at=LOADED_AT,
            conn=tx,
        )
    # The year to the day before the last school day, then that day the night after: the
    # nightly measured later is then the steady state (its scan rereads last night's changes
    # and tonight's), not the first night after a first sync (which rereads that sync's).
    last = max(m.date for m in school.marks if m.date < before)
    first_sync = LOADED_AT - timedelta(days=1)
    load_day(
        store,
        sid,
        [r for r in school.registers if r.date < last],
        [m for m in school.marks if m.date < last],
        [a for a in school.amendments if a.date < last],
        first_sync,
    )
    load_day(store, sid, *day_records(school, last), LOADED_AT)


def copy_store(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def median(values: list[float]) -> float:
    return statistics.median(values)


def phases(result: ScanResult) -> dict[str, float]:
    (school,) = result.schools
    assert school.status == "scanned" and not school.failed_rules, school
    return dict(school.timings)


def profile(action: Callable[[], Any], top: int = 45) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    action()
    profiler.disable()
    buffer = io.StringIO()
    stats = pstats.Stats(profiler, stream=buffer)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top // 2)  # what each function costs itself
    return buffer.getvalue()


def day_records(
    school: GeneratedSchool, day: date
) -> tuple[list[Register], list[Mark], list[Amendment]]:
    """One school day of records, as the nightly sync would add them."""
    return (
        [r for r in school.registers if r.date == day],
        [m for m in school.marks if m.date == day],
        [a for a in school.amendments if a.date == day],
    )


def peak_rss_mb() -> float:
    """This process's peak resident set size. VmHWM, not getrusage's ru_maxrss: Linux keeps
    ru_maxrss across exec, so a child would report its parent's peak (the generated school)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_school_config(school: GeneratedSchool, work: Path) -> None:
    config = school_config(school, "arbor", "http://127.0.0.1:9")
    (work / "school.json").write_text(json.dumps(config, default=str))


# -- the child process: one measurement, its seconds and its own peak RSS ---------------------


def warm_up() -> None:
    """What a process pays once, before its first scan, outside every figure: importing the rule
    modules, and the ``holidays`` package loading its country tables on first use (~0.1 s
    together). A nightly scan runs after the sync in the same process, or in a worker that has
    scanned other schools; its cost per school is what the figures measure. The warm-up asks
    for a year no scan uses, so no calendar is cached for the scan."""
    all_rules()
    england_bank_holidays([1999])


def child(kind: str, work: Path, day: date, nightly_as_of: date, show_profile: bool) -> None:
    configure_logging(level="WARNING")
    warm_up()
    # The school's config only, not the generated school: its peak RSS is the scan's own.
    config = json.loads((work / "school.json").read_text())
    settings = parse_config(
        {
            "store": {"url": f"sqlite:///{work / 'store.sqlite'}"},
            "logging": {"level": "WARNING"},
            "schools": [config],
        }
    )
    sid = config["id"]
    store = Store(settings.store.url)
    out: dict[str, Any] = {}
    # CPU seconds as well as wall seconds: on a shared machine the CPU time is the steadier
    cpu_started = time.process_time()
    try:
        if kind == "plain_read":
            gc.disable()
            seconds, cpu, rows = cpu_timed(lambda: store.mark_columns(sid))
            gc.enable()
            out["rows"] = len(rows)
        elif kind == "store_marks":
            seconds, cpu, marks = cpu_timed(lambda: store.marks(sid))
            out["rows"] = len(marks)
        else:
            as_of, at, full = {
                "full": (day, LOADED_AT, True),
                "nightly": (nightly_as_of, NEXT_NIGHT, False),
                "nightly_full": (nightly_as_of, NEXT_NIGHT, True),
            }[kind]

            def scan() -> ScanResult:
                return run_scan(store, settings, as_of=as_of, clock=lambda: at, full=full)

            if show_profile:
                print(profile(scan), file=sys.stderr)
                return
            seconds, cpu, result = cpu_timed(scan)
            (school_scan,) = result.schools
            assert school_scan.status == "scanned" and not school_scan.failed_rules, school_scan
            assert school_scan.incremental == (not full), school_scan
            out["phases"] = dict(school_scan.timings)
            out["counts"] = dict(result.counts())
            out["findings"] = sorted(
                (
                    f.fingerprint,
                    str(f.finding.severity),
                    f.status,
                    f.finding.message,
                    str(f.finding.due),
                    str(f.finding.last_session),
                )
                for f in result.findings
            )
    finally:
        store.close()
    out["cpu_seconds"] = time.process_time() - cpu_started
    out["seconds"] = seconds
    out["cpu_seconds"] = cpu
    out["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(out, default=str))


def measure(kind: str, work: Path, args: argparse.Namespace, nightly_as_of: date) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--work",
        str(work),
        "--day",
        args.day.isoformat(),
        "--nightly-as-of",
        nightly_as_of.isoformat(),
    ]
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def emit(figure: str, value: float, unit: str, **extra: Any) -> None:
    line = {"bench": "scan", "figure": figure, "value": round(value, 4), "unit": unit}
    line.update(extra)
    line["cpus"] = os.cpu_count()
    print(json.dumps(line), flush=True)


def prepare(args: argparse.Namespace, folder: Path) -> tuple[GeneratedSchool, date]:
    """The generated school and the loaded base store (reused from ``--cache`` when there)."""
    probe = SchoolCalendar(generate_school(args.seed, 80, as_of=args.day).calendar)
    if not probe.is_school_day(args.day):
        raise SystemExit(f"--day {args.day} is not a school day")
    nightly_as_of = probe.next_school_day(args.day)
    base = folder / "base.sqlite"
    pickled = folder / "school.pickle"
    tag = folder / "base.json"
    wanted = {"pupils": args.pupils, "seed": args.seed, "day": args.day.isoformat(), "v": 2}
    if (
        base.exists()
        and pickled.exists()
        and tag.exists()
        and json.loads(tag.read_text()) == wanted
    ):
        with pickled.open("rb") as fh:
            return pickle.load(fh), nightly_as_of
    for stale in (base, pickled, tag):
        stale.unlink(missing_ok=True)
    school = generate_school(args.seed, args.pupils, as_of=nightly_as_of)
    store = Store.open(f"sqlite:///{base}")
    try:
        load(store, school, args.day)
    finally:
        store.close()
    with sqlite3.connect(base) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with pickled.open("wb") as fh:
        pickle.dump(school, fh)
    tag.write_text(json.dumps(wanted))
    return school, nightly_as_of


def run(args: argparse.Namespace, folder: Path) -> None:
    school, nightly_as_of = prepare(args, folder)
    sid = school.school.id
    registers, marks, amendments = day_records(school, args.day)
    samples: dict[str, list[dict[str, Any]]] = {}
    for n in range(args.repeat):
        work = folder / f"run{n}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        write_school_config(school, work)
        copy_store(folder / "base.sqlite", work / "store.sqlite")
        for kind in ("plain_read", "store_marks", "full"):
            samples.setdefault(kind, []).append(measure(kind, work, args, nightly_as_of))
        store = Store(f"sqlite:///{work / 'store.sqlite'}")
        try:
            load_day(store, sid, registers, marks, amendments, NEXT_NIGHT)
        finally:
            store.close()
        twin = folder / f"run{n}-full"
        shutil.rmtree(twin, ignore_errors=True)
        shutil.copytree(work, twin)
        samples.setdefault("nightly", []).append(measure("nightly", work, args, nightly_as_of))
        samples.setdefault("nightly_full", []).append(
            measure("nightly_full", twin, args, nightly_as_of)
        )
        nightly, nightly_full = samples["nightly"][-1], samples["nightly_full"][-1]
        if nightly["findings"] != nightly_full["findings"]:
            raise SystemExit("the incremental nightly scan and the full one disagree")
        shutil.rmtree(twin)
        shutil.rmtree(work)
    rows = samples["plain_read"][0]["rows"]
    conditions = {
        "pupils": len(school.pupils),
        "marks": rows,
        "new_day_marks": len(marks),
        "repeat": args.repeat,
        "store": "sqlite",
        "python": sys.version.split()[0],
        "load_average": round(os.getloadavg()[0], 2),
    }
    medians: dict[str, float] = {}
    cpu_medians: dict[str, float] = {}
    for kind in ("plain_read", "store_marks", "full", "nightly", "nightly_full"):
        medians[kind] = statistics.median(s["seconds"] for s in samples[kind])
        rss = statistics.median(s["peak_rss_mb"] for s in samples[kind])
        extra: dict[str, Any] = {
            "cpu_seconds": round(statistics.median(s["cpu_seconds"] for s in samples[kind]), 3)
        }
        if "phases" in samples[kind][0]:
            extra["phases"] = {
                k: round(statistics.median(s["phases"][k] for s in samples[kind]), 3)
                for k in samples[kind][0]["phases"]
            }
            extra["findings"] = samples[kind][-1]["counts"]
        emit(f"{kind}_seconds", medians[kind], "s", **extra, **conditions)
        cpu_medians[kind] = statistics.median(s["cpu_seconds"] for s in samples[kind])
        emit(f"{kind}_cpu_seconds", cpu_medians[kind], "s", **conditions)
        emit(f"{kind}_peak_rss", rss, "MB", **conditions)
    emit("full_over_plain_read", medians["full"] / medians["plain_read"], "ratio", target=2.0)
    emit("full_over_plain_read_cpu", cpu_medians["full"] / cpu_medians["plain_read"], "ratio")
    emit("nightly_over_full", medians["nightly"] / medians["full"], "ratio", target=0.1)
    emit("nightly_full_over_plain_read", medians["nightly_full"] / medians["plain_read"], "ratio")
    emit("store_marks_over_plain_read", medians["store_marks"] / medians["plain_read"], "ratio")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pupils", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument(
        "--day",
        type=date.fromisoformat,
        default=date(2026, 7, 20),
        help="the school day the nightly scan adds (default 2026-07-20)",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--cache", type=Path, help="keep the generated school and store here between runs"
    )
    parser.add_argument(
        "--profile",
        choices=("full", "nightly", "nightly_full"),
        help="print a cProfile of one scan (to stderr) instead of measuring",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--nightly-as-of", type=date.fromisoformat, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.work, args.day, args.nightly_as_of, show_profile=False)
        return
    configure_logging(level="WARNING")  # the scan logs each finding at INFO
    with tempfile.TemporaryDirectory(prefix="bench-scan-") as tmp:
        folder = args.cache or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        if args.profile:
            school, nightly_as_of = prepare(args, folder)
            work = folder / "profile"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir()
            write_school_config(school, work)
            copy_store(folder / "base.sqlite", work / "store.sqlite")
            if args.profile != "full":
                child("full", work, args.day, nightly_as_of, show_profile=False)
                store = Store(f"sqlite:///{work / 'store.sqlite'}")
                try:
                    load_day(store, school.school.id, *day_records(school, args.day), NEXT_NIGHT)
                finally:
                    store.close()
            child(args.profile, work, args.day, nightly_as_of, show_profile=True)
            return
        run(args, folder)


if __name__ == "__main__":
    main()
