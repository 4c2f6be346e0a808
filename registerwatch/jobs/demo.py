"""`registerwatch demo`: a whole night's work on a generated school, with nothing to configure.

Generates a school, serves it from a vendor-style simulator on loopback, and runs the night on
it: sync into a fresh SQLite store, scan, the HTML report, the LA returns the open findings call
for and the DfE daily return for the last school day, submitted to folder transports inside the
demo folder. Everything it writes stays in that folder (files 0600); no config, no network.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from registerwatch.calendar import calendar_for
from registerwatch.codes import statistics_for_marks
from registerwatch.config import parse_config
from registerwatch.files import write_private
from registerwatch.jobs.nightly import (
    Job,
    JobResult,
    NightContext,
    Step,
    StepResult,
    dfe_daily_step,
    la_returns_step,
    report_step,
    run_job,
    scan_step,
    submit_step,
    sync_step,
)
from registerwatch.simulator.generate import generate_school
from registerwatch.simulator.server import SimulatorServer
from registerwatch.simulator.vendors import build_app, credentials_environ, school_config
from registerwatch.store import Store
from registerwatch.sync import SyncEvent, SyncSummary, sync_all

DEFAULT_PUPILS = 300
DEFAULT_SEED = 1
DEFAULT_VENDOR = "arbor"
STORE_FILE = "registerwatch.sqlite"
OUTBOX_FOLDER = "outbox"


@dataclass
class DemoResult:
    directory: Path
    store_url: str
    vendor: str
    school_id: str
    school_name: str
    as_of: str
    sync: SyncSummary
    night: JobResult
    ledger_ok: bool
    ledger_entries: int
    statistics: dict[str, Any]
    findings: dict[str, int]
    files: dict[str, Path] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "vendor": self.vendor,
            "school": self.school_id,
            "school_name": self.school_name,
            "as_of": self.as_of,
            "sync": self.sync.to_dict(),
            "night": self.night.to_dict(),
            "ledger": {"ok": self.ledger_ok, "entries": self.ledger_entries},
            "statistics": self.statistics,
            "findings": self.findings,
            "files": {name: str(path) for name, path in self.files.items()},
        }


def run_demo(
    directory: str | Path,
    *,
    pupils: int = DEFAULT_PUPILS,
    seed: int = DEFAULT_SEED,
    vendor: str = DEFAULT_VENDOR,
    progress: Callable[[SyncEvent], None] | None = None,
    on_step: Callable[[str, StepResult | None], None] | None = None,
) -> DemoResult:
    folder = Path(directory).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    school = generate_school(seed, pupils)
    assert school.as_of is not None
    # A demo always starts from an empty store and outbox so its numbers are the school's.
    for leftover in folder.glob(STORE_FILE + "*"):
        leftover.unlink()
    store_path = folder / STORE_FILE
    store_url = f"sqlite:///{store_path}"
    environ = credentials_environ(school.school.id, vendor)
    # The instant the night "runs": the evening before as_of, so findings and returns are
    # stamped consistently whatever the real date (the generated registers are 2025/26).
    night_clock = datetime.combine(school.as_of, datetime.min.time(), tzinfo=UTC)
    with SimulatorServer(build_app(vendor, school)) as server:
        settings = parse_config(
            {
                "store": {"url": store_url},
                "schools": [school_config(school, vendor, server.url)],
                "transports": {
                    "la": {
                        school.school.la_code: {
                            "kind": "folder",
                            "path": str(folder / OUTBOX_FOLDER / "la"),
                        }
                    },
                    "dfe": {"kind": "folder", "path": str(folder / OUTBOX_FOLDER / "dfe")},
                },
            },
            config_dir=folder,
        )
        store = Store.open(settings.store.url)
        try:
            summary = sync_all(
                settings,
                store,
                as_of=school.as_of,
                environ=environ,
                progress=progress,
                clock=lambda: night_clock,
            )
            ctx = NightContext(
                settings=settings,
                store=store,
                as_of=school.as_of,
                output_dir=folder,
                clock=lambda: night_clock,
                environ=environ,
            )
            last_day = calendar_for(settings.schools[0]).previous_school_day(school.as_of)
            night = run_job(_demo_night(last_day), ctx, trigger="demo", on_step=on_step)
            ledger = store.check_ledger()
            marks = store.marks(school.school.id)
            open_findings = store.load_findings(school.school.id, status="open")
        finally:
            store.close()
    stats = statistics_for_marks(m.code for m in marks).as_dict()
    stats = {k: round(v, 2) if isinstance(v, float) else v for k, v in stats.items()}
    by_severity: dict[str, int] = {}
    for stored in open_findings.values():
        severity = stored.finding.severity.value
        by_severity[severity] = by_severity.get(severity, 0) + 1
    result = DemoResult(
        directory=folder,
        store_url=store_url,
        vendor=vendor,
        school_id=school.school.id,
        school_name=school.school.name,
        as_of=school.as_of.isoformat(),
        sync=summary,
        night=night,
        ledger_ok=ledger.ok,
        ledger_entries=ledger.entries,
        statistics=stats,
        findings=by_severity,
    )
    result.files["store"] = store_path
    night_dir = ctx.night_dir
    for name in ("report.html", "findings.csv"):
        if (night_dir / name).exists():
            result.files[name.replace(".", "_")] = night_dir / name
    result.files["returns"] = night_dir / "returns"
    result.files["outbox"] = folder / OUTBOX_FOLDER
    result.files["summary"] = write_private(
        folder / "summary.json", json.dumps(result.to_dict(), indent=2, default=str) + "\n"
    )
    return result


def _demo_night(last_school_day: date) -> Job:
    """The one-shot night, with the DfE return for the last school day before as_of (the
    nightly job would make it the evening before; the demo has no evening before)."""
    return Job(
        "demo",
        (
            Step("sync", sync_step),
            Step("scan", scan_step),
            # The report after the LA returns: it shows the returns queued tonight as queued.
            Step("la-returns", la_returns_step),
            Step("report", report_step),
            Step("dfe-daily", lambda ctx: dfe_daily_step(ctx, day=last_school_day)),
            Step("submit", submit_step),
        ),
    )
