"""MRK001 unresolved-n-code."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date

from registerwatch.errors import CalendarError
from registerwatch.schema import Finding, Pupil, Severity
from registerwatch.validators.base import Rule, session_text
from registerwatch.validators.context import ScanContext
from registerwatch.validators.folding import CodeMarksFold, KeptMarks, check_by_folding
from registerwatch.validators.lean_marks import SessionMark
from registerwatch.validators.runs import first_last, mark_runs


class _NMarks(CodeMarksFold):
    """The pupil's N marks up to the last day of data: their deadlines move with the scan day,
    so they are judged from the state as of each scan."""

    needs_record = False  # an N is judged without the pupil's record

    def codes(self, ctx: ScanContext) -> Iterable[str]:
        return ("N",)

    def school_findings(
        self, ctx: ScanContext, states: Mapping[str, KeptMarks]
    ) -> Iterable[Finding]:
        rule = self.rule
        assert isinstance(rule, UnresolvedNCode)
        return rule.beyond_terms(ctx, (m for state in states.values() for m in state.marks))


class UnresolvedNCode(Rule):
    """An N (reason not yet established) is still on a session more than 5 school days old.

    What it checks
    --------------
    Every mark coded N. Its deadline is the fifth school day after the session, counted by the
    school calendar (weekends, half-terms, bank holidays and whole-day closures do not count, nor
    does a day the whole site was closed unexpectedly, Y4 on every session: the same rule as
    LAR002's runs; a day with only one session open counts). N recorded on Monday 3 November 2025 is due by Monday
    10 November.

    - After the deadline (the scan date is later than the due day): **error**.
    - On the due day itself: **warning**, "replace today".
    - Before that: nothing; N is the lawful code while the school finds out.

    Consecutive school sessions of N for the same pupil with the same status form one finding,
    from the first session to the last; its due date is the first session's (the earliest). If
    the fifth school day lies beyond the configured terms the deadline cannot be known yet: one
    school-level **info** finding says so, once per scan (configure next year's terms).

    Why it matters
    --------------
    N may only stand while the reason for the absence is being established. The correct code must
    be entered as soon as the reason is known and no later than 5 school days after the session;
    if the reason cannot be established by then the entry must be amended to O (unauthorised,
    other). N left in the register misstates the pupil's record and the school's statistics.

    Example
    -------
    Pupil `s1:4012` is N on 3 November 2025 AM and PM. On a scan dated 11 November the deadline
    (10 November) has passed: one error, 2025-11-03 AM to 2025-11-03 PM, due 2025-11-10.

    How to fix
    ----------
    Replace each N with the code for the reason now known (for example I for illness); if the
    reason still cannot be established, amend it to O. Record the amendment (reason, date, your
    name and position) in the MIS.

    References
    ----------
    - SI 2024/208 reg 10(7)-(9) and WTISA paras 407-409 (SECONDARY, as quoted): N until the reason
      is established, the correct code within 5 school days, otherwise O.
    - Conflict noted in the reference: WTISA p.20 says "5 working days"; reg 10(7) says "five
      school days", which this rule follows (setting ``n_code_deadline_school_days``).
    """

    code = "MRK001"
    name = "unresolved-n-code"
    title = (
        "N not replaced within {days} school days on {count} session(s) from {first} to "
        "{last} (due {due})"
    )
    severity = Severity.ERROR
    citation = "SI 2024/208 reg 10(7)-(9); WTISA (Aug 2024) paras 407-409"
    fix_hint = "Replace N with the code for the known reason, or amend it to O"
    settings_used = ("n_code_deadline_school_days",)

    BEYOND_TERMS = (
        "The deadline of {count} N session(s) from {day} cannot be computed: the "
        "fifth school day falls beyond the configured terms; add next year's term "
        "dates to the config"
    )
    DUE_TODAY = "N on {count} session(s) from {first} to {last} must be replaced today (due {due})"

    fold = _NMarks()

    def due(self, ctx: ScanContext, day: date) -> date | None:
        """The deadline of an N on ``day`` (cached per scan), None when it lies beyond the
        configured terms and is not yet knowable."""
        cache: dict[date, date | None] = ctx._cache.setdefault("MRK001:due", {})
        if day not in cache:
            try:
                cache[day] = ctx.calendar.add_deadline_school_days(
                    day, ctx.settings.n_code_deadline_school_days
                )
            except CalendarError:
                cache[day] = None
        return cache[day]

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        yield from check_by_folding(ctx, self.fold)

    def judge(
        self, ctx: ScanContext, pupil: Pupil, n_marks: Sequence[SessionMark]
    ) -> Iterator[Finding]:
        """The pupil's findings from their N marks before the scan day."""
        pupil_id = pupil.id
        days = ctx.settings.n_code_deadline_school_days
        pending: list[tuple[SessionMark, date, Severity]] = []
        for mark in n_marks:
            if mark.date >= ctx.as_of:
                continue
            due = self.due(ctx, mark.date)
            if due is None or ctx.as_of < due:
                continue
            pending.append((mark, due, Severity.ERROR if ctx.as_of > due else Severity.WARNING))
        if not pending:
            return
        status = {(m.date, m.session): (due, sev) for m, due, sev in pending}
        for run in mark_runs(ctx, [m for m, _, _ in pending]):
            # split the run where the status changes (overdue sessions, then due-today ones)
            start = 0
            for i in range(1, len(run) + 1):
                if (
                    i < len(run)
                    and status[(run[i].date, run[i].session)][1]
                    == status[(run[start].date, run[start].session)][1]
                ):
                    continue
                part = run[start:i]
                due, severity = status[(part[0].date, part[0].session)]
                first, last = first_last(part)
                yield self.finding(
                    ctx,
                    pupil_id=pupil_id,
                    first=first,
                    last=last,
                    due=due,
                    severity=severity,
                    days=days,
                    count=len(part),
                    template=None if severity is Severity.ERROR else self.DUE_TODAY,
                    evidence={
                        "code": "N",
                        "sessions": [session_text((m.date, m.session)) for m in part],
                        "due": due.isoformat(),
                    },
                )
                start = i

    def beyond_terms(self, ctx: ScanContext, n_marks: Iterable[SessionMark]) -> Iterator[Finding]:
        """One school-level notice for the N marks whose deadline lies beyond the terms."""
        beyond = [m for m in n_marks if m.date < ctx.as_of and self.due(ctx, m.date) is None]
        if beyond:
            earliest = min(beyond, key=lambda m: (m.date, m.session))
            yield self.finding(
                ctx,
                severity=Severity.INFO,
                template=self.BEYOND_TERMS,
                discriminator="deadline-beyond-terms",
                count=len(beyond),
                day=earliest.date.isoformat(),
                evidence={"sessions": len(beyond), "earliest": earliest.date.isoformat()},
            )
