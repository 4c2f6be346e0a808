"""REG002 register-not-saved."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from datetime import date
from typing import Any

from registerwatch.schema import Finding, Session, Severity
from registerwatch.validators.base import Rule, session_ref, session_text
from registerwatch.validators.context import ScanContext, SessionKey
from registerwatch.validators.delta import RuleRun, ScanDelta
from registerwatch.validators.registers._common import (
    checked_sessions,
    checked_sessions_of,
    group_closed,
    groups_on_roll,
)
from registerwatch.validators.runs import session_runs


class RegisterNotSaved(Rule):
    """A register was left unsaved, or pupils were left unmarked, after it should have closed.

    What it checks
    --------------
    Two things, for every school session from the first term day (or ``registers_checked_from``)
    to the scan date; the scan runs after the scan date's registers have closed.

    1. A register record for a group with pupils on roll whose ``completed_at`` is empty: the
       register was opened (or created) and never saved. One school-level finding per register:
       an **error** when pupils are left unmarked, a data-quality **warning** when every pupil
       of the group is marked (the MIS never flagged a register that is in fact complete).
    2. A non-boarder on roll with no mark for a session on which their group's register was taken
       (a register record exists, or another pupil of the group has a mark). Consecutive school
       sessions left unmarked form one finding for the pupil, from the first to the last.

    Pupils the calendar's planned partial closure covers on the session are not expected on the
    register. A group with no register and no marks at all is REG001's, not this rule's, and an entry that
    sync saw deleted is AMD003's. Part 2 needs only marks, so it runs for every MIS.

    Why it matters
    --------------
    Every registered pupil who is not a boarder must be recorded in the register for every session
    (SI 2024/208 reg 10(1)); an unsaved register or a blank entry is a missing legal record, and
    it also feeds wrong statistics to the DfE's daily collection.

    Example
    -------
    Group 8C's register for 5 November 2025 AM was opened at 08:41 and never completed: one error
    for group 8C. Pupil `s1:4012` is on 8C's completed registers but has no mark on 6 November AM
    or PM: one error for the pupil, 2025-11-06 AM to 2025-11-06 PM.

    How to fix
    ----------
    Open the register in the MIS, mark every pupil and save it. If a pupil should not be on the
    register (not yet started, or left), correct their starting day or leaving date instead.

    References
    ----------
    - SI 2024/208 reg 10(1) (VERIFIED): attendance of each registered pupil who is not a boarder
      is recorded at each session.
    - WTISA (August 2024) para 33 (SECONDARY, as quoted): record whether each pupil is present
      and, if not, the national code that applies.
    """

    code = "REG002"
    name = "register-not-saved"
    title = "Pupil {pupil} left unmarked on {count} session(s) from {first} to {last}"
    severity = Severity.ERROR
    citation = "SI 2024/208 reg 10(1); WTISA (Aug 2024) para 33"
    fix_hint = "Mark every pupil on the register and save it in the MIS"
    settings_used = ("registers_checked_from",)

    UNSAVED = "Register for group {group} on {first} was not saved (completed) after it closed"
    UNFLAGGED = (
        "Register for group {group} on {first} was never flagged complete in the MIS, "
        "though every pupil is marked (data quality)"
    )

    reads_registers = True

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        return iter(self.run(ctx).findings)

    def run(self, ctx: ScanContext) -> RuleRun:
        unsaved, unmarked = self._judge(ctx, checked_sessions(ctx))
        return RuleRun(
            [*unsaved, *self._unmarked_findings(ctx, unmarked)], state=_dump_unmarked(unmarked)
        )

    def run_delta(self, ctx: ScanContext, delta: ScanDelta, state: Any) -> RuleRun | None:
        """Only the delta's sessions are judged again. The pupils left unmarked elsewhere come
        from the state (each pupil's unmarked sessions, a handful), and every pupil's runs are
        rebuilt from them: a run that grows across a new day is the same finding."""
        if not delta.localised:
            return None
        sessions = checked_sessions_of(ctx, delta.sessions)
        unsaved, fresh = self._judge(ctx, sessions)
        unmarked: dict[str, list[SessionKey]] = {}
        for pupil_id, keys in _load_unmarked(state).items():
            kept = [key for key in keys if key not in delta.sessions]
            if kept:
                unmarked[pupil_id] = kept
        for pupil_id, keys in fresh.items():
            unmarked[pupil_id] = sorted([*unmarked.get(pupil_id, ()), *keys])
        return RuleRun(
            [*unsaved, *self._unmarked_findings(ctx, unmarked)],
            state=_dump_unmarked(unmarked),
            covers=lambda f: f.pupil_id is not None or delta.covers(f.first_session),
        )

    def _judge(
        self, ctx: ScanContext, sessions: Iterable[SessionKey]
    ) -> tuple[list[Finding], dict[str, list[SessionKey]]]:
        """The unsaved registers of ``sessions`` (findings) and who was left unmarked on them."""
        found: list[Finding] = []
        unmarked: dict[str, list[tuple[date, Session]]] = defaultdict(list)
        deleted = {
            (c.pupil_id, c.date, c.session) for c in ctx.observed_changes if c.kind == "deleted"
        }
        for day, session in sessions:
            marked = ctx.marked_pupils(day, session)
            for group, pupils in groups_on_roll(ctx, day):
                register = ctx.registers_by_key.get((group, day, session))
                # a set difference: every pupil of most groups is marked on most sessions
                missing = sorted(ctx.group_ids_on_roll(group, day) - marked)
                if register is not None and register.completed_at is None:
                    ref = session_ref(day, session)
                    # every pupil marked: the register was taken, only the flag is missing
                    complete = not missing
                    found.append(
                        self.finding(
                            ctx,
                            first=ref,
                            template=self.UNFLAGGED if complete else self.UNSAVED,
                            group=group,
                            discriminator=f"unsaved:{group}",
                            severity=Severity.WARNING if complete else None,
                            evidence={
                                "group": group,
                                "session": session_text(ref),
                                "all_marked": complete,
                                "opened_at": register.opened_at.isoformat()
                                if register.opened_at
                                else None,
                            },
                        )
                    )
                if missing and ctx.calendar.has_group_closures(day, session):
                    closed = {p.id for p in pupils if group_closed(ctx, (p,), day, session)}
                    missing = [pid for pid in missing if pid not in closed]
                taken = register is not None or len(missing) < len(pupils)
                if taken:
                    for pupil_id in missing:
                        if (pupil_id, day, session) not in deleted:
                            unmarked[pupil_id].append((day, session))
        return found, unmarked

    def _unmarked_findings(
        self, ctx: ScanContext, unmarked: Mapping[str, list[SessionKey]]
    ) -> Iterator[Finding]:
        for pupil_id in sorted(unmarked):
            for run in session_runs(ctx, unmarked[pupil_id], lambda key: key):
                first, last = session_ref(*run[0]), session_ref(*run[-1])
                yield self.finding(
                    ctx,
                    pupil_id=pupil_id,
                    first=first,
                    last=last,
                    count=len(run),
                    discriminator="unmarked",
                    evidence={
                        "sessions": len(run),
                        "first": session_text(first),
                        "last": session_text(last),
                    },
                )


def _dump_unmarked(unmarked: Mapping[str, list[SessionKey]]) -> dict[str, list[str]]:
    return {pid: [f"{d.isoformat()}{s.value}" for d, s in keys] for pid, keys in unmarked.items()}


def _load_unmarked(state: Any) -> dict[str, list[SessionKey]]:
    return {
        pid: [(date.fromisoformat(text[:10]), Session(text[10:])) for text in keys]
        for pid, keys in (state or {}).items()
    }
