"""REG003 register-closed-late."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from registerwatch.schema import Finding, Pupil, Register, Severity
from registerwatch.validators.base import Rule, session_ref, session_text
from registerwatch.validators.context import ScanContext
from registerwatch.validators.delta import RuleRun, ScanDelta
from registerwatch.validators.registers._common import group_on_roll


class RegisterClosedLate(Rule):
    """A register was completed after the school's register close time.

    What it checks
    --------------
    Every register record on a school session before the scan date whose ``completed_at`` is later
    than the session's close time: the register's opening time plus ``close_after_minutes`` (30
    by default), or plus ``register_close_minutes`` when that setting is given. Register times
    may differ by year group or registration group (``register_times.by_group``: Wenlock takes
    afternoon registers at 12:45 for Years 3-4 and 13:30 for Years 5-6); a group's year is the
    commonest NC year of its pupils on roll. One school-level **info** finding per register, with
    the minutes past the close time.

    A late save is not itself the breach: the breach is an arrival after the close recorded as
    L rather than U, which MRK006 judges from the minutes late. The late save is a pointer to
    check those marks. Registers of empty groups and registers on sessions the school was
    closed are not judged. Needs an MIS that exposes register records (see REG001 otherwise).

    Why it matters
    --------------
    The register is taken at the start of the morning session and once in the afternoon, at the
    same time for all pupils of a group (reg 10(1); WTISA para 32), and should not stay open for
    more than 30 minutes. A register saved late may mean marks were entered after the event,
    and pupils who arrived after the close should have been coded U.

    Example
    -------
    The school's registers open at 08:45 and close 30 minutes later. Group 9A's register for
    10 November 2025 AM was completed at 09:52: one info finding, 37 minutes after the 09:15
    close. Group 5B (Year 5) opens its PM register at 13:30: a save at 13:55 is on time.

    How to fix
    ----------
    Check the late marks (an arrival after the close is U, not L) and remind the register-taker
    to save within the window. If the close time is really different, change the calendar's
    register times (a window longer than 30 minutes is itself against the guidance).

    References
    ----------
    - SI 2024/208 reg 10(1) (VERIFIED): when registers are taken.
    - Register open no more than 30 minutes (SECONDARY: Nottinghamshire quoting WTISA; FFT
      Education Datalab). a late save is not the breach; per-group times
      (Wenlock).
    """

    code = "REG003"
    name = "register-closed-late"
    title = (
        "Register for group {group} on {first} completed {minutes} minutes after it closed: "
        "check that arrivals after the close are coded U, not L"
    )
    severity = Severity.INFO
    citation = "SI 2024/208 reg 10(1); WTISA (Aug 2024) para 32; 30-minute close (SECONDARY)"
    fix_hint = "Save registers within the register window; code arrivals after the close U"
    settings_used = ("register_close_minutes",)

    def closes(
        self, ctx: ScanContext, register: Register, pupils: tuple[Pupil, ...] = ()
    ) -> datetime:
        """The close time of this group's register: its year group's times where they differ
        (``register_times.by_group``), the setting's window where one is given."""
        nc_year = _main_year(ctx, pupils)
        minutes = ctx.settings.register_close_minutes
        # the close time rests only on the group's register times: most groups share them, so
        # a time (a zoned datetime) is built once per session and set of times, not per register
        times = ctx.calendar.calendar.register_times.for_group(nc_year, register.group)
        cache: dict[tuple[Any, ...], datetime] = ctx._cache.setdefault("reg003_closes", {})
        key = (register.date, register.session, times, minutes)
        closes = cache.get(key)
        if closes is None:
            if minutes is None:
                closes = ctx.calendar.register_closes(
                    register.date, register.session, nc_year, register.group
                )
            else:
                opens = ctx.calendar.register_opens(
                    register.date, register.session, nc_year, register.group
                )
                closes = opens + timedelta(minutes=minutes)
            cache[key] = closes
        return closes

    reads_registers = True

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        return self._findings(ctx, ctx.registers)

    def run(self, ctx: ScanContext) -> RuleRun:
        return RuleRun(list(self.check(ctx)), state={})

    def run_delta(self, ctx: ScanContext, delta: ScanDelta, state: Any) -> RuleRun | None:
        """Only the registers of the delta's sessions (the nightly context holds no others): a
        finding is one register, and nothing in it moves with ``as_of``."""
        if not delta.localised:
            return None
        registers = [r for r in ctx.registers if (r.date, r.session) in delta.sessions]
        return RuleRun(
            list(self._findings(ctx, registers)),
            state={},
            covers=lambda f: delta.covers(f.first_session),
        )

    def _findings(self, ctx: ScanContext, registers: Iterable[Register]) -> Iterator[Finding]:
        ctx._cache.pop("reg003_main_year", None)
        if not ctx.exposes_registers:
            return  # REG001 says once that register records could not be checked
        for register in sorted(registers, key=lambda r: (r.date, r.session, r.group)):
            if register.completed_at is None or register.date > ctx.data_end:
                continue
            if not ctx.is_school_session(register.date, register.session):
                continue
            pupils = group_on_roll(ctx, register.group, register.date)
            if not pupils:
                continue
            closes = self.closes(ctx, register, pupils)
            if register.completed_at <= closes:
                continue
            late = math.ceil((register.completed_at - closes).total_seconds() / 60)
            ref = session_ref(register.date, register.session)
            yield self.finding(
                ctx,
                first=ref,
                discriminator=register.group,
                group=register.group,
                minutes=late,
                evidence={
                    "group": register.group,
                    "session": session_text(ref),
                    "closes_at": closes.isoformat(),
                    "completed_at": register.completed_at.isoformat(),
                    "minutes_late": late,
                },
            )


def _main_year(ctx: ScanContext, pupils: tuple[Pupil, ...]) -> str | None:
    """The NC year most of the group's pupils are in (cached per distinct pupils tuple: the
    context gives a steady group the same tuple every day)."""
    cache = ctx._cache.setdefault("reg003_main_year", {})
    key = id(pupils)
    if key not in cache:
        years = Counter(p.nc_year for p in pupils if p.nc_year)
        cache[key] = (years.most_common(1)[0][0] if years else None, pupils)
    year: str | None = cache[key][0]
    return year
