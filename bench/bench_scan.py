"""The nightly scan's cost as a ratio to a plain read of the same marks (DESIGN §9).

    .venv/bin/python bench/bench_scan.py                  # 1,500 pupils, a whole school year
    .venv/bin/python bench/bench_scan.py --pupils 300 --repeat 3
    .venv/bin/python bench/bench_scan.py --profile        # + where the nightly scan's time goes

It generates one seeded secondary school with a whole school year of registers (to the
Monday before the end of the summer term: ``--day``, default 2026-07-20) and loads it into a
fresh SQLite store directly through the Store's upserts, as a sync would have left it (pupils,
registers, marks, MIS amendment records, the returns the school made, one ledger entry per
mark, the MIS's capabilities); no HTTP. Then it measures:

  (a) read    ``Store.marks``: every live mark of the school, as Mark objects, as any caller
              gets them; and (a') the same with the garbage collector paused, as the scan
              reads them (``scan.context_loader.load_context``): the fair floor for the ratios;
  (b) full    ``run_scan`` on ``--day`` with an empty findings table: every finding is new;
  (c) nightly the next school day's registers and marks are added (one school day, with
              their ledger entries), then ``run_scan`` as of the school day after that: the
              findings are reconciled with the stored ones.

Each is run ``--repeat`` times (median reported); (b) and (c) start each repetition from a
copy of the store as it was before. A benchmark, not a test: it prints numbers and asserts
only that the scans succeeded.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import pstats
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from registerwatch.calendar import SchoolCalendar
from registerwatch.config import Settings, parse_config
from registerwatch.logging import configure_logging
from registerwatch.scan import ScanResult, run_scan
from registerwatch.schema import Amendment, Mark, Register
from registerwatch.simulator.generate import generate_school
from registerwatch.simulator.model import GeneratedSchool
from registerwatch.simulator.vendors import school_config
from registerwatch.store import CAPABILITIES_BOOKMARK, LedgerEntry, Store

T = TypeVar("T")
LOADED_AT = datetime(2026, 7, 20, 19, 0, tzinfo=UTC)


def timed(action: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    value = action()
    return time.perf_counter() - started, value


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
    """The school as a first sync up to ``before`` (exclusive) would have stored it."""
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
    load_day(
        store,
        sid,
        [r for r in school.registers if r.date < before],
        [m for m in school.marks if m.date < before],
        [a for a in school.amendments if a.date < before],
        LOADED_AT,
    )


def copy_store(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def median(values: list[float]) -> float:
    return statistics.median(values)


def phases(result: ScanResult) -> dict[str, float]:
    (school,) = result.schools
    assert school.status == "scanned" and not school.failed_rules, school
    return dict(school.timings)


def profile(action: Callable[[], Any], top: int = 25) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    action()
    profiler.disable()
    buffer = io.StringIO()
    pstats.Stats(profiler, stream=buffer).sort_stats("cumulative").print_stats(top)
    return buffer.getvalue()


@dataclass
class Day:
    """One school day of records, as the nightly sync would add them."""

    day: date
    registers: list[Register]
    marks: list[Mark]
    amendments: list[Amendment]

    @classmethod
    def of(cls, school: GeneratedSchool, day: date) -> Day:
        return cls(
            day,
            [r for r in school.registers if r.date == day],
            [m for m in school.marks if m.date == day],
            [a for a in school.amendments if a.date == day],
        )

    def add_to(self, store: Store, school_id: str, at: datetime) -> None:
        load_day(store, school_id, self.registers, self.marks, self.amendments, at)


@dataclass
class Round:
    """One repetition: (a), (a'), (b), (c) in seconds, the scans' phases and counts."""

    read: float
    read_paused: float
    full: float
    nightly: float
    full_phases: dict[str, float]
    nightly_phases: dict[str, float]
    counts: dict[str, dict[str, int]]


def settings_for(school: GeneratedSchool, path: Path) -> Settings:
    # The MIS is never called: the store is loaded directly.
    return parse_config(
        {
            "store": {"url": f"sqlite:///{path}"},
            "logging": {"level": "WARNING"},
            "schools": [school_config(school, "arbor", "http://127.0.0.1:9")],
        }
    )


def measure(
    store: Store, settings: Settings, school_id: str, new_day: Day, nightly_as_of: date
) -> Round:
    read, _ = timed(lambda: len(store.marks(school_id)))
    gc.disable()
    try:
        read_paused, _ = timed(lambda: len(store.marks(school_id)))
    finally:
        gc.enable()
    full_seconds, full = timed(
        lambda: run_scan(store, settings, as_of=new_day.day, clock=lambda: LOADED_AT)
    )
    next_night = LOADED_AT + timedelta(days=1)
    new_day.add_to(store, school_id, next_night)
    nightly_seconds, nightly = timed(
        lambda: run_scan(store, settings, as_of=nightly_as_of, clock=lambda: next_night)
    )
    return Round(
        read,
        read_paused,
        full_seconds,
        nightly_seconds,
        phases(full),
        phases(nightly),
        {"full": full.counts(), "nightly": nightly.counts()},
    )


def run(pupils: int, seed: int, day: date, repeat: int, show_profile: bool, folder: Path) -> None:
    # Generate to the school day after `day`, so the marks of `day` exist to be "synced" later.
    probe = SchoolCalendar(generate_school(seed, 80, as_of=day).calendar)
    if not probe.is_school_day(day):
        raise SystemExit(f"--day {day} is not a school day")
    nightly_as_of = probe.next_school_day(day)
    generated, school = timed(lambda: generate_school(seed, pupils, as_of=nightly_as_of))
    sid = school.school.id
    base = folder / "base.sqlite"
    store = Store.open(f"sqlite:///{base}")
    try:
        loaded, _ = timed(lambda: load(store, school, day))
        marks_loaded = len(store.marks(sid))
    finally:
        store.close()
    new_day = Day.of(school, day)
    print(
        f"{len(school.pupils):,} pupils, {marks_loaded:,} marks to {day - timedelta(1)} "
        f"(generated in {generated:.1f}s, loaded in {loaded:.1f}s); the nightly run adds "
        f"{len(new_day.marks):,} marks of {day} and scans as of {nightly_as_of}"
    )

    rounds: list[Round] = []
    for n in range(repeat):
        path = folder / f"run{n}.sqlite"
        copy_store(base, path)
        settings = settings_for(school, path)
        store = Store(settings.store.url)
        try:
            rounds.append(measure(store, settings, sid, new_day, nightly_as_of))
        finally:
            store.close()

    a = median([r.read for r in rounds])
    a_paused = median([r.read_paused for r in rounds])
    b = median([r.full for r in rounds])
    c = median([r.nightly for r in rounds])

    def split(samples: list[dict[str, float]]) -> str:
        return ", ".join(
            f"{k} {median([s[k] for s in samples]):.2f}s" for k in ("read", "rules", "save")
        )

    print(f"  (a)  read all marks                    {a:6.2f}s")
    print(f"  (a') read all marks, collector paused  {a_paused:6.2f}s")
    print(
        f"  (b)  full scan                         {b:6.2f}s   {b / a:4.2f} x (a)   "
        f"{b / a_paused:4.2f} x (a')   ({split([r.full_phases for r in rounds])})"
    )
    print(
        f"  (c)  nightly scan (+1 school day)      {c:6.2f}s   {c / a:4.2f} x (a)   "
        f"{c / a_paused:4.2f} x (a')   ({split([r.nightly_phases for r in rounds])})"
    )
    full_c, nightly_c = rounds[-1].counts["full"], rounds[-1].counts["nightly"]
    print(
        f"  findings: full {full_c['new']} new; nightly {nightly_c['new']} new, "
        f"{nightly_c['open']} open, {nightly_c['resolved']} resolved "
        f"(times: median of {repeat} run{'s' if repeat > 1 else ''})"
    )
    if show_profile:
        path = folder / "profile.sqlite"
        copy_store(base, path)
        settings = settings_for(school, path)
        store = Store(settings.store.url)
        try:
            run_scan(store, settings, as_of=day, clock=lambda: LOADED_AT)
            new_day.add_to(store, sid, LOADED_AT + timedelta(days=1))
            print(
                profile(
                    lambda: run_scan(
                        store, settings, as_of=nightly_as_of, clock=lambda: LOADED_AT + timedelta(1)
                    )
                )
            )
        finally:
            store.close()


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
        "--profile", action="store_true", help="also print a cProfile of one nightly scan"
    )
    args = parser.parse_args(argv)
    configure_logging(level="WARNING")  # the scan logs each finding at INFO
    with tempfile.TemporaryDirectory(prefix="bench-scan-") as tmp:
        run(args.pupils, args.seed, args.day, args.repeat, args.profile, Path(tmp))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
