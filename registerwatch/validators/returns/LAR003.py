"""LAR003 children-missing-education-referral-due."""

from __future__ import annotations

from collections.abc import Iterator

from registerwatch.schema import Finding, NotificationKind, Pupil, Severity
from registerwatch.validators.base import Rule
from registerwatch.validators.context import ScanContext
from registerwatch.validators.folding import check_by_folding
from registerwatch.validators.returns._common import run_findings
from registerwatch.validators.returns._episodes import AbsenceRuns, AbsenceRunsFold


class ChildrenMissingEducationReferralDue(Rule):
    """The reason for a pupil's absence has been unknown (N) for 10 consecutive school days and no
    children-missing-education referral is recorded.

    What it checks
    --------------
    Runs of consecutive school days, counted exactly as in LAR002, on which every open session is
    N (``cme_codes``: the reason for absence has not been established). O is not counted by
    default: it also means a reason was given and not accepted (Wenlock 4.2); a school that
    marks O for "reason unknown" adds it with `[rules] cme_codes = ["N", "O"]`. When a run
    reaches 10 school days (``cme_days``) for a pupil of compulsory school age that day, the
    school's and the LA's children-missing-education procedure asks for a referral: a
    Notification of kind ``cme`` for the pupil whose episode start falls within the run closes
    the finding. It is a **warning**, due the next school day after the 10th
    (``threshold_return_school_days``): no statutory 10-day CME referral was found, so it
    stays a warning after that day.

    "No contact recorded", against the common schema: the schema has no contact log, and a school
    that has reached the family records the reason with a code other than N, which ends the run.

    Why it matters
    --------------
    A child of compulsory school age absent for 10 school days with nobody knowing why may be a
    child missing education, and at risk. LA procedures ask schools to refer such children
    promptly, and the LA's CME duty depends on it.

    Example
    -------
    Pupil `s1:4012` is N for every session from 3 to 14 November 2025 and the school has not
    reached the family. With no referral recorded, a scan on Monday 17 November gives a warning
    due that day (LAR002 reports the same run for the continuous absence return).

    How to fix
    ----------
    Follow the LA's CME procedure: make the referral and record it. If the school now knows the
    reason, amend the entries to the right codes.

    References
    ----------
    - LA and school procedure, not a statutory deadline: Montsaye 6.3.4, Micklefield 4.2
      (seed policies, SECONDARY); the legal review found no statutory 10-day CME referral.
    - DfE Children missing education statutory guidance (2024), which describes the schools' LA
      returns (SECONDARY); Wenlock 4.2 on O (reason not accepted).
    """

    code = "LAR003"
    name = "children-missing-education-referral-due"
    title = (
        "Children missing education: reason unknown for pupil {pupil} for {days} "
        "consecutive school days from {first} to {last}: refer under the LA's CME "
        "procedure (due {due_text})"
    )
    severity = Severity.WARNING
    citation = "LA children-missing-education procedure; CME statutory guidance (2024)"
    fix_hint = "Refer the pupil to the LA as a possible child missing education and record it"
    settings_used = (
        "cme_days",
        "cme_codes",
        "threshold_return_school_days",
        "la_returns_csa_only",
        "returns_tracked_from",
    )

    fold = AbsenceRunsFold("cme_codes", "cme_days", judged_from=("cme_days",))

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        yield from check_by_folding(ctx, self.fold)

    def judge(self, ctx: ScanContext, pupil: Pupil, state: AbsenceRuns) -> Iterator[Finding]:
        """The pupil's findings from their runs up to the last day of data (the fold's state)."""
        s = ctx.settings
        # every counting day has a session with one of the codes: too few can make no run
        if pupil.boarder or len(state.marks) < s.cme_days:
            return
        yield from run_findings(
            self,
            ctx,
            pupil,
            state.runs(),
            codes=s.cme_codes,
            days=s.cme_days,
            kind=NotificationKind.CME,
            scheduled=False,
        )
