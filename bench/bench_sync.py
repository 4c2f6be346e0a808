"""Sync throughput from the loopback simulators: marks per second for a 1,500-pupil school.

    .venv/bin/python bench/bench_sync.py                       # every vendor, 1,500 pupils
    .venv/bin/python bench/bench_sync.py --vendor arbor --pupils 300

For each vendor it generates one school (seeded; marks from the first term day to the day
before ``--as-of``, default the first school day of December), serves it on 127.0.0.1, and runs
``sync_all`` twice into a fresh SQLite store:

- the first sync pulls the school year so far (every mark is new: written, diffed and ledgered);
- the second re-pulls the trailing window (10 school days) and finds nothing changed.

Each run is split into fetch (the adapter over HTTP, including the simulator's own time) and
write (one transaction: upserts, diff, ledger hashing, commit), from the progress events.
A benchmark, not a test: it prints numbers and asserts nothing beyond both runs succeeding.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from registerwatch.config import parse_config
from registerwatch.simulator import server as simulator_server
from registerwatch.simulator.arbor import ArborApp
from registerwatch.simulator.generate import generate_school
from registerwatch.simulator.go4schools import Go4SchoolsApp
from registerwatch.simulator.isams import IsamsApp
from registerwatch.simulator.server import SimulatorServer, VendorApp
from registerwatch.store import Store
from registerwatch.sync import ResourceFetched, SchoolFinished, SchoolStarted, SyncEvent, sync_all

VENDORS = ("arbor", "isams", "go4schools")
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


def app_for(vendor: str, school: Any) -> VendorApp:
    return {"arbor": ArborApp, "isams": IsamsApp, "go4schools": Go4SchoolsApp}[vendor](school)


@dataclass
class Timing:
    fetch: float = 0.0
    write: float = 0.0
    marks: int = 0

    @property
    def total(self) -> float:
        return self.fetch + self.write


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


def run(vendor: str, pupils: int, seed: int, as_of: date | None, folder: Path) -> None:
    started = time.perf_counter()
    school = generate_school(seed, pupils, vendor=vendor, as_of=as_of, inject_breaches=False)
    generated = time.perf_counter() - started
    app = app_for(vendor, school)
    server = SimulatorServer(app)
    threading.Thread(
        target=server._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    s = school.school
    settings = parse_config(
        {
            "store": {"url": f"sqlite:///{folder / f'{vendor}.sqlite'}"},
            "sync": {"timeout_seconds": 120},
            "schools": [
                {
                    "id": s.id,
                    "urn": s.urn,
                    "laestab": s.laestab,
                    "name": s.name,
                    "la_code": s.la_code,
                    "phase": s.phase,
                    "mis": mis_table(vendor, server.url),
                    "calendar": {
                        "terms": [t.model_dump() for t in school.calendar.terms],
                        "closures": [c.model_dump() for c in school.calendar.closures],
                        "register_times": school.calendar.register_times.model_dump(),
                    },
                }
            ],
        }
    )
    store = Store.open(settings.store.url)
    try:
        print(
            f"{vendor}: {len(school.pupils)} pupils, {len(school.marks):,} marks to "
            f"{school.as_of} (generated in {generated:.1f}s)"
        )
        for label in ("first sync (school year)", "second sync (trailing window)"):
            clock = Clock()
            summary = sync_all(settings, store, as_of=school.as_of, environ=ENV, progress=clock)
            (result,) = summary.schools
            t = clock.timing
            print(
                f"  {label:31} {t.marks:>8,} marks  fetch {t.fetch:6.1f}s  "
                f"write {t.write:6.1f}s  total {t.total:6.1f}s  "
                f"{t.marks / t.total:>9,.0f} marks/s  (new {result.marks_new:,}, "
                f"ledger +{result.ledger_entries:,}, requests {sum(app.requests.values()):,})"
            )
            app.requests.clear()
    finally:
        store.close()
        server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vendor", choices=VENDORS, action="append")
    parser.add_argument("--pupils", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--as-of", type=date.fromisoformat, default=None)
    parser.add_argument(
        "--nagle",
        action="store_true",
        help="leave Nagle's algorithm on in the simulator (each response then "
        "waits ~40 ms for a delayed ACK, as server.py does today)",
    )
    args = parser.parse_args(argv)
    if not args.nagle:
        simulator_server._Handler.disable_nagle_algorithm = True
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        for vendor in args.vendor or VENDORS:
            run(vendor, args.pupils, args.seed, args.as_of, Path(tmp))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
