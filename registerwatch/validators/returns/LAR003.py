"""LAR003 children-missing-education-referral-due."""

from __future__ import annotations

from collections.abc import Iterator

from registerwatch.schema import Finding, NotificationKind, Severity
from registerwatch.validators.base import Rule
from registerwatch.validators.context import ScanContext
from registerwatch.validators.returns._common import absence_episodes


class ChildrenMissingEducationReferralDue(Rule):
    """The reason for a pupil's absence has been unknown for 10 consecutive school days and no
    children-missing-education referral is recorded.

    What it checks
    --------------
    Runs of consecutive school days, counted exactly as in LAR002, on which every open session is
    N or O (``cme_codes``: the reason for absence has not been established, or no other code
    applies). When a run reaches 10 school days (``cme_days``) for a pupil of compulsory school
    age that day, a children-missing-education referral must be recorded: a Notification of kind
    ``cme`` for the pupil whose episode start falls within the run. The referral is due the next
    school day after the 10th (``threshold_return_school_days``): a **warning** up to the due
    day, an **error** after it.

    "No contact recorded", against the common schema: the schema has no contact log, and a school
    that has reached the family records the reason with a code other than N or O, which ends the
    run. So the run itself is the absence of contact, and the recorded referral (the ``cme``
    Notification, imported from the MIS or recorded by hand) is what closes the finding.

    Why it matters
    --------------
    A child of compulsory school age absent for 10 school days with nobody knowing why may be a
    child missing education, and at risk. Schools must tell the local authority, whose CME duty
    depends on it.

    Example
    -------
    Pupil `s1:4012` is N then O for every session from 3 to 14 November 2025 and the school has
    not reached the family. With no referral recorded, a scan on Monday 17 November gives a
    warning (due that day) and a scan on 18 November an error, 2025-11-03 AM to 2025-11-14 PM
    (LAR002 reports the same run for the continuous absence return).

    How to fix
    ----------
    Make the CME referral to the LA (and the continuous absence return) and record it. If the
    school now knows the reason, amend the entries to the right codes.

    References
    ----------
    - Children missing education statutory guidance (2024), which describes the schools' LA
      returns (SECONDARY via edyourself, reference §1.7); the paragraph on the 10-day referral is
      not confirmed.
    - SI 2024/208 reg 13, LA returns (paragraph not confirmed); Hertfordshire's 10-day absence
      page (SECONDARY, reference §1.7); school policies: "report to the Local Authority pupils
      who are absent for more than ten days without explanation".
    """

    code = "LAR003"
    name = "children-missing-education-referral-due"
    title = ("Children missing education referral due for pupil {pupil}: reason unknown for "
             "{days} consecutive school days from {first} to {last} (due {due})")
    severity = Severity.ERROR
    citation = "CME statutory guidance (2024); SI 2024/208 reg 13"
    fix_hint = "Refer the pupil to the LA as a possible child missing education and record it"
    settings_used = ("cme_days", "cme_codes", "threshold_return_school_days", "la_returns_csa_only",
                     "returns_tracked_from")

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        s = ctx.settings
        yield from absence_episodes(self, ctx, codes=s.cme_codes, days=s.cme_days,
                                    grace_school_days=s.threshold_return_school_days,
                                    kind=NotificationKind.CME)
