"""The incremental nightly scan gives the same findings as a full scan (issue 12 item 2).

Two stores receive the same records, night after night, from the generator's school (80 pupils,
injected breaches): a first load to mid-October, then each school day's registers, marks and MIS
amendment records as the nightly sync would write them, plus, on some nights, a past mark whose
code the MIS changed, a mark that disappeared from the MIS, a pupil who left the roll and a return
made, a past register saved late or left unsaved after the fact, a pupil who moved group and a
pupil who joined. Store A is scanned incrementally (the summary its last scan kept, plus what
changed; the register rules re-judge only the changed sessions and carry their other findings
forward), store B with ``full=True``, every night from 22 October to 6 November 2025: across the
autumn half-term (27-31 October, nights with no new registers while deadlines still move) and
the turn of the month. Both scans must report the same findings (severity, message, due date,
sessions, evidence) with the same lifecycle every night, and store the same.

Runs on SQLite, and on PostgreSQL (a schema per store) when REGISTERWATCH_TEST_PG_URL is set.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.pg import pg_schema_urls

from registerwatch.calendar import LONDON
from registerwatch.config import Settings, parse_config
from registerwatch.scan import ScanResult, run_scan
from registerwatch.scan.context_loader import marks_read
from registerwatch.schema import Mark, Pupil, Register, Session
from registerwatch.simulator.generate import generate_school
from registerwatch.simulator.model import GeneratedSchool
from registerwatch.simulator.vendors import school_config
from registerwatch.store import CAPABILITIES_BOOKMARK, MarkKey, Store
from registerwatch.validators.lean_marks import rows_from_marks

FIRST_NIGHT = date(2025, 10, 22)
LAST_NIGHT = date(2025, 11, 6)
GENERATED_TO = date(2025, 11, 21)  # the generator needs 50 school days to inject every breach


def at_night(day: date) -> datetime:
    """02:00 London on ``day``: when the nightly sync and scan run."""
    return datetime.combine(day, time(2, 0), tzinfo=LONDON).astimezone(UTC)


@pytest.fixture(scope="module")
def school() -> GeneratedSchool:
    return generate_school(7, 80, as_of=GENERATED_TO)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_urls(request: pytest.FixtureRequest, tmp_path) -> Iterator[tuple[str, str]]:
    """Two empty stores on one backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
        return
    with pg_schema_urls("incr", 2) as urls:
        yield urls[0], urls[1]


def settings_for(school: GeneratedSchool, url: str) -> Settings:
    return parse_config(
        {
            "store": {"url": url},
            "logging": {"level": "WARNING"},
            "schools": [school_config(school, "arbor", "http://127.0.0.1:9")],
        }
    )


def first_load(store: Store, school: GeneratedSchool, before: date, at: datetime) -> None:
    sid = school.school.id
    with store.transaction() as tx:
        store.upsert_school(school.school, at=at, conn=tx)
        store.upsert_calendar(school.calendar, at=at, conn=tx)
        store.upsert_pupils(school.pupils, at=at, conn=tx)
        store.add_notifications(
            [n for n in school.notifications if n.made_at.date() < before], at=at, conn=tx
        )
        store.set_bookmark(
            sid, CAPABILITIES_BOOKMARK, '{"amendments": true, "registers": true}', at=at, conn=tx
        )
    sync_days(store, school, lambda d: d < before, at)


def sync_days(store: Store, school: GeneratedSchool, wanted: Any, at: datetime) -> int:
    """Write the school's records of the days ``wanted`` accepts, as a sync would."""
    sid = school.school.id
    marks = [m for m in school.marks if wanted(m.date)]
    with store.transaction() as tx:
        store.upsert_registers([r for r in school.registers if wanted(r.date)], at=at, conn=tx)
        diff = store.upsert_marks(marks, sid, at=at, conn=tx)
        store.record_changes(
            sid, diff, [], [a for a in school.amendments if wanted(a.date)], at=at, conn=tx
        )
    return len(marks)


def change_code(store: Store, school: GeneratedSchool, mark: Mark, code: str, at: datetime) -> None:
    """The MIS changed a past mark's code: sync writes the change and ledgers it."""
    sid = school.school.id
    with store.transaction() as tx:
        diff = store.upsert_marks([mark.model_copy(update={"code": code})], sid, at=at, conn=tx)
        store.record_changes(sid, diff, [], [], at=at, conn=tx)


def delete_mark(store: Store, school: GeneratedSchool, mark: Mark, at: datetime) -> None:
    """The mark disappeared from the MIS: sync flags it and ledgers the deletion."""
    sid = school.school.id
    with store.transaction() as tx:
        gone = store.mark_deleted(
            sid, [MarkKey(mark.pupil_id, mark.date, mark.session)], at, conn=tx
        )
        diff = store.upsert_marks([], sid, at=at, conn=tx)
        store.record_changes(sid, diff, gone, [], at=at, conn=tx)


def change_register(
    store: Store, school: GeneratedSchool, register: Register, at: datetime, **update: Any
) -> None:
    """The MIS changed a past register (saved later, or its completion undone)."""
    store.upsert_registers([register.model_copy(update=update)], at=at)


def stored_findings(store: Store, school_id: str) -> list[tuple[str, str, str]]:
    """What the store keeps of each finding: status, resolution and the whole finding."""
    return sorted(
        (fp, s.status, s.finding.model_dump_json() + repr(s.resolution))
        for fp, s in store.load_findings(school_id).items()
    )


def findings_of(result: ScanResult) -> list[tuple[str, str, str]]:
    """Each finding's fingerprint, status and everything the scan reports about it."""
    return sorted(
        (f.fingerprint, f.status, f.finding.model_dump_json() + repr(f.resolution))
        for f in result.findings
    )


def test_incremental_scan_equals_full_scan_night_after_night(
    school: GeneratedSchool, store_urls: tuple[str, str]
) -> None:
    url_a, url_b = store_urls
    sid = school.school.id
    stores = [Store.open(url_a), Store.open(url_b)]
    settings = [settings_for(school, url_a), settings_for(school, url_b)]
    start_at = at_night(FIRST_NIGHT) - timedelta(days=1)
    nights = [FIRST_NIGHT + timedelta(days=n) for n in range((LAST_NIGHT - FIRST_NIGHT).days + 1)]
    pupils_by_id = {p.id: p for p in school.pupils}
    # Past marks the MIS will change or lose, picked from the first load.
    early = sorted(
        (m for m in school.marks if m.date < date(2025, 10, 10) and m.code == "/"),
        key=lambda m: (m.date, m.pupil_id, m.session),
    )
    registers = sorted(
        (r for r in school.registers if r.date < date(2025, 10, 10) and r.completed_at),
        key=lambda r: (r.date, r.session, r.group),
    )
    groups = sorted({p.reg_group for p in school.pupils if p.reg_group and not p.boarder})
    mover = next(p for p in school.pupils if p.reg_group == groups[0] and not p.boarder)
    joiner = mover.model_copy(
        update={
            "id": f"{sid}:joiner",
            "mis_id": "joiner",
            "upn": None,
            "reg_group": groups[1],
            "starting_day": date(2025, 11, 3),
            "leaving_date": None,
        }
    )
    changes: dict[date, list[tuple[str, Any]]] = {
        date(2025, 10, 23): [("code", (early[0], "N"))],
        date(2025, 10, 24): [
            (
                "register",
                (registers[3], {"completed_at": registers[3].completed_at + timedelta(hours=3)}),
            ),
            ("register", (registers[40], {"completed_at": None})),
        ],
        date(2025, 10, 28): [("code", (early[5], "O")), ("delete", early[9])],  # half-term
        date(2025, 11, 1): [("leaver", early[20].pupil_id)],  # a Saturday, new month
        date(2025, 11, 3): [("group", (mover, groups[1]))],  # not placed on a few days
        date(2025, 11, 4): [("code", (early[0], "/")), ("returns", None)],
        date(2025, 11, 5): [
            ("joiner", joiner),
            ("register", (registers[40], {"completed_at": registers[40].opened_at})),
        ],
    }
    whole_year_nights = {date(2025, 11, 3)}  # the register rules judge every session again
    delta_rules = {"REG001", "REG002", "REG003"}
    try:
        for store in stores:
            first_load(store, school, FIRST_NIGHT - timedelta(days=1), start_at)
        seen: dict[str, int] = {
            "new": 0,
            "resolved": 0,
            "incremental_nights": 0,
            "delta_nights": 0,
            "carried": 0,
        }
        for n, night in enumerate(nights):
            at = at_night(night)
            yesterday = night - timedelta(days=1)
            for store in stores:
                sync_days(store, school, lambda d, y=yesterday: d == y, at)
                for kind, what in changes.get(night, []):
                    if kind == "code":
                        change_code(store, school, what[0], what[1], at)
                    elif kind == "delete":
                        delete_mark(store, school, what, at)
                    elif kind == "leaver":
                        left: Pupil = pupils_by_id[what].model_copy(
                            update={"leaving_date": night - timedelta(days=3)}
                        )
                        store.upsert_pupils([left], at=at)
                    elif kind == "register":
                        change_register(store, school, what[0], at, **what[1])
                    elif kind == "group":
                        moved: Pupil = what[0].model_copy(update={"reg_group": what[1]})
                        store.upsert_pupils([moved], at=at)
                    elif kind == "joiner":
                        store.upsert_pupils([what], at=at)
                    elif kind == "returns":
                        store.add_notifications(
                            [x for x in school.notifications if x.made_at.date() < night], at=at
                        )
            incremental = run_scan(stores[0], settings[0], as_of=night, clock=lambda a=at: a)
            full = run_scan(stores[1], settings[1], as_of=night, clock=lambda a=at: a, full=True)
            (a,), (b,) = incremental.schools, full.schools
            assert a.status == b.status == "scanned", (night, a, b)
            assert not a.failed_rules and not b.failed_rules
            assert not b.incremental
            assert a.incremental == (n > 0), night  # the first scan of a school is a full one
            seen["incremental_nights"] += a.incremental
            assert findings_of(incremental) == findings_of(full), f"night of {night}"
            assert stored_findings(stores[0], sid) == stored_findings(stores[1], sid), night
            assert not b.delta_rules
            if n > 0 and night not in whole_year_nights:
                assert delta_rules <= set(a.delta_rules), (night, a.delta_rules)
                seen["delta_nights"] += 1
                # open findings of past sessions: carried forward, not judged again
                seen["carried"] += sum(
                    f.status == "open" and f.finding.rule in ("REG001", "REG003")
                    for f in incremental.findings
                )
            elif n > 0:
                assert not delta_rules & set(a.delta_rules), (night, a.delta_rules)
            seen["new"] += a.counts["new"]
            seen["resolved"] += a.counts["resolved"]
        # Not vacuous: findings came and went while the nights were incremental.
        assert seen["incremental_nights"] == len(nights) - 1
        assert seen["delta_nights"] == len(nights) - 1 - len(whole_year_nights)
        assert seen["new"] > 0 and seen["resolved"] > 0 and seen["carried"] > 0, seen
        assert _same_tokens(stores[0], sid)
    finally:
        for store in stores:
            store.close()


def _same_tokens(store: Store, school_id: str) -> bool:
    """The summary holds exactly the live marks (order within a pupil aside)."""
    summary = {p: sorted(t) for p, t in store.summary_tokens(school_id).items()}
    marks = {p: sorted(t) for p, t in store.mark_tokens(school_id).items()}
    return summary == marks


def test_a_changed_rule_setting_or_a_backdated_scan_reads_in_full(
    school: GeneratedSchool, tmp_path
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    settings = settings_for(school, url)
    store = Store.open(url)
    try:
        first_load(store, school, FIRST_NIGHT, at_night(FIRST_NIGHT))

        def scan(day: date, **kwargs: Any) -> bool:
            result = run_scan(store, settings, as_of=day, clock=lambda: at_night(day), **kwargs)
            (one,) = result.schools
            return one.incremental

        assert scan(FIRST_NIGHT) is False  # first scan
        assert scan(FIRST_NIGHT + timedelta(days=1)) is True
        assert scan(FIRST_NIGHT, record=True) is False  # as of a day before the last scan's
        assert scan(FIRST_NIGHT + timedelta(days=1)) is True
        assert scan(FIRST_NIGHT + timedelta(days=1), full=True) is False
        changed = settings.rule_settings(school.school.id).model_copy(
            update={"penalty_sessions": 12}
        )
        assert scan(FIRST_NIGHT + timedelta(days=2), rule_settings=changed) is False
        assert scan(FIRST_NIGHT + timedelta(days=2), rule_settings=changed) is True
        store.forget_summary(school.school.id)
        assert scan(FIRST_NIGHT + timedelta(days=3)) is False
    finally:
        store.close()


BASIS_SCRIPT = """
from registerwatch.simulator.generate import generate_school
from registerwatch.scan.context_loader import scan_basis
from registerwatch.validators import all_rules
import sys
sys.path[:0] = [{tests!r}, {support_root!r}]  # this folder, and the one holding support/
from test_incremental_scan import settings_for, GENERATED_TO
school = generate_school(7, 80, as_of=GENERATED_TO)
settings = settings_for(school, "sqlite:///unused.db")
config = settings.schools[0]
print(scan_basis(config, all_rules(), settings.rule_settings(config.id)))
"""


def test_the_scan_basis_is_the_same_in_every_process() -> None:
    """The basis hashes settings holding sets (penalty_threshold_codes): their order differs
    between processes, and a basis that followed it made every nightly scan a full one."""
    here = Path(__file__).parent
    script = BASIS_SCRIPT.format(tests=str(here), support_root=str(here.parent))
    bases = {
        subprocess.run(
            [sys.executable, "-c", script],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout.strip()
        for seed in ("1", "2", "3")
    }
    assert len(bases) == 1 and next(iter(bases)).startswith("sha256:"), bases


def test_the_rules_judge_in_full_after_a_long_gap_or_new_capabilities(
    school: GeneratedSchool, tmp_path
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    settings = settings_for(school, url)
    store = Store.open(url)
    sid = school.school.id
    try:
        first_load(store, school, GENERATED_TO, at_night(FIRST_NIGHT))

        def delta_rules(day: date) -> tuple[str, ...]:
            result = run_scan(store, settings, as_of=day, clock=lambda: at_night(day))
            (one,) = result.schools
            return one.delta_rules

        assert delta_rules(FIRST_NIGHT) == ()  # the first scan keeps the states
        assert delta_rules(FIRST_NIGHT + timedelta(days=1)) == (
            "MRK005",
            "REG001",
            "REG002",
            "REG003",
            "REG004",
            "UPN001",
            "UPN002",
        )
        assert delta_rules(FIRST_NIGHT + timedelta(days=40)) == ()  # more than 31 days on
        assert delta_rules(FIRST_NIGHT + timedelta(days=41)) != ()
        store.set_bookmark(
            sid,
            CAPABILITIES_BOOKMARK,
            '{"amendments": true, "registers": false}',
            at=at_night(LAST_NIGHT),
        )
        assert delta_rules(FIRST_NIGHT + timedelta(days=42)) == ()  # what the MIS exposes changed
        assert delta_rules(FIRST_NIGHT + timedelta(days=43)) != ()
        store.forget_rule_states(sid)
        assert delta_rules(FIRST_NIGHT + timedelta(days=44)) == ()
    finally:
        store.close()


def test_the_nightly_read_of_the_marks_is_the_marks_table_however_it_is_asked(
    school: GeneratedSchool, tmp_path
) -> None:
    """The nightly read keeps the summary as text and decodes a pupil's months only when asked
    (``LazyMarks``): the whole year, the marks after a session (from that month on only), the
    pupils marked on a session and the count all answer what the marks table holds, after a
    night that added a day, changed a past mark's code and lost another mark."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store.open(url)
    sid = school.school.id
    settings = settings_for(school, url)
    try:
        first_load(store, school, FIRST_NIGHT, at_night(FIRST_NIGHT))
        run_scan(store, settings, as_of=FIRST_NIGHT, clock=lambda: at_night(FIRST_NIGHT))
        at = at_night(FIRST_NIGHT + timedelta(days=1))
        sync_days(store, school, lambda d: d == FIRST_NIGHT, at)
        early = sorted(
            (m for m in school.marks if m.date < date(2025, 9, 20)),
            key=lambda m: (m.date, m.pupil_id, m.session),
        )
        change_code(store, school, early[0], "N" if early[0].code != "N" else "/", at)
        delete_mark(store, school, early[1], at)
        state = store.scan_state(sid)
        assert state is not None

        read = marks_read(store, sid, state)

        assert read.incremental
        expected = rows_from_marks(store.marks(sid))  # the live marks
        assert read.count == sum(map(len, expected.values()))
        lazy = read.rows
        points = [
            (date(2025, 9, 19), Session.PM),
            (date(2025, 10, 1), Session.AM),
            (FIRST_NIGHT, Session.AM),
        ]
        for pid, marks in expected.items():
            for point in points:
                after = [m for m in marks if (m.date, m.session) > point]
                assert list(lazy.after(pid, point)) == after, (pid, point)
        assert not lazy._decoded  # the marks after a session decoded no pupil's whole year
        sessions = [
            (early[0].date, early[0].session),
            (early[1].date, early[1].session),
            (FIRST_NIGHT, Session.AM),
        ]
        marked = lazy.marked_on(sessions)
        for key in sessions:
            assert marked[key] == {
                p for p, ms in expected.items() for m in ms if (m.date, m.session) == key
            }
        assert early[1].pupil_id not in marked[(early[1].date, early[1].session)]
        assert dict(lazy) == expected
        assert lazy.get("nobody") is None and "nobody" not in lazy
    finally:
        store.close()
