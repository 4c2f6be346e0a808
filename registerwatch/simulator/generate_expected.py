"""The findings the rate rules must report on a breach pupil, computed from the marks the
generator emitted (ATT001-ATT004, with docs/simulator.md's semantics), MRK001's runs of
overdue N, and the guard that each breach pupil crosses the thresholds it was built for."""

from __future__ import annotations

from datetime import date, timedelta

from registerwatch.codes import lookup
from registerwatch.simulator.generate_marks import SessionGrid
from registerwatch.simulator.generate_people import PupilDraft
from registerwatch.simulator.model import ExpectedFinding

UNAUTHORISED = frozenset("GNOU")
PENALTY_CODES = frozenset("GOU")  # WTISA as quoted by Wenlock 5.2

# Rolling windows, in school weeks, ending with the week of the last school day before as_of.
PENALTY_WINDOW_WEEKS = 10  # ATT001 (SI 2024/210, WTISA national framework: SECONDARY)
# INFERRED (no source defines "attendance falls"): ATT004 compares the last 4 school weeks with
# the rest of the school year and fires on a fall of 10 percentage points or more, when the
# earlier period has at least 20 possible sessions.
EHCP_RECENT_WEEKS = 4
EHCP_FALL_POINTS = 10.0
EHCP_MIN_EARLIER_SESSIONS = 20


def window_start_day(grid: SessionGrid, weeks: int) -> int:
    """First data day inside the ``weeks`` school weeks ending with as_of - 1 day's week."""
    monday = grid.calendar.rolling_school_weeks_start(grid.as_of - timedelta(days=1), weeks)
    for d, day in enumerate(grid.days):
        if day >= monday:
            return d
    return grid.last


def pupil_codes(pupil: PupilDraft, grid: SessionGrid) -> list[tuple[int, str]]:
    """(session index, code) of the pupil's marks on school sessions while on roll."""
    entries, default = pupil.entries, grid.default_code
    return [(i, entries[i].code if i in entries else default[i]) for i in grid.roll(pupil)]


def rate_findings(pupil: PupilDraft, grid: SessionGrid) -> list[ExpectedFinding]:
    """ATT001, ATT002 and ATT003 for one pupil, exactly as docs/simulator.md defines them."""
    found: list[ExpectedFinding] = []
    codes = pupil_codes(pupil, grid)
    possible = [(i, c) for i, c in codes if lookup(c, grid.dates[i]).possible]
    absent = sum(1 for i, c in possible if lookup(c, grid.dates[i]).is_absence)
    start = window_start_day(grid, PENALTY_WINDOW_WEEKS)
    # G, O and U count; N is provisional: reaching 10 only with N is an info finding
    unauthorised = [i for i, c in codes if c in PENALTY_CODES and grid.day_of[i] >= start]
    with_n = [i for i, c in codes if c in UNAUTHORISED and grid.day_of[i] >= start]
    counted = unauthorised if len(unauthorised) >= 10 else with_n
    if len(counted) >= 10:
        found.append(
            ExpectedFinding(
                "ATT001",
                pupil.id,
                grid.ref(counted[0]),
                grid.ref(counted[-1]),
                f"{len(counted)} unauthorised sessions in "
                f"{PENALTY_WINDOW_WEEKS} school weeks"
                + ("" if counted is unauthorised else " (N provisional)"),
            )
        )
    if possible:
        rate = 100.0 * absent / len(possible)
        span = (grid.ref(possible[0][0]), grid.ref(possible[-1][0]))
        if rate >= 10.0:
            found.append(
                ExpectedFinding(
                    "ATT002", pupil.id, *span, f"absence {rate:.1f}% of {len(possible)} sessions"
                )
            )
        if rate >= 50.0:
            found.append(
                ExpectedFinding(
                    "ATT003", pupil.id, *span, f"absence {rate:.1f}% of {len(possible)} sessions"
                )
            )
    return found


def n_overdue_runs(grid: SessionGrid, ids: list[int]) -> list[tuple[int, int, date]]:
    """MRK001's findings for consecutive N sessions ``ids``: runs of sessions past their
    deadline (error) or due on as_of (warning), each with its first session's due date."""
    runs: list[tuple[int, int, date]] = []
    status: str | None = None
    for i in ids:
        due = grid.calendar.add_deadline_school_days(grid.dates[i], 5)
        now = "error" if grid.as_of > due else "warning" if grid.as_of == due else None
        if now is not None and now == status:
            runs[-1] = (runs[-1][0], i, runs[-1][2])
        elif now is not None:
            runs.append((i, i, due))
        status = now
    return runs


def ehcp_fall(pupil: PupilDraft, grid: SessionGrid) -> ExpectedFinding | None:
    """ATT004 (INFERRED semantics, see EHCP_* above)."""
    start = window_start_day(grid, EHCP_RECENT_WEEKS)
    earlier: list[int] = []
    recent: list[int] = []
    for i, code in pupil_codes(pupil, grid):
        row = lookup(code, grid.dates[i])
        if row.possible:
            (recent if grid.day_of[i] >= start else earlier).append(i)
    if len(earlier) < EHCP_MIN_EARLIER_SESSIONS or not recent:
        return None

    def rate(ids: list[int]) -> float:
        attended = 0
        for i in ids:
            code = pupil.entries[i].code if i in pupil.entries else grid.default_code[i]
            attended += lookup(code, grid.dates[i]).attendance
        return 100.0 * attended / len(ids)

    before, now = rate(earlier), rate(recent)
    if before - now < EHCP_FALL_POINTS:
        return None
    return ExpectedFinding(
        "ATT004",
        pupil.id,
        grid.ref(recent[0]),
        grid.ref(recent[-1]),
        f"attendance {before:.1f}% before, {now:.1f}% in the last {EHCP_RECENT_WEEKS} school weeks",
    )


def check_intent(expected: list[ExpectedFinding], chosen: dict[str, PupilDraft]) -> None:
    """Guard the design: each rate-rule pupil crosses the threshold it was built for and stays
    under the ones it was built to stay under. (Whether a long absence also reaches 10% depends
    on how much of the year as_of covers; rate_findings lists that either way.)"""
    rules: dict[str, set[str]] = {}
    for f in expected:
        if f.pupil_id is not None:
            rules.setdefault(f.pupil_id, set()).add(f.rule)
    # role: (rules it must produce, rules it must not produce)
    design = {
        "ATT001": ({"ATT001"}, {"ATT003"}),
        "ATT002": ({"ATT002"}, {"ATT001", "ATT003"}),
        "ATT003": ({"ATT002", "ATT003"}, {"ATT001"}),
        "ATT004": ({"ATT004"}, {"ATT001", "ATT002", "ATT003"}),
        "LAR002": ({"LAR002", "ATT001"}, {"ATT003"}),
        "LAR003": ({"LAR003", "ATT001", "MRK001"}, {"ATT003"}),
        "LAR003-referred": ({"ATT001"}, {"ATT003"}),
    }
    for role, (must, must_not) in design.items():
        got = rules.get(chosen[role].id, set())
        if not must <= got or got & must_not:
            raise AssertionError(
                f"breach pupil {role} would produce {sorted(got)}: designed "
                f"for {sorted(must)} and none of {sorted(must_not)}"
            )
