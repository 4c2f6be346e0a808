"""Sync through the real adapters against the real loopback simulators (and a CTF folder).

Each test generates a small school (30 pupils, the first four weeks of the 2025/26 autumn
term), serves it in one vendor's style, syncs it with ``sync_all`` (the real ``build_adapter``,
with a fast RetryPolicy and no sleeping) and compares the store with the generated school:
reproduction, idempotence, every fault, changes between syncs and the ledger, failure
isolation, and the ``registerwatch sync`` / ``ledger verify`` commands end to end.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from structlog.testing import capture_logs
from sync_support import ENV, make_app, mis_table, school_config, serve, write_config

from registerwatch.adapters.base import RetryPolicy
from registerwatch.adapters.registry import build_adapter
from registerwatch.cli import main
from registerwatch.config import Settings, parse_config
from registerwatch.logging import configure_logging
from registerwatch.simulator.arbor import ArborApp
from registerwatch.simulator.generate import generate_school
from registerwatch.simulator.go4schools import Go4SchoolsApp
from registerwatch.simulator.model import GeneratedSchool
from registerwatch.simulator.server import FaultKind, SimulatorServer, VendorApp
from registerwatch.store import Store
from registerwatch.store.changes import first_seen_marks
from registerwatch.sync import SchoolSyncResult, SyncSummary, sync_all

VENDORS = ("arbor", "isams", "go4schools")
AS_OF = date(2025, 10, 1)  # marks run to Tuesday 30 September
NOW = datetime(2025, 10, 1, 19, 0, tzinfo=UTC)
LATER = datetime(2025, 10, 2, 19, 0, tzinfo=UTC)
FAST_RETRY = RetryPolicy(max_attempts=5, base_delay=0.001, max_delay=0.01, max_retry_after=5)

# The path each vendor's marks come from (faults are armed on it).
MARKS_PATH = {
    "arbor": "attendance-records",
    "isams": "xml.ashx",
    "go4schools": "student-session-marks",
}

# What each vendor exposes of a mark beyond its key. iSAMS gives no marker and reports every
# present mark as "/" (its own present code); GO 4 Schools gives neither recorder nor time.
MARK_FIELDS = {
    "arbor": ("code", "vendor_code", "minutes_late", "comment", "recorded_at"),
    "isams": ("code", "minutes_late", "comment", "recorded_at"),
    "go4schools": ("code", "vendor_code", "minutes_late", "comment"),
}
PUPIL_FIELDS = (
    "id",
    "school_id",
    "mis_id",
    "upn",
    "legal_forename",
    "legal_surname",
    "middle_names",
    "preferred_forename",
    "preferred_surname",
    "dob",
    "sex",
    "nc_year",
    "reg_group",
    "starting_day",
    "leaving_date",
    "looked_after",
    "boarder",
)
PUPIL_EXTRA_FIELDS = {
    "arbor": ("former_upn", "ehcp", "sen_support"),
    "isams": (),
    "go4schools": ("former_upn", "ehcp", "sen_support", "fsm", "has_social_worker"),
}
# Arbor is the only vendor that exposes register-taking events.
REGISTER_FIELDS = ("school_id", "group", "date", "session", "opened_at", "completed_at")


def fast_factory(**overrides: Any):
    """build_adapter with a fast retry policy and no real sleeping."""

    def factory(school, sync, environ):
        adapter = build_adapter(
            school, sync, environ, retry=FAST_RETRY, sleep=lambda _seconds: None, **overrides
        )
        if school.mis.vendor == "isams":
            adapter.rest_page_size = 10  # pages the 30 students, as a large school would be
        return adapter

    return factory


@dataclass
class Sim:
    vendor: str
    school: GeneratedSchool
    app: VendorApp
    server: SimulatorServer
    settings: Settings
    store: Store

    @property
    def school_id(self) -> str:
        return self.school.school.id

    def sync(self, as_of: date = AS_OF, at: datetime = NOW, **overrides: Any) -> SyncSummary:
        return sync_all(
            self.settings,
            self.store,
            as_of=as_of,
            environ=ENV,
            adapter_factory=fast_factory(**overrides),
            clock=lambda: at,
        )

    def sync_ok(self, **kwargs: Any) -> SchoolSyncResult:
        (result,) = self.sync(**kwargs).schools
        assert result.status == "ok", result.error
        return result


@pytest.fixture
def simulate(tmp_path) -> Iterator[Any]:
    running: list[Sim] = []

    def start(vendor: str, seed: int = 3, pupils: int = 30) -> Sim:
        school = generate_school(seed, pupils, vendor=vendor, as_of=AS_OF, inject_breaches=False)
        app = make_app(vendor, school)
        server = serve(app)
        settings = parse_config(
            {
                "store": {"url": f"sqlite:///{tmp_path / f'{vendor}-{len(running)}.db'}"},
                "schools": [school_config(school, mis_table(vendor, server.url))],
            }
        )
        sim = Sim(vendor, school, app, server, settings, Store.open(settings.store.url))
        running.append(sim)
        return sim

    yield start
    for sim in running:
        sim.store.close()
        sim.server.stop()


# -- comparing the store with the generated school ----------------------------------------


def mark_view(marks, fields) -> dict[tuple, tuple]:
    return {(m.pupil_id, m.date, m.session): tuple(_value(m, f) for f in fields) for m in marks}


def _value(mark, name: str) -> Any:
    value = getattr(mark, name)
    if name == "recorded_at" and value is not None:
        # Arbor writes instants to the second; a mark the simulator re-saves gets microseconds.
        return value.replace(microsecond=0)
    return value


def assert_reproduces(sim: Sim) -> None:
    """Every pupil, register (where exposed) and mark of the generated school, and no more."""
    school_id = sim.school_id
    fields = PUPIL_FIELDS + PUPIL_EXTRA_FIELDS[sim.vendor]
    stored_pupils = {
        p.id: tuple(getattr(p, f) for f in fields) for p in sim.store.pupils(school_id)
    }
    assert stored_pupils == {p.id: tuple(getattr(p, f) for f in fields) for p in sim.school.pupils}

    mark_fields = MARK_FIELDS[sim.vendor]
    stored = mark_view(sim.store.marks(school_id), mark_fields)
    expected = mark_view(sim.school.marks, mark_fields)
    assert len(stored) == len(expected)
    assert stored == expected

    registers = {
        (r.group, r.date, r.session): tuple(getattr(r, f) for f in REGISTER_FIELDS)
        for r in sim.store.registers(school_id)
    }
    if sim.vendor == "arbor":
        assert registers == {
            (r.group, r.date, r.session): tuple(getattr(r, f) for f in REGISTER_FIELDS)
            for r in sim.school.registers
        }
    else:
        assert registers == {}
    assert sim.store.deleted_marks(school_id) == []


# -- (a) reproduce, (c) idempotent ----------------------------------------------------------


@pytest.mark.parametrize("vendor", VENDORS)
def test_sync_reproduces_the_generated_school(simulate, vendor):
    sim = simulate(vendor)
    result = sim.sync_ok()

    assert_reproduces(sim)
    assert result.fetched["pupils"] == len(sim.school.pupils) == 30
    assert result.fetched["marks"] == result.marks_new == len(sim.school.marks)
    assert len(sim.school.marks) > 1000
    assert result.quarantined == [] and result.marks_deleted == 0
    ledger = sim.store.ledger(sim.school_id)
    assert len(ledger) == len({m.pupil_id for m in sim.school.marks})  # one per pupil
    assert {r.kind for r in ledger} == {"observed_new"}
    assert sum(len(first_seen_marks(r)) for r in ledger) == len(sim.school.marks)
    assert sim.store.verify_ledger().ok


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_second_sync_changes_nothing(simulate, vendor):
    sim = simulate(vendor)
    sim.sync_ok()
    ledger = sim.store.ledger()

    again = sim.sync_ok(at=LATER)

    assert (again.marks_new, again.marks_changed, again.marks_deleted) == (0, 0, 0)
    # The trailing window: 10 school days before 1 October (from 17 September) to the 30th.
    in_window = [m for m in sim.school.marks if m.date >= date(2025, 9, 17)]
    assert again.marks_unchanged == len(in_window) > 0
    assert again.ledger_entries == 0 and again.amendments_new == 0
    assert sim.store.ledger() == ledger
    assert_reproduces(sim)


# -- (b) faults ----------------------------------------------------------------------------

# Faults a client survives by retrying the same request.
RETRIED = {"429", "500", "502", "503", "slow", "html", "deadlock"}
GENERIC = ("429", "500", "502", "503", "slow", "html", "stale", "changing", "malformed")
FAULT_CASES = [(v, f) for v in VENDORS for f in GENERIC] + [
    ("isams", "expiring_tokens"),
    ("isams", "deadlock"),
]


def arm(sim: Sim, fault: str) -> dict[str, Any]:
    """Arm ``fault`` on the marks resource; returns adapter overrides the fault needs."""
    kind = FaultKind(fault)
    path = MARKS_PATH[sim.vendor]
    if kind is FaultKind.SLOW:
        # The server sleeps longer than the client waits: a timeout, then a retry.
        # The margins are wide (a 1 s read timeout, a 2.5 s sleep) so that an ordinary answer on
        # a loaded two-core machine is never mistaken for the fault.
        sim.app.faults.arm(kind, times=1, path=path, delay=2.5)
        return {"timeout": (1.0, 1.0)}
    if kind is FaultKind.EXPIRING_TOKENS:
        sim.app.faults.arm(kind, times=None)  # every token is good for one request only
    elif kind is FaultKind.CHANGING_PAGES and sim.vendor == "isams":
        sim.app.faults.arm(kind, times=1, path="students")  # iSAMS pages only its REST list
    elif kind is FaultKind.CHANGING_PAGES and sim.vendor == "go4schools":
        # One request per date: edit a date the next run's trailing window re-pulls.
        sim.app.faults.arm(kind, times=1, path=f"{path}/date/2025-09-29")
    elif kind is FaultKind.STALE_CACHE:
        warm_cache(sim)
        sim.app.faults.arm(kind, times=None, path=path)
    elif kind in (FaultKind.CHANGING_PAGES, FaultKind.MALFORMED):
        sim.app.faults.arm(kind, times=1, path=path)
    else:
        sim.app.faults.arm(kind, times=2, path=path)
    return {}


def warm_cache(sim: Sim) -> None:
    """iSAMS serves a stale answer only from a cache an earlier identical request filled: the
    first sync pulls the school year, the second the trailing window later runs ask for."""
    sim.sync_ok()
    sim.sync_ok()


@pytest.mark.parametrize("vendor, fault", FAULT_CASES)
def test_sync_through_a_fault(simulate, vendor, fault):
    sim = simulate(vendor)
    overrides = arm(sim, fault)

    with capture_logs() as logs:
        result = sim.sync_ok(**overrides)

    assert sim.app.faults.fired[fault] >= 1, f"the {fault} fault never fired"
    if fault in RETRIED:
        # Survived by retrying the request, not by accepting the faulty answer.
        assert any(e["event"] == "adapter.request_retried" for e in logs)
    if fault == "malformed":
        # The broken records are quarantined with their field and reason; every other record
        # is exact, and none of them is taken for a deletion.
        assert result.quarantined
        assert all(q.reason and q.record_ref for q in result.quarantined)
        assert {_quarantine_key(q) for q in result.quarantined} == {
            _quarantine_key(q) for q in sim.store.quarantined(sim.school_id)
        }
        fields = MARK_FIELDS[vendor]
        stored = mark_view(sim.store.marks(sim.school_id), fields)
        expected = mark_view(sim.school.marks, fields)
        assert all(expected[key] == value for key, value in stored.items())
        missing = len(expected) - len(stored)
        assert 1 <= missing <= len(result.quarantined)
        # Once the MIS serves them cleanly, the next run completes the school.
        sim.sync_ok(at=LATER)
    elif fault == "changing":
        # Data edited while the pull was paging: whatever this run missed or saw half-way, the
        # next run's re-pull of the trailing window catches up.
        sim.sync_ok(at=LATER)
    assert_reproduces(sim)


def _quarantine_key(q):
    return (q.resource, q.record_ref or "", q.field or "")


@pytest.mark.parametrize("vendor", VENDORS)
def test_empty_permission_after_a_good_sync_fails_the_school_and_changes_nothing(simulate, vendor):
    sim = simulate(vendor)
    sim.sync_ok()
    ledger, marks = sim.store.ledger(), sim.store.marks(sim.school_id)
    sim.app.faults.arm(FaultKind.EMPTY_PERMISSION, times=None, path=MARKS_PATH[vendor])

    (result,) = sim.sync(at=LATER).schools

    assert sim.app.faults.fired["empty"] >= 1
    assert result.status == "failed"
    # The adapter may recognise the empty 200 itself; sync refuses it in any case.
    assert "permission" in result.error.lower()
    assert sim.store.ledger() == ledger and sim.store.marks(sim.school_id) == marks
    assert sim.store.deleted_marks(sim.school_id) == []
    assert sim.store.get_bookmark(sim.school_id, "marks") == "2025-10-01"


def test_one_school_day_answered_empty_is_refused_not_taken_for_deletions(simulate):
    # GO 4 Schools is asked once per date: a permission gap can blank a single day.
    sim = simulate("go4schools")
    sim.sync_ok()
    ledger = sim.store.ledger()
    sim.app.faults.arm(
        FaultKind.EMPTY_PERMISSION, times=None, path="student-session-marks/date/2025-09-24"
    )

    (result,) = sim.sync(at=LATER).schools

    on_the_day = len([m for m in sim.school.marks if m.date == date(2025, 9, 24)])
    assert result.status == "failed"
    assert result.error == (
        f"school 'oakfield': go4schools returned no marks for 2025-09-24 where {on_the_day} "
        "were stored: check the API user's permissions; nothing was changed"
    )
    assert sim.store.ledger() == ledger and sim.store.deleted_marks(sim.school_id) == []


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_stale_cache_is_caught_up_by_the_next_pull(simulate, vendor):
    sim = simulate(vendor)
    warm_cache(sim)
    key = next(
        (m.pupil_id, m.date, m.session)
        for m in sim.school.marks
        if m.date == date(2025, 9, 29) and m.code == "/"
    )
    sim.app.set_mark(*key, "I")
    sim.app.faults.arm(FaultKind.STALE_CACHE, times=None, path=MARKS_PATH[vendor])

    first = len(sim.store.ledger())
    sim.sync_ok()
    assert sim.app.faults.fired["stale"] >= 1
    stale = {(m.pupil_id, m.date, m.session): m.code for m in sim.store.marks(sim.school_id)}
    # The Arbor adapter checks a listing against the changelog and sees through the cache;
    # the others store what the cache served.
    assert stale[key] == ("I" if vendor == "arbor" else "/")

    sim.app.faults.clear()
    sim.sync_ok(at=LATER)
    changes = [
        (r.kind, r.pupil_id, r.date, r.session, r.original_code, r.new_code)
        for r in sim.store.ledger()
        if r.seq > first and r.kind != "mis_amendment"
    ]
    assert changes == [("observed_change", *key, "/", "I")]
    assert_reproduces_after_edits(sim)


# -- (d) changes between syncs, the ledger, tampering ---------------------------------------


@pytest.mark.parametrize("vendor", VENDORS)
def test_changes_in_the_mis_between_syncs_are_ledgered(simulate, vendor, cli):
    sim = simulate(vendor)
    sim.sync_ok()
    first = len(sim.store.ledger())
    by_key = sim.school.marks_by_key()
    keys = sorted(
        (k for k, m in by_key.items() if m.date >= date(2025, 9, 22) and m.code in ("/", "\\")),
        key=lambda k: (k[1], k[2].value, k[0]),
    )
    via_api, via_app, removed = keys[0], keys[len(keys) // 2], keys[-1]
    before = {k: by_key[k].code for k in (via_api, via_app, removed)}
    # The data manager edits the register: once through the control endpoint, once in-process.
    reply = requests.post(
        f"{sim.server.url}/_sim/marks",
        timeout=5,
        json={
            "pupil_id": via_api[0],
            "date": via_api[1].isoformat(),
            "session": via_api[2].value,
            "code": "N",
        },
    )
    assert reply.json() == {"updated": True}
    sim.app.set_mark(*via_app, "M")
    assert sim.app.delete_mark(*removed)

    result = sim.sync_ok(at=LATER)

    assert (result.marks_changed, result.marks_deleted, result.marks_new) == (2, 1, 0)
    observed = [
        (r.kind, r.pupil_id, r.date, r.session, r.original_code, r.new_code)
        for r in sim.store.ledger()
        if r.seq > first and r.kind != "mis_amendment"
    ]
    assert observed == [
        ("observed_change", *via_api, before[via_api], "N"),
        ("observed_change", *via_app, before[via_app], "M"),
        ("observed_deleted", *removed, before[removed], None),
    ]
    assert all(r.observed_at == LATER for r in sim.store.ledger() if r.seq > first)
    # The deleted entry is flagged and kept, with its last code.
    (gone,) = sim.store.deleted_marks(sim.school_id)
    assert (gone.mark.pupil_id, gone.mark.date, gone.mark.session, gone.mark.code) == (
        *removed,
        before[removed],
    )
    assert gone.deleted_at == LATER
    # The simulators' (INFERRED) audit resources record the same edits as MIS amendments.
    mis = sim.store.amendments(sim.school_id, source="mis")
    assert result.amendments_new == len(mis) == len(sim.school.amendments)
    assert len([r for r in sim.store.ledger() if r.kind == "mis_amendment"]) == len(mis)
    assert sim.store.verify_ledger().ok
    assert_reproduces_after_edits(sim)

    # Tampering with one entry breaks the chain there, and `ledger verify` names it.
    url = sim.settings.store.url
    code, out, _ = cli("ledger", "verify", "--store", url, "--format", "json")
    assert code == 0 and json.loads(out)["ok"] is True
    target = first + 2
    with sim.store.engine.begin() as conn:
        conn.execute(sa.text("DROP TRIGGER ledger_no_update"))
        conn.execute(sa.text("UPDATE ledger SET new_code = 'O' WHERE seq = :seq"), {"seq": target})
    code, out, _ = cli("ledger", "verify", "--store", url, "--format", "json")
    assert code == 1
    assert json.loads(out)["broken"] == {
        "seq": target,
        "school": "oakfield",
        "reason": "hash does not match the entry's contents: the entry was altered",
    }
    code, out, _ = cli("ledger", "verify", "--store", url)
    assert code == 1
    assert f"ledger broken at entry {target} (school oakfield): hash does not match" in out


def assert_reproduces_after_edits(sim: Sim) -> None:
    fields = MARK_FIELDS[sim.vendor]
    # recorded_at of an edited mark is the simulator's wall clock; compare codes there.
    fields = tuple(f for f in fields if f != "recorded_at")
    assert mark_view(sim.store.marks(sim.school_id), fields) == mark_view(sim.school.marks, fields)


@pytest.fixture
def cli(capsys) -> Iterator[Any]:
    """Run the CLI in-process: (exit status, stdout, stderr). The CLI points logging at the
    stderr of the moment (pytest's capture); afterwards it is pointed at the real one again."""
    yield functools.partial(_cli, capsys)
    configure_logging(level="WARNING", stream=sys.__stderr__)


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run the CLI in-process: exit status, stdout, stderr."""
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    captured = capsys.readouterr()
    return exc.value.code or 0, captured.out, captured.err


# -- (f) one failing school ------------------------------------------------------------------


def test_bad_credentials_fail_one_school_and_the_other_syncs(tmp_path):
    arbor_school = generate_school(
        3, 30, school_id="ashby", vendor="arbor", as_of=AS_OF, inject_breaches=False
    )
    g4s_school = generate_school(
        4, 30, school_id="brook", vendor="go4schools", as_of=AS_OF, inject_breaches=False
    )
    arbor, g4s = serve(ArborApp(arbor_school)), serve(Go4SchoolsApp(g4s_school))
    try:
        settings = parse_config(
            {
                "store": {"url": f"sqlite:///{tmp_path / 'two.db'}"},
                "schools": [
                    school_config(arbor_school, mis_table("arbor", arbor.url)),
                    school_config(g4s_school, mis_table("go4schools", g4s.url)),
                ],
            }
        )
        store = Store.open(settings.store.url)
        env = ENV | {"OAK_ARBOR_PASSWORD": "not-the-password"}

        summary = sync_all(
            settings, store, as_of=AS_OF, environ=env, adapter_factory=fast_factory()
        )

        ashby, brook = summary.schools
        assert (ashby.school_id, ashby.status) == ("ashby", "failed")
        assert "401" in ashby.error
        assert "check OAK_ARBOR_USERNAME / OAK_ARBOR_PASSWORD" in ashby.error
        assert "not-the-password" not in ashby.error
        assert (brook.school_id, brook.status) == ("brook", "ok")
        assert len(store.marks("brook")) == len(g4s_school.marks)
        assert store.marks("ashby") == [] and store.pupils("ashby") == []
        assert summary.totals()["schools_failed"] == 1
        store.close()
    finally:
        arbor.stop()
        g4s.stop()


# -- (g) the CLI end to end ------------------------------------------------------------------


def test_the_sync_command_end_to_end(tmp_path, monkeypatch, cli):
    school = generate_school(5, 24, vendor="go4schools", as_of=AS_OF, inject_breaches=False)
    server = serve(Go4SchoolsApp(school))
    try:
        config = tmp_path / "registerwatch.toml"
        write_config(
            config,
            "sqlite:///store.sqlite",
            [school_config(school, mis_table("go4schools", server.url))],
        )
        for name, value in ENV.items():
            monkeypatch.setenv(name, value)

        code, out, errors = cli(
            "sync", "--config", str(config), "--as-of", "2025-10-01", "--format", "json"
        )

        assert code == 0, errors
        summary = json.loads(out)
        assert summary["ok"] is True and summary["as_of"] == "2025-10-01"
        (result,) = summary["schools"]
        assert result["school"] == "oakfield" and result["status"] == "ok"
        assert result["fetched"]["pupils"] == 24
        assert result["marks"] == {
            "new": len(school.marks),
            "changed": 0,
            "deleted": 0,
            "unchanged": 0,
        }
        assert result["window"] == {"start": "2025-09-03", "end": "2025-10-01", "first_sync": True}
        assert summary["totals"]["ledger_entries"] == len({m.pupil_id for m in school.marks})
        # The store is next to the config (a relative URL) and readable by its owner only.
        store_file = tmp_path / "store.sqlite"
        assert store_file.stat().st_mode & 0o077 == 0

        code, out, _ = cli("ledger", "verify", "--config", str(config))
        assert code == 0
        assert f"ledger ok: {len({m.pupil_id for m in school.marks})} entries" in out

        # A table for people; a wrong credential is one failed school and exit status 1.
        monkeypatch.setenv("OAK_G4S_API_KEY", "wrong-key")
        code, out, _ = cli("sync", "--config", str(config), "--as-of", "2025-10-02")
        assert code == 1
        assert "oakfield failed:" in out and "check OAK_G4S_API_KEY" in out

        # Quarantined records are listed (where, which field, why) and exit status stays 0.
        monkeypatch.setenv("OAK_G4S_API_KEY", ENV["OAK_G4S_API_KEY"])
        server.app.faults.arm(FaultKind.MALFORMED, times=1, path="student-session-marks")
        code, out, _ = cli("sync", "--config", str(config), "--as-of", "2025-10-02")
        assert code == 0, out
        assert "Quarantined records: 3" in out
        assert "session-marks" in out and "session_mark_id" in out
        names = {p.legal_surname for p in school.pupils} | {p.legal_forename for p in school.pupils}
        assert not [name for name in names if name and name in out]
    finally:
        server.stop()


def test_the_sync_command_refuses_an_unknown_school(tmp_path, cli):
    config = tmp_path / "c.toml"
    school = generate_school(5, 24, vendor="go4schools", as_of=AS_OF, inject_breaches=False)
    write_config(
        config,
        "sqlite:///s.sqlite",
        [school_config(school, mis_table("go4schools", "http://127.0.0.1:9"))],
    )
    code, _, errors = cli("sync", "--config", str(config), "--school", "nope")
    assert code == 2
    assert "no school 'nope' in the configuration (known: oakfield)" in errors


# -- CTF: a folder of files instead of an API ------------------------------------------------

CTF_DATA = Path(__file__).resolve().parents[1] / "adapters" / "ctf" / "data"


def test_a_ctf_folder_syncs_like_an_mis(tmp_path):
    folder = tmp_path / "ctf-in"
    folder.mkdir()
    (folder / "wenlock.xml").write_bytes((CTF_DATA / "ctf25_wenlock.xml").read_bytes())
    calendar = {
        "terms": [{"start": date(2024, 9, 2), "end": date(2024, 10, 25)}],
        "closures": [],
        "register_times": {},
    }
    settings = parse_config(
        {
            "store": {"url": f"sqlite:///{tmp_path / 'ctf.db'}"},
            "schools": [
                {
                    "id": "wenlock",
                    "urn": "149002",
                    "laestab": "8934001",
                    "name": "Wenlock Primary School",
                    "la_code": "893",
                    "phase": "primary",
                    "mis": {"vendor": "ctf", "path": str(folder)},
                    "calendar": calendar,
                }
            ],
        }
    )
    store = Store.open(settings.store.url)

    # The same adapter overrides as for the HTTP schools: ignored by the CTF adapter.
    (result,) = sync_all(
        settings, store, as_of=date(2024, 9, 10), environ={}, adapter_factory=fast_factory()
    ).schools

    assert result.status == "ok", result.error
    assert result.fetched["pupils"] == 2 and result.fetched["registers"] == 0
    marks = store.marks("wenlock")
    assert len(marks) == result.marks_new > 0
    assert result.ledger_entries == len({m.pupil_id for m in marks})
    first = {(m.date, m.session.value): m.code for m in marks if m.pupil_id == marks[0].pupil_id}
    # Pupil 1's marks as the file's own comment spells them out (C1 C2 J1 decoded).
    assert [first.get((date(2024, 9, d), s)) for d in (2, 3, 4, 5) for s in ("AM", "PM")] == [
        "/",
        "\\",
        "C1",
        "\\",
        "I",
        "C2",
        "J1",
        "N",
    ]
    (again,) = sync_all(
        settings, store, as_of=date(2024, 9, 10), adapter_factory=fast_factory()
    ).schools
    assert (again.marks_new, again.marks_changed, again.ledger_entries) == (0, 0, 0)
    store.close()


@pytest.mark.parametrize("full_repull_days, seen", [(7, True), (0, False)])
def test_an_old_deletion_is_seen_by_the_periodic_whole_year_pull(simulate, full_repull_days, seen):
    """The trailing window alone never looks back past 10 school days; every
    ``full_repull_days`` the whole year is compared again, so an entry deleted in September is
    still flagged (registers are kept 6 years). 0 turns the whole-year pull off."""
    sim = simulate("arbor")
    sim.settings = sim.settings.model_copy(
        update={"sync": sim.settings.sync.model_copy(update={"full_repull_days": full_repull_days})}
    )
    sim.sync_ok()
    old = min(k for k, m in sim.school.marks_by_key().items() if m.date == date(2025, 9, 4))
    assert sim.app.delete_mark(*old)
    week_later = date(2025, 10, 8)

    result = sim.sync_ok(as_of=week_later, at=LATER)

    assert result.window.start == (date(2025, 9, 3) if seen else date(2025, 9, 24))
    deleted = {
        (d.mark.pupil_id, d.mark.date, d.mark.session)
        for d in sim.store.deleted_marks(sim.school_id)
    }
    assert (old in deleted) is seen
    # and the next sync the same week is back to the trailing window
    again = sim.sync_ok(as_of=week_later, at=LATER)
    assert again.window.start == date(2025, 9, 24)
