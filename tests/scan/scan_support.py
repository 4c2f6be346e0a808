"""Fixtures for the scan tests: a generated school synced from a loopback Arbor simulator, a
tiny hand-made school, a config file for the CLI, and the CLI itself.

Generating and syncing the Arbor school takes a few seconds, so it is done once per session
(``synced_template``) and each test gets a copy of the synced store plus a fresh simulator
serving the same school (``oak``): a test may edit the MIS and sync again without touching any
other test. The tiny school ``elm`` is written straight into the store (no MIS): one pupil,
every session marked, one N on Monday 3 November 2025 AM, due Monday 10 November, so a scan's
severities are exactly under the test's control.
"""

from __future__ import annotations

import copy
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.config_writer import write_config as write_toml_config

from registerwatch.calendar import LONDON, SchoolCalendar
from registerwatch.cli import main
from registerwatch.config import Settings, parse_config
from registerwatch.schema import (
    Amendment,
    AmendmentSource,
    Calendar,
    Mark,
    Pupil,
    School,
    Session,
    Term,
)
from registerwatch.simulator import server as simulator_server
from registerwatch.simulator.arbor import AMENDMENTS, ArborApp
from registerwatch.simulator.generate import generate_school
from registerwatch.simulator.model import GeneratedSchool
from registerwatch.simulator.server import SimulatorServer, VendorApp
from registerwatch.simulator.vendors import build_app, credentials_environ, school_config
from registerwatch.store import Store
from registerwatch.sync import SyncSummary, sync_all

SEED = 5
PUPILS = 90  # the generator needs 80 to inject every breach
VENDOR = "arbor"
AS_OF = date(2025, 12, 1)  # the generator's default: the first school day of December
SYNCED_AT = datetime(2025, 12, 1, 19, 0, tzinfo=UTC)
# Sync re-pulls this many school days back. The second-sync deletion (AMD003) is on the REG002
# session, 14 school days before AS_OF, beyond the default 10: sync does not read Arbor's
# changelog yet (reported), so the tests widen the window in the config instead.
TRAILING_SCHOOL_DAYS = 20

ELM = "elm"
ELM_PUPIL = Pupil(
    id="elm:E1",
    school_id=ELM,
    mis_id="E1",
    upn="B801200005001",
    legal_forename="Ada",
    legal_surname="Lovelace",
    dob=date(2015, 3, 4),
    nc_year="5",
    reg_group="5E",
    starting_day=date(2024, 9, 4),
)
ELM_CALENDAR = Calendar(
    school_id=ELM,
    terms=[
        Term(start=date(2025, 9, 3), end=date(2025, 10, 24)),
        Term(start=date(2025, 11, 3), end=date(2025, 12, 19)),
    ],
)
ELM_N = (date(2025, 11, 3), Session.AM)  # due 2025-11-10
ELM_MARKS_UNTIL = date(2025, 11, 28)


@pytest.fixture(autouse=True)
def _no_nagle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without TCP_NODELAY each loopback response waits for a delayed ACK (as in tests/sync)."""
    monkeypatch.setattr(simulator_server._Handler, "disable_nagle_algorithm", True, raising=False)


def serve(app: VendorApp) -> SimulatorServer:
    """A simulator that stops in milliseconds (serve_forever's default poll is 0.5 s)."""
    server = SimulatorServer(app)
    threading.Thread(
        target=server._server.serve_forever,
        kwargs={"poll_interval": 0.01},
        name="sim-scan",
        daemon=True,
    ).start()
    return server


# -- config ---------------------------------------------------------------------------------


def elm_config() -> dict[str, Any]:
    """elm's [[schools]] table: its MIS is never called (the tests write its records)."""
    return {
        "id": ELM,
        "urn": "100001",
        "laestab": "8812001",
        "name": "Elm Primary School",
        "la_code": "881",
        "phase": "primary",
        "mis": {
            "vendor": "go4schools",
            "base_url": "http://127.0.0.1:9/customer/v1",
            "api_key_env": "ELM_G4S_API_KEY",
        },
        "calendar": {"terms": [{"start": t.start, "end": t.end} for t in ELM_CALENDAR.terms]},
    }


def write_config(path: Path, store_url: str, schools: list[dict[str, Any]]) -> Path:
    return write_toml_config(
        path,
        store_url,
        schools,
        logging={"level": "WARNING"},
        sync={"trailing_school_days": TRAILING_SCHOOL_DAYS, "timeout_seconds": 5},
    )


def settings_for(store_url: str, schools: list[dict[str, Any]]) -> Settings:
    return parse_config(
        {
            "store": {"url": store_url},
            "sync": {"trailing_school_days": TRAILING_SCHOOL_DAYS, "timeout_seconds": 5},
            "schools": schools,
        }
    )


# -- the tiny school ------------------------------------------------------------------------


def elm_marks(until: date = ELM_MARKS_UNTIL) -> list[Mark]:
    """Every session marked present from the first term day to ``until``, one N (ELM_N)."""
    calendar = SchoolCalendar(ELM_CALENDAR)
    marks = []
    for day in calendar.school_days(calendar.first_day, until):
        for session in calendar.sessions_on(day):
            # the session's own present code (reg 10(2) table 1; MRK007 checks it)
            code = "N" if (day, session) == ELM_N else "/" if session is Session.AM else "\\"
            marks.append(
                Mark(pupil_id=ELM_PUPIL.id, date=day, session=session, code=code, vendor_code=code)
            )
    return marks


def add_elm(store: Store, at: datetime = SYNCED_AT) -> None:
    """Write elm as a sync would (school, calendar, pupil, marks), without its MIS. No
    capabilities are recorded, so the scan treats the MIS as exposing neither register events
    nor amendment records: REG001 and AMD002 each give one info notice."""
    with store.transaction() as tx:
        store.upsert_school(
            School(
                id=ELM, name="Elm Primary School", urn="100001", laestab="8812001", la_code="881"
            ),
            at=at,
            conn=tx,
        )
        store.upsert_calendar(ELM_CALENDAR, at=at, conn=tx)
        store.upsert_pupils([ELM_PUPIL], at=at, conn=tx)
        store.upsert_marks(elm_marks(), ELM, at=at, conn=tx)


# -- the synced Arbor school ----------------------------------------------------------------


def _copy_sqlite(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    target.chmod(0o600)


@dataclass
class Template:
    """A store holding the generated school after one sync."""

    path: Path
    school: GeneratedSchool


@pytest.fixture(scope="session")
def synced_template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    folder = tmp_path_factory.mktemp("scan-template")
    school = generate_school(SEED, PUPILS, vendor=VENDOR, as_of=AS_OF)
    pristine = copy.deepcopy(school)
    path = folder / "store.db"
    server = serve(build_app(VENDOR, school))
    try:
        settings = settings_for(f"sqlite:///{path}", [school_config(school, VENDOR, server.url)])
        store = Store.open(settings.store.url)
        try:
            summary = sync_all(
                settings,
                store,
                as_of=AS_OF,
                environ=credentials_environ(school.school.id, VENDOR),
                clock=lambda: SYNCED_AT,
            )
            assert summary.ok, [s.error for s in summary.schools]
        finally:
            store.close()
    finally:
        server.stop()
    return Template(path, pristine)


@dataclass
class Oak:
    """One test's copy of the synced school: its store, a live simulator and a config file
    listing it (and elm) for the CLI."""

    school: GeneratedSchool
    app: VendorApp
    server: SimulatorServer
    settings: Settings
    store: Store
    config: Path
    syncs: list[SyncSummary] = field(default_factory=list)

    @property
    def school_id(self) -> str:
        return self.school.school.id

    @property
    def store_url(self) -> str:
        return self.settings.store.url

    def pupil_id(self, mis_id: str) -> str:
        return f"{self.school_id}:{mis_id}"

    def sync(self, at: datetime, as_of: date = AS_OF) -> SyncSummary:
        summary = sync_all(
            self.settings,
            self.store,
            school_id=self.school_id,
            as_of=as_of,
            environ=credentials_environ(self.school_id, VENDOR),
            clock=lambda: at,
        )
        assert summary.ok, [s.error for s in summary.schools]
        self.syncs.append(summary)
        return summary

    def edit(
        self, pupil_id: str, day: date, session: Session, code: str, *, recorded: bool = True
    ) -> None:
        """The data manager changes an entry in the MIS, with a complete amendment record
        (``recorded``) as the regulations require, or without one."""
        before = self.school.marks_by_key()[(pupil_id, day, session)].code
        with self.app.lock:
            self.app.set_mark(pupil_id, day, session, code)
            if recorded:
                amendment = Amendment(
                    pupil_id=pupil_id,
                    date=day,
                    session=session,
                    original_code=before,
                    amended_code=code,
                    reason="Parent phoned",
                    amended_by_name="A. Officer",
                    amended_by_position="Attendance Officer",
                    amended_at=datetime.combine(AS_OF, time(9, 30), tzinfo=LONDON),
                    source=AmendmentSource.MIS,
                    source_ref=f"test-{pupil_id}-{day}-{code}",
                )
                self.school.amendments.append(amendment)
                _serve_amendment(self.app, amendment)


def _serve_amendment(app: VendorApp, amendment: Amendment) -> None:
    """Make the Arbor simulator serve an amendment recorded after it started.

    ArborApp renders ``attendance-record-amendments`` once, when it starts (``_static``), so an
    amendment added to ``school.amendments`` later is never served (reported to the simulator's
    owner). Until it renders them per revision, this appends the record and drops the cached
    listings of that resource.
    """
    assert isinstance(app, ArborApp)
    served = app._static[AMENDMENTS]
    served.append(app._amendment(len(served) + 1, amendment))
    app._views = {k: v for k, v in app._views.items() if k[0] != AMENDMENTS}


@pytest.fixture
def oak_bare(
    synced_template: Template, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Oak]:
    """The synced school, without the LA returns the school had made (nothing has recorded
    them yet: sync does not import returns)."""
    path = tmp_path / "store.db"
    _copy_sqlite(synced_template.path, path)
    school = copy.deepcopy(synced_template.school)
    app = build_app(VENDOR, school)
    server = serve(app)
    tables = [school_config(school, VENDOR, server.url), elm_config()]
    url = f"sqlite:///{path}"
    config = write_config(tmp_path / "registerwatch.toml", url, tables)
    for name, value in credentials_environ(school.school.id, VENDOR).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ELM_G4S_API_KEY", "unused")
    monkeypatch.setenv("REGISTERWATCH_CONFIG", str(config))
    store = Store.open(url)
    try:
        yield Oak(school, app, server, settings_for(url, tables), store, config)
    finally:
        store.close()
        server.stop()


@pytest.fixture
def oak(oak_bare: Oak) -> Oak:
    """The synced school with the returns it had made recorded (as ``notify record`` or the
    outbox would), so the scan reports exactly the injected breaches."""
    oak_bare.store.add_notifications(oak_bare.school.notifications, at=SYNCED_AT)
    return oak_bare


@dataclass
class Elm:
    settings: Settings
    store: Store
    config: Path

    @property
    def store_url(self) -> str:
        return self.settings.store.url


@pytest.fixture
def elm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Elm]:
    url = f"sqlite:///{tmp_path / 'elm.db'}"
    config = write_config(tmp_path / "elm.toml", url, [elm_config()])
    monkeypatch.setenv("ELM_G4S_API_KEY", "unused")
    monkeypatch.setenv("REGISTERWATCH_CONFIG", str(config))
    store = Store.open(url)
    add_elm(store)
    try:
        yield Elm(settings_for(url, [elm_config()]), store, config)
    finally:
        store.close()


# -- the command line -----------------------------------------------------------------------

CliResult = tuple[int, str, str]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run ``registerwatch ARGS``: (exit status, stdout, stderr)."""

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exc:
            main([str(a) for a in args])
        captured = capsys.readouterr()
        code = exc.value.code
        return (
            code if isinstance(code, int) else (0 if code is None else 1),
            captured.out,
            captured.err,
        )

    return run


def scan_json(cli: Callable[..., CliResult], *args: str) -> tuple[int, dict[str, Any]]:
    code, out, err = cli("scan", "--format", "json", *args)
    assert code in (0, 1), err
    return code, json.loads(out)


def at_london(day: date, hour: int = 2) -> datetime:
    """The instant of a nightly run at ``hour`` o'clock school time."""
    return datetime.combine(day, time(hour), tzinfo=LONDON).astimezone(UTC)


def next_day(day: date) -> date:
    return day + timedelta(days=1)
