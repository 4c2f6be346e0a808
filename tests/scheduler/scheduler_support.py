"""Helpers for the scheduler tests: configs for small fake schools, TOML files, fake steps and
subprocess runners.

A support module rather than conftest.py, because the test folders have no ``__init__.py`` and
pytest would otherwise import several modules all called ``conftest``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

from support.config_writer import write_config as write_toml_config

from registerwatch.config import Settings, load_config, parse_config
from registerwatch.jobs.nightly import NightContext, StepResult
from registerwatch.schema import Calendar
from registerwatch.simulator.generate_calendar import build_calendar
from registerwatch.store import Store

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
YEAR = 2025

# Days of the 2025/26 simulator calendar (build_calendar), each for one reason.
SCHOOL_DAY = date(2025, 10, 1)  # Wednesday in the autumn term
SATURDAY = date(2025, 10, 4)
HALF_TERM = date(2025, 10, 29)  # Wednesday of the October half-term
INSET = date(2025, 11, 14)  # Friday, a planned whole-day closure
BANK_HOLIDAY = date(2026, 5, 4)  # early May bank holiday, a Monday in the summer term


def calendar_table(
    calendar: Calendar, extra_closures: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "terms": [{"start": t.start, "end": t.end} for t in calendar.terms],
        "closures": [
            {"date": c.date, "session": c.session, "kind": c.kind.value, "reason": c.reason}
            for c in calendar.closures
        ]
        + (extra_closures or []),
        "register_times": {
            "am_open": calendar.register_times.am_open,
            "pm_open": calendar.register_times.pm_open,
            "close_after_minutes": calendar.register_times.close_after_minutes,
        },
    }


def fake_school(
    school_id: str, urn: int, *, la_code: str = "881", closures: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A [[schools]] table whose MIS is never reached (the steps are fakes, or the adapter is)."""
    return {
        "id": school_id,
        "urn": str(urn),
        "laestab": f"{la_code}{urn % 10_000:04d}",
        "name": f"{school_id.title()} School",
        "la_code": la_code,
        "phase": "secondary",
        "mis": {
            "vendor": "go4schools",
            "base_url": "http://127.0.0.1:9/customer/v1",
            "api_key_env": f"{school_id.upper()}_G4S_KEY",
        },
        "calendar": calendar_table(build_calendar(school_id, YEAR, "secondary"), closures),
    }


def settings_for(
    store_url: str,
    schools: list[dict[str, Any]] | None = None,
    schedule: Mapping[str, Any] | None = None,
) -> Settings:
    data: dict[str, Any] = {
        "store": {"url": store_url},
        "schools": schools or [fake_school("ashby", 140001)],
    }
    if schedule:
        data["schedule"] = dict(schedule)
    return parse_config(data)


# -- TOML files ----------------------------------------------------------------------------------


def write_config(
    path: Path,
    store_url: str,
    schools: list[dict[str, Any]],
    *,
    transports: Mapping[str, Any] | None = None,
    schedule: Mapping[str, Any] | None = None,
    sync: Mapping[str, Any] | None = None,
) -> Path:
    """A TOML config; ``transports`` as {"dfe": {...}, "la": {"881": {...}}}."""
    sync = {"timeout_seconds": 5, "concurrency": 2} | dict(sync or {})
    write_toml_config(path, store_url, schools, sync=sync, schedule=schedule, transports=transports)
    load_config(path)  # fail here, with the config's own message, if the file is wrong
    return path


def runs_of(store_url: str) -> list[Any]:
    """Every run record, oldest first."""
    with Store(store_url) as store:
        return list(reversed(store.runs(limit=1000)))


# -- fake steps ----------------------------------------------------------------------------------


class Recorder:
    """Fake steps that record the order they ran in."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def ok(self, name: str, **counts: Any) -> Callable[[NightContext], StepResult]:
        def step(ctx: NightContext) -> StepResult:
            self.calls.append(name)
            return StepResult(name, "ok", dict(counts))

        return step

    def raises(self, name: str, exc: Exception) -> Callable[[NightContext], StepResult]:
        def step(ctx: NightContext) -> StepResult:
            self.calls.append(name)
            raise exc

        return step

    def then(self, name: str, action: Callable[[], None]) -> Callable[[NightContext], StepResult]:
        def step(ctx: NightContext) -> StepResult:
            self.calls.append(name)
            action()
            return StepResult(name, "ok", {})

        return step


# -- subprocesses --------------------------------------------------------------------------------


def env_with(**extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    env.pop("REGISTERWATCH_CONFIG", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return env


def cli(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 60, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``registerwatch ARGS`` in a fresh process, as cron would start it."""
    return subprocess.run(
        [PYTHON, "-m", "registerwatch.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(env or env_with()),
        cwd=cwd,
    )


def start_script(
    script: str, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.Popen[str]:
    """Run a small Python program (a runner that patches in slow fake steps) in the background."""
    return subprocess.Popen(
        [PYTHON, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(env or env_with()),
    )


def wait_for(condition: Callable[[], bool], timeout: float = 20, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def drain(proc: subprocess.Popen[str]) -> threading.Thread:
    """Read a background process's stderr as it goes, so a full pipe never blocks it."""
    chunks: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            chunks.append(line)

    thread = threading.Thread(target=read, daemon=True)
    thread.chunks = chunks  # type: ignore[attr-defined]
    thread.start()
    return thread


# Runs `registerwatch <args>` in-process after swapping the one-shot night, and the daemon's
# "nightly" job, for: "slow" (writes <marker>.started, sleeps SLOW_SECONDS, writes
# <marker>.finished) then "after" (writes <marker>.after). With RUN_NOW set, the daemon's nightly
# job comes due one second after start instead of at 02:00.
SLOW_RUNNER = r"""
import os, sys, time
from datetime import time as wall_time, timedelta
from pathlib import Path

import registerwatch.jobs.nightly as nightly
import registerwatch.jobs.scheduler as scheduler
from registerwatch.cli import main

marker = Path(os.environ["MARKER"])
seconds = float(os.environ.get("SLOW_SECONDS", "3"))

def slow(ctx):
    marker.with_suffix(".started").write_text(str(os.getpid()))
    time.sleep(seconds)
    marker.with_suffix(".finished").write_text("done")
    return nightly.StepResult("slow", "ok", {"slept": seconds})

def after(ctx):
    marker.with_suffix(".after").write_text("ran")
    return nightly.StepResult("after", "ok", {})

job = nightly.Job("nightly", (nightly.Step("slow", slow), nightly.Step("after", after)))
nightly.ONE_SHOT = job
nightly.SCHEDULED["nightly"] = job

if os.environ.get("RUN_NOW"):
    real = scheduler.next_occurrence
    used = []
    def soon(at, after_, tz=scheduler.LONDON):
        if at == wall_time(2, 0) and not used:
            used.append(at)
            return after_ + timedelta(seconds=1)
        return real(at, after_, tz)
    scheduler.next_occurrence = soon

main(sys.argv[1:])
"""


# -- loopback simulators -------------------------------------------------------------------------


def serve(app: Any) -> Any:
    """Start a simulator on loopback that answers without Nagle delays and stops in
    milliseconds (SimulatorServer.start polls every half second)."""
    from registerwatch.simulator import server as simulator_server

    simulator_server._Handler.disable_nagle_algorithm = True  # type: ignore[attr-defined]
    server = simulator_server.SimulatorServer(app)
    threading.Thread(
        target=server._server.serve_forever,
        kwargs={"poll_interval": 0.01},
        name=f"sim-{app.vendor}",
        daemon=True,
    ).start()
    return server


def simulated_school(generated: Any, mis: dict[str, Any]) -> dict[str, Any]:
    """A [[schools]] table for a generated school served at ``mis``."""
    s = generated.school
    return {
        "id": s.id,
        "urn": s.urn,
        "laestab": s.laestab,
        "name": s.name,
        "la_code": s.la_code,
        "phase": s.phase,
        "mis": mis,
        "calendar": calendar_table(generated.calendar),
    }


def arbor_mis(url: str, prefix: str) -> dict[str, Any]:
    return {
        "vendor": "arbor",
        "base_url": f"{url}/rest-v2",
        "username_env": f"{prefix}_ARBOR_USERNAME",
        "password_env": f"{prefix}_ARBOR_PASSWORD",
    }


def go4schools_mis(url: str, prefix: str) -> dict[str, Any]:
    return {
        "vendor": "go4schools",
        "base_url": f"{url}/customer/v1",
        "api_key_env": f"{prefix}_G4S_API_KEY",
    }
