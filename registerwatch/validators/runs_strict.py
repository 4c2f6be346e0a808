"""A day classifier for runs that only the whole school's non-school days may interrupt.

``runs.classify_all_sessions`` skips a day whose codes are all not possible sessions (Y1, D,
X...): right for statistics, wrong where the run is about the pupil (20 days of absence for a
deletion, a suspension, a new pupil who never arrived): a day the pupil could not come because
the LA's transport failed (Y1), or spent at another school (D), is not a day of that absence.
Here only a whole-school unexpected closure (Y4 on every open session, as the calendar has it)
is skipped; any other code ends the run.
"""

from __future__ import annotations

from registerwatch.schema import Session
from registerwatch.validators.context import DayMarks, ScanContext
from registerwatch.validators.runs import Classifier, DayKind


def classify_own_codes(ctx: ScanContext, codes: frozenset[str]) -> Classifier:
    """A day counts when every open session not closed unexpectedly (Y4 in the calendar) is
    coded in ``codes``; a day with no other session is skipped; anything else breaks."""

    def classify(
        day: DayMarks, open_sessions: tuple[Session, ...]
    ) -> tuple[DayKind, tuple[Session, ...]]:
        sessions = tuple(s for s in open_sessions if ctx.calendar.closure_code(day.date, s) != "Y4")
        if not sessions:
            return DayKind.SKIP, ()
        if all(day.codes.get(s) in codes for s in sessions):
            return DayKind.COUNT, sessions
        return DayKind.BREAK, ()

    return classify
