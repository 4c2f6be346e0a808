"""What the register rules share: which sessions they look at and who should be on each register."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date

from registerwatch.schema import ClosureKind, Pupil, Session
from registerwatch.validators.context import ScanContext


def checked_sessions(ctx: ScanContext) -> list[tuple[date, Session]]:
    """School sessions from ``registers_checked_from`` (default: the first term day) to the
    last day before the scan (today's registers are not due yet)."""
    start = ctx.settings.registers_checked_from or ctx.calendar.first_day
    return ctx.sessions_between(max(start, ctx.calendar.first_day), ctx.data_end)


def checked_sessions_of(
    ctx: ScanContext, sessions: Iterable[tuple[date, Session]]
) -> list[tuple[date, Session]]:
    """Those of ``sessions`` that ``checked_sessions`` holds, in order: a nightly scan's delta,
    without listing the year's sessions."""
    start = max(
        ctx.settings.registers_checked_from or ctx.calendar.first_day, ctx.calendar.first_day
    )
    return sorted(
        (day, session)
        for day, session in sessions
        if start <= day <= ctx.data_end and session in ctx.open_sessions(day)
    )


def group_on_roll(ctx: ScanContext, group: str, day: date) -> tuple[Pupil, ...]:
    """The group's non-boarders on roll on ``day`` (reg 10(1): boarders are not registered)."""
    return ctx.group_on_roll(group, day)


def groups_on_roll(ctx: ScanContext, day: date) -> Iterator[tuple[str, tuple[Pupil, ...]]]:
    """Every group with at least one pupil on roll on ``day``: empty groups have no register."""
    yield from ctx.groups_on_roll(day)


def group_closed(ctx: ScanContext, pupils: tuple[Pupil, ...], day: date, session: Session) -> bool:
    """Every pupil of the group is inside a planned partial closure on the session."""
    cal = ctx.calendar
    return cal.has_group_closures(day, session) and all(
        (c := cal.group_closure(day, session, p.nc_year, p.reg_group)) is not None
        and c.kind is ClosureKind.PLANNED
        for p in pupils
    )
