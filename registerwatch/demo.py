"""`registerwatch demo`: a whole night's work on a generated school, with nothing to configure.

Generates a school, serves it from a vendor-style simulator on loopback, syncs it into a fresh
SQLite store in the demo folder, verifies the ledger, and summarises. Everything it writes stays
in that folder (files 0600); it needs no config and no network.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registerwatch.codes import statistics_for_marks
from registerwatch.config import parse_config
from registerwatch.files import write_private
from registerwatch.simulator.generate import generate_school
from registerwatch.simulator.server import SimulatorServer
from registerwatch.simulator.vendors import build_app, credentials_environ, school_config
from registerwatch.store import Store
from registerwatch.sync import SyncEvent, SyncSummary, check_ledger, sync_all

DEFAULT_PUPILS = 300
DEFAULT_SEED = 1
DEFAULT_VENDOR = "arbor"
STORE_FILE = "registerwatch.sqlite"


@dataclass
class DemoResult:
    directory: Path
    store_url: str
    vendor: str
    school_id: str
    school_name: str
    as_of: str
    sync: SyncSummary
    ledger_ok: bool
    ledger_entries: int
    statistics: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory), "vendor": self.vendor, "school": self.school_id,
            "school_name": self.school_name, "as_of": self.as_of,
            "sync": self.sync.to_dict(),
            "ledger": {"ok": self.ledger_ok, "entries": self.ledger_entries},
            "statistics": self.statistics,
            "files": {name: str(path) for name, path in self.files.items()},
        }


def run_demo(directory: str | Path, *, pupils: int = DEFAULT_PUPILS, seed: int = DEFAULT_SEED,
             vendor: str = DEFAULT_VENDOR,
             progress: Callable[[SyncEvent], None] | None = None) -> DemoResult:
    folder = Path(directory).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    school = generate_school(seed, pupils)
    store_path = folder / STORE_FILE
    # A demo always starts from an empty store so its numbers are the generated school's.
    for leftover in folder.glob(STORE_FILE + "*"):
        leftover.unlink()
    store_url = f"sqlite:///{store_path}"
    app = build_app(vendor, school)
    with SimulatorServer(app) as server:
        config = {"store": {"url": store_url},
                  "schools": [school_config(school, vendor, server.url)]}
        settings = parse_config(config, config_dir=folder)
        store = Store.open(settings.store.url)
        try:
            summary = sync_all(settings, store, as_of=school.as_of,
                               environ=credentials_environ(school.school.id, vendor),
                               progress=progress)
            ledger = check_ledger(store)
            marks = store.marks(school.school.id)
        finally:
            store.close()
    stats = statistics_for_marks(m.code for m in marks).as_dict()
    stats = {k: round(v, 2) if isinstance(v, float) else v for k, v in stats.items()}
    result = DemoResult(
        directory=folder, store_url=store_url, vendor=vendor, school_id=school.school.id,
        school_name=school.school.name, as_of=school.as_of.isoformat() if school.as_of else "",
        sync=summary, ledger_ok=ledger.ok, ledger_entries=ledger.entries, statistics=stats,
    )
    result.files["store"] = store_path
    result.files["summary"] = write_private(
        folder / "summary.json", json.dumps(result.to_dict(), indent=2, default=str) + "\n")
    return result
