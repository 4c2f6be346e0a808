"""A small hand-built school served by the Arbor-style simulator over loopback.

Five pupils in two registration groups over a two-week term: a pupil with an EHC plan, one on
SEN support and looked after, one with a former UPN and free school meals (not exposed by
Arbor-style REST), one admitted mid-fortnight, one who left mid-fortnight. Every national code
family appears, including the three the simulator stores as single characters (C1 C2 J1), a
late mark with minutes and a comment, an unmarked session, an unsaved register and two MIS
amendments (one complete, one missing its reason and amender).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

import pytest

from registerwatch.adapters.arbor import ArborAdapter
from registerwatch.adapters.base import RetryPolicy
from registerwatch.calendar import LONDON
from registerwatch.schema import (
    Amendment,
    Calendar,
    Closure,
    ClosureKind,
    Mark,
    Pupil,
    Register,
    School,
    Session,
    Term,
    Vendor,
)
from registerwatch.simulator import server as server_module
from registerwatch.simulator.arbor import ArborApp
from registerwatch.simulator.model import GeneratedSchool
from registerwatch.simulator.server import Request, Response, SimulatorServer, VendorApp
from registerwatch.upn import make_upn

SCHOOL_ID = "oakfield"
TERM_START, TERM_END = date(2025, 9, 8), date(2025, 9, 19)  # Monday .. Friday a week later
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.002)
PAGE_SIZE = 7  # small, so every listing spans several pages


def local(day: date, hour: int, minute: int = 0) -> datetime:
    """A school-local wall-clock time as a UTC instant (whole seconds, as Arbor keeps)."""
    return datetime.combine(day, time(hour, minute), tzinfo=LONDON).astimezone(UTC)


def school_days() -> list[date]:
    days = [TERM_START + timedelta(days=n) for n in range((TERM_END - TERM_START).days + 1)]
    return [d for d in days if d.weekday() < 5]


def pupils() -> list[Pupil]:
    def pupil(mis_id: str, serial: int, **fields: Any) -> Pupil:
        return Pupil(
            id=f"{SCHOOL_ID}:{mis_id}",
            school_id=SCHOOL_ID,
            mis_id=mis_id,
            upn=make_upn("880", "1234", 2019, serial),
            **fields,
        )

    return [
        pupil(
            "1001",
            1,
            legal_forename="Ava",
            legal_surname="Smith",
            preferred_forename="Ava",
            preferred_surname="Smith",
            dob=date(2014, 3, 4),
            sex="F",
            nc_year="7",
            reg_group="7A",
            starting_day=date(2021, 9, 1),
            ehcp=True,
        ),
        pupil(
            "1002",
            2,
            legal_forename="Benjamin",
            middle_names="Oluwaseun",
            legal_surname="Adeyemi",
            preferred_forename="Ben",
            preferred_surname="Adeyemi",
            dob=date(2014, 7, 19),
            sex="M",
            nc_year="7",
            reg_group="7A",
            starting_day=date(2021, 9, 1),
            sen_support=True,
            looked_after=True,
        ),
        pupil(
            "1003",
            3,
            former_upn=make_upn("881", "4321", 2018, 77),
            legal_forename="Chloe",
            legal_surname="Nguyen",
            dob=date(2013, 11, 30),
            sex="U",
            nc_year="8",
            reg_group="8B",
            starting_day=date(2022, 1, 5),
            fsm=True,
        ),
        pupil(
            "1004",
            4,
            legal_forename="Dylan",
            legal_surname="Evans",
            dob=date(2013, 2, 1),
            sex="M",
            nc_year="8",
            reg_group="8B",
            starting_day=date(2025, 9, 10),
            has_social_worker=True,
        ),
        pupil(
            "1005",
            5,
            legal_forename="Eve",
            legal_surname="Kowalski",
            dob=date(2014, 5, 6),
            nc_year="7",
            reg_group="7A",
            starting_day=date(2021, 9, 1),
            leaving_date=date(2025, 9, 12),
        ),
    ]


# The codes cycled through, per session: every family, and C1 C2 J1 (single characters in
# the simulator's Arbor code table).
CODES = ["/", "L", "I", "N", "C1", "M", "J1", "C2", "O", "G", "B", "V", "R", "E", "U", "T"]


def build_school() -> GeneratedSchool:
    roll = pupils()
    registers: list[Register] = []
    marks: list[Mark] = []
    counter = 0
    for day in school_days():
        for session, opens in ((Session.AM, (8, 45)), (Session.PM, (13, 15))):
            for group in ("7A", "8B"):
                unsaved = (group, day, session) == ("8B", date(2025, 9, 18), Session.PM)
                registers.append(
                    Register(
                        school_id=SCHOOL_ID,
                        group=group,
                        date=day,
                        session=session,
                        opened_at=None
                        if (group, day, session) == ("7A", date(2025, 9, 9), Session.AM)
                        else local(day, *opens),
                        completed_at=None if unsaved else local(day, opens[0], opens[1] + 7),
                    )
                )
            for pupil in roll:
                if not pupil.on_roll(day):
                    continue
                if (pupil.mis_id, day, session) == ("1003", date(2025, 9, 18), Session.PM):
                    continue  # unmarked: the register was never saved
                counter += 1
                code = CODES[counter % len(CODES)]
                if code == "/" and session is Session.PM:
                    code = "\\"
                late = code in ("L", "U")
                marks.append(
                    Mark(
                        pupil_id=pupil.id,
                        date=day,
                        session=session,
                        code=code,
                        vendor_code=code,
                        minutes_late=12 if late else None,
                        comment="missed the bus" if late else None,
                        recorded_at=None if counter % 11 == 0 else local(day, 9 + counter % 3, 1),
                        recorded_by="Mr Registrar" if counter % 5 == 0 else None,
                    )
                )
    amendments = [
        Amendment(
            pupil_id=f"{SCHOOL_ID}:1002",
            date=date(2025, 9, 9),
            session=Session.AM,
            original_code="N",
            amended_code="I",
            reason="Parent phoned: illness",
            amended_at=local(date(2025, 9, 10), 10, 5),
            amended_by_name="J. Patel",
            amended_by_position="Attendance officer",
        ),
        Amendment(
            pupil_id=f"{SCHOOL_ID}:1001",
            date=date(2025, 9, 15),
            session=Session.PM,
            original_code=None,
            amended_code="O",
        ),
    ]
    calendar = Calendar(
        school_id=SCHOOL_ID,
        terms=[Term(start=TERM_START, end=TERM_END)],
        closures=[
            Closure(date=date(2025, 9, 19), session="PM", kind=ClosureKind.PLANNED, reason="INSET")
        ],
    )
    return GeneratedSchool(
        school=School(
            id=SCHOOL_ID,
            urn="123456",
            laestab="8801234",
            name="Oakfield Academy",
            la_code="880",
            vendor=Vendor.ARBOR,
        ),
        calendar=calendar,
        pupils=roll,
        registers=registers,
        marks=marks,
        amendments=amendments,
        as_of=TERM_END,
    )


@pytest.fixture
def school() -> GeneratedSchool:
    return build_school()


@pytest.fixture
def app(request: pytest.FixtureRequest, school: GeneratedSchool) -> ArborApp:
    """The simulator over ``school``; parametrise indirectly to pass ArborApp options."""
    return ArborApp(school, **getattr(request, "param", {}))


class AppSwitch:
    """Forwards each request to the current test's app, so one server serves every test.

    Why: ``SimulatorServer.stop()`` waits up to ``serve_forever``'s 0.5 s poll interval, which
    a server per test would pay some thirty times (reported to the lead for server.py).
    """

    vendor = "arbor"

    def __init__(self) -> None:
        self.current: ArborApp | None = None

    def handle(self, request: Request) -> Response:
        if self.current is None:
            return Response.json({"error": "no app between tests"}, status=503)
        return self.current.handle(request)


def fast_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared handler writes headers and body as two small sends; with Nagle on, the
    client's delayed ACK adds ~40 ms to every request. Until server.py turns it off itself
    (reported to the lead), turn it off for these tests."""
    monkeypatch.setattr(server_module._Handler, "disable_nagle_algorithm", True)


@pytest.fixture(scope="session")
def loopback() -> Iterator[tuple[SimulatorServer, AppSwitch]]:
    with pytest.MonkeyPatch.context() as patch:
        fast_loopback(patch)
        switch = AppSwitch()
        with SimulatorServer(cast(VendorApp, switch)) as running:
            yield running, switch


@pytest.fixture
def server(app: ArborApp, loopback: tuple[SimulatorServer, AppSwitch]) -> Iterator[SimulatorServer]:
    running, switch = loopback
    switch.current = app
    yield running
    switch.current = None


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_adapter(
    server: SimulatorServer, sleeps: list[float]
) -> Iterator[Callable[..., ArborAdapter]]:
    made: list[ArborAdapter] = []

    def _make(**overrides: Any) -> ArborAdapter:
        options: dict[str, Any] = {
            "school_id": SCHOOL_ID,
            "base_url": f"{server.url}/rest-v2",
            "credentials": {"username": "registerwatch", "password": "simulator"},
            "credential_hint": "OAKFIELD_ARBOR_USERNAME / OAKFIELD_ARBOR_PASSWORD",
            "retry": FAST_RETRY,
            "sleep": sleeps.append,
            "page_size": PAGE_SIZE,
        }
        options.update(overrides)
        adapter = ArborAdapter(**options)
        made.append(adapter)
        return adapter

    yield _make
    for adapter in made:
        adapter.close()
