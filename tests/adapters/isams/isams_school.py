"""A small hand-built iSAMS school (5 pupils, 2 weeks), shared by the iSAMS tests.

Everything the adapter must reproduce is visible here: the pupils, every mark (a variety of
codes, one late with minutes and a comment, one session left unmarked), two amendment records
(one complete, one without a reason), and one leaver who only REST can list.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from registerwatch.adapters.base import RetryPolicy
from registerwatch.adapters.isams import IsamsAdapter
from registerwatch.calendar import LONDON
from registerwatch.schema import (
    Amendment,
    Calendar,
    Mark,
    Pupil,
    School,
    Session,
    Term,
    Vendor,
)
from registerwatch.simulator.model import GeneratedSchool
from registerwatch.simulator.server import SimulatorServer, VendorApp
from registerwatch.upn import make_upn

SCHOOL_ID = "oakfield"
FIRST_DAY = date(2024, 9, 9)  # a Monday, British Summer Time: local time is UTC+1
LAST_DAY = date(2024, 9, 20)
LEAVER_LAST_DAY = date(2024, 9, 13)
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.01, max_retry_after=5)
EXAMPLES = "isams-batch-api-examples"


def school_days() -> list[date]:
    days = []
    day = FIRST_DAY
    while day <= LAST_DAY:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def _pupils() -> list[Pupil]:
    def pupil(mis: str, **fields: Any) -> Pupil:
        return Pupil(id=f"{SCHOOL_ID}:{mis}", school_id=SCHOOL_ID, mis_id=mis, **fields)

    return [
        pupil(
            "4733683260",
            upn=make_upn("820", "4001", 2019, 1),
            legal_forename="Ava",
            legal_surname="Okafor",
            dob=date(2012, 3, 4),
            sex="F",
            nc_year="7",
            reg_group="7A",
            starting_day=date(2024, 9, 2),
        ),
        pupil(
            "4733683261",
            upn=make_upn("820", "4001", 2018, 2),
            legal_forename="Benjamin",
            legal_surname="Hart",
            middle_names="Peter James",
            preferred_forename="Ben",
            dob=date(2011, 1, 30),
            sex="M",
            nc_year="8",
            reg_group="8B",
            starting_day=date(2023, 9, 4),
            boarder=True,
        ),
        pupil(
            "4733683262",
            upn=make_upn("820", "4001", 2020, 3),
            legal_forename="Chloe",
            legal_surname="Nguyen",
            dob=date(2019, 6, 1),
            sex="F",
            nc_year="R",
            reg_group="RB",
            starting_day=date(2024, 9, 2),
        ),
        pupil(
            "4733683263",
            legal_forename="Dev",
            legal_surname="Patel",
            dob=date(2010, 11, 2),
            sex="M",
            nc_year="9",
            reg_group="9C",
            starting_day=date(2022, 9, 5),
        ),
        pupil(
            "4733683264",
            upn=make_upn("820", "4001", 2017, 5),
            legal_forename="Ella",
            legal_surname="Brown",
            dob=date(2011, 8, 20),
            sex="F",
            nc_year="8",
            reg_group="8B",
            starting_day=date(2023, 9, 4),
            leaving_date=LEAVER_LAST_DAY,
        ),
    ]


# Exceptions to "present all day", by (pupil mis id, day, session): code, minutes late, comment.
_SPECIAL: dict[tuple[str, date, Session], tuple[str, int | None, str | None]] = {
    ("4733683261", date(2024, 9, 10), Session.AM): ("I", None, None),
    ("4733683261", date(2024, 9, 10), Session.PM): ("I", None, None),
    ("4733683261", date(2024, 9, 11), Session.AM): ("M", None, "dentist"),
    ("4733683262", date(2024, 9, 12), Session.AM): ("L", 12, "missed the bus"),
    ("4733683262", date(2024, 9, 19), Session.PM): ("U", 40, None),
    ("4733683263", date(2024, 9, 9), Session.PM): ("I", None, None),
    ("4733683263", date(2024, 9, 16), Session.AM): ("N", None, None),
    ("4733683263", date(2024, 9, 16), Session.PM): ("N", None, None),
    ("4733683263", date(2024, 9, 17), Session.AM): ("C1", None, None),
    ("4733683264", date(2024, 9, 13), Session.PM): ("G", None, None),
    ("4733683260", date(2024, 9, 18), Session.AM): ("V", None, None),
}
# Left unmarked on purpose: the simulator serves a Registered = 0 row for it.
UNMARKED = ("4733683260", date(2024, 9, 20), Session.PM)


def _marks(pupils: list[Pupil]) -> list[Mark]:
    marks = []
    for pupil in pupils:
        for index, day in enumerate(school_days()):
            if not pupil.on_roll(day):
                continue
            for session in (Session.AM, Session.PM):
                key = (pupil.mis_id, day, session)
                if key == UNMARKED:
                    continue
                code, late, comment = _SPECIAL.get(
                    key, ("/" if session is Session.AM else "\\", None, None)
                )
                opens = time(8, 45) if session is Session.AM else time(13, 15)
                # Most marks carry the time they were saved; every fifth day does not, so the
                # "no recorded_at" branch of the de-duplication rule is exercised too.
                recorded = (
                    None
                    if index % 5 == 4
                    else (
                        datetime.combine(day, opens, tzinfo=LONDON) + timedelta(minutes=7)
                    ).astimezone(UTC)
                )
                marks.append(
                    Mark(
                        pupil_id=pupil.id,
                        date=day,
                        session=session,
                        code=code,
                        vendor_code=code,
                        minutes_late=late,
                        comment=comment,
                        recorded_at=recorded,
                    )
                )
    return marks


def _amendments() -> list[Amendment]:
    return [
        Amendment(
            pupil_id=f"{SCHOOL_ID}:4733683261",
            date=date(2024, 9, 10),
            session=Session.AM,
            original_code="N",
            amended_code="I",
            reason="Parent phoned: ill",
            amended_by_name="J. Smith",
            amended_by_position="Attendance officer",
            amended_at=datetime(2024, 9, 10, 10, 5, tzinfo=UTC),
        ),
        Amendment(
            pupil_id=f"{SCHOOL_ID}:4733683263",
            date=date(2024, 9, 9),
            session=Session.PM,
            original_code="\\",
            amended_code="I",
            amended_by_name="K. Jones",
            amended_by_position=None,
            amended_at=datetime(2024, 9, 9, 15, 30, tzinfo=UTC),
        ),
    ]


def build_school() -> GeneratedSchool:
    pupils = _pupils()
    return GeneratedSchool(
        school=School(id=SCHOOL_ID, urn="100001", name="Oakfield Academy", vendor=Vendor.ISAMS),
        calendar=Calendar(
            school_id=SCHOOL_ID,
            terms=[
                Term(start=date(2024, 9, 2), end=date(2024, 10, 25)),
                Term(start=date(2024, 11, 4), end=date(2024, 12, 20)),
            ],
        ),
        pupils=pupils,
        registers=[],
        marks=_marks(pupils),
        amendments=_amendments(),
        as_of=LAST_DAY,
    )


def make_adapter(url: str, **credentials: str) -> IsamsAdapter:
    creds = credentials or {
        "client_id": "registerwatch",
        "client_secret": "simulator",
        "api_key": "simulator-key",
    }
    return IsamsAdapter(
        school_id=SCHOOL_ID,
        base_url=url,
        credentials=creds,
        credential_hint="OAKFIELD_ISAMS_API_KEY",
        timeout=(2.0, 2.0),
        retry=FAST_RETRY,
        sleep=lambda _s: None,
    )


@contextmanager
def serve(app: VendorApp) -> Iterator[SimulatorServer]:
    """A running SimulatorServer whose shutdown is quick.

    ``SimulatorServer`` runs ``serve_forever`` with the stdlib's 0.5 s poll interval, and
    ``stop()`` waits for the next poll: half a second per test. Until server.py takes a poll
    interval, swap in a thread that polls every 10 ms.
    """
    server = SimulatorServer(app)
    server._thread = threading.Thread(  # private attributes: see the docstring
        target=server._server.serve_forever,
        kwargs={"poll_interval": 0.01},
        name=f"sim-{app.vendor}",
        daemon=True,
    )
    with server as running:
        yield running
