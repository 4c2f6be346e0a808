"""The nightly scan: run the compliance rules over the store and keep each finding's lifecycle.

    result = run_scan(store, settings, as_of=date(2025, 11, 14))
    result.failing(Severity.ERROR)   # what makes `registerwatch scan` exit 1

For each configured school (or only ``school_id``) that has been synced, the scan builds a
:class:`~registerwatch.validators.ScanContext` from the store (``scan_store.load_context``), runs
every rule with :func:`~registerwatch.validators.scan_rules` and reconciles the findings with the
ones stored, by fingerprint (stable across scans: see ``validators.base.fingerprint``):

- a finding not stored before is **new** (``first_seen`` = this scan);
- a finding stored open is **open** again: ``first_seen`` is kept, ``last_seen``, severity,
  message, due date and last session are updated (a run that grows is the same finding);
- a finding stored resolved and seen again is **new** again: the breach came back (say, a fix
  in the MIS was undone), so it gets a new ``first_seen``; its acknowledgement stays with its
  fingerprint (the data manager's note is not lost when a finding resolves and comes back);
- a stored open finding that this scan did not produce is **resolved**, with ``resolved_at`` =
  this scan, but only when its school and its rule were actually checked: a ``--school`` scan
  leaves other schools alone, and the findings of a rule that failed stay open (a crashed rule
  says nothing about the register).

Acknowledgement: ``registerwatch findings ack`` records that someone has seen a finding, with a
note. An acknowledged finding is still reported, but no longer makes the scan fail
(``ScanResult.failing``), until it is resolved or its severity rises (a warning acknowledged the
day before its deadline becomes an unacknowledged error the day after).

Nightly scans follow the day's changes (``scan.incremental``): the rules get a delta of what
changed since the school's last scan; the register rules re-judge only its sessions (the scan
reads only their registers and marked pupils) and their stored open findings outside it are
carried forward; rules with a per-pupil fold state fold one night into the states the last scan
kept (``rule_state``). Any doubt makes the delta None and every rule runs in full.

Freshness (``scan.freshness``): each school is judged only up to the last school day sync
pulled cleanly (``registers_complete_to``), and a school whose registers are behind gets SYN001.

History: every status change is appended to the finding's history (``findings history``) with
its cause. A scan whose ``as_of`` is before the latest recorded scan's is **read-only** (it
reports what it finds and changes no stored status) unless ``record=True``: a backdated rerun
must not resolve findings that only appear later, nor rewrite what a later scan recorded.

A LAR finding resolved by a return made after its due date is resolved **late**
(``StoredFinding.resolution``; ``scan.returns_state``).

Each scan is one row of the store's ``runs`` table (command "scan") with its counts. Log events
(``scan.finding_opened``, ``scan.finding_resolved``, ``scan.school_scanned``) carry school ids,
rule codes, fingerprints and counts, never pupil data. Only ``registerwatch.cli`` prints.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from registerwatch.calendar import LONDON, calendar_for
from registerwatch.config import SchoolSettings, Settings
from registerwatch.errors import RegisterwatchError
from registerwatch.gcpause import collector_paused
from registerwatch.logging import get_logger
from registerwatch.scan.context_loader import load_context, marks_read, scan_basis
from registerwatch.scan.freshness import SYN001, Freshness, freshness_of, registers_not_synced
from registerwatch.scan.incremental import (
    carried_findings,
    kept_states,
    needs_registers_in_full,
    read_delta,
)
from registerwatch.scan.lifecycle import reconcile
from registerwatch.scan.results import (
    STATUS_ORDER,
    FindingStatus,
    PupilRef,
    ScanFinding,
    ScanResult,
    SchoolScan,
    SchoolStatus,
    finding_order,
    pupil_ref,
    pupil_refs,
)
from registerwatch.scan.returns_state import late_resolutions, return_states
from registerwatch.schema import Session
from registerwatch.store import SCHOOL_ROW, Connection, ScanState, Store
from registerwatch.validators import (
    Rule,
    RuleSettings,
    all_rules,
    scan_rules,
)
from registerwatch.validators.delta import ScanDelta
from registerwatch.validators.lean_marks import LazyMarks

log = get_logger("registerwatch.scan")

__all__ = [
    "STATUS_ORDER",
    "FindingStatus",
    "PupilRef",
    "ScanFinding",
    "ScanResult",
    "SchoolScan",
    "SchoolStatus",
    "finding_order",
    "latest_recorded_as_of",
    "pupil_ref",
    "pupil_refs",
    "run_scan",
    "today_in_london",
]


def today_in_london(clock: Callable[[], datetime] | None = None) -> date:
    """Today in Europe/London: the default scan date (schools keep London time)."""
    now = clock() if clock is not None else datetime.now(UTC)
    return now.astimezone(LONDON).date()


def run_scan(
    store: Store,
    settings: Settings,
    *,
    as_of: date | None = None,
    school_id: str | None = None,
    rules: Sequence[Rule] | None = None,
    rule_settings: RuleSettings | None = None,
    clock: Callable[[], datetime] | None = None,
    record: bool = False,
    full: bool = False,
) -> ScanResult:
    """Scan every configured school (or only ``school_id``) and record the findings.

    ``as_of`` (default: today in Europe/London) is the scan day, "today, before registration":
    every deadline is judged against it. ``clock`` gives the instant recorded as first seen,
    last seen and resolved (default: now). ``rules`` defaults to every registered rule.
    ``rule_settings`` (default: each school's own, from ``[rules]``, ``[las."<code>"]`` and
    ``[schools.rules]``) overrides the settings of every school.
    ``as_of`` before the latest recorded scan's makes the scan read-only unless ``record``.
    Each school's marks are read incrementally (the summary its last scan kept, plus what
    changed since) unless ``full`` or one of the cases in ``incremental_state`` says otherwise.
    Raises ConfigError for an unknown ``school_id``; a school whose data cannot be read
    (a calendar without terms, say) is reported as failed and the others go on.
    """
    read_clock = clock or (lambda: datetime.now(UTC))
    scanned_at = read_clock().astimezone(UTC)
    day = as_of or today_in_london(read_clock)
    schools = [settings.school(school_id)] if school_id is not None else list(settings.schools)
    checked = list(all_rules() if rules is None else rules)
    latest = latest_recorded_as_of(store)
    read_only = not record and latest is not None and day < latest
    run_id = store.start_run("scan", at=scanned_at)
    results: list[SchoolScan] = []
    findings: list[ScanFinding] = []
    try:
        for school in schools:
            # One pause for the whole school (read, rules, save): paused phase by phase, the
            # collector ran a full pass over the year's ~1.7M objects in between (~2 s).
            with collector_paused():
                school_result, school_findings = _scan_school(
                    store,
                    school,
                    day,
                    scanned_at,
                    checked,
                    rule_settings or settings.rule_settings(school.id),
                    read_only=read_only,
                    full=full,
                )
            results.append(school_result)
            findings.extend(school_findings)
    except BaseException:
        # Record the crash if the store still answers; the original error is what matters.
        with suppress(Exception):
            store.finish_run(
                run_id, "crashed", {"schools_done": len(results)}, at=read_clock().astimezone(UTC)
            )
        raise
    result = ScanResult(
        as_of=day,
        scanned_at=scanned_at,
        schools=results,
        findings=findings,
        run_id=run_id,
        read_only=read_only,
    )
    store.finish_run(
        run_id,
        "ok" if result.ok else "failed",
        {"as_of": day.isoformat(), "read_only": read_only, **result.counts()},
        at=read_clock().astimezone(UTC),
    )
    return result


def latest_recorded_as_of(store: Store) -> date | None:
    """The ``as_of`` of the latest scan that recorded its findings (None before any)."""
    days: list[date] = []
    for run in store.runs(command="scan", limit=200):
        as_of = run.counts.get("as_of") if run.counts else None
        if as_of and not run.counts.get("read_only") and run.outcome in ("ok", "failed"):
            with suppress(ValueError):
                days.append(date.fromisoformat(as_of))
    return max(days, default=None)


def _scan_school(
    store: Store,
    school: SchoolSettings,
    as_of: date,
    now: datetime,
    rules: Sequence[Rule],
    rule_settings: RuleSettings,
    *,
    read_only: bool = False,
    full: bool = False,
) -> tuple[SchoolScan, list[ScanFinding]]:
    clock = _Stopwatch()
    basis = scan_basis(school, rules, rule_settings)
    if store.school(school.id) is None:
        # Never synced: nothing to judge, and scanning would open "could not be checked"
        # notices that only say the store is empty.
        log.info("scan.school_skipped", school_id=school.id, reason="not_synced")
        status = store.sync_status(school.id)
        return SchoolScan(
            school.id,
            "not_synced",
            last_sync_at=status.last_attempt_at if status else None,
            last_sync_outcome=status.last_outcome if status else None,
            last_sync_error=status.last_error if status else None,
        ), []
    try:
        # One read transaction: the records, the ledger and the stored findings are one
        # snapshot even if a sync commits meanwhile.
        with store.snapshot() as conn:
            fresh = freshness_of(store, school.id, calendar_for(school), as_of, conn=conn)
            state = None if full else incremental_state(store, school.id, as_of, basis, conn=conn)
            marks = marks_read(store, school.id, state, conn=conn)
            digested = store.pupils_digested(school.id, details=False, conn=conn)
            pupils = [pupil for pupil, _ in digested]
            # Rules run as of the day after the registers are complete to: nothing they find
            # rests on days the store has not seen (scan.freshness).
            changes = read_delta(
                store,
                school.id,
                calendar_for(school),
                fresh.judged_to,
                digested,
                store.capabilities(school.id, conn=conn),
                allowed=state is not None,
                marks_read=marks.summary,
                conn=conn,
            )
            delta = changes.delta
            partial = delta is not None and not needs_registers_in_full(
                rules, delta, changes.states
            )
            dates = {day for day, _ in delta.sessions} if delta is not None and partial else None
            ctx = load_context(
                store,
                school,
                fresh.judged_to,
                settings=rule_settings,
                conn=conn,
                marks=marks,
                pupils=pupils,
                registers=None
                if dates is None
                else store.registers_on(school.id, dates, conn=conn),
                session_pupils=None
                if dates is None or delta is None
                else _session_pupils(marks.rows, delta, dates),
            )
            stored = store.load_findings(school.id, conn=conn)
            outbox = store.outbox_items(school_id=school.id, conn=conn)
        clock.lap("read")
    except RegisterwatchError as exc:
        log.warning(
            "scan.school_failed", school_id=school.id, error_type=type(exc).__name__, error=str(exc)
        )
        return SchoolScan(school.id, "failed", error=f"school {school.id!r}: {exc}"), []
    outcome = scan_rules(ctx, rules, delta=delta, states=changes.states)
    clock.lap("rules")
    # What the rules that re-judged only the delta did not cover stands as stored.
    current = [*outcome.findings, *carried_findings(stored, outcome.runs, outcome.failed)]
    # Only the pupils a finding names (new or stored) are shown, not the whole roll.
    named = {f.pupil_id for f in current} | {s.finding.pupil_id for s in stored.values()}
    refs = pupil_refs(p for p in ctx.pupils if p.id in named)
    ran = {rule.code for rule in rules}
    if fresh.status is not None:
        ran.add(SYN001.code)
        syn = registers_not_synced(fresh)
        if syn is not None:
            current.append(syn)
    findings = reconcile(
        store,
        school.id,
        current,
        stored,
        ran,
        set(outcome.failed),
        now,
        refs,
        late=late_resolutions(
            (s.finding for s in stored.values() if s.status == "open"), ctx.notifications
        ),
        read_only=read_only,
    )
    if not read_only and not store.read_only:
        # Kept after the findings: a scan that crashed before leaves the summary as it was,
        # and the next scan rereads what changed since then.
        with store.transaction() as tx:
            store.save_summary(school.id, marks.summary, as_of=as_of, basis=basis, at=now, conn=tx)
            kept = kept_states(rules, outcome.runs, outcome.failed, ctx.as_of)
            store.save_rule_states(
                school.id, {**kept, SCHOOL_ROW: changes.school_row}, at=now, conn=tx
            )
    states = return_states((f.finding for f in findings), outbox)
    findings = [
        replace(f, return_state=states.get(f.fingerprint)) if f.fingerprint in states else f
        for f in findings
    ]
    clock.lap("save")
    result = SchoolScan(
        school.id,
        "scanned",
        exposes_registers=ctx.exposes_registers,
        exposes_amendments=ctx.exposes_amendments,
        failed_rules=dict(outcome.failed),
        counts=Counter(f.status for f in findings)
        + Counter("resolved_late" for f in findings if f.late),
        timings=clock.laps,
        incremental=marks.incremental,
        delta_rules=tuple(sorted(code for code, run in outcome.runs.items() if run.covers)),
        **_freshness_fields(fresh),
    )
    log.info(
        "scan.school_scanned",
        school_id=school.id,
        as_of=as_of.isoformat(),
        new=result.counts["new"],
        open=result.counts["open"],
        resolved=result.counts["resolved"],
        rules_failed=sorted(outcome.failed),
        marks=ctx.mark_count,
        incremental=marks.incremental,
        delta_rules=list(result.delta_rules),
        delta_sessions=len(delta.sessions) if delta is not None else None,
        registers_read=len(ctx.registers),
        **{f"seconds_{k}": round(v, 3) for k, v in result.timings.items()},
    )
    return result, findings


def incremental_state(
    store: Store, school_id: str, as_of: date, basis: str, *, conn: Connection | None = None
) -> ScanState | None:
    """The state to scan ``school_id`` incrementally from, or None for a full read: the first
    scan of a school (no state), a scan as of a day before the last one's (``--as-of`` in the
    past), or a change of the rules, their settings or the school's configuration since
    (``scan_basis``)."""
    state = store.scan_state(school_id, conn=conn)
    if state is None or state.basis != basis or as_of < state.as_of:
        return None
    return state


def _session_pupils(
    marks: LazyMarks, delta: ScanDelta, dates: set[date]
) -> Mapping[tuple[date, Session], frozenset[str]]:
    """The marked pupils of every session the delta re-judges and of both sessions of their
    days (none marked: an empty set), so the register rules never index the year's marks.
    Found in the marks as read (the summary brought up to date), not reread from the store."""
    sessions = set(delta.sessions) | {(day, session) for day in dates for session in Session}
    return marks.marked_on(sessions)


def _freshness_fields(fresh: Freshness) -> dict[str, Any]:
    status = fresh.status
    return {
        "registers_complete_to": fresh.registers_complete_to,
        "judged_to": fresh.judged_to,
        "stale": fresh.stale,
        "last_sync_at": status.last_attempt_at if status else None,
        "last_sync_outcome": status.last_outcome if status else None,
        "last_sync_error": status.last_error if status else None,
    }


class _Stopwatch:
    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = now - self._last
        self._last = now
