"""REG003 register-closed-late."""

from __future__ import annotations

from collections.abc import Iterator
import math
from datetime import datetime, timedelta

from registerwatch.schema import Finding, Register, Severity
from registerwatch.validators.base import Rule, session_ref, session_text
from registerwatch.validators.context import ScanContext
from registerwatch.validators.registers._common import group_on_roll


class RegisterClosedLate(Rule):
    """A register was completed after the school's register close time.

    What it checks
    --------------
    Every register record on a school session before the scan date whose ``completed_at`` is later
    than the session's close time: the calendar's register opening time plus
    ``close_after_minutes`` (30 by default), or plus ``register_close_minutes`` when that setting
    is given. One school-level warning per register, with the minutes past the close time.
    Registers of empty groups and registers on sessions the school was closed are not judged.
    Needs an MIS that exposes register records (see REG001 otherwise).

    Why it matters
    --------------
    The register is taken at the start of the morning session and once in the afternoon, at the
    same time for all pupils (reg 10(1); WTISA para 32), and should not stay open for more than
    30 minutes, the same for every session. A register saved late means marks may have been
    entered after the event, and pupils who arrived after the close should have been coded U.

    Example
    -------
    The school's registers open at 08:45 and close 30 minutes later. Group 9A's register for
    10 November 2025 AM was completed at 09:52: one warning, 37 minutes after the 09:15 close.

    How to fix
    ----------
    Remind the register-taker to save the register within the window; check the late marks (an
    arrival after the close is U, not L). Change the calendar's register times if the school's
    close time is really different.

    References
    ----------
    - SI 2024/208 reg 10(1) (VERIFIED): when registers are taken.
    - Register open no more than 30 minutes, the same for every session (SECONDARY:
      Nottinghamshire attendance toolkit; FFT Education Datalab).
    """

    code = "REG003"
    name = "register-closed-late"
    title = "Register for group {group} on {first} completed {minutes} minutes after it closed"
    severity = Severity.WARNING
    citation = "SI 2024/208 reg 10(1); WTISA (Aug 2024) para 32; 30-minute close (SECONDARY)"
    fix_hint = "Save registers within the register window; code arrivals after the close U"
    settings_used = ("register_close_minutes",)

    def closes(self, ctx: ScanContext, register: Register) -> datetime:
        minutes = ctx.settings.register_close_minutes
        if minutes is None:
            return ctx.calendar.register_closes(register.date, register.session)
        opens = ctx.calendar.register_opens(register.date, register.session)
        return opens + timedelta(minutes=minutes)

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        if not ctx.exposes_registers:
            return  # REG001 says once that register records could not be checked
        for register in sorted(ctx.registers, key=lambda r: (r.date, r.session, r.group)):
            if register.completed_at is None or register.date > ctx.data_end:
                continue
            if not ctx.is_school_session(register.date, register.session):
                continue
            if not group_on_roll(ctx, register.group, register.date):
                continue
            closes = self.closes(ctx, register)
            if register.completed_at <= closes:
                continue
            late = math.ceil((register.completed_at - closes).total_seconds() / 60)
            ref = session_ref(register.date, register.session)
            yield self.finding(
                ctx, first=ref, discriminator=register.group, group=register.group, minutes=late,
                evidence={"group": register.group, "session": session_text(ref),
                          "closes_at": closes.isoformat(),
                          "completed_at": register.completed_at.isoformat(),
                          "minutes_late": late})
