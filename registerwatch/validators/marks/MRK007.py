"""MRK007 present-code-wrong-session."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from registerwatch.schema import Finding, Pupil, Session, Severity
from registerwatch.validators.base import Rule, session_ref
from registerwatch.validators.context import ScanContext
from registerwatch.validators.folding import CodeMarksFold, check_by_folding
from registerwatch.validators.lean_marks import SessionMark

# reg 10(2) table 1: '/' is the morning's present code, '\' the afternoon's.
WRONG_SESSION = {"/": Session.PM, "\\": Session.AM}


def _wrong_session(mark: SessionMark) -> bool:
    return mark.code in WRONG_SESSION and mark.session is WRONG_SESSION[mark.code]


class _WrongSessionMarks(CodeMarksFold):
    """The pupil's present codes of the other session, up to the last day of data (present
    codes are most marks: the state keeps only the wrong ones)."""

    def select(
        self, ctx: ScanContext, pupil: Pupil, marks: Sequence[SessionMark]
    ) -> list[SessionMark]:
        if marks is ctx.marks_by_pupil.get(pupil.id):
            # asked once per distinct (date, session, code) of the school, not per mark
            return ctx.marks_where(pupil.id, "MRK007", _wrong_session)
        return [m for m in marks if _wrong_session(m)]

    def keeps(self, ctx: ScanContext, mark: SessionMark) -> bool:
        return _wrong_session(mark)


class PresentCodeWrongSession(Rule):
    """A present code of the other session: `/` on an afternoon or `\\` on a morning.

    What it checks
    --------------
    Every mark of the school year up to the day before the scan coded `/` on an afternoon
    session or `\\` on a morning session. One **warning** per pupil, from the first such entry
    to the last, with their number; it grows while more are entered and closes when they are
    amended.

    Why it matters
    --------------
    The regulations give each session its own present code; the register is a legal record and
    an entry in it should be the one the table gives. The pupil was present either way, so
    attendance figures do not change (hence a warning), but a wrong symbol usually means the
    entry was keyed by hand or imported from another system and deserves a look.

    Example
    -------
    Pupil `s1:4012` is `/` on 12 November 2025 PM: one warning, 2025-11-12 PM.

    How to fix
    ----------
    Amend the entry to the session's present code (`/` morning, `\\` afternoon), and check how
    it was entered.

    References
    ----------
    - SI 2024/208 reg 10(2) table 1 (VERIFIED): `/` present in the morning
      session, `\\` present in the afternoon session.
    """

    code = "MRK007"
    name = "present-code-wrong-session"
    title = "Pupil {pupil} has {count} present code(s) of the other session, from {first} to {last}"
    severity = Severity.WARNING
    citation = "SI 2024/208 reg 10(2) table 1"
    fix_hint = "Amend to '/' in the morning and '\\' in the afternoon"

    fold = _WrongSessionMarks()

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        yield from check_by_folding(ctx, self.fold)

    def judge(
        self, ctx: ScanContext, pupil: Pupil, marks: Sequence[SessionMark]
    ) -> Iterator[Finding]:
        """The pupil's finding from their present codes of the other session."""
        start, _ = ctx.school_year
        if not ctx.on_roll_in(pupil, start, ctx.as_of):
            return
        wrong = [m for m in marks if start <= m.date <= ctx.data_end]
        if not wrong:
            return
        first = session_ref(wrong[0].date, wrong[0].session)
        last = session_ref(wrong[-1].date, wrong[-1].session)
        yield self.finding(
            ctx,
            pupil_id=pupil.id,
            first=first,
            last=last,
            count=len(wrong),
            episode=None,
            discriminator=f"year:{start.year}",
            evidence={"sessions": len(wrong)},
        )
