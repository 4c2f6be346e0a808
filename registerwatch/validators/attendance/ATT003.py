"""ATT003 severe-absence."""

from __future__ import annotations

from collections.abc import Iterator

from registerwatch.schema import Finding, Severity
from registerwatch.validators.attendance._common import YearStatisticsFold
from registerwatch.validators.base import Rule
from registerwatch.validators.context import ScanContext
from registerwatch.validators.folding import check_by_folding


class SevereAbsence(Rule):
    """A pupil has missed 50% or more of their possible sessions this school year.

    What it checks
    --------------
    Exactly as ATT002 (pupils of compulsory school age by default, the same statistics over the school year to date, the pupil's own possible
    sessions while on roll, at least ``absence_min_possible_sessions``), with the threshold at 50%
    (``severe_absence``): a **warning**. A severely absent pupil also has ATT002's finding.

    Why it matters
    --------------
    Pupils absent more than they are present face the greatest barriers; the guidance asks all
    partners to make them the top priority, to agree a joint approach with the local authority,
    and to consider whether the absence is a safeguarding concern.

    Example
    -------
    Pupil `s1:4012` has 120 possible sessions this year and 64 absences: 53.3%. One warning,
    "severe absence: 53.3% (64 of 120 possible sessions)".

    How to fix
    ----------
    Nothing to correct in the register unless an entry is wrong. Agree a joint approach with the
    local authority and consider safeguarding, as the school's policy sets out for severely absent
    pupils.

    References
    ----------
    - Severe absence: 50% or more of possible sessions (SECONDARY: school guidance quoting the
      DfE; the EES methodology changelog "Explain severe absence").
    - WTISA (August 2024): severely absent pupils as the top priority for support (SECONDARY, as
      quoted in school attendance policies; paragraph not confirmed).
    """

    code = "ATT003"
    name = "severe-absence"
    title = (
        "Severe absence for pupil {pupil}: {rate}% ({absent} of {possible} possible "
        "sessions) this school year{measure}"
    )
    severity = Severity.WARNING
    citation = "DfE absence statistics (severe absence 50%+); WTISA (Aug 2024)"
    fix_hint = "Agree a joint approach with the LA; consider safeguarding"
    settings_used = ("severe_absence", "absence_min_possible_sessions", "absence_measures_csa_only")

    fold = YearStatisticsFold("severe_absence")

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        yield from check_by_folding(ctx, self.fold)
