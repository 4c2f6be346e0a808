"""MRK004 mark-outside-roll."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import groupby

from registerwatch.schema import Finding, Pupil, Session, Severity
from registerwatch.validators.base import Rule
from registerwatch.validators.context import ScanContext
from registerwatch.validators.folding import CodeMarksFold, NightMarks, check_by_folding
from registerwatch.validators.lean_marks import SessionMark
from registerwatch.validators.runs import first_last, mark_runs

# Z is the administrative code for a prospective pupil not yet on the admission register; it is
# the one code that may stand on a session when the pupil is not on roll (MIS registers show
# not-yet-started and already-left pupils with it).
NOT_ON_ROLL_CODE = "Z"

KINDS = {
    "before-start": "a mark before the pupil's starting day",
    "after-leaving": "a mark after the pupil's leaving date",
    "z-on-roll": "Z (not on roll) while the pupil is on roll",
}


def _kind(pupil: Pupil, mark: SessionMark) -> str | None:
    on_roll = pupil.on_roll(mark.date)
    if mark.code == NOT_ON_ROLL_CODE:
        return "z-on-roll" if on_roll else None
    if on_roll:
        return None
    if pupil.starting_day is not None and mark.date < pupil.starting_day:
        return "before-start"
    return "after-leaving"


class _OutsideRollMarks(CodeMarksFold):
    """The pupil's marks, of any date, that ``_kind`` flags (outside the roll, or Z on roll):
    rare, and judged against the roll dates the state was folded with (a changed record is
    refolded)."""

    complete_days_only = False

    def select(
        self, ctx: ScanContext, pupil: Pupil, marks: Sequence[SessionMark]
    ) -> list[SessionMark]:
        start, end = pupil.starting_day, pupil.leaving_date
        if not marks or (
            marks is ctx.marks_by_pupil.get(pupil.id)
            and NOT_ON_ROLL_CODE not in ctx.marks_by_code(pupil.id)
            and (start is None or marks[0].date >= start)
            and (end is None or marks[-1].date <= end)
        ):
            return []  # every mark inside the roll and no Z: nothing to keep
        return [m for m in marks if _kind(pupil, m) is not None]

    def night_pupils(self, ctx: ScanContext, night: NightMarks) -> set[str] | None:
        """Pupils with a Z or a planned mark tonight, and those whose roll dates do not cover
        every day of the night's marks."""
        last = (ctx.data_end, Session.PM)
        out = night.pupils_with(lambda m: m.code == NOT_ON_ROLL_CODE or (m.date, m.session) > last)
        if not night.pupils_of:
            return out
        lo = min(m.date for m in night.pupils_of)
        hi = max(m.date for m in night.pupils_of)
        by_id = ctx.pupils_by_id
        for pid in night.by_pupil:
            pupil = by_id.get(pid)
            if pupil is not None and (
                (pupil.starting_day is not None and pupil.starting_day > lo)
                or (pupil.leaving_date is not None and pupil.leaving_date < hi)
            ):
                out.add(pid)
        return out


class MarkOutsideRoll(Rule):
    """A mark for a session when the pupil was not on roll, or Z while the pupil was on roll.

    What it checks
    --------------
    Every mark of a known pupil, against the admission register: a mark other than Z before the
    pupil's starting day or after their leaving date, and Z (prospective pupil, not yet on the
    admission register) on a session when the pupil was on roll. Consecutive school sessions of
    the same kind form one finding; the kind is in the evidence and the fingerprint. The starting
    day itself and the leaving date itself are on roll. A pupil with no starting day is taken to
    have been on roll from the start.

    Why it matters
    --------------
    The attendance register records registered pupils (reg 10(1)); the admission register's
    starting day (reg 8(2)(h)) and deletion date bound it. A mark outside those dates is either a
    wrong starting day or leaving date, or a register entry for someone who was not a pupil, and
    it enters the DfE statistics. Z on a pupil on roll leaves a session of a registered pupil
    without an attendance entry.

    Example
    -------
    Pupil `s1:4012` starts on 10 November 2025 but has / and \\ on 6 November: one error,
    2025-11-06 AM to 2025-11-06 PM, kind "before-start". Pupil `s1:4013`, on roll all term, has Z
    on 12 November AM: one error, kind "z-on-roll".

    How to fix
    ----------
    Correct the starting day or leaving date in the admission register if it is wrong; otherwise
    amend the entries (Z before the starting day; the attendance code for what happened while on
    roll).

    References
    ----------
    - SI 2024/208 reg 8(2)(h) (VERIFIED from the Explanatory Note): the starting day in the
      admission register.
    - SI 2024/208 reg 10(1) (VERIFIED): the attendance register covers registered pupils; code Z,
      prospective pupil not on the admission register (SECONDARY).
    """

    code = "MRK004"
    name = "mark-outside-roll"
    title = "Pupil {pupil}: {what} on {count} session(s) from {first} to {last}"
    severity = Severity.ERROR
    citation = "SI 2024/208 reg 8(2)(h), reg 10(1); code Z (reg 10)"
    fix_hint = "Correct the starting day or leaving date, or amend the entries"

    fold = _OutsideRollMarks()

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        yield from check_by_folding(ctx, self.fold)

    def judge(
        self, ctx: ScanContext, pupil: Pupil, marks: Sequence[SessionMark]
    ) -> Iterator[Finding]:
        """The pupil's findings from their marks outside the roll and their Z marks."""
        flagged = [(m, kind) for m in marks if (kind := _kind(pupil, m)) is not None]
        kinds = {(m.date, m.session): k for m, k in flagged}
        for run in mark_runs(ctx, [m for m, _ in flagged]):
            for kind, part_iter in groupby(run, key=lambda m: kinds[(m.date, m.session)]):
                part = list(part_iter)
                first, last = first_last(part)
                yield self.finding(
                    ctx,
                    pupil_id=pupil.id,
                    first=first,
                    last=last,
                    what=KINDS[kind],
                    count=len(part),
                    discriminator=kind,
                    evidence={
                        "kind": kind,
                        "codes": sorted({m.code for m in part}),
                        "starting_day": pupil.starting_day.isoformat()
                        if pupil.starting_day
                        else None,
                        "leaving_date": pupil.leaving_date.isoformat()
                        if pupil.leaving_date
                        else None,
                    },
                )
