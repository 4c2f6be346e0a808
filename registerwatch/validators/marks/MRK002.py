"""MRK002 invalid-code-for-date."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from itertools import groupby

from registerwatch.codes import REGULATIONS_2006_IN_FORCE, REGULATIONS_2024_IN_FORCE, valid_on
from registerwatch.schema import Finding, Pupil, Session, Severity
from registerwatch.validators.base import Rule
from registerwatch.validators.context import ScanContext
from registerwatch.validators.folding import CodeMarksFold, check_by_folding
from registerwatch.validators.lean_marks import SessionMark
from registerwatch.validators.runs import first_last, mark_runs

# validity depends only on the code and which regulations were in force
_VALID: dict[tuple[str, bool, bool], bool] = {}


def _valid(code: str, day: date) -> bool:
    key = (code, day >= REGULATIONS_2024_IN_FORCE, day >= REGULATIONS_2006_IN_FORCE)
    result = _VALID.get(key)
    if result is None:
        result = _VALID[key] = valid_on(code, day)
    return result


class _InvalidMarks(CodeMarksFold):
    """The pupil's marks, of any date, with a code not in force on their date: rare."""

    complete_days_only = False  # a wrong code is wrong on any date, planned ones too
    needs_record = False  # judged without the pupil's record

    def select(
        self, ctx: ScanContext, pupil: Pupil, marks: Sequence[SessionMark]
    ) -> list[SessionMark]:
        if marks is not ctx.marks_by_pupil.get(pupil.id):
            return [m for m in marks if not _valid(m.code, m.date)]
        invalid: list[SessionMark] = []
        for code, coded in ctx.marks_by_code(pupil.id).items():
            first_day, last_day = coded[0].date, coded[-1].date
            in_force = REGULATIONS_2024_IN_FORCE
            one_era = (first_day >= in_force) == (last_day >= in_force)
            if one_era and _valid(code, first_day) and _valid(code, last_day):
                continue  # one era, valid in it: every mark of this code is valid
            invalid.extend(m for m in coded if not _valid(m.code, m.date))
        invalid.sort(key=lambda m: (m.date, m.session == Session.PM))
        return invalid

    def keeps(self, ctx: ScanContext, mark: SessionMark) -> bool:
        return not _valid(mark.code, mark.date)


class InvalidCodeForDate(Rule):
    """A mark's code is not a national attendance code on the mark's date.

    What it checks
    --------------
    Every mark, against the code table in force on its date (``codes.valid_on``): the 2006 codes
    (H, F, J, Y and the old meanings) stop on 18 August 2024; the codes new in 2024 (C1, C2, J1,
    K, Q, Y1-Y7) start on 19 August 2024, when SI 2024/208 came into force. Consecutive school
    sessions of the same invalid code for a pupil form one finding.

    Why it matters
    --------------
    The register must use the national codes the regulations set out (reg 10). A legacy code left
    by an MIS that was not updated, or a 2024 code back-dated into 2023/24, is not a lawful entry
    and is miscounted in the DfE's statistics and the census.

    Example
    -------
    Pupil `s1:4012` has H (the 2006 "authorised holiday") on 15 and 16 September 2025, AM and PM:
    one error, 2025-09-15 AM to 2025-09-16 PM, code H.

    How to fix
    ----------
    Amend each entry to the 2024 code that fits the facts (an unagreed holiday is G; leave agreed
    in exceptional circumstances is C), with the amendment's reason. If the MIS shows a local code,
    check the adapter's code mapping.

    References
    ----------
    - SI 2024/208 reg 10 (codes; in force 19 August 2024, VERIFIED from the Explanatory Note).
    - Retired codes H, F, J, Y and the new K, Q, Y1-Y7 (SECONDARY: School Business Services).
    """

    code = "MRK002"
    name = "invalid-code-for-date"
    title = "Code {code} is not a national code on {first}; {count} session(s) to {last}"
    severity = Severity.ERROR
    citation = "SI 2024/208 reg 10 (in force 19 Aug 2024); SI 2006/1751 revoked"
    fix_hint = "Amend the entry to the national code in force on that date"

    fold = _InvalidMarks()

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        yield from check_by_folding(ctx, self.fold)

    def judge(
        self, ctx: ScanContext, pupil: Pupil, invalid: Sequence[SessionMark]
    ) -> Iterator[Finding]:
        """The pupil's findings from their marks with a code not in force on their date."""
        for run in mark_runs(ctx, invalid):
            for code, part_iter in groupby(run, key=lambda m: m.code):
                part = list(part_iter)
                first, last = first_last(part)
                era = (
                    "2006 code used after 18 August 2024"
                    if part[0].date >= REGULATIONS_2024_IN_FORCE
                    else "2024 code used before 19 August 2024"
                )
                yield self.finding(
                    ctx,
                    pupil_id=pupil.id,
                    first=first,
                    last=last,
                    code=code,
                    count=len(part),
                    discriminator=code,
                    evidence={"code": code, "sessions": len(part), "why": era},
                )
