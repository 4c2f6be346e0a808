"""MRK005 closure-code-mismatch."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import date
from typing import Any

from registerwatch.schema import ClosureKind, Finding, Session, SessionRef, Severity
from registerwatch.validators.base import Rule, session_ref, session_text
from registerwatch.validators.context import ScanContext, SessionKey
from registerwatch.validators.delta import (
    RuleRun,
    ScanDelta,
    marks_after,
    marks_after_by_code,
    session_before,
)
from registerwatch.validators.lean_marks import MarkInterner, PupilMark, mark_token

PLANNED_CLOSURE_CODE = "#"
UNEXPECTED_CLOSURE_CODE = "Y4"
NOT_ON_ROLL_CODE = "Z"

MESSAGES = {
    "hash-on-open-session": "# (planned closure) recorded while the school was open",
    "hash-on-unexpected-closure": "# recorded on an unexpected closure, which is Y4",
    "marks-on-planned-closure": "attendance marks recorded on a planned closure",
    "partial-closure-not-in-calendar": (
        "# (planned closure) recorded while the school was open: "
        "a partial closure not in the calendar"
    ),
}
SEVERITIES = {"partial-closure-not-in-calendar": Severity.WARNING}
SESSION_MESSAGES = {
    "hash-on-open-session": (
        "Every pupil is recorded # (planned closure) on {first} but the "
        "calendar has the school open: add the closure to the calendar or "
        "correct the marks"
    ),
    "hash-on-unexpected-closure": (
        "Every pupil is recorded # on {first}, which the calendar "
        "records as an unexpected closure (Y4)"
    ),
    "marks-on-planned-closure": (
        "The calendar records a planned closure on {first} but every "
        "pupil has attendance marks: correct the calendar or the marks"
    ),
}


def _session_kind(ctx: ScanContext, day: date, session: Session) -> str:
    """'open', 'planned' (a planned closure or a bank holiday in term) or 'unexpected'; 'none'
    for days outside term and weekends, which this rule does not judge."""
    closure = ctx.calendar.closure(day, session)
    if closure is not None:
        return "planned" if closure.kind is ClosureKind.PLANNED else "unexpected"
    if ctx.calendar.is_school_session(day, session):
        return "open"
    if ctx.calendar.in_term(day) and day in ctx.calendar.bank_holidays:
        return "planned"
    return "none"


def _judged(ctx: ScanContext, day: date, session: Session, codes: frozenset[str]) -> bool:
    """Whether the session has anything to judge: a closure by the calendar, or # or Y4 on a
    session the school was open."""
    state = _session_kind(ctx, day, session)
    return state == "planned" or (
        state != "none" and (PLANNED_CLOSURE_CODE in codes or UNEXPECTED_CLOSURE_CODE in codes)
    )


def _dump_bad(bad: dict[tuple[str, str], list[PupilMark]]) -> dict[str, Any]:
    """The wrongly coded marks kept between scans: {kind: {pupil: [mark tokens]}}."""
    out: dict[str, dict[str, list[str]]] = {}
    for (pupil_id, kind), marks in sorted(bad.items()):
        if marks:
            out.setdefault(kind, {})[pupil_id] = [
                mark_token(m.date, m.session.value, m.code, m.minutes_late) for m in marks
            ]
    return {"bad": out}


def _load_bad(state: dict[str, Any]) -> dict[tuple[str, str], list[PupilMark]]:
    interner = MarkInterner()
    return {
        (pupil_id, kind): [PupilMark(pupil_id, *interner[t]) for t in tokens]
        for kind, by_pupil in state.get("bad", {}).items()
        for pupil_id, tokens in by_pupil.items()
    }


def _group_closed(ctx: ScanContext, mark: PupilMark) -> bool:
    """The calendar closes the pupil's year group or registration group on the session."""
    if not ctx.calendar.has_group_closures(mark.date, mark.session):
        return False
    pupil = ctx.pupils_by_id.get(mark.pupil_id)
    closure = ctx.calendar.group_closure(
        mark.date,
        mark.session,
        pupil.nc_year if pupil else None,
        pupil.reg_group if pupil else None,
    )
    return closure is not None and closure.kind is ClosureKind.PLANNED


class ClosureCodeMismatch(Rule):
    """Closure codes that disagree with the calendar, or Y4 on only some pupils for a session.

    What it checks
    --------------
    Each session's marks against the school calendar:

    1. ``#`` (planned closure) on a session the school was open, or on a session the calendar
       records as an *unexpected* closure (that is Y4). ``#`` means a planned whole **or
       partial** closure: on pupils of a year group or registration group the calendar closes on
       that session (``closures[].year_groups`` / ``groups``) it is right. ``#`` on some pupils
       with no matching closure is a **warning**, "partial closure not in the calendar"; ``#``
       on every pupil of an open session is an error.
    2. Any code other than ``#`` or Z on a session the calendar records as a *planned* closure, or
       on a bank holiday in term.
    3. Y4 (whole site unexpectedly closed) on some pupils of a session while other pupils on the
       same session have codes that say they were expected in school. Codes in ``y4_exempt_codes``
       (D, K, V, P, W, B, X, Z by default: pupils educated elsewhere, not required, or not on roll)
       may stand beside Y4.

    For 1 and 2: when every mark on the session is wrong, the calendar is the likelier culprit and
    there is one school-level finding for the session; otherwise one finding per pupil, joining the
    same pupil's sessions on one day or consecutive school sessions. Check 3 is one school-level
    finding per session. Weekends and days outside term are not judged.

    Why it matters
    --------------
    ``#`` and Y4 take sessions out of the possible sessions; a wrong closure code silently removes
    (or adds) sessions in the attendance statistics and the DfE's daily collection, and hides real
    absence. Y4 means the whole site was closed, so it cannot be true of only some pupils.

    Example
    -------
    The calendar has the school open on 5 November 2025, but pupil `s1:4012` is # for the whole
    day: one error for the pupil, 2025-11-05 AM to 2025-11-05 PM. On 20 November AM, 30 pupils
    are Y4 and 200 are present: one school-level error for 2025-11-20 AM.

    How to fix
    ----------
    Make the calendar and the register agree: add the closure to the calendar (planned closures
    are #, unexpected ones Y4; a partial one with `closures[].year_groups = ["R", "7"]` or
    `closures[].groups`), or amend the marks to what happened. For a part-closure affecting
    only some pupils, Y1-Y3 or Y7 may be the right code rather than Y4.

    References
    ----------
    - a closure of one year group or registration group (staggered
      Reception start, exam year, polling station) is lawful and coded #.
    - SI 2024/208 reg 10 codes # (planned whole or partial closure) and Y4 (whole school site
      unexpectedly closed) (SECONDARY: LA and vendor copies of the code table).
    - DfE statistics treat # and Y1-Y7 as outside possible sessions (data VERIFIED,
      treatment INFERRED).
    """

    code = "MRK005"
    name = "closure-code-mismatch"
    title = "Pupil {pupil}: {what} on {first} to {last}"
    severity = Severity.ERROR
    citation = "SI 2024/208 reg 10 (codes # and Y4)"
    fix_hint = (
        "Make the calendar and the register agree: add the closure to the school's `closures` "
        "in the config (a partial one names who it closes with `closures[].year_groups` or "
        "`closures[].groups`), or amend the marks"
    )
    settings_used = ("y4_exempt_codes",)

    Y4_PARTIAL = (
        "Y4 (whole site unexpectedly closed) recorded for {y4} pupil(s) on {first} "
        "while {others} other pupil(s) have codes for an open school"
    )

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        return iter(self.run(ctx).findings)

    def run(self, ctx: ScanContext) -> RuleRun:
        found: list[Finding] = []
        bad: dict[tuple[str, str], list[PupilMark]] = defaultdict(list)
        for (day, session), codes in sorted(ctx.session_codes.items(), key=lambda i: i[0]):
            if _judged(ctx, day, session, codes):
                found.extend(self._session(ctx, day, session, ctx.session_marks(day, session), bad))
        found.extend(self._pupil_findings(ctx, bad))
        return RuleRun(found, state=_dump_bad(bad))

    def run_delta(self, ctx: ScanContext, delta: ScanDelta, state: Any) -> RuleRun | None:
        """Only the sessions with a mark changed since are judged again (nothing here moves
        with ``as_of``), from every pupil's marks since the earliest of them; the marks
        wrongly coded elsewhere come from the state, so every pupil's runs are rebuilt. A
        changed record of a pupil with a # mark (whose group's closures judge it) runs in
        full."""
        if not delta.localised or not isinstance(state, dict):
            return None
        for pupil_id in delta.pupils:
            if any(m.code == PLANNED_CLOSURE_CODE for m in ctx.pupil_marks(pupil_id)):
                return None
        bad: dict[tuple[str, str], list[PupilMark]] = defaultdict(list)
        since = min(delta.changed_marks.values(), default=None)
        sessions = sorted(key for key in delta.sessions if since is not None and key >= since)
        judged = set(sessions)
        for (pupil_id, kind), marks in _load_bad(state).items():
            kept = [m for m in marks if (m.date, m.session) not in judged]
            if kept:
                bad[(pupil_id, kind)] = kept
        found: list[Finding] = []
        if since is not None:
            after = session_before(since)
            # most sessions are open with neither closure code: found from the codes alone
            by_code = marks_after_by_code(ctx, after)
            flagged = {
                (m.date, m.session)
                for code in (PLANNED_CLOSURE_CODE, UNEXPECTED_CLOSURE_CODE)
                for _, m in by_code.get(code, ())
            }
            wanted = {
                key
                for key in sessions
                if (kind := _session_kind(ctx, *key)) == "planned"
                or (kind != "none" and key in flagged)
            }
            by_session: dict[SessionKey, list[PupilMark]] = defaultdict(list)
            if wanted:
                for pupil_id, pupil_marks in marks_after(ctx, after).items():
                    for mark in pupil_marks:
                        if (mark.date, mark.session) in wanted:
                            by_session[(mark.date, mark.session)].append(PupilMark(pupil_id, *mark))
            for day, session in sessions:
                on_session = tuple(sorted(by_session.get((day, session), ())))
                if on_session:
                    found.extend(self._session(ctx, day, session, on_session, bad))
        for kept_marks in bad.values():
            kept_marks.sort(key=lambda m: (m.date, m.session))
        found.extend(self._pupil_findings(ctx, bad))
        return RuleRun(
            found,
            state=_dump_bad(bad),
            # the sessions judged again, not every session of the delta: one placed there for
            # a register or a roll change, before any changed mark, was not judged
            covers=lambda f: (
                f.pupil_id is not None
                or (
                    f.first_session is not None
                    and (f.first_session.date, f.first_session.session) in judged
                )
            ),
        )

    def _session(
        self,
        ctx: ScanContext,
        day: date,
        session: Session,
        marks: tuple[PupilMark, ...],
        per_pupil: dict[tuple[str, str], list[PupilMark]],
    ) -> Iterator[Finding]:
        """The session's school-level findings; its marks wrongly coded go to ``per_pupil``."""
        state = _session_kind(ctx, day, session)
        ref = session_ref(day, session)
        if state == "planned":
            bad = [m for m in marks if m.code not in (PLANNED_CLOSURE_CODE, NOT_ON_ROLL_CODE)]
            kind = "marks-on-planned-closure"
        else:
            bad = [
                m
                for m in marks
                if m.code == PLANNED_CLOSURE_CODE
                and not (state == "open" and _group_closed(ctx, m))
            ]
            kind = "hash-on-open-session" if state == "open" else "hash-on-unexpected-closure"
            if kind == "hash-on-open-session" and len(bad) < len(marks):
                # '#' means a planned whole *or partial* closure: on some pupils only it
                # is a partial closure missing from the calendar, not a breach
                kind = "partial-closure-not-in-calendar"
        if bad and len(bad) == len(marks) and len(marks) > 1:
            yield self.finding(
                ctx,
                first=ref,
                template=SESSION_MESSAGES[kind],
                discriminator=f"session:{kind}",
                evidence={
                    "kind": kind,
                    "session": session_text(ref),
                    "pupils": len(bad),
                    "codes": sorted({m.code for m in bad}),
                },
            )
        else:
            for mark in bad:
                per_pupil[(mark.pupil_id, kind)].append(mark)
        yield from self._y4_partial(ctx, ref, marks)

    def _pupil_findings(
        self, ctx: ScanContext, per_pupil: dict[tuple[str, str], list[PupilMark]]
    ) -> Iterator[Finding]:
        for (pupil_id, kind), pupil_marks in sorted(per_pupil.items()):
            for run in self._runs(ctx, pupil_marks):
                first = session_ref(run[0].date, run[0].session)
                last = session_ref(run[-1].date, run[-1].session)
                yield self.finding(
                    ctx,
                    pupil_id=pupil_id,
                    first=first,
                    last=last,
                    what=MESSAGES[kind],
                    discriminator=kind,
                    severity=SEVERITIES.get(kind),
                    evidence={
                        "kind": kind,
                        "codes": sorted({m.code for m in run}),
                        "sessions": len(run),
                    },
                )

    def _y4_partial(
        self, ctx: ScanContext, ref: SessionRef, marks: tuple[PupilMark, ...]
    ) -> Iterator[Finding]:
        y4 = [m for m in marks if m.code == UNEXPECTED_CLOSURE_CODE]
        if not y4:
            return
        # '#' beside Y4 is check 1's finding (hash-on-unexpected-closure), not a partial Y4
        exempt = ctx.settings.y4_exempt_codes | {UNEXPECTED_CLOSURE_CODE, PLANNED_CLOSURE_CODE}
        others = [m for m in marks if m.code not in exempt]
        if not others:
            return
        yield self.finding(
            ctx,
            first=ref,
            template=self.Y4_PARTIAL,
            y4=len(y4),
            others=len(others),
            discriminator="y4-partial",
            evidence={
                "kind": "y4-partial",
                "y4_pupils": sorted(m.pupil_id for m in y4),
                "other_pupils": len(others),
                "other_codes": sorted({m.code for m in others}),
            },
        )

    @staticmethod
    def _runs(ctx: ScanContext, marks: list[PupilMark]) -> list[list[PupilMark]]:
        """Join sessions on the same day, or consecutive school sessions."""
        runs: list[list[PupilMark]] = []
        for mark in sorted(marks, key=lambda m: (m.date, m.session == Session.PM)):
            if runs:
                prev = runs[-1][-1]
                a = ctx.session_index.get((prev.date, prev.session))
                b = ctx.session_index.get((mark.date, mark.session))
                if prev.date == mark.date or (a is not None and b is not None and b == a + 1):
                    runs[-1].append(mark)
                    continue
            runs.append([mark])
        return runs
