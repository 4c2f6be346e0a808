"""The contract every REST adapter keeps, run against its simulator over loopback.

Modelled on the Singer SDK's reusable test templates: one suite, parametrised over
``vendors.CASES``; a new vendor gets all of it by adding its one line there.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from vendors import CASES, ContractCase

from registerwatch.adapters.base import Batch, Quarantined
from registerwatch.errors import FatalApiError, RegisterwatchError
from registerwatch.schema import Calendar
from registerwatch.simulator.generate import generate_school
from registerwatch.simulator.model import GeneratedSchool
from registerwatch.simulator.server import GENERIC_FAULTS, FaultKind, SimulatorServer, VendorApp
from registerwatch.simulator.vendors import PROFILES, build_app

AS_OF = date(2025, 10, 10)
WEEK = (date(2025, 9, 29), date(2025, 10, 3))
# Faults the adapter must ride out: the pull ends exactly as a clean one does.
RECOVERABLE = {
    FaultKind.CHANGING_PAGES,
    FaultKind.EXPIRING_TOKENS,
    FaultKind.DEADLOCK,
    *GENERIC_FAULTS,
}

_schools: dict[str, GeneratedSchool] = {}


def _school(vendor: str) -> GeneratedSchool:
    if vendor not in _schools:
        _schools[vendor] = generate_school(
            11, 14, school_id="contract", vendor=vendor, as_of=AS_OF, inject_breaches=False
        )
    return _schools[vendor]


class Rig:
    def __init__(self, case: ContractCase, app: VendorApp, url: str) -> None:
        self.case, self.app, self.url = case, app, url

    def adapter(self, page_size: int | None = None) -> Any:
        adapter = self.case.build(self.url, "contract")
        if page_size is not None:
            self.case.set_page_size(adapter, self.app, page_size)
        return adapter

    def pull(self, page_size: int | None = None) -> dict[str, Any]:
        adapter = self.adapter(page_size)
        try:
            return {"pupils": _sorted(adapter.pupils()), "marks": _sorted(adapter.marks(*WEEK))}
        finally:
            adapter.close()


def _keys(pulled: dict[str, Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
    return (
        [p.id for p in pulled["pupils"]],
        sorted((m.pupil_id, m.date, m.session.value) for m in pulled["marks"]),
    )


def _sorted(batch: Batch[Any]) -> list[Any]:
    return sorted(batch.records, key=repr)


@pytest.fixture(params=CASES, ids=[c.vendor for c in CASES])
def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    case: ContractCase = request.param
    app = build_app(case.vendor, _school(case.vendor))
    with SimulatorServer(app) as server:
        yield Rig(case, app, PROFILES[case.vendor].base_url(server.url))


@pytest.fixture
def baseline(rig: Rig) -> dict[str, Any]:
    pulled = rig.pull()
    assert pulled["pupils"] and pulled["marks"]
    return pulled


def _faults_of(app: VendorApp) -> set[FaultKind]:
    """The fault kinds this vendor's simulator serves (its module names them)."""
    import inspect

    source = inspect.getsource(inspect.getmodule(type(app)))  # type: ignore[arg-type]
    return set(GENERIC_FAULTS) | {k for k in FaultKind if f"FaultKind.{k.name}" in source}


# -- capabilities -----------------------------------------------------------------------------


def test_capabilities_are_the_vendor_facts(rig: Rig) -> None:
    facts = rig.case.facts()
    adapter = rig.adapter()
    assert adapter.vendor == facts.vendor == rig.case.vendor
    assert adapter.exposes_registers is facts.capabilities.registers
    assert adapter.exposes_social_worker is facts.capabilities.social_worker
    if facts.capabilities.amendments is not None:
        assert adapter.exposes_amendments is facts.capabilities.amendments
    else:
        assert isinstance(adapter.exposes_amendments, bool)
    calendar = adapter.calendar()
    if facts.capabilities.calendar:
        assert isinstance(calendar, Calendar) and calendar.terms
    else:
        assert calendar is None
    if not facts.capabilities.registers:
        assert adapter.registers(*WEEK).records == []


# -- paging -----------------------------------------------------------------------------------


@pytest.mark.parametrize("page_size", [1, 3, 1000])
def test_paging_gives_the_same_records_whatever_the_page_size(
    rig: Rig, baseline: dict[str, Any], page_size: int
) -> None:
    assert rig.pull(page_size)["pupils"] == baseline["pupils"]


def test_marks_page_the_same_with_small_pages(rig: Rig, baseline: dict[str, Any]) -> None:
    assert rig.pull(7)["marks"] == baseline["marks"]


def test_a_repull_changes_nothing(rig: Rig, baseline: dict[str, Any]) -> None:
    assert rig.pull() == baseline


# -- faults -----------------------------------------------------------------------------------


def test_every_fault_kind_is_covered(rig: Rig) -> None:
    # A simulator that grows a fault kind must have it classified in this suite.
    assert _faults_of(rig.app) <= RECOVERABLE | {
        FaultKind.EMPTY_PERMISSION,
        FaultKind.MALFORMED,
        FaultKind.STALE_CACHE,
    }


@pytest.mark.parametrize("kind", sorted(RECOVERABLE, key=str), ids=str)
def test_a_transient_fault_is_ridden_out(
    rig: Rig, baseline: dict[str, Any], kind: FaultKind
) -> None:
    if kind not in _faults_of(rig.app):
        pytest.skip(f"the {rig.case.vendor} simulator does not serve {kind}")
    rig.app.faults.arm(kind, times=1, delay=1.5, retry_after=0)
    faulted = rig.pull(page_size=3)  # several pages, so page- and token-faults can fire
    assert rig.app.faults.fired[kind.value] >= 1
    if kind is not FaultKind.CHANGING_PAGES:
        assert faulted == baseline
        return
    # The data really changed mid-listing. Nothing may be lost or doubled; a value served
    # before the change may be the old one (cursor paging cannot see it), and the next clean
    # pull catches up.
    now = rig.pull()
    assert _keys(faulted) == _keys(now)
    assert now == rig.pull()


def test_an_empty_answer_is_a_permission_gap_not_an_empty_school(rig: Rig) -> None:
    rig.app.faults.arm(FaultKind.EMPTY_PERMISSION, times=None)
    with pytest.raises(FatalApiError):
        rig.adapter().pupils()


def test_a_stale_answer_never_crashes_and_a_clean_pull_recovers(
    rig: Rig, baseline: dict[str, Any]
) -> None:
    if FaultKind.STALE_CACHE not in _faults_of(rig.app):
        pytest.skip("no stale-cache fault in this simulator")
    rig.app.faults.arm(FaultKind.STALE_CACHE, times=1)
    try:
        rig.pull()
    except RegisterwatchError:
        pass  # refusing a stale answer is allowed; crashing is not
    rig.app.faults.clear()
    assert rig.pull() == baseline


# -- quarantine -------------------------------------------------------------------------------


def test_quarantine_entries_have_one_shape_with_the_raw_record(rig: Rig) -> None:
    rig.app.faults.arm(FaultKind.MALFORMED, times=None)
    adapter = rig.adapter()
    entries: list[Quarantined] = []
    for pull in (adapter.pupils, lambda: adapter.marks(*WEEK)):
        entries.extend(pull().quarantined)
    assert entries, "a malformed feed must quarantine something"
    for entry in entries:
        assert entry.school == "contract"
        assert entry.resource and entry.record_ref and entry.reason
        assert entry.raw, f"{entry.resource} {entry.field}: the raw record is missing"


def test_marks_stay_inside_the_window_asked_for(rig: Rig) -> None:
    marks = rig.adapter().marks(*WEEK).records
    assert marks and all(WEEK[0] <= m.date <= WEEK[1] for m in marks)
