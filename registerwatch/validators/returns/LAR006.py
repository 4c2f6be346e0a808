"""LAR006 deletion-ground-unsupported."""

from __future__ import annotations

from collections.abc import Iterator

from registerwatch.deletion_grounds import parse_deletion_ground
from registerwatch.schema import Finding, Pupil, Severity
from registerwatch.validators.base import Rule
from registerwatch.validators.context import ScanContext
from registerwatch.validators.returns._common import tracked_from
from registerwatch.validators.runs import day_runs
from registerwatch.validators.runs_strict import classify_own_codes


class DeletionGroundUnsupported(Rule):
    """A leaver's recorded ground for deletion is not borne out by the register.

    What it checks
    --------------
    Every pupil with a leaving date from ``returns_tracked_from`` to the scan date and a
    recorded reg 9 ground (written "9(1)(i)", "Reg 9(1)(I)" and so on; free text is not judged):

    - a ground of continuous unauthorised absence (``deletion_absence_grounds``, 9(1)(i))
      with no run, up to the leaving date, of ``deletion_absence_school_days`` (20) consecutive
      school days coded only ``deletion_absence_codes`` (G, N, O): an **error** (the deletion
      is not lawful on that ground);
    - a ground of registration at another school (``deletion_new_school_grounds``, 9(1)(a))
      with no new school recorded: a **warning**.

    Runs follow the calendar's school days (a weekend or holiday neither counts nor breaks; an
    unexpected closure is skipped; any other code ends the run). When leavers are in scope but
    none has a recorded ground (the MIS does not expose it), one **info** finding per school
    says the rule could not be checked.

    Why it matters
    --------------
    A name may come off the admission register only on one of the grounds in reg 9. Deleting a
    pupil for 20 days' absence who was not in fact continuously absent, or as gone to another
    school without knowing which, can lose a child from education; the LA relies on the ground
    in the deletion return.

    Example
    -------
    Pupil `s1:4012` left on 14 November 2025 with ground 9(1)(i), but their longest run of G, N
    and O before that was 12 school days: one error.

    How to fix
    ----------
    Check the ground with the attendance officer: correct the ground (and the deletion return)
    or the register entries. For a pupil gone to another school, record the new school (and ask
    it to confirm the pupil has started).

    References
    ----------
    - SI 2024/208 reg 9(1) grounds (a) and (i) (SECONDARY short titles);
      reg 13(4) deletion return (VERIFIED).
    - Local Government Lawyer on the 20-day ground; Montsaye 6.3.3; Sevenoaks 3.14 (the new
      school's name, address and start date) (SECONDARY).
    """

    code = "LAR006"
    name = "deletion-ground-unsupported"
    title = (
        "Pupil {pupil} was deleted on ground {ground} (continuous absence) but the register "
        "shows at most {longest} consecutive school day(s) of {codes} before {leaving}"
    )
    severity = Severity.ERROR
    citation = "SI 2024/208 reg 9(1)(a), (i); reg 13(4)"
    fix_hint = "Correct the recorded ground or the register; record the new school"
    settings_used = (
        "deletion_absence_school_days",
        "deletion_absence_codes",
        "deletion_absence_grounds",
        "deletion_new_school_grounds",
        "returns_tracked_from",
    )

    NO_NEW_SCHOOL = (
        "Pupil {pupil} was deleted on ground {ground} (registered at another "
        "school) on {leaving} but no new school is recorded"
    )
    NOT_EXPOSED = (
        "No leaver has a recorded ground for deletion (the MIS does not expose it), "
        "so the grounds could not be checked against the register"
    )

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        since = tracked_from(ctx)
        leavers = sorted(
            (
                p
                for p in ctx.pupils
                if p.leaving_date is not None and since <= p.leaving_date <= ctx.as_of
            ),
            key=lambda p: p.id,
        )
        if not leavers:
            return
        if all(p.deletion_ground is None for p in leavers):
            yield self.finding(
                ctx,
                severity=Severity.INFO,
                template=self.NOT_EXPOSED,
                discriminator="deletion-ground-not-exposed",
                evidence={"leavers": len(leavers)},
            )
            return
        settings = ctx.settings
        for pupil in leavers:
            ground = parse_deletion_ground(pupil.deletion_ground)
            if ground is None:
                continue
            assert pupil.leaving_date is not None
            leaving = pupil.leaving_date.isoformat()
            if ground in settings.deletion_absence_grounds:
                longest = self.longest_absence(ctx, pupil)
                if longest < settings.deletion_absence_school_days:
                    yield self.finding(
                        ctx,
                        pupil_id=pupil.id,
                        discriminator=f"absence:{leaving}",
                        ground=ground,
                        longest=longest,
                        leaving=leaving,
                        codes="/".join(sorted(settings.deletion_absence_codes)),
                        evidence={
                            "deletion_ground": ground,
                            "leaving_date": leaving,
                            "longest_run_school_days": longest,
                            "required_school_days": settings.deletion_absence_school_days,
                        },
                    )
            if ground in settings.deletion_new_school_grounds and not (pupil.new_school or ""):
                yield self.finding(
                    ctx,
                    pupil_id=pupil.id,
                    severity=Severity.WARNING,
                    template=self.NO_NEW_SCHOOL,
                    discriminator=f"new-school:{leaving}",
                    ground=ground,
                    leaving=leaving,
                    evidence={"deletion_ground": ground, "leaving_date": leaving},
                )

    def longest_absence(self, ctx: ScanContext, pupil: Pupil) -> int:
        codes = ctx.settings.deletion_absence_codes
        if ctx.code_count(pupil.id, codes) == 0:
            return 0
        runs = day_runs(ctx, pupil, classify_own_codes(ctx, codes), until=pupil.leaving_date)
        return max((len(r) for r in runs), default=0)
