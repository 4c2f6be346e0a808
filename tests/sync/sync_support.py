"""Fixtures for the sync tests: config for a school, a store, a scriptable fake adapter, and
helpers to serve a generated school from a loopback simulator.

The fake adapter (``FakeAdapter``) drives the sync logic exactly (windows, diffs, deletions,
quarantine, failures) without HTTP; the simulator tests (``test_sync_simulators.py``,
``test_sync_kill.py``) run the real adapters against the real loopback simulators.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.config_writer import write_config as write_toml_config
from support.pg import pg_schema_url

from registerwatch.adapters.base import AdapterBase, Batch, Quarantined
from registerwatch.calendar import SchoolCalendar
from registerwatch.config import Settings, parse_config
from registerwatch.schema import Amendment, Calendar, Mark, Pupil, Register, Session
from registerwatch.simulator import server as simulator_server
from registerwatch.simulator.arbor import ArborApp
from registerwatch.simulator.generate_calendar import build_calendar
from registerwatch.simulator.go4schools import Go4SchoolsApp
from registerwatch.simulator.isams import IsamsApp
from registerwatch.simulator.model import GeneratedSchool
from registerwatch.simulator.server import SimulatorServer, VendorApp
from registerwatch.store import Store

YEAR = 2025
# A Wednesday four weeks into the 2025/26 autumn term (which starts 2025-09-03).
AS_OF = date(2025, 10, 1)
NOW = datetime(2025, 10, 1, 19, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_nagle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Until server.py sets it: without TCP_NODELAY each loopback response waits ~40 ms for a
    delayed ACK (headers and body are written separately), which makes these suites crawl."""
    monkeypatch.setattr(simulator_server._Handler, "disable_nagle_algorithm", True, raising=False)


def calendar_table(calendar: Calendar) -> dict[str, Any]:
    """A Calendar as the [schools.calendar] TOML table."""
    return {
        "terms": [{"start": t.start, "end": t.end} for t in calendar.terms],
        "closures": [
            {"date": c.date, "session": c.session, "kind": c.kind.value, "reason": c.reason}
            for c in calendar.closures
        ],
        "register_times": {
            "am_open": calendar.register_times.am_open,
            "pm_open": calendar.register_times.pm_open,
            "close_after_minutes": calendar.register_times.close_after_minutes,
        },
    }


_URNS = iter(range(140001, 149999))


def school_table(
    school_id: str, mis: dict[str, Any], calendar: Calendar | None = None, phase: str = "secondary"
) -> dict[str, Any]:
    """One [[schools]] table; ``mis`` is its [schools.mis] table."""
    calendar = calendar or build_calendar(school_id, YEAR, phase)
    urn = next(_URNS)
    return {
        "id": school_id,
        "urn": str(urn),
        "laestab": f"881{urn % 10_000:04d}",
        "name": f"{school_id.title()} School",
        "la_code": "881",
        "phase": phase,
        "mis": mis,
        "calendar": calendar_table(calendar),
    }


def fake_mis(school_id: str) -> dict[str, Any]:
    # Any valid HTTP vendor does: the fake adapter factory ignores where it would connect.
    return {
        "vendor": "go4schools",
        "base_url": "http://127.0.0.1:9/customer/v1",
        "api_key_env": f"{school_id.upper()}_G4S_KEY",
    }


def make_settings(
    schools: list[dict[str, Any]], store_url: str = "sqlite://", **sync: Any
) -> Settings:
    return parse_config({"store": {"url": store_url}, "sync": sync, "schools": schools})


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[Store]:
    """An empty store: a SQLite file, and (when REGISTERWATCH_TEST_PG_URL is set) a PostgreSQL
    schema of its own, as in tests/store."""
    if request.param == "sqlite":
        opened = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
        try:
            yield opened
        finally:
            opened.close()
        return
    with pg_schema_url("sync") as url, Store.open(url) as opened:
        yield opened


# -- a small school as plain records -------------------------------------------------------


def school_days(calendar: Calendar, start: date, end: date) -> list[date]:
    return SchoolCalendar(calendar).school_days(start, end)


def pupil(school_id: str, n: int) -> Pupil:
    return Pupil(
        id=f"{school_id}:{1000 + n}",
        school_id=school_id,
        mis_id=str(1000 + n),
        legal_forename=f"Forename{n}",
        legal_surname=f"Surname{n}",
        dob=date(2012, 1, 1) + timedelta(days=n),
        nc_year="8",
        reg_group="8A",
        starting_day=date(2024, 9, 4),
    )


# A spread of codes, including two-character 2024 codes and a late mark with minutes.
_CODES = ("/", "\\", "/", "L", "I", "/", "N", "M", "/", "C1", "/", "U", "/", "J1", "O", "/")


def marks_for(pupils: Iterable[Pupil], days: Iterable[date]) -> list[Mark]:
    marks = []
    for i, p in enumerate(pupils):
        for j, day in enumerate(days):
            for k, session in enumerate((Session.AM, Session.PM)):
                code = _CODES[(i * 7 + j * 3 + k) % len(_CODES)]
                marks.append(
                    Mark(
                        pupil_id=p.id,
                        date=day,
                        session=session,
                        code=code,
                        vendor_code=code,
                        minutes_late=5 + i if code == "L" else None,
                        recorded_at=datetime.combine(day, datetime.min.time(), tzinfo=UTC)
                        + timedelta(hours=8 if session is Session.AM else 13, minutes=50),
                    )
                )
    return marks


# -- the fake adapter ----------------------------------------------------------------------


@dataclass
class FakeMis:
    """What one fake school's MIS holds; tests edit it between syncs."""

    school_id: str
    pupils: list[Pupil]
    marks: list[Mark]
    registers: list[Register] = field(default_factory=list)
    amendments: list[Amendment] = field(default_factory=list)
    quarantined: dict[str, list[Quarantined]] = field(default_factory=dict)
    # resource -> exception to raise when it is fetched
    errors: dict[str, Exception] = field(default_factory=dict)
    calls: list[tuple[str, date | None, date | None]] = field(default_factory=list)
    fetch_delay: float = 0.0
    hook: Callable[[str], None] | None = None

    def set(self, pupil_id: str, day: date, session: Session, code: str) -> None:
        self.marks = [
            m for m in self.marks if (m.pupil_id, m.date, m.session) != (pupil_id, day, session)
        ]
        self.marks.append(
            Mark(pupil_id=pupil_id, date=day, session=session, code=code, vendor_code=code)
        )

    def delete(self, pupil_id: str, day: date, session: Session) -> None:
        before = len(self.marks)
        self.marks = [
            m for m in self.marks if (m.pupil_id, m.date, m.session) != (pupil_id, day, session)
        ]
        assert len(self.marks) == before - 1


class FakeAdapter(AdapterBase):
    vendor = "go4schools"
    exposes_amendments = True

    def __init__(self, mis: FakeMis) -> None:
        self.mis = mis
        self.school_id = mis.school_id
        self.closed = False

    def _fetch(self, resource: str, start: date | None = None, end: date | None = None) -> None:
        self.mis.calls.append((resource, start, end))
        if self.mis.hook is not None:
            self.mis.hook(resource)
        if self.mis.fetch_delay:
            threading.Event().wait(self.mis.fetch_delay)
        if resource in self.mis.errors:
            raise self.mis.errors[resource]

    def _batch(self, resource: str, records: list[Any]) -> Batch[Any]:
        return Batch(
            records=list(records), quarantined=list(self.mis.quarantined.get(resource, []))
        )

    def pupils(self) -> Batch[Pupil]:
        self._fetch("pupils")
        return self._batch("pupils", self.mis.pupils)

    def registers(self, start: date, end: date) -> Batch[Register]:
        self._fetch("registers", start, end)
        return self._batch("registers", [r for r in self.mis.registers if start <= r.date <= end])

    def marks(self, start: date, end: date) -> Batch[Mark]:
        self._fetch("marks", start, end)
        return self._batch("marks", [m for m in self.mis.marks if start <= m.date <= end])

    def amendments(self, start: date, end: date) -> Batch[Amendment]:
        self._fetch("amendments", start, end)
        return self._batch("amendments", [a for a in self.mis.amendments if start <= a.date <= end])

    def calendar(self) -> Calendar | None:
        return None

    def close(self) -> None:
        self.closed = True


def fake_factory(mises: dict[str, FakeMis], made: list[FakeAdapter] | None = None):
    """An ``adapter_factory`` for sync_all serving each school from its FakeMis."""

    def factory(school, sync, environ):
        adapter = FakeAdapter(mises[school.id])
        if made is not None:
            made.append(adapter)
        return adapter

    return factory


# -- loopback simulators ---------------------------------------------------------------------

ENV = {
    "OAK_ARBOR_USERNAME": "registerwatch",
    "OAK_ARBOR_PASSWORD": "simulator",
    "OAK_ISAMS_CLIENT_ID": "registerwatch",
    "OAK_ISAMS_CLIENT_SECRET": "simulator",
    "OAK_ISAMS_API_KEY": "simulator-key",
    "OAK_G4S_API_KEY": "simulator-key",
}


def mis_table(vendor: str, url: str) -> dict[str, Any]:
    if vendor == "arbor":
        return {
            "vendor": "arbor",
            "base_url": f"{url}/rest-v2",
            "username_env": "OAK_ARBOR_USERNAME",
            "password_env": "OAK_ARBOR_PASSWORD",
        }
    if vendor == "isams":
        return {
            "vendor": "isams",
            "base_url": url,
            "client_id_env": "OAK_ISAMS_CLIENT_ID",
            "client_secret_env": "OAK_ISAMS_CLIENT_SECRET",
            "api_key_env": "OAK_ISAMS_API_KEY",
        }
    return {
        "vendor": "go4schools",
        "base_url": f"{url}/customer/v1",
        "api_key_env": "OAK_G4S_API_KEY",
    }


def school_config(school: GeneratedSchool, mis: dict[str, Any]) -> dict[str, Any]:
    s = school.school
    return {
        "id": s.id,
        "urn": s.urn,
        "laestab": s.laestab,
        "name": s.name,
        "la_code": s.la_code,
        "phase": s.phase,
        "mis": mis,
        "calendar": calendar_table(school.calendar),
    }


def make_app(vendor: str, school: GeneratedSchool) -> VendorApp:
    if vendor == "arbor":
        return ArborApp(school)
    if vendor == "isams":
        return IsamsApp(school)
    # Ten students a page, so paging (and the changing-pages fault) happens.
    return Go4SchoolsApp(school, page_size=10)


def serve(app: VendorApp) -> SimulatorServer:
    """Start a simulator whose shutdown takes milliseconds, not the default half second.

    SimulatorServer.start() runs serve_forever() with the standard 0.5 s poll interval, which
    stop() then waits out; across ~40 tests that is most of this suite's time.
    """
    server = SimulatorServer(app)
    threading.Thread(
        target=server._server.serve_forever,
        kwargs={"poll_interval": 0.01},
        name=f"sim-{app.vendor}",
        daemon=True,
    ).start()
    return server


def write_config(path: Path, store_url: str, schools: list[dict[str, Any]], **sync: Any) -> None:
    """A TOML config file for ``schools`` (tables as ``school_config`` builds them)."""
    write_toml_config(
        path, store_url, schools, sync={"timeout_seconds": 5, "concurrency": 2} | sync
    )
