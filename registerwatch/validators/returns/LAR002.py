"""LAR002 continuous-absence-return-due."""

from __future__ import annotations

from collections.abc import Iterator

from registerwatch.schema import Finding, NotificationKind, Severity
from registerwatch.validators.base import Rule
from registerwatch.validators.context import ScanContext
from registerwatch.validators.returns._common import absence_episodes


class ContinuousAbsenceReturnDue(Rule):
    """A pupil has been absent without authorisation for 10 consecutive school days and the LA
    has not been told.

    What it checks
    --------------
    Runs of consecutive school days (the calendar's: weekends, half-terms, bank holidays and
    whole-day closures neither count nor break a run; a run may cross a term or the summer) on
    which the pupil was on roll and **every open session** carries an unauthorised code (G, N, O
    or U: ``continuous_absence_codes``). A day whose only open session is the morning (a planned
    afternoon closure) counts on its morning. A day on which every session carries a code that is
    not a possible session (Y4 on an unexpected closure, for example) neither counts nor breaks
    the run. Any other code, or an unmarked session, ends the run.

    When a run reaches 10 school days (``continuous_absence_days``) for a pupil of compulsory
    school age on that day (``la_returns_csa_only``; a pupil without a date of birth counts), a
    continuous absence return must exist: a Notification of kind ``continuous_absence`` for the
    pupil whose episode start falls within the run. The return is due the next school day after
    the 10th (``threshold_return_school_days``): without one, a **warning** up to the due day, an
    **error** after it. One
    finding per run, from its first unauthorised session to its latest; if the pupil attends and
    then has another 10 days, that is a new episode and a new return. Episodes whose 10th day is
    before ``returns_tracked_from`` are history and not reported.

    Why it matters
    --------------
    The school must tell the local authority about every registered pupil of compulsory school age
    who has been absent without authorisation for a continuous period of 10 school days, so that
    the LA can act (a child missing from education may be at risk).

    Example
    -------
    Pupil `s1:4012` is O for every session from Monday 3 to Friday 14 November 2025 (the weekend
    between does not count, nor break the run). The 10th day is Friday 14 November, so the return
    is due on Monday 17 November: with no return recorded, a scan on 17 November gives a warning
    and a scan on 18 November an error, 2025-11-03 AM to 2025-11-14 PM, due 2025-11-17.

    How to fix
    ----------
    Make the continuous absence return to the LA for the episode (the tool's `la-continuous-
    absence` export) and record it; the finding closes when the Notification is recorded. If any
    of the absence was in fact authorised, amend those entries.

    References
    ----------
    - SI 2024/208 reg 13, attendance return (paragraph not confirmed; MEMORY/INFERRED that it
      keeps the structure of 2006 reg 12(1)(b), VERIFIED: CSA pupils absent without authorisation
      for a continuous period of not less than ten school days).
    - Stockport LA: one return per episode, codes G, N, O and/or U (SECONDARY).
    """

    code = "LAR002"
    name = "continuous-absence-return-due"
    title = ("Continuous absence return due for pupil {pupil}: {days} consecutive school days of "
             "unauthorised absence from {first} to {last} (due {due})")
    severity = Severity.ERROR
    citation = "SI 2024/208 reg 13 (attendance return; cf. SI 2006/1751 reg 12(1)(b))"
    fix_hint = "Make the continuous absence return to the LA and record it"
    settings_used = ("continuous_absence_days", "continuous_absence_codes",
                     "threshold_return_school_days", "la_returns_csa_only",
                     "returns_tracked_from")

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        s = ctx.settings
        yield from absence_episodes(self, ctx, codes=s.continuous_absence_codes,
                                    days=s.continuous_absence_days,
                                    grace_school_days=s.threshold_return_school_days,
                                    kind=NotificationKind.CONTINUOUS_ABSENCE)
