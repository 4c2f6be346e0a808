"""AMD002 unrecorded-register-change."""

from __future__ import annotations

from collections.abc import Iterator

from registerwatch.schema import Amendment, Finding, Severity
from registerwatch.validators.base import Rule, session_ref
from registerwatch.validators.context import ObservedChange, ScanContext


def records_change(amendment: Amendment, change: ObservedChange) -> bool:
    """Does the MIS amendment record account for the change sync saw?

    It must be for the same entry, lead to the code sync saw (or leave the amended entry blank,
    which AMD001 reports), and not be dated after sync saw the change. Its original entry is not
    compared: between two pulls an entry may change more than once (N to I to O is seen as N to
    O, and the MIS records I to O last).
    """
    if amendment.amended_code is not None and amendment.amended_code != change.new_code:
        return False
    return amendment.amended_at is None or amendment.amended_at <= change.observed_at


class UnrecordedRegisterChange(Rule):
    """A register entry changed between two syncs and the MIS has no amendment record for it.

    What it checks
    --------------
    Every change sync observed between two pulls (the amendment ledger: an entry's code went from
    one value to another), when the MIS exposes its own amendment records: there must be an MIS
    amendment for the same pupil and session whose amended entry is the new code (or is blank,
    which AMD001 reports) and that is not dated after sync saw the change. One finding per
    unmatched change.

    When the MIS does not expose amendment records, the changes are still kept in the ledger but
    cannot be matched; the rule then reports once per school, at info level, that amendment
    metadata could not be checked.

    Why it matters
    --------------
    An amendment made without a record (original entry, amended entry, reason, date, name and
    position) is an unlawful alteration of a legal document, and the most common way registers are
    "tidied" after the event. The ledger is the tool's independent evidence that the entry changed.

    Example
    -------
    On 4 November 2025 sync stored O for pupil `s1:4012` on 3 November AM; on 6 November the MIS
    returns I for that session and its amendment records have nothing for it: one error for
    2025-11-03 AM, O to I.

    How to fix
    ----------
    Find out who changed the entry and why, and record the amendment in the MIS with the original
    entry, the new entry, the reason, the date, and the name and position of the person who made
    it. If the change was a mistake, restore the original entry (recording that too).

    References
    ----------
    - SI 2024/208 reg 6 (VERIFIED: governs updating and amending registers; the items of an
      amendment record are INFERRED).
    - Amendment audits are not publicly exposed by any MIS (none of Arbor, iSAMS or GO 4 Schools documents one): the
      simulators' audit resources are INFERRED.
    """

    code = "AMD002"
    name = "unrecorded-register-change"
    title = (
        "Pupil {pupil}'s entry on {first} changed from {original} to {new} with no "
        "amendment record in the MIS"
    )
    severity = Severity.ERROR
    citation = "SI 2024/208 reg 6"
    fix_hint = "Record the amendment in the MIS (original, new, reason, date, name, position)"

    NOT_EXPOSED = (
        "Amendment records are not exposed by this MIS: changes seen between syncs "
        "({changes}) are kept in the ledger but whether each was recorded could not "
        "be checked"
    )

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        changes = sorted(
            (
                c
                for c in ctx.observed_changes
                if c.kind == "change" and c.original_code != c.new_code
            ),
            key=lambda c: (c.pupil_id, c.date, c.session.value, c.observed_at),
        )
        if not ctx.exposes_amendments:
            yield self.finding(
                ctx,
                severity=Severity.INFO,
                template=self.NOT_EXPOSED,
                changes=len(changes),
                discriminator="amendments-not-exposed",
                evidence={"exposes_amendments": False, "observed_changes": len(changes)},
            )
            return
        for change in changes:
            key = (change.pupil_id, change.date, change.session)
            records = ctx.mis_amendments_by_key.get(key, ())
            if any(records_change(a, change) for a in records):
                continue
            ref = session_ref(change.date, change.session)
            yield self.finding(
                ctx,
                pupil_id=change.pupil_id,
                first=ref,
                original=change.original_code,
                new=change.new_code,
                discriminator=(
                    f"{change.original_code}>{change.new_code}@{change.observed_at.isoformat()}"
                ),
                evidence={
                    "original_code": change.original_code,
                    "new_code": change.new_code,
                    "observed_at": change.observed_at.isoformat(),
                    "mis_amendments_for_entry": len(records),
                },
            )
