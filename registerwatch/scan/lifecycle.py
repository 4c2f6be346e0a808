"""A finding's lifecycle across scans: new, open, resolved (or resolved late), reopened, and
the history of each change (``Store.add_finding_events``). See ``pipeline`` for the rules."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from registerwatch.logging import get_logger
from registerwatch.scan.results import (
    FindingStatus,
    PupilRef,
    ScanFinding,
    finding_order,
    pupil_ref,
)
from registerwatch.schema import SEVERITY_RANK, Finding
from registerwatch.store import FindingEvent, Store, StoredFinding

log = get_logger("registerwatch.scan")

__all__ = ["reconcile"]


def reconcile(
    store: Store,
    school_id: str,
    current: Sequence[Finding],
    stored: dict[str, StoredFinding],
    ran: set[str],
    failed: set[str],
    now: datetime,
    refs: dict[str, PupilRef],
    *,
    late: set[str] | None = None,
    read_only: bool = False,
) -> list[ScanFinding]:
    """Save this scan's findings against the stored ones; returns them with their status.

    ``ran``: the rules this scan ran; ``failed``: those of them that raised. A stored open
    finding of a rule that ran cleanly and did not find it again is resolved (``late`` holds
    those resolved by a late return); one of a failed rule stays open and is reported as it
    was; one of a rule not run is left alone. ``read_only``: nothing is saved.
    """
    late = late or set()
    out: list[ScanFinding] = []
    to_save: list[Finding] = []
    reopened: list[str] = []
    lapsed: list[str] = []
    history: list[FindingEvent] = []
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
                history.append(FindingEvent(fp, now, "acknowledgement_lapsed", "scan"))
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
            if before is not None:  # resolved before, back again; the acknowledgement stays
                reopened.append(fp)
            history.append(
                FindingEvent(
                    fp, now, "reopened" if before is not None else "opened", "scan", finding.message
                )
            )
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

    resolved_late: list[str] = []
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
        resolution = "late" if fp in late else None
        if resolution:
            resolved_late.append(fp)
        history.append(FindingEvent(fp, now, "resolved_late" if resolution else "resolved", "scan"))
        out.append(
            ScanFinding(
                saved,
                "resolved",
                before.acknowledged_at,
                before.ack_note,
                pupil_ref(saved, refs),
                resolution=resolution,
            )
        )
        events.append(
            ("scan.finding_resolved", {"rule": rule, "fingerprint": fp, "late": bool(resolution)})
        )

    if not read_only:
        with store.transaction() as tx:
            store.save_findings(to_save, at=now, conn=tx)
            if reopened:
                store.reopen_findings(reopened, at=now, keep_acknowledgements=True, conn=tx)
            if lapsed:
                store.clear_acknowledgements(lapsed, conn=tx)
            if resolved_late:
                store.set_resolution(resolved_late, "late", conn=tx)
            store.add_finding_events(history, conn=tx)
        for event, fields in events:
            log.info(event, school_id=school_id, **fields)
    out.sort(key=finding_order)
    return out
