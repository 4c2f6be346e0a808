"""ATT002 persistent-absence."""

from __future__ import annotations

from collections.abc import Iterator

from registerwatch.schema import Finding, Severity
from registerwatch.validators.attendance._common import YearStatisticsFold
from registerwatch.validators.base import Rule
from registerwatch.validators.context import ScanContext
from registerwatch.validators.folding import check_by_folding


class PersistentAbsence(Rule):
    """A pupil has missed 10% or more of their possible sessions this school year.

    What it checks
    --------------
    For each pupil of compulsory school age (5-15 at 31 August before the school year, as the
    national measure; ``absence_measures_csa_only``, when false other pupils are judged too and
    their findings are labelled "school measure"; not boarders), the DfE session statistics (``codes.session_statistics``) over
    the marks of the school year (1 August to 31 July) up to the day before the scan, counting
    only school sessions while the pupil was on roll: possible sessions = present + late +
    approved educational activity + authorised + unauthorised absence (D, X, Q, Y1-Y7, Z and # are
    not possible sessions). When overall absence (authorised + unauthorised) is at least 10% of
    possible sessions (``persistent_absence``): a **warning**. The pupil's own possible sessions
    are the denominator, so a mid-year joiner is judged on their own time on roll; a pupil is
    judged only from ``absence_min_possible_sessions`` (10) possible sessions. Severely absent
    pupils (ATT003) are persistently absent too, and get both findings. One finding per pupil
    and school year, from the first to the latest possible session.

    Why it matters
    --------------
    Persistent absence is the DfE's main measure of pupils missing enough school to harm their
    education; schools are expected to know these pupils and put support in place with families
    and partners, and it is what Ofsted and the LA will ask about.

    Example
    -------
    Pupil `s1:4012` has 120 possible sessions this year and 14 absences (8 I, 6 O): 11.7%. One
    warning, "persistent absence: 11.7% (14 of 120 possible sessions)".

    How to fix
    ----------
    Nothing to correct in the register unless an entry is wrong. Follow the school's attendance
    policy for persistently absent pupils: meet the family, agree support, and monitor.

    References
    ----------
    - DfE pupil absence methodology (VERIFIED in DfE's explore-education-statistics repository):
      persistent absence is 10% or more of possible sessions, per pupil, since 2015/16.
    - DfE 2024/25 published data (VERIFIED): possible = present + AEA + authorised + unauthorised.
    """

    code = "ATT002"
    name = "persistent-absence"
    title = (
        "Persistent absence for pupil {pupil}: {rate}% ({absent} of {possible} possible "
        "sessions) this school year{measure}"
    )
    severity = Severity.WARNING
    citation = "DfE pupil absence statistics methodology (persistent absence 10%+)"
    fix_hint = "Follow the attendance policy for persistently absent pupils: meet, support, monitor"
    settings_used = (
        "persistent_absence",
        "absence_min_possible_sessions",
        "absence_measures_csa_only",
    )

    fold = YearStatisticsFold("persistent_absence")

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        yield from check_by_folding(ctx, self.fold)
