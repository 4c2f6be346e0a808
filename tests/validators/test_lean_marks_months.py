"""``LazyMarks`` finds a month in a pupil's summary text without splitting the year: the
marked pupils of a session and the marks after a session, wherever the month lies in the text
(first, in the middle, last, absent) and for token lists alike."""

from __future__ import annotations

from datetime import date

import pytest

from registerwatch.schema import Session
from registerwatch.validators.lean_marks import LazyMarks, MarkInterner, RawMarks

SEPTEMBER = "2025-09-30AM/,2025-09-30PMN"
OCTOBER = "2025-10-01AM/,2025-10-01PML:12,2025-10-02AM/"
NOVEMBER = "2025-11-03AMU,2025-11-03PM/"
SESSIONS = [
    (date(2025, 9, 30), Session.PM),
    (date(2025, 10, 1), Session.PM),
    (date(2025, 10, 2), Session.AM),
    (date(2025, 10, 2), Session.PM),  # nobody marked
    (date(2025, 11, 3), Session.AM),
    (date(2025, 12, 1), Session.AM),  # a month nobody has
]
POINTS = [
    (date(2025, 9, 1), "AM"),
    (date(2025, 9, 30), "AM"),
    (date(2025, 10, 1), "AM"),
    (date(2025, 10, 2), "AM"),
    (date(2025, 10, 31), "PM"),
    (date(2025, 11, 3), "PM"),
]


def raw_marks() -> dict[str, RawMarks]:
    return {
        "last": ";".join([SEPTEMBER, NOVEMBER, OCTOBER]),
        "middle": ";".join([NOVEMBER, OCTOBER, SEPTEMBER]),
        "first": ";".join([OCTOBER, SEPTEMBER]),
        "alone": OCTOBER,
        "without": ";".join([SEPTEMBER, NOVEMBER]),
        "listed": [*NOVEMBER.split(","), *SEPTEMBER.split(","), *OCTOBER.split(",")],
    }


def decoded() -> dict[str, list[tuple[date, Session, str]]]:
    """Every pupil's marks decoded in full, the oracle."""
    interner = MarkInterner()
    out = {}
    for pid, raw in raw_marks().items():
        tokens = raw.replace(";", ",").split(",") if isinstance(raw, str) else raw
        out[pid] = [(m.date, m.session, m.code) for m in interner.decode(tokens)]
    return out


def test_the_pupils_marked_on_a_session_are_found_wherever_its_month_lies() -> None:
    expected = decoded()

    marked = LazyMarks(raw_marks()).marked_on(SESSIONS)

    assert set(marked) == set(SESSIONS)
    for day, session in SESSIONS:
        assert marked[(day, session)] == {
            pid for pid, marks in expected.items() if (day, session) in {m[:2] for m in marks}
        }
    assert marked[(date(2025, 10, 1), Session.PM)] == {"last", "middle", "first", "alone", "listed"}
    assert marked[(date(2025, 10, 2), Session.PM)] == frozenset()
    assert marked[(date(2025, 12, 1), Session.AM)] == frozenset()


@pytest.mark.parametrize("point", POINTS)
def test_the_marks_after_a_session_come_from_that_month_on(point: tuple[date, str]) -> None:
    expected = decoded()
    lazy = LazyMarks(raw_marks())

    for pid, marks in expected.items():
        after = [(m.date, m.session, m.code) for m in lazy.after(pid, point)]
        assert after == [m for m in marks if m[:2] > point], pid
    assert not lazy._decoded  # no pupil's whole year decoded
