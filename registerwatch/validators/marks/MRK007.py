"""MRK007 present-code-wrong-session."""

from __future__ import annotations

from collections.abc import Iterator

from registerwatch.schema import Finding, Session, Severity
from registerwatch.validators.base import Rule, session_ref
from registerwatch.validators.context import ScanContext

# reg 10(2) table 1: '/' is the morning's present code, '\' the afternoon's.
WRONG_SESSION = {"/": Session.PM, "\\": Session.AM}


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

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        start, _ = ctx.school_year
        for pupil in sorted(ctx.pupils_this_year, key=lambda p: p.id):
            wrong = ctx.marks_where(
                pupil.id,
                f"MRK007:{start}:{ctx.data_end}",
                lambda m: (
                    m.code in WRONG_SESSION
                    and m.session is WRONG_SESSION[m.code]
                    and start <= m.date <= ctx.data_end
                ),
            )
            if not wrong:
                continue
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
