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
  in the MIS was undone), so it gets a new ``first_seen`` and loses any acknowledgement;
- a stored open finding that this scan did not produce is **resolved**, with ``resolved_at`` =
  this scan, but only when its school and its rule were actually checked: a ``--school`` scan
  leaves other schools alone, and the findings of a rule that failed stay open (a crashed rule
  says nothing about the register).

Acknowledgement: ``registerwatch findings ack`` records that someone has seen a finding, with a
note. An acknowledged finding is still reported, but no longer makes the scan fail
(``ScanResult.failing``), until it is resolved or its severity rises (a warning acknowledged the
day before its deadline becomes an unacknowledged error the day after).

Each scan is one row of the store's ``runs`` table (command "scan") with its counts. Log events
(``scan.finding_opened``, ``scan.finding_resolved``, ``scan.school_scanned``) carry school ids,
rule codes, fingerprints and counts, never pupil data. Only ``registerwatch.cli`` prints.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

from registerwatch.calendar import LONDON
from registerwatch.config import SchoolSettings, Settings
from registerwatch.errors import RegisterwatchError
from registerwatch.gcpause import collector_paused
from registerwatch.logging import get_logger
from registerwatch.scan.context_loader import load_context
from registerwatch.schema import SEVERITY_RANK, Finding, Pupil, Severity
from registerwatch.store import Store, StoredFinding
from registerwatch.validators import (
    Rule,
    RuleSettings,
    all_rules,
    scan_rules,
)

log = get_logger("registerwatch.scan")

__all__ = [
    "FindingStatus",
    "PupilRef",
    "ScanFinding",
    "ScanResult",
    "SchoolScan",
    "SchoolStatus",
    "finding_order",
    "pupil_ref",
    "pupil_refs",
    "run_scan",
    "today_in_london",
]

FindingStatus = Literal["new", "open", "resolved"]
SchoolStatus = Literal["scanned", "not_synced", "failed"]
STATUS_ORDER: dict[str, int] = {"new": 0, "open": 1, "resolved": 2}


@dataclass(frozen=True)
class PupilRef:
    """How a finding's pupil is shown: the MIS id always; the name only when asked for."""

    mis_id: str
    upn: str | None
    name: str | None


def _display_name(pupil: Pupil) -> str | None:
    forename = pupil.preferred_forename or pupil.legal_forename
    surname = pupil.preferred_surname or pupil.legal_surname
    name = " ".join(part for part in (forename, surname) if part)
    return name or None


def pupil_refs(pupils: Iterable[Pupil]) -> dict[str, PupilRef]:
    """Store pupil id -> PupilRef."""
    return {p.id: PupilRef(mis_id=p.mis_id, upn=p.upn, name=_display_name(p)) for p in pupils}


def pupil_ref(finding: Finding, refs: dict[str, PupilRef]) -> PupilRef | None:
    """The finding's pupil (None for a school-level finding). A pupil the store no longer
    holds is shown by the MIS id in its store id, '<school>:<mis id>'."""
    if finding.pupil_id is None:
        return None
    known = refs.get(finding.pupil_id)
    if known is not None:
        return known
    prefix = f"{finding.school_id}:"
    pid = finding.pupil_id
    return PupilRef(
        mis_id=pid[len(prefix) :] if pid.startswith(prefix) else pid, upn=None, name=None
    )


@dataclass(frozen=True)
class ScanFinding:
    """A finding with its place in the lifecycle, as the scan and ``findings list`` report it.

    ``finding`` carries ``first_seen``, ``last_seen`` and ``resolved_at``; ``pupil`` is None for
    a school-level finding (a register not taken for a group, an MIS capability notice).
    """

    finding: Finding
    status: FindingStatus
    acknowledged_at: datetime | None = None
    ack_note: str | None = None
    pupil: PupilRef | None = None

    @property
    def fingerprint(self) -> str:
        return self.finding.fingerprint or ""

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_at is not None

    def fails(self, fail_on: Severity | None) -> bool:
        """Unresolved, unacknowledged and at or above ``fail_on`` (None: never fails)."""
        if fail_on is None or self.status == "resolved" or self.acknowledged:
            return False
        return SEVERITY_RANK[self.finding.severity] >= SEVERITY_RANK[fail_on]


@dataclass
class SchoolScan:
    """One school's part of a scan. ``status``: scanned, not_synced (nothing in the store yet:
    skipped, its findings untouched) or failed (``error`` says why; findings untouched)."""

    school_id: str
    status: SchoolStatus
    error: str | None = None
    exposes_registers: bool | None = None
    exposes_amendments: bool | None = None
    failed_rules: dict[str, str] = field(default_factory=dict)  # code -> error
    counts: Counter[str] = field(default_factory=Counter)  # new / open / resolved
    # Where the time went: reading the store, running the rules, saving the findings.
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return sum(self.timings.values())

    @property
    def ok(self) -> bool:
        return self.status != "failed" and not self.failed_rules


@dataclass
class ScanResult:
    """Everything one scan found, by school; ``findings`` holds the school's current findings
    (new and open) and those this scan resolved, in a stable order (school, rule, pupil,
    session)."""

    as_of: date
    scanned_at: datetime
    schools: list[SchoolScan]
    findings: list[ScanFinding]
    run_id: int | None = None

    @property
    def ok(self) -> bool:
        """Every school scanned or skipped and every rule ran: the scan is complete."""
        return all(s.ok for s in self.schools)

    def failing(self, fail_on: Severity | None) -> list[ScanFinding]:
        return [f for f in self.findings if f.fails(fail_on)]

    def counts(self) -> dict[str, int]:
        by_status = Counter(f.status for f in self.findings)
        by_severity = Counter(
            str(f.finding.severity) for f in self.findings if f.status != "resolved"
        )
        schools = Counter(s.status for s in self.schools)
        return {
            "schools_scanned": schools["scanned"],
            "schools_not_synced": schools["not_synced"],
            "schools_failed": schools["failed"],
            "rules_failed": sum(len(s.failed_rules) for s in self.schools),
            "new": by_status["new"],
            "open": by_status["open"],
            "resolved": by_status["resolved"],
            **{str(sev): by_severity[str(sev)] for sev in Severity},
            "acknowledged": sum(
                1 for f in self.findings if f.status != "resolved" and f.acknowledged
            ),
        }


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
) -> ScanResult:
    """Scan every configured school (or only ``school_id``) and record the findings.

    ``as_of`` (default: today in Europe/London) is the scan day, "today, before registration":
    every deadline is judged against it. ``clock`` gives the instant recorded as first seen,
    last seen and resolved (default: now). ``rules`` defaults to every registered rule.
    ``rule_settings`` (default: each school's own, from ``[rules]``, ``[las."<code>"]`` and
    ``[schools.rules]``) overrides the settings of every school.
    Raises ConfigError for an unknown ``school_id``; a school whose data cannot be read
    (a calendar without terms, say) is reported as failed and the others go on.
    """
    read_clock = clock or (lambda: datetime.now(UTC))
    scanned_at = read_clock().astimezone(UTC)
    day = as_of or today_in_london(read_clock)
    schools = [settings.school(school_id)] if school_id is not None else list(settings.schools)
    checked = list(all_rules() if rules is None else rules)
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
        as_of=day, scanned_at=scanned_at, schools=results, findings=findings, run_id=run_id
    )
    store.finish_run(
        run_id,
        "ok" if result.ok else "failed",
        {"as_of": day.isoformat(), **result.counts()},
        at=read_clock().astimezone(UTC),
    )
    return result


def _scan_school(
    store: Store,
    school: SchoolSettings,
    as_of: date,
    now: datetime,
    rules: Sequence[Rule],
    rule_settings: RuleSettings,
) -> tuple[SchoolScan, list[ScanFinding]]:
    clock = _Stopwatch()
    if store.school(school.id) is None:
        # Never synced: nothing to judge, and scanning would open "could not be checked"
        # notices that only say the store is empty.
        log.info("scan.school_skipped", school_id=school.id, reason="not_synced")
        return SchoolScan(school.id, "not_synced"), []
    try:
        # One read transaction: the records, the ledger and the stored findings are one
        # snapshot even if a sync commits meanwhile.
        with store.snapshot() as conn:
            ctx = load_context(store, school, as_of, settings=rule_settings, conn=conn)
            stored = store.load_findings(school.id, conn=conn)
        clock.lap("read")
    except RegisterwatchError as exc:
        log.warning(
            "scan.school_failed", school_id=school.id, error_type=type(exc).__name__, error=str(exc)
        )
        return SchoolScan(school.id, "failed", error=f"school {school.id!r}: {exc}"), []
    outcome = scan_rules(ctx, rules)
    clock.lap("rules")
    refs = pupil_refs(ctx.pupils)
    findings = _reconcile(
        store,
        school.id,
        outcome.findings,
        stored,
        {rule.code for rule in rules},
        set(outcome.failed),
        now,
        refs,
    )
    clock.lap("save")
    result = SchoolScan(
        school.id,
        "scanned",
        exposes_registers=ctx.exposes_registers,
        exposes_amendments=ctx.exposes_amendments,
        failed_rules=dict(outcome.failed),
        counts=Counter(f.status for f in findings),
        timings=clock.laps,
    )
    log.info(
        "scan.school_scanned",
        school_id=school.id,
        as_of=as_of.isoformat(),
        new=result.counts["new"],
        open=result.counts["open"],
        resolved=result.counts["resolved"],
        rules_failed=sorted(outcome.failed),
        marks=len(ctx.marks),
        **{f"seconds_{k}": round(v, 3) for k, v in result.timings.items()},
    )
    return result, findings


class _Stopwatch:
    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = now - self._last
        self._last = now


def _reconcile(
    store: Store,
    school_id: str,
    current: Sequence[Finding],
    stored: dict[str, StoredFinding],
    ran: set[str],
    failed: set[str],
    now: datetime,
    refs: dict[str, PupilRef],
) -> list[ScanFinding]:
    """Save this scan's findings against the stored ones; returns them with their status.

    ``ran``: the rules this scan ran; ``failed``: those of them that raised. A stored open
    finding of a rule that ran cleanly and did not find it again is resolved; one of a failed
    rule stays open and is reported as it was; one of a rule not run is left alone.
    """
    out: list[ScanFinding] = []
    to_save: list[Finding] = []
    reopened: list[str] = []
    lapsed: list[str] = []
    # Logged once the findings are committed, so the log never tells of a change that was
    # rolled back.
    events: list[tuple[str, dict[str, Any]]] = []

    seen: set[str] = set()
    for finding in current:
        fp = finding.fingerprint or ""
        seen.add(fp)
        before = stored.get(fp)
        ack_at, note = (before.acknowledged_at, before.ack_note) if before else (None, None)
        if before is not None and before.status == "open":
            status: FindingStatus = "open"
            first_seen = before.finding.first_seen or now
            if ack_at is not None and (
                SEVERITY_RANK[finding.severity] > SEVERITY_RANK[before.finding.severity]
            ):
                lapsed.append(fp)
                ack_at, note = None, None
                events.append(
                    (
                        "scan.acknowledgement_lapsed",
                        {
                            "rule": finding.rule,
                            "fingerprint": fp,
                            "severity": str(finding.severity),
                        },
                    )
                )
        else:
            status, first_seen = "new", now
            if before is not None:  # resolved before, back again
                reopened.append(fp)
                ack_at, note = None, None
            events.append(
                (
                    "scan.finding_opened",
                    {
                        "rule": finding.rule,
                        "severity": str(finding.severity),
                        "fingerprint": fp,
                        "reopened": before is not None,
                    },
                )
            )
        saved = finding.model_copy(
            update={"first_seen": first_seen, "last_seen": now, "resolved_at": None}
        )
        to_save.append(saved)
        out.append(ScanFinding(saved, status, ack_at, note, pupil_ref(saved, refs)))

    for fp, before in stored.items():
        rule = before.finding.rule
        if fp in seen or before.status != "open" or rule not in ran:
            continue
        if rule in failed:
            out.append(
                ScanFinding(
                    before.finding,
                    "open",
                    before.acknowledged_at,
                    before.ack_note,
                    pupil_ref(before.finding, refs),
                )
            )
            continue
        # The stored last_seen stays: it is the last scan that still found the breach.
        saved = before.finding.model_copy(update={"resolved_at": now})
        to_save.append(saved)
        out.append(
            ScanFinding(
                saved, "resolved", before.acknowledged_at, before.ack_note, pupil_ref(saved, refs)
            )
        )
        events.append(("scan.finding_resolved", {"rule": rule, "fingerprint": fp}))

    with store.transaction() as tx:
        store.save_findings(to_save, at=now, conn=tx)
        if reopened:
            store.reopen_findings(reopened, at=now, conn=tx)
        if lapsed:
            store.clear_acknowledgements(lapsed, conn=tx)
    for event, fields in events:
        log.info(event, school_id=school_id, **fields)
    out.sort(key=finding_order)
    return out


def finding_order(item: ScanFinding) -> tuple[Any, ...]:
    """The stable order of findings in machine output: school, rule, pupil, first session."""
    f = item.finding
    first = f.first_session
    return (
        f.school_id,
        f.rule,
        item.pupil.mis_id if item.pupil else "",
        first.date if first else date.min,
        str(first.session) if first else "",
        item.fingerprint,
    )
