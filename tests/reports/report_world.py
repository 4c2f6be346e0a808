"""The report tests' data: stores with known registers and findings (fixtures: conftest.py).

Two worlds:

- ``small``: two hand-made schools whose every mark and finding is written here, so each number
  in the report can be worked out by hand (the expected values sit next to the data, below).
  ``brook`` has two pupils' marks for the autumn term and seven findings saved by two scans;
  ``fern`` has only N codes of known ages.
- ``scanned``: a generated school (the simulator's) stored and scanned by the real rules, as the
  nightly scan would leave it; what a real report looks like.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from support.config_writer import write_config as write_toml_config
from support.generated_context import context

from registerwatch.calendar import SchoolCalendar
from registerwatch.config import Settings, parse_config
from registerwatch.schema import (
    Calendar,
    Finding,
    Mark,
    Pupil,
    Session,
    SessionRef,
    Severity,
)
from registerwatch.simulator.generate import generate_school
from registerwatch.simulator.model import GeneratedSchool
from registerwatch.store import Store
from registerwatch.validators import run_rules

AM, PM = Session.AM, Session.PM

# -- the small world ---------------------------------------------------------------------------

# Autumn term 2025 as two spans around the October half-term, and an INSET day (planned
# whole-day closure) on Friday 14 November.
SMALL_CALENDAR: dict[str, Any] = {
    "terms": [
        {"start": date(2025, 10, 13), "end": date(2025, 10, 24)},
        {"start": date(2025, 11, 3), "end": date(2025, 12, 19)},
        {"start": date(2026, 1, 5), "end": date(2026, 2, 13)},
    ],
    "closures": [
        {"date": date(2025, 11, 14), "session": "both", "kind": "planned", "reason": "INSET"}
    ],
}
# Report day: Wednesday 19 November 2025; registers are complete to Tuesday 18 November.
AS_OF = date(2025, 11, 19)
GENERATED_AT = datetime(2025, 11, 19, 6, 30, tzinfo=UTC)
SCAN_1 = datetime(2025, 11, 17, 19, 0, tzinfo=UTC)
SCAN_2 = datetime(2025, 11, 18, 19, 0, tzinfo=UTC)


def school_settings(
    school_id: str, name: str, urn: str, calendar: dict[str, Any]
) -> dict[str, Any]:
    """A [[schools]] table. The MIS is never called by a report; it only has to be valid."""
    return {
        "id": school_id,
        "urn": urn,
        "laestab": f"881{urn[-4:]}",
        "name": name,
        "la_code": "881",
        "phase": "secondary",
        "mis": {
            "vendor": "go4schools",
            "base_url": "http://127.0.0.1:9/customer/v1",
            "api_key_env": f"{school_id.upper()}_G4S_KEY",
        },
        "calendar": calendar,
    }


def pupil(school_id: str, mis_id: str, forename: str, surname: str) -> Pupil:
    return Pupil(
        id=f"{school_id}:{mis_id}",
        school_id=school_id,
        mis_id=mis_id,
        upn=f"A12345678{mis_id}",
        legal_forename=forename,
        legal_surname=surname,
        dob=date(2012, 3, 4),
        nc_year="8",
        reg_group="8A",
        starting_day=date(2025, 9, 3),
    )


# brook's registers: every school session "/" for both pupils, except these.
BROOK_EXCEPTIONS: dict[tuple[str, date, Session], str] = {
    ("brook:1002", date(2025, 10, 20), AM): "I",  # illness: authorised
    ("brook:1002", date(2025, 10, 20), PM): "I",
    ("brook:1002", date(2025, 11, 4), AM): "O",  # unauthorised
    ("brook:1002", date(2025, 11, 11), AM): "N",  # reason not yet known (unauthorised)
    ("brook:1002", date(2025, 11, 11), PM): "N",
    ("brook:1002", date(2025, 11, 17), AM): "L",  # late: present
    ("brook:1002", date(2025, 11, 18), PM): "X",  # not a possible session
}
# Marks the report must leave out of the figures.
BROOK_IGNORED = [
    # on the INSET day: not a school session (a data error for MRK005, not attendance)
    ("brook:1001", date(2025, 11, 14), AM, "/"),
    # on the report day: today's registers are not complete
    ("brook:1002", date(2025, 11, 19), AM, "O"),
]
# week -> (school days with registers, possible sessions, attendance, authorised, unauthorised)
BROOK_WEEKS = {
    date(2025, 10, 13): (5, 20, 20, 0, 0),
    date(2025, 10, 20): (5, 20, 18, 2, 0),
    date(2025, 11, 3): (5, 20, 19, 0, 1),
    date(2025, 11, 10): (4, 16, 14, 0, 2),  # Friday is the INSET day
    date(2025, 11, 17): (2, 7, 7, 0, 0),  # Mon-Tue so far; X is not possible
}

# fern: only N codes. pupil, date, session -> age in school days on AS_OF (counted with the
# calendar: half-term weeks and the INSET day are not school days).
FERN_N: dict[tuple[str, date, Session], int | None] = {
    ("fern:2001", date(2025, 11, 18), AM): 1,
    ("fern:2001", date(2025, 11, 17), PM): 2,
    ("fern:2001", date(2025, 11, 13), AM): 3,
    ("fern:2002", date(2025, 11, 11), AM): 5,  # 6 weekdays, but the 14th is an INSET day
    ("fern:2002", date(2025, 11, 10), PM): 6,
    ("fern:2001", date(2025, 11, 3), AM): 11,
    ("fern:2002", date(2025, 10, 24), AM): 12,  # across the half-term week
    ("fern:2002", date(2025, 10, 21), PM): 15,
    ("fern:2001", date(2025, 11, 19), AM): None,  # the report day: not counted
    ("fern:2002", date(2025, 7, 15), AM): None,  # last school year: not counted
}


def finding(
    rule: str,
    severity: Severity,
    school_id: str,
    fingerprint: str,
    *,
    pupil_id: str | None = None,
    first: tuple[date, Session] | None = None,
    last: tuple[date, Session] | None = None,
    due: date | None = None,
    message: str | None = None,
    first_seen: datetime | None = None,
    resolved_at: datetime | None = None,
) -> Finding:
    first_ref = SessionRef(date=first[0], session=first[1]) if first else None
    last_ref = SessionRef(date=last[0], session=last[1]) if last else first_ref
    return Finding(
        rule=rule,
        severity=severity,
        school_id=school_id,
        pupil_id=pupil_id,
        first_session=first_ref,
        last_session=last_ref,
        due=due,
        message=message or f"{rule} finding {fingerprint}",
        fingerprint=fingerprint,
        first_seen=first_seen,
        resolved_at=resolved_at,
    )


E, W, I = Severity.ERROR, Severity.WARNING, Severity.INFO  # noqa: E741 (severity initials, as the report shows them)
SCRIPT_MESSAGE = "Register not taken for group <script>alert('8A')</script> & \"9B\""
ACK_NOTE = "Called home; return sent <b>19/11</b>"

# (finding, saved by scan 1, saved by scan 2). Scan 2 resolves fp-upn.
BROOK_FINDINGS: list[tuple[Finding, bool, bool]] = [
    (
        finding(
            "MRK001",
            E,
            "brook",
            "fp-n-overdue",
            pupil_id="brook:1002",
            first=(date(2025, 11, 11), AM),
            last=(date(2025, 11, 11), PM),
            due=date(2025, 11, 18),
        ),
        True,
        True,
    ),
    (
        finding(
            "MRK001",
            W,
            "brook",
            "fp-n-today",
            pupil_id="brook:1002",
            first=(date(2025, 11, 12), AM),
            due=date(2025, 11, 19),
        ),
        False,
        True,
    ),
    (
        finding(
            "LAR004", E, "brook", "fp-new-pupil", pupil_id="brook:1001", due=date(2025, 11, 25)
        ),
        True,
        True,
    ),
    (finding("ATT002", W, "brook", "fp-persistent", pupil_id="brook:1001"), True, True),
    (finding("UPN001", E, "brook", "fp-upn", pupil_id="brook:1001"), True, False),
    (
        finding(
            "REG001",
            E,
            "brook",
            "fp-register",
            first=(date(2025, 11, 18), AM),
            message=SCRIPT_MESSAGE,
        ),
        False,
        True,
    ),
    (
        finding(
            "AMD002",
            I,
            "brook",
            "fp-amendments",
            message="Amendment records could not be checked: the MIS exposes none",
        ),
        False,
        True,
    ),
]
# The open findings as the report must list them: errors (overdue first, then by due date),
# then warnings, then info.
BROOK_ORDER = [
    "fp-n-overdue",
    "fp-new-pupil",
    "fp-register",
    "fp-n-today",
    "fp-persistent",
    "fp-amendments",
]


def small_marks() -> list[Mark]:
    cal = SchoolCalendar(Calendar(school_id="brook", **SMALL_CALENDAR))
    marks: list[Mark] = []
    for day in cal.school_days(date(2025, 10, 13), date(2025, 11, 18)):
        for pupil_id in ("brook:1001", "brook:1002"):
            for session in (AM, PM):
                code = BROOK_EXCEPTIONS.get((pupil_id, day, session), "/")
                marks.append(Mark(pupil_id=pupil_id, date=day, session=session, code=code))
    marks += [Mark(pupil_id=p, date=d, session=s, code=c) for p, d, s, c in BROOK_IGNORED]
    return marks


@dataclass
class World:
    store: Store
    settings: Settings
    config_path: Path


def write_config(path: Path, store_url: str, schools: list[dict[str, Any]]) -> None:
    """The settings as a TOML file, for the command-line tests."""
    write_toml_config(path, store_url, schools)


def build_small(tmp_path: Path) -> World:
    """The two hand-made schools in a fresh SQLite store (the caller closes it)."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    schools = [
        school_settings("brook", "Brook Academy", "140001", SMALL_CALENDAR),
        school_settings("fern", "Fern Primary & Nursery", "140002", SMALL_CALENDAR),
    ]
    settings = parse_config({"store": {"url": url}, "schools": schools})
    config_path = tmp_path / "registerwatch.toml"
    write_config(config_path, url, schools)
    store = Store.open(url)
    for s in settings.schools:
        store.upsert_school(s.to_school(), at=SCAN_1)
        store.upsert_calendar(s.to_calendar(), at=SCAN_1)
    store.upsert_pupils(
        [
            pupil("brook", "1001", "Ada", "Lovelace"),
            pupil("brook", "1002", "Alan", "Turing"),
            pupil("fern", "2001", "Grace", "Hopper"),
            pupil("fern", "2002", "Edsger", "Dijkstra"),
        ],
        at=SCAN_1,
    )
    store.upsert_marks(small_marks(), "brook", at=SCAN_1)
    store.upsert_marks(
        [Mark(pupil_id=p, date=d, session=s, code="N") for p, d, s in FERN_N], "fern", at=SCAN_1
    )
    store.save_findings([f for f, first, _ in BROOK_FINDINGS if first], at=SCAN_1)
    seen_again = [f for f, _, again in BROOK_FINDINGS if again]
    resolved = [
        f.model_copy(update={"resolved_at": SCAN_2})
        for f, first, again in BROOK_FINDINGS
        if first and not again
    ]
    store.save_findings(seen_again + resolved, at=SCAN_2)
    assert store.acknowledge_finding("fp-new-pupil", ACK_NOTE, at=SCAN_2)
    return World(store, settings, config_path)


# -- the scanned generated school --------------------------------------------------------------


@dataclass
class Scanned:
    school: GeneratedSchool
    findings: list[Finding]
    world: World

    @property
    def as_of(self) -> date:
        assert self.school.as_of is not None
        return self.school.as_of

    @property
    def generated_at(self) -> datetime:
        """Early on the report day, as the nightly run would make it."""
        return datetime.combine(self.as_of, datetime.min.time(), tzinfo=UTC) + timedelta(
            hours=6, minutes=30
        )


def generated_school_settings(school: GeneratedSchool) -> dict[str, Any]:
    s, cal = school.school, school.calendar
    assert s.urn is not None
    table = school_settings(
        s.id,
        s.name,
        s.urn,
        {
            "terms": [{"start": t.start, "end": t.end} for t in cal.terms],
            "closures": [
                {"date": c.date, "session": c.session, "kind": c.kind.value, "reason": c.reason}
                for c in cal.closures
            ],
        },
    )
    return table | {"laestab": s.laestab, "la_code": s.la_code, "phase": s.phase}


def build_scanned(folder: Path) -> Scanned:
    """A generated primary school (150 pupils, to 1 December 2025), stored as sync would and
    scanned by every rule, as the nightly scan would leave it (the caller closes the store)."""
    school = generate_school(seed=1, pupils=150)
    assert school.as_of is not None
    url = f"sqlite:///{folder / 'store.db'}"
    table = generated_school_settings(school)
    settings = parse_config({"store": {"url": url}, "schools": [table]})
    config_path = folder / "registerwatch.toml"
    write_config(config_path, url, [table])
    synced_at = datetime.combine(
        school.as_of - timedelta(days=1), datetime.min.time(), tzinfo=UTC
    ) + timedelta(hours=20)
    store = Store.open(url)
    store.upsert_school(school.school, at=synced_at)
    store.upsert_calendar(school.calendar, at=synced_at)
    store.upsert_pupils(school.pupils, at=synced_at)
    store.upsert_marks(school.marks, school.school.id, at=synced_at)
    ctx = context(school)
    findings = run_rules(ctx)
    run = store.start_run("scan", at=synced_at)  # as `registerwatch scan` records itself
    store.save_findings(findings, at=synced_at)
    store.finish_run(run, "ok", {"findings": len(findings)}, at=synced_at)
    return Scanned(school, findings, World(store, settings, config_path))
