"""AMD001 incomplete-amendment-record."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from registerwatch.schema import Amendment, AmendmentSource, Finding, Severity
from registerwatch.validators.base import Rule, session_ref
from registerwatch.validators.context import ScanContext

# INFERRED: what reg 6 requires each amendment to record. Only "reg 6 governs
# updating and amending" is VERIFIED; the list is the 2024 position as remembered, with the
# 2006-era school policies listing all but "amended entry". Change this table, nothing else.
REQUIRED_FIELDS: tuple[tuple[str, str], ...] = (
    ("original_code", "original entry"),
    ("amended_code", "amended entry"),
    ("reason", "reason"),
    ("amended_at", "date"),
    ("amended_by_name", "amender name"),
    ("amended_by_position", "amender position"),
)


def missing_fields(amendment: Amendment) -> list[str]:
    missing = []
    for field, label in REQUIRED_FIELDS:
        value = getattr(amendment, field)
        if value is None or (isinstance(value, str) and not value.strip()):
            missing.append(label)
    return missing


# The fields the fast path below tests: it stands aside when the table above changes.
_FAST_FIELDS = (
    "original_code",
    "amended_code",
    "reason",
    "amended_at",
    "amended_by_name",
    "amended_by_position",
)
_FAST = tuple(field for field, _ in REQUIRED_FIELDS) == _FAST_FIELDS


def _missing(amendment: Amendment) -> list[str]:
    """``missing_fields``, answered at once for the usual complete record (a nightly scan reads
    every amendment the school has: only the incomplete few are sorted and reported)."""
    a = amendment
    if (
        _FAST
        and a.amended_at is not None
        and a.original_code
        and a.amended_code
        and a.reason
        and a.amended_by_name
        and a.amended_by_position
        and a.original_code.strip()
        and a.amended_code.strip()
        and a.reason.strip()
        and a.amended_by_name.strip()
        and a.amended_by_position.strip()
    ):
        return []
    return missing_fields(amendment)


def amendment_key(amendment: Amendment) -> str:
    """What identifies one amendment record between scans: the MIS's id when it gives one."""
    if amendment.source_ref:
        return f"ref:{amendment.source_ref}"
    at = amendment.amended_at.isoformat() if amendment.amended_at else ""
    return f"{amendment.original_code or ''}>{amendment.amended_code or ''}@{at}"


class IncompleteAmendmentRecord(Rule):
    """An amendment to a register entry does not record everything the regulations require.

    What it checks
    --------------
    Every amendment record the MIS supplies (source ``mis``) for the six items of an amendment
    record: the original entry, the amended entry, the reason, the date it was made, and the name
    and position of the person who made it. An empty or blank item counts as missing. One finding
    per amendment record, naming the missing items. Changes that sync observed itself (source
    ``observed``) carry no reason or amender by nature and are AMD002's business.

    Why it matters
    --------------
    Registers are legal documents. The regulations require every amendment to show what the entry
    was, what it became, why, when and by whom, so that a register produced as evidence (a penalty
    notice, a prosecution, a safeguarding review) shows its own history.

    Example
    -------
    An amendment to pupil `s1:4012`'s 3 November 2025 AM entry from N to I has a reason ("GP
    letter") and a date but no amender name or position: one error, "missing amender name,
    amender position".

    How to fix
    ----------
    Complete the amendment record in the MIS (most MIS keep it in the mark's audit or comment):
    add the missing items. Make sure staff amend marks through the MIS's amendment screen, which
    records who and when.

    References
    ----------
    - SI 2024/208 reg 6 (VERIFIED only that it governs updating and amending registers; the list
      of items is INFERRED: original entry, amended entry, reason, date, name and position).
    - 2006-era policies listing original entry, reason, date, name and position (SECONDARY).
    """

    code = "AMD001"
    name = "incomplete-amendment-record"
    title = "Amendment to pupil {pupil}'s entry on {first} is missing: {missing}"
    severity = Severity.ERROR
    citation = "SI 2024/208 reg 6 (items INFERRED)"
    fix_hint = (
        "Complete the amendment record: original and amended entry, reason, date, "
        "amender name and position"
    )

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        seen: Counter[tuple[str, object, str, str]] = Counter()
        mis = AmendmentSource.MIS
        # ctx.mis_amendments, filtered in the same pass as the fast completeness test
        incomplete = [
            (a, missing) for a in ctx.amendments if a.source is mis and (missing := _missing(a))
        ]
        ordered = sorted(
            incomplete,
            key=lambda am: (am[0].pupil_id, am[0].date, am[0].session.value, amendment_key(am[0])),
        )
        for amendment, missing in ordered:
            ref = session_ref(amendment.date, amendment.session)
            key = amendment_key(amendment)
            # two identical records for one entry still need two fingerprints
            slot = (amendment.pupil_id, amendment.date, amendment.session.value, key)
            seen[slot] += 1
            occurrence = seen[slot]
            yield self.finding(
                ctx,
                pupil_id=amendment.pupil_id,
                first=ref,
                missing=", ".join(missing),
                discriminator=key if occurrence == 1 else f"{key}#{occurrence}",
                evidence={
                    "missing": missing,
                    "original_code": amendment.original_code,
                    "amended_code": amendment.amended_code,
                    "amended_at": amendment.amended_at.isoformat()
                    if amendment.amended_at
                    else None,
                },
            )
