"""The context's per-session views agree whichever way they are built.

``ScanContext.session_codes`` and ``session_marks`` either read the index of every mark's pupils
(built once a rule needs it) or, before that, take a set union of the year's marks and bisect
each pupil's marks for the session: a nightly scan where only MRK005 asks. Both must give the
same codes and the same marks, on a generated school's year with its injected closure breaches.
"""

from __future__ import annotations

from datetime import date

from support.generated_context import context

from registerwatch.simulator.generate import generate_school
from registerwatch.validators import ScanContext


def _context() -> ScanContext:
    return context(generate_school(2025, 80, as_of=date(2025, 12, 12)))


def test_session_views_without_the_index_equal_those_from_it() -> None:
    lean, indexed = _context(), _context()
    # the index of every mark's pupils, built first as a full scan's rules build it
    assert isinstance(indexed.pupils_with_off_session_marks, frozenset)
    assert "_pupils_by_mark" in indexed.__dict__
    codes = lean.session_codes
    assert "_pupils_by_mark" not in lean.__dict__
    assert codes == indexed.session_codes
    assert len(codes) > 100
    for day, session in sorted(codes)[::7]:
        assert lean.session_marks(day, session) == indexed.session_marks(day, session)
        assert lean.session_marks(day, session)  # a session in the codes has marks
    assert "_pupils_by_mark" not in lean.__dict__
    # a session nobody is marked on gives nothing either way
    assert lean.session_marks(date(2025, 8, 2), min(s for _, s in codes)) == ()
    assert indexed.session_marks(date(2025, 8, 2), min(s for _, s in codes)) == ()
