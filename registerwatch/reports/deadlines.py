"""Deadlines as a data manager works them: open findings by how many days past their due date
(and the week still to come), and a reason on every finding that has no due date.

Days are calendar days from the due date to the report day (``as_of - due``): a due date is a
calendar date, and "8 days overdue" should be what the reader counts on a wall calendar. On the
due day itself the school still has the day (the scan's meaning), so it is "due today", not
overdue.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from registerwatch.reports.model import DueBucket, FindingRow
from registerwatch.schema import Severity

# (label, least days past due, most days past due or None); negative: the due date is to come.
DUE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("due in 1-7 days", -7, -1),
    ("due today", 0, 0),
    ("1-7 days overdue", 1, 7),
    ("8-14 days overdue", 8, 14),
    ("15-28 days overdue", 15, 28),
    ("over 28 days overdue", 29, None),
)

# Why a finding has no due date. The rules give a deadline where the law or guidance sets one
# (N codes, LA returns); any other error is a register already wrong (so: now), and a warning or
# info a pattern to look at. The page says which, rather than leave the cell empty.
NO_DUE_NOTES = {
    Severity.ERROR: "no deadline: fix when found",
    Severity.WARNING: "no deadline: check when found",
    Severity.INFO: "no deadline: for information",
}


def due_note(severity: Severity, due: date | None) -> str | None:
    """The reason shown instead of a due date (None when there is one)."""
    return None if due is not None else NO_DUE_NOTES[severity]


def due_buckets(rows: Sequence[FindingRow], as_of: date) -> tuple[DueBucket, ...]:
    """Every bucket in order (zeros included, so the chart's axis is the same every day);
    findings due more than a week ahead, or with no due date, are in none."""
    counts: dict[str, dict[Severity, int]] = {label: {} for label, _, _ in DUE_BUCKETS}
    for row in rows:
        if row.due is None:
            continue
        days = (as_of - row.due).days
        for label, low, high in DUE_BUCKETS:
            if days >= low and (high is None or days <= high):
                counts[label][row.severity] = counts[label].get(row.severity, 0) + 1
                break
    return tuple(
        DueBucket(
            label=label,
            min_days=low,
            max_days=high,
            errors=counts[label].get(Severity.ERROR, 0),
            warnings=counts[label].get(Severity.WARNING, 0),
            info=counts[label].get(Severity.INFO, 0),
        )
        for label, low, high in DUE_BUCKETS
    )
