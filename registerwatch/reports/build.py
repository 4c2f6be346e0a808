"""Build the report's data from the store: open findings, per-rule counts, weekly rates, N ages.

Everything comes from the store (findings as the scan saved them, marks as sync stored them) and
the school calendar, so a report can be made whenever there is a store, and says the same thing
however often it is made. There is no hidden "now": the report day (``as_of``) and the time
stamped on the report (``generated_at``) are passed in.

``as_of`` has the scan's meaning: "today, before registration". Registers are complete up to the
day before, so marks dated ``as_of`` or later are left out of the figures, and a deadline ``due``
has passed when ``as_of > due`` (on ``as_of == due`` the school still has the day).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from registerwatch.calendar import SchoolCalendar
from registerwatch.codes import SessionStatistics
from registerwatch.config import SchoolSettings, Settings
from registerwatch.errors import CalendarError, StoreError
from registerwatch.reports.deadlines import due_buckets, due_note
from registerwatch.reports.figures import register_figures
from registerwatch.reports.model import (
    SEVERITY_ORDER,
    STATUS_NEW,
    STATUS_OPEN,
    FindingRow,
    NAgeBucket,
    ReportData,
    RuleSummary,
    SchoolReport,
    SchoolTerm,
    WeekRate,
)
from registerwatch.scan.freshness import SYN001
from registerwatch.scan.returns_state import ReturnState, return_states
from registerwatch.schema import SESSION_ORDER, Calendar, Pupil, Severity
from registerwatch.store import Store, StoredFinding
from registerwatch.validators import Rule, RuleStatus, all_rules

_SEVERITY_RANK = {severity: rank for rank, severity in enumerate(SEVERITY_ORDER)}


@dataclass(frozen=True)
class _SchoolSource:
    school_id: str
    name: str
    urn: str | None
    calendar: Calendar | None
    include_names: bool = False  # the school's [schools.report] include_names


SchoolsArgument = Settings | Iterable[str | SchoolSettings] | str


def build_report_data(
    store: Store,
    settings_or_school_ids: SchoolsArgument,
    *,
    as_of: date,
    generated_at: datetime,
    include_names: bool = False,
) -> ReportData:
    """The report for the configured schools (``Settings``), or for schools named by id (their
    name and calendar then come from the store, as the last sync wrote them).

    ``include_names`` adds pupils' names beside their MIS ids at every school; off by default,
    so a report that is forwarded or printed carries no more personal data than it needs. A
    school whose config sets ``[schools.report] include_names = true`` is named either way.

    Raises StoreError when a school named by id is not in the store.
    """
    if generated_at.tzinfo is None or generated_at.utcoffset() is None:
        raise ValueError("generated_at must be timezone-aware")
    rules = {rule.code: rule for rule in all_rules(include_removed=True)}
    # The scan records one run per invocation in the store (command "scan"): the reader should
    # know how fresh the findings are, and whether the latest scan finished cleanly.
    last_scan = next(iter(store.runs(command="scan", limit=1)), None)
    schools = tuple(
        _school_report(
            store,
            source,
            rules,
            as_of=as_of,
            include_names=include_names or source.include_names,
            scanned=last_scan is not None,
        )
        for source in _sources(store, settings_or_school_ids)
    )
    return ReportData(
        as_of=as_of,
        generated_at=generated_at,
        schools=schools,
        include_names=any(s.include_names for s in schools),
        last_scan_at=last_scan.started_at if last_scan else None,
        last_scan_outcome=last_scan.outcome if last_scan else None,
    )


def _sources(store: Store, given: SchoolsArgument) -> list[_SchoolSource]:
    if isinstance(given, Settings):
        items: Iterable[str | SchoolSettings] = given.schools
    elif isinstance(given, str):  # one id, not an iterable of one-letter ids
        items = [given]
    else:
        items = given
    sources: list[_SchoolSource] = []
    for item in items:
        if isinstance(item, SchoolSettings):
            sources.append(
                _SchoolSource(
                    item.id,
                    item.name,
                    item.urn,
                    item.to_calendar(),
                    include_names=item.report.include_names,
                )
            )
            continue
        school = store.school(item)
        if school is None:
            raise StoreError(
                f"school {item!r} is not in the store {store.display_url}: "
                f"sync it first (registerwatch sync --school {item})"
            )
        sources.append(_SchoolSource(school.id, school.name, school.urn, store.calendar(item)))
    return sources


def _school_report(
    store: Store,
    source: _SchoolSource,
    rules: Mapping[str, Rule],
    *,
    as_of: date,
    include_names: bool,
    scanned: bool,
) -> SchoolReport:
    notes: list[str] = []
    stored = store.load_findings(source.school_id)
    never_synced = store.school(source.school_id) is None
    sync = store.sync_status(source.school_id)
    if never_synced:
        notes.append(
            "This school has never been synced: there is nothing to judge and no counts to "
            "show. Run `registerwatch sync`."
            + (f" The last attempt failed: {sync.last_error}" if sync and sync.last_error else "")
        )
    states = return_states(
        (s.finding for s in stored.values()), store.outbox_items(school_id=source.school_id)
    )
    updated_at = _latest_scan(stored.values())
    unresolved = [s for s in stored.values() if s.status != "resolved"]
    pupils = {p.id: p for p in store.pupils(source.school_id)} if unresolved else {}
    rows = sorted(
        (
            _finding_row(
                s,
                rules,
                pupils,
                as_of=as_of,
                latest_scan=updated_at,
                include_names=include_names,
                state=states.get(s.finding.fingerprint or ""),
            )
            for s in unresolved
        ),
        key=_finding_sort_key,
    )
    if not stored and not scanned:
        # Zero findings would otherwise read as a clean register.
        notes.append(
            "No scan has been run on this store yet, so there are no findings to "
            "show: run `registerwatch scan`."
        )

    term: SchoolTerm | None = None
    weeks: tuple[WeekRate, ...] = ()
    term_statistics: SessionStatistics | None = None
    n_ages: tuple[NAgeBucket, ...] = ()
    calendar = _school_calendar(source, notes)
    if calendar is not None:
        term, weeks, term_statistics, n_ages = register_figures(
            store, source.school_id, calendar, as_of
        )
        if term is None:
            notes.append(
                f"No school days before {as_of.isoformat()} in the configured terms: "
                "there are no weekly figures yet."
            )
        elif not any(w.statistics.possible for w in weeks):
            notes.append(
                f"No registers are stored for the {term.name.lower()} yet: sync the "
                "school (`registerwatch sync`)."
            )

    return SchoolReport(
        school_id=source.school_id,
        name=source.name,
        urn=source.urn,
        term=term,
        weeks=weeks,
        term_statistics=term_statistics,
        rules=_rule_summaries(rows, rules),
        findings=tuple(rows),
        n_ages=n_ages,
        findings_updated_at=updated_at,
        notes=tuple(notes),
        registers_complete_to=sync.registers_complete_to if sync else None,
        never_synced=never_synced,
        stale=any(s.finding.rule == "SYN001" for s in unresolved),
        resolved_late=sum(1 for s in stored.values() if s.resolution == "late"),
        due_buckets=due_buckets(rows, as_of),
        include_names=include_names,
    )


def _school_calendar(source: _SchoolSource, notes: list[str]) -> SchoolCalendar | None:
    if source.calendar is None:
        notes.append(
            "No calendar is stored for this school, so weekly attendance and the ages "
            "of N codes (both counted in school days) cannot be shown: sync it, or "
            "report from the config file."
        )
        return None
    try:
        return SchoolCalendar(source.calendar)
    except CalendarError as exc:
        notes.append(
            f"The school calendar cannot be used ({exc}): weekly attendance and N "
            "ages are not shown."
        )
        return None


# -- findings ------------------------------------------------------------------------------


def _latest_scan(stored: Iterable[StoredFinding]) -> datetime | None:
    """When the latest scan result was saved: the newest last_seen or resolved_at."""
    instants = [
        t for s in stored for t in (s.finding.last_seen, s.finding.resolved_at) if t is not None
    ]
    return max(instants, default=None)


def _status(stored: StoredFinding, latest_scan: datetime | None) -> str:
    """'new' when the latest scan is the first to see the finding, else 'open'.

    The store keeps 'open' for both (its statuses are open / resolved); a finding whose
    first_seen is the latest scan's time was opened by that scan. A store that records 'new'
    itself is believed.
    """
    if stored.status == STATUS_NEW:
        return STATUS_NEW
    first_seen = stored.finding.first_seen
    if first_seen is not None and latest_scan is not None and first_seen >= latest_scan:
        return STATUS_NEW
    return STATUS_OPEN


def _mis_id(pupil_id: str, school_id: str, pupils: Mapping[str, Pupil]) -> str:
    pupil = pupils.get(pupil_id)
    if pupil is not None:
        return pupil.mis_id
    # Store ids are '<school_id>:<mis_id>' (schema.Pupil.id); a pupil since removed from the
    # store is still recognisable by the MIS id in its store id.
    prefix = f"{school_id}:"
    return pupil_id.removeprefix(prefix)


def _pupil_name(pupil: Pupil | None) -> str | None:
    if pupil is None:
        return None
    parts = [
        pupil.preferred_forename or pupil.legal_forename,
        pupil.preferred_surname or pupil.legal_surname,
    ]
    return " ".join(p for p in parts if p) or None


def _finding_row(
    stored: StoredFinding,
    rules: Mapping[str, Rule],
    pupils: Mapping[str, Pupil],
    *,
    as_of: date,
    latest_scan: datetime | None,
    include_names: bool,
    state: ReturnState | None = None,
) -> FindingRow:
    f = stored.finding
    rule = rules.get(f.rule) or (SYN001 if f.rule == SYN001.code else None)
    school_id = f.school_id
    pupil = _mis_id(f.pupil_id, school_id, pupils) if f.pupil_id else None
    name = _pupil_name(pupils.get(f.pupil_id)) if include_names and f.pupil_id else None
    return FindingRow(
        fingerprint=f.fingerprint or "",
        school_id=school_id,
        rule=f.rule,
        rule_name=rule.name if rule else "",
        severity=Severity(f.severity),
        pupil=pupil,
        pupil_name=name,
        first_session=f.first_session,
        last_session=f.last_session,
        due=f.due,
        overdue=f.due is not None and as_of > f.due,
        due_today=f.due is not None and as_of == f.due,
        message=f.message,
        citation=plain_citation(rule.citation) if rule else "",
        fix_hint=_fix_hint(rule, state),
        status=_status(stored, latest_scan),
        first_seen=f.first_seen,
        acknowledged_at=stored.acknowledged_at,
        ack_note=stored.ack_note,
        upn=pupils[f.pupil_id].upn if f.pupil_id is not None and f.pupil_id in pupils else None,
        return_chip=state.chip() if state else None,
        return_state=state.to_dict() if state else None,
        due_note=due_note(Severity(f.severity), f.due),
    )


def _fix_hint(rule: Rule | None, state: ReturnState | None) -> str:
    # A return registerwatch has queued or sent must not be made again by hand.
    if state is not None and state.state == "queued":
        return "The return will be sent by registerwatch (queued in the outbox): do not make it by hand."
    if state is not None and state.state in ("sent", "acknowledged"):
        return "The return was sent by registerwatch; this closes at the next scan."
    return rule.fix_hint if rule else ""


def _finding_sort_key(row: FindingRow) -> tuple[object, ...]:
    # Within a severity: overdue first, then the nearest deadline, then rule, pupil and session;
    # the fingerprint last, so the order never depends on the store's row order.
    first = row.first_session
    return (
        _SEVERITY_RANK[row.severity],
        not row.overdue,
        row.due or date.max,
        row.rule,
        row.pupil or "",
        first.date if first else date.min,
        SESSION_ORDER[first.session] if first else -1,
        row.fingerprint,
    )


def _rule_summaries(
    rows: Sequence[FindingRow], rules: Mapping[str, Rule]
) -> tuple[RuleSummary, ...]:
    """Every rule in registry order with its open findings counted; a rule code in the store
    that the registry does not know (removed since) is listed after them."""
    by_rule: dict[str, list[FindingRow]] = defaultdict(list)
    for row in rows:
        by_rule[row.rule].append(row)
    listed = [r for r in rules.values() if r.status is not RuleStatus.REMOVED or r.code in by_rule]
    codes = [r.code for r in listed] + sorted(set(by_rule) - {r.code for r in listed})
    out: list[RuleSummary] = []
    for code in codes:
        rule = rules.get(code)
        found = by_rule.get(code, [])
        counts = Counter(row.severity for row in found)
        out.append(
            RuleSummary(
                code=code,
                name=rule.name if rule else "",
                summary=rule.docs().summary if rule else "(rule no longer registered)",
                severity=rule.severity if rule else found[0].severity,
                citation=plain_citation(rule.citation) if rule else "",
                fix_hint=rule.fix_hint if rule else "",
                errors=counts[Severity.ERROR],
                warnings=counts[Severity.WARNING],
                info=counts[Severity.INFO],
                new=sum(1 for r in found if r.status == STATUS_NEW),
                overdue=sum(1 for r in found if r.overdue),
            )
        )
    return tuple(out)


# How well each fact is evidenced ("(SECONDARY)", "(items INFERRED)") is for the developers who
# keep the rules (docs/rules/ keeps it); a data manager reads the citation itself.
_EVIDENCE_TAG = re.compile(r"\s*\([^()]*\b(?:VERIFIED|SECONDARY|INFERRED)\b[^()]*\)")


def plain_citation(citation: str) -> str:
    """The legal citation without its evidence tags."""
    return _EVIDENCE_TAG.sub("", citation).strip()
