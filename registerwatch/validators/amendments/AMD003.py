"""AMD003 register-entry-deleted."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from registerwatch.schema import Finding, Session, Severity
from registerwatch.validators.base import Rule, session_ref
from registerwatch.validators.context import ObservedChange, ScanContext


class RegisterEntryDeleted(Rule):
    """A register entry that sync had stored disappeared from the MIS.

    What it checks
    --------------
    Every deletion sync observed (the amendment ledger: an entry present in one pull is absent
    from the next) whose entry has not come back: if the context holds a mark for the same pupil
    and session again, the entry was restored and nothing is reported. One finding per deleted
    entry, with the code it had; deleting the same entry again after a restore is the same
    finding. An entry older than six years (``register_retention_years``, counted from the date
    of the entry to the day the deletion was seen) may lawfully be removed: no finding.

    Why it matters
    --------------
    Every entry in the admission and attendance registers must be kept for at least six years
    (SI 2024/208 reg 7). A wrong entry is corrected by an amendment that keeps the original; it is
    never removed. A vanished entry is also a common sign of a pupil being moved between
    registration groups or records incorrectly.

    Example
    -------
    Sync stored N for pupil `s1:4012` on 3 November 2025 PM; the pull on 6 November has no entry
    for that session: one error for 2025-11-03 PM, original code N.

    How to fix
    ----------
    Restore the entry in the MIS (most MIS can restore from their audit) and, if it was wrong,
    amend it with a recorded reason instead of deleting it. If the pupil's marks moved to another
    pupil record, merge the records in the MIS.

    References
    ----------
    - SI 2024/208 reg 7 (VERIFIED from the Explanatory Note): every entry kept for at least six
      years (three under the 2006 Regulations).
    - SI 2024/208 reg 6 (VERIFIED): how registers are updated and amended.
    """

    code = "AMD003"
    name = "register-entry-deleted"
    title = "Pupil {pupil}'s register entry on {first} (code {original}) was deleted from the MIS"
    severity = Severity.ERROR
    citation = "SI 2024/208 reg 7; reg 6"
    fix_hint = "Restore the entry in the MIS; correct a wrong entry by amendment, never deletion"
    settings_used = ("register_retention_years",)

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        latest: dict[tuple[str, date, Session], ObservedChange] = {}
        for change in ctx.observed_changes:
            if change.kind != "deleted":
                continue
            key = (change.pupil_id, change.date, change.session)
            if key not in latest or change.observed_at > latest[key].observed_at:
                latest[key] = change
        for key in sorted(latest, key=lambda k: (k[0], k[1], k[2].value)):
            if ctx.has_mark(*key):
                continue  # restored
            change = latest[key]
            if _older_than(
                change.date, change.observed_at.date(), ctx.settings.register_retention_years
            ):
                continue  # past the retention period: removing it is lawful (reg 7)
            ref = session_ref(change.date, change.session)
            yield self.finding(
                ctx,
                pupil_id=change.pupil_id,
                first=ref,
                original=change.original_code,
                discriminator="deleted",
                evidence={
                    "original_code": change.original_code,
                    "observed_at": change.observed_at.isoformat(),
                },
            )


def _older_than(entry: date, seen: date, years: int) -> bool:
    """Whether ``years`` whole years from the entry's date had passed by ``seen``."""
    try:
        kept_until = entry.replace(year=entry.year + years)
    except ValueError:  # 29 February: the period ends on 1 March
        kept_until = date(entry.year + years, 3, 1)
    return seen >= kept_until
