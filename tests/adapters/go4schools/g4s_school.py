"""The hand-built GO 4 Schools test school and an adapter factory (used by conftest and tests).

The school: five pupils over two weeks (Mon 8 to Fri 19 September 2025), with an admission and a
leaver inside the window, a planned closure on the last afternoon, late marks, comments, the
2024 two-character codes written the ways schools write them (``<`` for C1, ``C1`` as an alias
of C, lower-case ``i``/``n``), and two amendment records (one complete, one missing its reason
and amender's position).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from registerwatch.adapters.base import RetryPolicy
from registerwatch.adapters.go4schools import Go4SchoolsAdapter
from registerwatch.schema import (
    Amendment,
    Calendar,
    Closure,
    ClosureKind,
    Mark,
    Pupil,
    School,
    Session,
    Term,
    Vendor,
)
from registerwatch.simulator.model import GeneratedSchool
from registerwatch.upn import make_upn

SCHOOL_ID = "oakfield"
API_KEY = "oakfield-test-key"
FIRST_DAY = date(2025, 9, 8)
LAST_DAY = date(2025, 9, 19)
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.005)

# (code, vendor_code, minutes_late, comment) by (mis_id, date, session); the rest are / and \.
SPECIAL_MARKS: dict[tuple[str, date, str], tuple[str, str, int | None, str | None]] = {
    ("1001", date(2025, 9, 8), "AM"): ("L", "L1", 7, "bus"),
    ("1001", date(2025, 9, 9), "AM"): ("I", "i", None, None),
    ("1001", date(2025, 9, 9), "PM"): ("I", "i", None, None),
    ("1002", date(2025, 9, 10), "AM"): ("N", "N", None, None),
    ("1002", date(2025, 9, 10), "PM"): ("N", "N", None, None),
    ("1002", date(2025, 9, 11), "AM"): ("C1", "<", None, None),
    ("1002", date(2025, 9, 11), "PM"): ("C1", "C1", None, None),
    ("1002", date(2025, 9, 15), "AM"): ("M", "M", None, "dentist"),
    ("1003", date(2025, 9, 8), "AM"): ("C2", ">", None, None),
    ("1003", date(2025, 9, 9), "AM"): ("J1", "?", None, None),
    ("1003", date(2025, 9, 10), "AM"): ("J1", "J1", None, None),
    ("1003", date(2025, 9, 11), "AM"): ("O", "O", None, None),
    ("1003", date(2025, 9, 11), "PM"): ("O", "O", None, None),
    ("1003", date(2025, 9, 12), "AM"): ("N", "n", None, None),
    ("1005", date(2025, 9, 17), "AM"): ("U", "U", 40, "arrived 09:40"),
}
CLOSED = (date(2025, 9, 19), "PM")  # planned INSET afternoon: '#' for everyone on roll


def pupil(mis_id: str, serial: int, **fields: object) -> Pupil:
    return Pupil(
        id=f"{SCHOOL_ID}:{mis_id}",
        school_id=SCHOOL_ID,
        mis_id=mis_id,
        upn=make_upn("873", "4001", 2019, serial),
        **fields,
    )  # type: ignore[arg-type]


def build_school() -> GeneratedSchool:
    school = School(
        id=SCHOOL_ID,
        urn="123456",
        laestab="8734001",
        name="Oakfield Academy",
        la_code="873",
        phase="secondary",
        vendor=Vendor.GO4SCHOOLS,
    )
    calendar = Calendar(
        school_id=SCHOOL_ID,
        terms=[
            Term(start=date(2025, 9, 3), end=date(2025, 10, 24)),
            Term(start=date(2025, 11, 3), end=date(2025, 12, 19)),
        ],
        closures=[
            Closure(date=CLOSED[0], session="PM", kind=ClosureKind.PLANNED, reason="INSET"),
            Closure(
                date=date(2025, 10, 10),
                session="both",
                kind=ClosureKind.UNEXPECTED,
                reason="Boiler failure",
            ),
            Closure(date=date(2025, 11, 14), session="AM", kind=ClosureKind.PLANNED),
        ],
    )
    pupils = [
        pupil(
            "1001",
            1,
            legal_forename="Ava",
            legal_surname="Smith",
            preferred_forename="Ava",
            preferred_surname="Smith",
            dob=date(2012, 3, 4),
            sex="F",
            nc_year="9",
            reg_group="9B",
            starting_day=date(2023, 9, 4),
            ehcp=True,
        ),
        pupil(
            "1002",
            2,
            legal_forename="Benjamin",
            legal_surname="Jones",
            middle_names="Oliver",
            preferred_forename="Ben",
            preferred_surname="Jones",
            dob=date(2013, 1, 20),
            sex="M",
            nc_year="8",
            reg_group="8A",
            starting_day=date(2024, 9, 3),
            former_upn=make_upn("873", "2002", 2018, 17),
            fsm=True,
            sen_support=True,
        ),
        pupil(
            "1003",
            3,
            legal_forename="Cara",
            legal_surname="Patel",
            dob=date(2011, 6, 30),
            sex="F",
            nc_year="10",
            reg_group="10C",
            starting_day=date(2022, 9, 5),
            leaving_date=date(2025, 9, 16),
            looked_after=True,
            has_social_worker=True,
        ),
        pupil(
            "1004",
            4,
            legal_forename="Dev",
            legal_surname="Khan",
            dob=date(2014, 2, 11),
            sex="M",
            nc_year="7",
            reg_group="7A",
            starting_day=date(2025, 9, 10),
            boarder=True,
        ),
        pupil(
            "1005",
            5,
            legal_forename="Erin",
            legal_surname="Walsh",
            dob=date(2014, 8, 31),
            sex="U",
            nc_year="7",
            reg_group="7A",
            starting_day=date(2025, 9, 3),
        ),
    ]
    marks: list[Mark] = []
    day = FIRST_DAY
    while day <= LAST_DAY:
        if day.weekday() < 5:
            for p in pupils:
                if not p.on_roll(day):
                    continue
                for session in (Session.AM, Session.PM):
                    special = SPECIAL_MARKS.get((p.mis_id, day, session.value))
                    if (day, session.value) == CLOSED:
                        code, vendor, late, comment = "#", "#", None, None
                    elif special is not None:
                        code, vendor, late, comment = special
                    else:
                        code = "/" if session is Session.AM else "\\"
                        vendor, late, comment = code, None, None
                    marks.append(
                        Mark(
                            pupil_id=p.id,
                            date=day,
                            session=session,
                            code=code,
                            vendor_code=vendor,
                            minutes_late=late,
                            comment=comment,
                        )
                    )
        day += timedelta(days=1)
    amendments = [
        Amendment(
            pupil_id=f"{SCHOOL_ID}:1001",
            date=date(2025, 9, 9),
            session=Session.AM,
            original_code="N",
            amended_code="I",
            reason="Parent phoned: ill",
            amended_at=datetime(2025, 9, 9, 8, 30, tzinfo=UTC),
            amended_by_name="J. Bloggs",
            amended_by_position="Attendance officer",
        ),
        Amendment(
            pupil_id=f"{SCHOOL_ID}:1003",
            date=date(2025, 9, 11),
            session=Session.PM,
            original_code="/",
            amended_code="O",
            amended_at=datetime(2025, 9, 12, 15, 5, tzinfo=UTC),
            amended_by_name="K. Green",
        ),
    ]
    return GeneratedSchool(
        school=school,
        calendar=calendar,
        pupils=pupils,
        registers=[],
        marks=marks,
        amendments=amendments,
        as_of=LAST_DAY,
        seed=0,
    )


def make_adapter(url: str, **options: object) -> Go4SchoolsAdapter:
    settings: dict[str, object] = {
        "school_id": SCHOOL_ID,
        "base_url": url,
        "credentials": {"api_key": API_KEY},
        "credential_hint": "OAKFIELD_G4S_API_KEY",
        "timeout": (2.0, 2.0),
        "retry": FAST_RETRY,
        "sleep": lambda _seconds: None,
    }
    settings.update(options)
    return Go4SchoolsAdapter(**settings)  # type: ignore[arg-type]
