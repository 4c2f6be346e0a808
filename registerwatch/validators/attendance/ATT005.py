"""ATT005 social-worker-unexplained-absence."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from registerwatch.schema import Finding, Severity
from registerwatch.validators.base import Rule
from registerwatch.validators.context import ScanContext
from registerwatch.validators.delta import RuleRun, ScanDelta, kept_marks
from registerwatch.validators.lean_marks import SessionMark
from registerwatch.validators.runs import first_last, mark_runs


class SocialWorkerUnexplainedAbsence(Rule):
    """A pupil with a social worker has an unexplained absence.

    What it checks
    --------------
    If the MIS does not expose which pupils have a social worker, one **info** finding per
    school says the rule could not be checked. Otherwise, for each pupil flagged
    ``has_social_worker``, the sessions on roll in the school year, up to
    the day before the scan, coded N or O (``social_worker_codes``: the reason is not
    known). Consecutive school sessions form one finding, a **warning**, from the first to the
    last. The finding closes when the entries are amended to a code with a known reason (an N
    amended to O stays unexplained).

    Why it matters
    --------------
    Unexplained absence of a child with a social worker can be a sign of harm. Schools are expected
    to inform the pupil's social worker of any unexplained absence (and of any plan to delete the
    pupil from the register), the same day where possible.

    Example
    -------
    Pupil `s1:4012` has a social worker and is N on 12 November 2025 AM and PM: one warning,
    2025-11-12 AM to 2025-11-12 PM.

    How to fix
    ----------
    Tell the pupil's social worker (and the DSL) about the absence, follow the school's
    safeguarding procedure, and amend the entries once the reason is known.

    References
    ----------
    - WTISA (August 2024), support for pupils with a social worker: "informing the pupil's social
      worker if there are any unexplained absences and if their name is to be deleted from the
      register" (SECONDARY, as quoted in the seed school policies; paragraph not confirmed).
    - Codes N and O: reason not yet established / no other code applies (SI 2024/208 reg 10,
      SECONDARY).
    """

    code = "ATT005"
    name = "social-worker-unexplained-absence"
    title = (
        "Unexplained absence for pupil {pupil} (has a social worker): {count} session(s) "
        "from {first} to {last}"
    )
    severity = Severity.WARNING
    citation = "WTISA (Aug 2024): inform the social worker of unexplained absences"
    fix_hint = (
        "Inform the pupil's social worker and the DSL; amend the code once the reason is known"
    )
    settings_used = ("social_worker_codes",)

    NOT_EXPOSED = (
        "The MIS does not say which pupils have a social worker, so unexplained "
        "absence of those pupils could not be checked"
    )

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        return iter(self.run(ctx).findings)

    def run(self, ctx: ScanContext) -> RuleRun:
        return self._run(ctx, None, None)

    def run_delta(self, ctx: ScanContext, delta: ScanDelta, state: Any) -> RuleRun | None:
        """The N and O marks of the pupils with a social worker are kept, and the night's
        added: their runs are rebuilt from those, not from the pupils' years."""
        return self._run(ctx, delta, state)

    def _run(self, ctx: ScanContext, delta: ScanDelta | None, state: Any) -> RuleRun:
        if not ctx.exposes_social_worker:
            notice = self.finding(
                ctx,
                severity=Severity.INFO,
                template=self.NOT_EXPOSED,
                discriminator="social-worker-not-exposed",
                evidence={"exposes_social_worker": False},
            )
            return RuleRun([notice])

        def wanted(pupil_id: str) -> bool:
            pupil = ctx.pupils_by_id.get(pupil_id)
            return pupil is not None and bool(pupil.has_social_worker)

        codes = frozenset(ctx.settings.social_worker_codes)
        kept = kept_marks(ctx, delta, state, codes, wanted)
        return RuleRun(list(self._findings(ctx, kept.marks)), state=kept.dump())

    def _findings(
        self, ctx: ScanContext, unexplained: Mapping[str, Sequence[SessionMark]]
    ) -> Iterator[Finding]:
        start, _ = ctx.school_year
        for pupil_id in sorted(unexplained):
            pupil = ctx.pupils_by_id.get(pupil_id)
            # ctx.pupils_this_year, asked only of the pupils with a kept mark
            if pupil is None or not ctx.on_roll_in(pupil, start, ctx.as_of):
                continue
            marks = [
                m
                for m in unexplained[pupil_id]
                if start <= m.date <= ctx.data_end and pupil.on_roll(m.date)
            ]
            for run in mark_runs(ctx, marks):
                first, last = first_last(run)
                yield self.finding(
                    ctx,
                    pupil_id=pupil.id,
                    first=first,
                    last=last,
                    count=len(run),
                    evidence={"codes": sorted({m.code for m in run}), "sessions": len(run)},
                )
