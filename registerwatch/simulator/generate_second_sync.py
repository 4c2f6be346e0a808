"""The edits a school makes in its MIS between two syncs, and what each must cause.

``apply_second_sync_changes`` makes the edits that only a second sync can see (AMD002, AMD003)
and one lawful, recorded change that must cause no finding; ``second_sync_changes`` names them
from the school alone, so a test can say what to expect before making them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import Literal

from registerwatch.schema import Amendment, AmendmentSource, Session
from registerwatch.simulator.generate_marks import london
from registerwatch.simulator.model import ExpectedFinding, GeneratedSchool

# The rules that need two syncs to be seen; their expected findings hold only after
# apply_second_sync_changes.
SECOND_SYNC_RULES = frozenset({"AMD002", "AMD003"})


@dataclass(frozen=True)
class SyncChange:
    """One edit the school makes in its MIS between two syncs.

    ``kind`` "amend" changes the code (``after``), "delete" removes the mark. ``amendment`` says
    whether the MIS also records an amendment for it; ``rule`` is the finding it must cause
    (None: a lawful, recorded change that must cause none).
    """

    kind: Literal["amend", "delete"]
    pupil_id: str
    date: date
    session: Session
    before: str
    after: str | None
    amendment: bool
    rule: str | None


def first_sync_expected_findings(school: GeneratedSchool) -> list[ExpectedFinding]:
    """What a scan after a single sync must report (no AMD002/AMD003 yet)."""
    return [f for f in school.expected_findings if f.rule not in SECOND_SYNC_RULES]


def second_sync_changes(school: GeneratedSchool) -> list[SyncChange]:
    """The edits ``apply_second_sync_changes`` makes, derived from the school alone:

    - AMD002: the mark named by the AMD002 expected finding changes to M, with no amendment;
    - AMD003: the mark named by the AMD003 expected finding is deleted;
    - lawful: the first still-open N of a clean pupil (sorted by pupil, date, session) is
      resolved to I *with* a complete MIS amendment: the scan must report nothing for it.
    """
    marks = school.marks_by_key()
    changes: list[SyncChange] = []
    for f in school.expected_findings:
        if f.rule not in SECOND_SYNC_RULES or f.first_session is None or f.pupil_id is None:
            continue
        day, session = f.first_session
        mark = marks[(f.pupil_id, day, session)]
        if f.rule == "AMD002":
            changes.append(
                SyncChange(
                    "amend",
                    f.pupil_id,
                    day,
                    session,
                    mark.code,
                    "M",
                    amendment=False,
                    rule="AMD002",
                )
            )
        else:
            changes.append(
                SyncChange(
                    "delete",
                    f.pupil_id,
                    day,
                    session,
                    mark.code,
                    None,
                    amendment=False,
                    rule="AMD003",
                )
            )
    pending = sorted(
        (m.pupil_id, m.date, m.session.value)
        for m in school.marks
        if m.code == "N" and m.pupil_id in school.clean_pupil_ids
    )
    if pending:
        pupil_id, day, session_value = pending[0]
        changes.append(
            SyncChange(
                "amend", pupil_id, day, Session(session_value), "N", "I", amendment=True, rule=None
            )
        )
    return changes


def apply_second_sync_changes(school: GeneratedSchool) -> list[SyncChange]:
    """Make the between-syncs edits in ``school`` (call once, after the first sync) and return
    them. Timestamps are fixed instants on ``as_of`` morning, so the result is deterministic.

    With a simulator running, hold the app's lock: ``with app.lock: apply_...(app.school)``.
    """
    if school.as_of is None:
        raise ValueError("the school has no as_of: generate it with generate_school")
    changes = second_sync_changes(school)
    index = {(m.pupil_id, m.date, m.session): k for k, m in enumerate(school.marks)}
    amender = _amender(school)
    edited_at = london(school.as_of, 8, 5)
    deleted: set[int] = set()
    for change in changes:
        k = index[(change.pupil_id, change.date, change.session)]
        if change.kind == "delete":
            deleted.add(k)
            continue
        mark = school.marks[k]
        recorded_at = london(school.as_of, 9, 30) if change.amendment else edited_at
        school.marks[k] = mark.model_copy(
            update={
                "code": change.after,
                "vendor_code": change.after,
                "recorded_at": recorded_at,
                "recorded_by": amender[0] if change.amendment else "School Office",
            }
        )
        if change.amendment:
            school.amendments.append(
                Amendment(
                    pupil_id=change.pupil_id,
                    date=change.date,
                    session=change.session,
                    original_code=change.before,
                    amended_code=change.after,
                    reason="Parent phoned: unwell",
                    amended_at=recorded_at,
                    amended_by_name=amender[0],
                    amended_by_position=amender[1],
                    source=AmendmentSource.MIS,
                    source_ref=f"amd-second-sync-{change.pupil_id}",
                )
            )
    if deleted:
        school.marks[:] = [m for k, m in enumerate(school.marks) if k not in deleted]
    return changes


def _amender(school: GeneratedSchool) -> tuple[str, str]:
    """The member of staff who records most amendments (ties: alphabetical)."""
    counts = Counter(
        (a.amended_by_name, a.amended_by_position)
        for a in school.amendments
        if a.amended_by_name and a.amended_by_position
    )
    if not counts:
        return ("Attendance Officer", "Attendance Officer")
    top = max(counts.values())
    name, position = min(k for k, v in counts.items() if v == top)
    assert name is not None and position is not None
    return name, position
