"""Acceptance (issue 9): an all-through school scanned through ``registerwatch scan`` with a
config, giving exactly the findings the law asks for.

Ash (Reception to Year 13, LA 881 with no return schedule set, so the default: monthly, due on
the last school day of the month) on Tuesday 30 September 2025:

- a planned partial closure on the first day for Reception and Year 7 only (``#`` for them,
  everyone else present): lawful, no finding;
- Year 9 pupil: L entered 50 minutes after a 30-minute register closed: MRK006 (should be U);
- Year 10 pupil: a suspension of 7 consecutive school days coded E: ATT006 from day 6, and
  14 of 38 possible sessions absent: ATT002 persistent absence;
- Year 12 pupil (16 at 31 August 2025): C2 is for pupils of compulsory school age: MRK008;
- Reception pupil (4) ill 16 school days: not in the sickness return (not of CSA), and not in
  the national absence measures;
- Year 3 pupil ill 16 school days: LAR001 sickness return, a warning due 30 September; severe
  absence ATT003 (32 of 38 sessions);
- Year 8 pupil: O on 10 consecutive school days: LAR002 continuous absence return, warning due
  30 September; 20 sessions of O in 10 school weeks: ATT001; 20 of 38 sessions: ATT003;
- no register records (the store holds none) and no amendment records: REG001 and AMD002 say
  once what could not be checked.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from registerwatch.calendar import SchoolCalendar
from registerwatch.config import load_config
from registerwatch.schema import Mark, Pupil, School, Session
from registerwatch.store import Store
from registerwatch.upn import make_upn

ASH = "ash"
AS_OF = "2025-09-30"
FIRST = date(2025, 9, 3)
CONFIG = """
[store]
url = "sqlite:///{db}"

[logging]
level = "WARNING"

[[schools]]
id = "ash"
urn = "100777"
laestab = "8817001"
name = "Ash All-Through School"
la_code = "881"
phase = "all-through"

[schools.mis]
vendor = "go4schools"
base_url = "http://127.0.0.1:9/customer/v1"
api_key_env = "ASH_G4S_API_KEY"

[schools.calendar]
terms = [{{ start = "2025-09-03", end = "2025-10-24" }}, {{ start = "2025-11-03", end = "2025-12-19" }}]
closures = [
  {{ date = "2025-09-03", session = "both", kind = "planned", reason = "staggered start", year_groups = ["R", "7"] }},
]
register_times = {{ am_open = "08:45", pm_open = "13:15", close_after_minutes = 30 }}
"""

# (mis id, NC year, registration group, date of birth)
PUPILS = [
    ("R1", "R", "RA", date(2021, 1, 15)),
    ("P3", "3", "3A", date(2018, 5, 5)),
    ("P7", "7", "7A", date(2014, 1, 10)),
    ("P8", "8", "8A", date(2013, 2, 2)),
    ("P9", "9", "9A", date(2012, 2, 2)),
    ("P10", "10", "10A", date(2011, 2, 2)),
    ("P12", "12", "12A", date(2009, 3, 3)),
    ("P13", "13", "13A", date(2008, 3, 3)),
]


def _present(session: Session) -> str:
    return "/" if session is Session.AM else "\\"


def _marks(calendar: SchoolCalendar) -> list[Mark]:
    days = calendar.school_days(FIRST, date(2025, 9, 29))
    assert len(days) == 19
    ill = set(days[3:19])  # 16 school days from Monday 8 September
    suspended = set(days[3:10])  # 7 school days from 8 September
    truant = set(days[8:18])  # 10 school days, 15-26 September
    marks = []
    for mis_id, year, _, _ in PUPILS:
        for day in days:
            for session in calendar.sessions_on(day):
                code, late = _present(session), None
                if day == FIRST and year in ("R", "7"):
                    code = "#"
                elif mis_id in ("R1", "P3") and day in ill:
                    code = "I"
                elif mis_id == "P10" and day in suspended:
                    code = "E"
                elif mis_id == "P8" and day in truant:
                    code = "O"
                elif mis_id == "P9" and day == date(2025, 9, 10) and session is Session.AM:
                    code, late = "L", 50
                elif mis_id == "P12" and day == date(2025, 9, 12) and session is Session.PM:
                    code = "C2"
                marks.append(
                    Mark(
                        pupil_id=f"{ASH}:{mis_id}",
                        date=day,
                        session=session,
                        code=code,
                        vendor_code=code,
                        minutes_late=late,
                    )
                )
    return marks


def _write_school(config: Path) -> None:
    settings = load_config(config)
    school = settings.school(ASH)
    calendar = school.to_calendar()
    at = datetime(2025, 9, 29, 19, 0, tzinfo=UTC)
    store = Store.open(settings.store.url)
    try:
        with store.transaction() as tx:
            store.upsert_school(
                School(
                    id=ASH,
                    name=school.name,
                    urn=school.urn,
                    laestab=school.laestab,
                    la_code=school.la_code,
                ),
                at=at,
                conn=tx,
            )
            store.upsert_calendar(calendar, at=at, conn=tx)
            pupils = [
                Pupil(
                    id=f"{ASH}:{mis_id}",
                    school_id=ASH,
                    mis_id=mis_id,
                    legal_forename=f"Pupil{mis_id}",
                    legal_surname="Ash",
                    upn=make_upn("881", "7001", 2020, serial),
                    dob=dob,
                    nc_year=year,
                    reg_group=group,
                    starting_day=date(2024, 9, 4),
                )
                for serial, (mis_id, year, group, dob) in enumerate(PUPILS, start=1)
            ]
            store.upsert_pupils(pupils, at=at, conn=tx)
            store.upsert_marks(_marks(SchoolCalendar(calendar)), ASH, at=at, conn=tx)
    finally:
        store.close()


def _summary(finding: dict[str, Any]) -> tuple[Any, ...]:
    first = finding["first_session"]
    return (
        finding["rule"],
        finding["pupil"],
        finding["severity"],
        f"{first['date']} {first['session']}" if first else None,
        finding["due"],
    )


def test_the_all_through_school_gets_exactly_the_findings_the_law_asks_for(
    tmp_path: Path, cli: Any, monkeypatch: Any
) -> None:
    config = tmp_path / "registerwatch.toml"
    config.write_text(CONFIG.format(db=tmp_path / "store.db"), encoding="utf-8")
    monkeypatch.setenv("ASH_G4S_API_KEY", "unused")
    _write_school(config)

    code, out, err = cli("scan", "--config", config, "--as-of", AS_OF, "--format", "json")
    assert code == 1, err
    findings = sorted(_summary(f) for f in json.loads(out)["findings"])

    assert findings == EXPECTED

    # once the LA's date has passed without the returns, they are errors
    code, out, err = cli("scan", "--config", config, "--as-of", "2025-10-01", "--format", "json")
    late = {(f["rule"], f["pupil"]): (f["severity"], f["due"]) for f in json.loads(out)["findings"]}
    assert late[("LAR001", "P3")] == late[("LAR002", "P8")] == ("error", "2025-09-30")

    # the school's LA agrees another schedule: the config moves the due date
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace("[[schools]]", '[las."881"]\nla_return_schedule = "termly"\n\n[[schools]]'),
        encoding="utf-8",
    )
    code, out, err = cli("scan", "--config", config, "--as-of", AS_OF, "--format", "json")
    termly = {
        (f["rule"], f["pupil"]): (f["severity"], f["due"]) for f in json.loads(out)["findings"]
    }
    assert termly[("LAR001", "P3")] == termly[("LAR002", "P8")] == ("warning", "2025-10-24")

    code, out, err = cli(
        "rules", "explain", "LAR002", "--school", ASH, "--config", config, "--format", "json"
    )
    assert code == 0, err
    settings = {s["name"]: (s["value"], s["source"]) for s in json.loads(out)["settings"]}
    assert settings["la_return_schedule"] == ("termly", '[las."881"]')
    assert settings["continuous_absence_days"] == (10, "default")
    code, out, err = cli("rules", "explain", "LAR002", "--school", ASH, "--config", config)
    assert code == 0 and "la_return_schedule" in out and '[las."881"]' in out
    code, out, err = cli("rules", "explain", "LAR002", "--school", "nope", "--config", config)
    assert code == 2 and "no school 'nope'" in err


EXPECTED = sorted(
    [
        # what could not be checked without register and amendment records: once each
        ("AMD002", None, "info", None, None),
        ("REG001", None, "info", None, None),
        # the L 50 minutes after the register opened, 20 after its 30-minute window closed
        ("MRK006", "P9", "error", "2025-09-10 AM", None),
        # the suspension: alternative provision is due from the sixth school day
        ("ATT006", "P10", "error", "2025-09-15 AM", None),
        ("ATT002", "P10", "warning", "2025-09-03 AM", None),
        # C2 for a 16-year-old: not of compulsory school age, so X
        ("MRK008", "P12", "error", "2025-09-12 PM", None),
        # the Year 3 pupil's illness: in the return due on the last school day of September
        ("LAR001", "P3", "warning", "2025-09-08 AM", "2025-09-30"),
        ("ATT002", "P3", "warning", "2025-09-03 AM", None),
        ("ATT003", "P3", "warning", "2025-09-03 AM", None),
        # the Year 8 pupil's 10 days of O: the continuous absence return due the same day
        ("LAR002", "P8", "warning", "2025-09-15 AM", "2025-09-30"),
        ("ATT001", "P8", "warning", "2025-09-15 AM", None),
        ("ATT002", "P8", "warning", "2025-09-03 AM", None),
        ("ATT003", "P8", "warning", "2025-09-03 AM", None),
    ]
)


def test_config_errors_and_warnings_through_the_cli(
    tmp_path: Path, cli: Any, monkeypatch: Any
) -> None:
    config = tmp_path / "registerwatch.toml"
    # A config `config check` finds complete (a credential set, a transport for the LA and the
    # DfE), so that the only thing it has to say is the warning.
    monkeypatch.setenv("ASH_G4S_API_KEY", "test-key")
    text = CONFIG.format(db=tmp_path / "store.db") + (
        '\n[transports.la."881"]\nkind = "folder"\npath = "outbox/la"\n'
        '\n[transports.dfe]\nkind = "folder"\npath = "outbox/dfe"\n'
    )
    (tmp_path / "outbox" / "la").mkdir(parents=True)
    (tmp_path / "outbox" / "dfe").mkdir(parents=True)
    config.write_text(
        text.replace("[[schools]]", "[rules]\nsickness_dayz = 15\n\n[[schools]]"), encoding="utf-8"
    )
    code, out, err = cli("scan", "--config", config, "--as-of", AS_OF)
    assert code == 2
    assert "rules.sickness_dayz: unknown key; did you mean 'sickness_days'?" in err

    config.write_text(text.replace("close_after_minutes = 30", "close_after_minutes = 45"))
    code, out, err = cli("config", "check", "--config", config, "--as-of", AS_OF)
    assert code == 0, out + err
    assert (
        "warning: schools[0].calendar.register_times.close_after_minutes: a register window of "
        "45 minutes is longer than the 30 minutes the guidance allows (WTISA)"
    ) in out


def test_the_school_enters_the_cause_of_an_absence_episode(
    tmp_path: Path, cli: Any, monkeypatch: Any
) -> None:
    config = tmp_path / "registerwatch.toml"
    config.write_text(CONFIG.format(db=tmp_path / "store.db"), encoding="utf-8")
    monkeypatch.setenv("ASH_G4S_API_KEY", "unused")
    _write_school(config)
    base = ("notify", "record", "--config", config, "--school", ASH, "--pupil", "P8")
    episode = ("--episode-start", "2025-09-15")

    code, out, err = cli(*base, "--kind", "absence_cause", *episode, "--format", "json")
    assert code == 2 and "--cause is given exactly with --kind absence_cause" in err
    code, out, err = cli(*base, "--kind", "continuous_absence", *episode, "--cause", "x")
    assert code == 2 and "--cause is given exactly with --kind absence_cause" in err

    code, out, err = cli(
        *base, "--kind", "absence_cause", *episode, "--cause", "Young carer", "--format", "json"
    )
    assert code == 0, err
    recorded = json.loads(out)
    assert (recorded["kind"], recorded["reference"], recorded["episode_start"]) == (
        "absence_cause",
        "Young carer",
        "2025-09-15",
    )
    # the cause is not a return: LAR002 stays open
    code, out, err = cli("scan", "--config", config, "--as-of", AS_OF, "--format", "json")
    assert ("LAR002", "P8") in {(f["rule"], f["pupil"]) for f in json.loads(out)["findings"]}
