"""REG001 register-not-taken."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

from registerwatch.schema import Finding, Session, Severity
from registerwatch.validators.base import Rule, session_ref, session_text
from registerwatch.validators.context import ScanContext
from registerwatch.validators.delta import RuleRun, ScanDelta
from registerwatch.validators.registers._common import (
    checked_sessions,
    checked_sessions_of,
    group_closed,
    groups_on_roll,
)


class RegisterNotTaken(Rule):
    """A registration group had pupils on roll for a school session but no register was taken.

    What it checks
    --------------
    For every school session from the first term day (or ``registers_checked_from``) to the scan
    date, and every registration group with at least one non-boarder on roll that day: the MIS has
    no register record for the group and session, and no pupil of the group has a mark for it.
    One finding per group and session (school-level, the group in the evidence). Planned closures,
    weekends, holidays and empty groups are never checked; an unexpected closure (Y4) is, since its
    register is still taken, with Y4.

    Where the MIS exposes no register records (iSAMS, GO 4 Schools), the rule works from the
    marks: a group with pupils on roll and not one mark on a session on which other groups were
    marked is an **error** naming the group and the session, and says it was inferred from the
    marks. It also says once per school, at info level, that register records are not exposed
    (REG003 cannot run; REG002 still finds pupils left unmarked from the marks alone). A group
    the calendar closes on the session (a planned partial closure) is not checked.

    Why it matters
    --------------
    Attendance must be recorded at the beginning of each morning session and once during each
    afternoon session (SI 2024/208 reg 10(1)). A session with no register has no legal record of
    who was in school: a safeguarding gap as well as a breach.

    Example
    -------
    Group 7B has 28 pupils on roll on Tuesday 4 November 2025. There is no 7B register for the
    afternoon and none of the 28 has a PM mark: one error, "Register not taken for group 7B on
    2025-11-04 PM".

    How to fix
    ----------
    Take the register in the MIS for that session, recording each pupil with the code that applies
    (if it is being completed after the event, record the amendment with its reason). If the group
    did not meet because the school was closed, add the closure to the calendar.

    References
    ----------
    - SI 2024/208 reg 10(1) (VERIFIED): attendance recorded at the beginning of each morning
      session and once during each afternoon session.
    - WTISA (August 2024) para 32 (SECONDARY, as quoted): the register is taken at the same time
      for all registered pupils.
    """

    code = "REG001"
    name = "register-not-taken"
    title = "Register not taken for group {group} on {first}"
    severity = Severity.ERROR
    citation = "SI 2024/208 reg 10(1); WTISA (Aug 2024) para 32"
    fix_hint = "Take the register for the session in the MIS, or add the closure to the calendar"
    settings_used = ("registers_checked_from",)

    NOT_EXPOSED = (
        "Register records are not exposed by this MIS: whether each register was "
        "taken (REG001) is inferred from the marks, and whether it closed on time "
        "(REG003) could not be checked"
    )
    INFERRED = (
        "Register not taken for group {group} on {first} (inferred from the marks: no "
        "pupil of the group has a mark on a session other groups were marked)"
    )

    reads_registers = True

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        return self._findings(ctx, checked_sessions(ctx))

    def run(self, ctx: ScanContext) -> RuleRun:
        return RuleRun(list(self.check(ctx)), state={})

    def run_delta(self, ctx: ScanContext, delta: ScanDelta, state: Any) -> RuleRun | None:
        """Only the delta's sessions: a finding is one group on one session, and nothing in
        it moves with ``as_of``."""
        if not delta.localised:
            return None
        sessions = checked_sessions_of(ctx, delta.sessions)
        return RuleRun(
            list(self._findings(ctx, sessions)),
            state={},
            covers=lambda f: f.first_session is None or delta.covers(f.first_session),
        )

    def _findings(
        self, ctx: ScanContext, sessions: Iterable[tuple[date, Session]]
    ) -> Iterator[Finding]:
        exposed = ctx.exposes_registers
        if not exposed:
            yield self.finding(
                ctx,
                severity=Severity.INFO,
                discriminator="registers-not-exposed",
                template=self.NOT_EXPOSED,
                evidence={"exposes_registers": False},
            )
        for day, session in sessions:
            marked = ctx.marked_pupils(day, session)
            if not exposed and not marked:
                continue  # nobody marked: a closure the calendar lacks, not one group's breach
            for group, pupils in groups_on_roll(ctx, day):
                if exposed and (group, day, session) in ctx.registers_by_key:
                    continue
                if not ctx.group_ids_on_roll(group, day).isdisjoint(marked):
                    continue  # marks without a register record: the register was taken
                if group_closed(ctx, pupils, day, session):
                    continue  # a planned partial closure of this group: no register is due
                ref = session_ref(day, session)
                yield self.finding(
                    ctx,
                    first=ref,
                    discriminator=group,
                    group=group,
                    template=None if exposed else self.INFERRED,
                    evidence={
                        "group": group,
                        "session": session_text(ref),
                        "pupils_on_roll": len(pupils),
                        "inferred_from_marks": not exposed,
                    },
                )
