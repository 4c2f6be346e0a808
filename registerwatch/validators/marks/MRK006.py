"""MRK006 late-after-register-close."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date
from itertools import islice
from typing import Any

from registerwatch.schema import Finding, Pupil, Session, Severity
from registerwatch.validators.base import Rule, session_ref, session_text
from registerwatch.validators.context import ScanContext
from registerwatch.validators.folding import (
    CodeMarksFold,
    KeptMarks,
    check_by_folding,
    load_mark,
    session_key_text,
)
from registerwatch.validators.lean_marks import (
    DATE_END,
    MINUTES_MARK,
    SESSION_END,
    PupilMark,
    SessionMark,
)

LATE_CODES = ("L", "U")


class _LateMarks(CodeMarksFold):
    """The pupil's L and U marks up to the last day of data. Judged for the whole school at
    once (``school_findings``): without minutes late on any of them the rule gives one notice
    instead of a finding per mark."""

    def codes(self, ctx: ScanContext) -> Iterable[str]:
        return LATE_CODES

    def findings(self, ctx: ScanContext, pupil: Pupil, state: KeptMarks) -> Iterable[Finding]:
        return ()

    def school_findings(
        self, ctx: ScanContext, states: Mapping[str, KeptMarks]
    ) -> Iterable[Finding]:
        rule = self.rule
        assert isinstance(rule, LateAfterRegisterClose)
        return rule.judge_school(ctx, {pid: state.marks for pid, state in states.items()})

    def school_findings_dumped(
        self, ctx: ScanContext, entries: Mapping[str, Any]
    ) -> Iterable[Finding]:
        rule = self.rule
        assert isinstance(rule, LateAfterRegisterClose)
        return rule.judge_school_dumped(ctx, entries)


class LateAfterRegisterClose(Rule):
    """A late arrival is coded L after the register closed, or U while it was still open.

    What it checks
    --------------
    Every L and U mark on a school session of the school year up to the day before the scan,
    against the minutes late the MIS recorded for it and the register window: the calendar's
    ``close_after_minutes`` (30 by default), or ``register_close_minutes`` when that setting is
    given. Minutes late count from the opening of the register.

    - L with more minutes late than the window: the pupil arrived after the close and should be
      coded U (an **error**).
    - U with minutes late within the window (at most the window): the pupil arrived before the
      close and should be coded L (an **error**).
    - L with no minutes recorded, in a school that records minutes late on other L or U marks:
      the entry cannot be shown to be right (a **warning**, data quality).

    When no L or U mark of the school carries minutes late (the MIS does not expose them, or the
    school does not record them), one **info** finding per school says the rule could not be
    checked, instead of a warning on every L.

    Why it matters
    --------------
    L is present ("attends before the taking of the register has ended"); U is unauthorised
    absence (arrived after the register closed). Coding a late arrival the wrong way changes the
    pupil's attendance, the school's statistics and can count towards a penalty notice.

    Example
    -------
    Registers open at 08:45 and close 30 minutes later. Pupil `s1:4012` is L on 10 November 2025
    AM with 50 minutes late recorded: one error, "should be U".

    How to fix
    ----------
    Amend the entry (L to U, or U to L) with an amendment record, or correct the minutes late if
    they were keyed wrongly. If the school's register window is really different, set the
    calendar's register times.

    References
    ----------
    - SI 2024/208 reg 10(2) table 1 (VERIFIED): L, absent when the register begins but attends
      before the taking of the register has ended; U, arrived after the register closed
      (SECONDARY).
    - Register open no more than 30 minutes (SECONDARY: Nottinghamshire quoting WTISA).
    - Seed policies: Sevenoaks App 1 and 5.3 ("with the number of minutes late noted"), Ibstock
      4.4, Wenlock 4.4, Micklefield 7.2.
    """

    code = "MRK006"
    name = "late-after-register-close"
    title = "Pupil {pupil} coded {code} on {first} with {minutes} minutes late: should be {should}"
    severity = Severity.ERROR
    citation = "SI 2024/208 reg 10(2) table 1 (L and U); 30-minute register window (SECONDARY)"
    fix_hint = "Amend L to U (arrived after the close) or U to L (arrived before it)"
    settings_used = ("register_close_minutes",)

    NO_MINUTES = (
        "Pupil {pupil} coded L on {first} with no minutes late recorded: the arrival "
        "cannot be shown to be before the register closed"
    )
    NOT_RECORDED = (
        "No L or U mark carries minutes late (the MIS does not expose them or the "
        "school does not record them), so late codes could not be checked against "
        "the register close"
    )

    def window(self, ctx: ScanContext, mark: SessionMark | PupilMark) -> int:
        minutes = ctx.settings.register_close_minutes
        if minutes is not None:
            return minutes
        # cached per session: every late mark of the school year is judged every night
        cache: dict[tuple[date, Session], int] = ctx._cache.setdefault("MRK006:window", {})
        key = (mark.date, mark.session)
        window = cache.get(key)
        if window is None:
            opens = ctx.calendar.register_opens(mark.date, mark.session)
            closes = ctx.calendar.register_closes(mark.date, mark.session)
            window = cache[key] = round((closes - opens).total_seconds() / 60)
        return window

    fold = _LateMarks()

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        yield from check_by_folding(ctx, self.fold)

    def judge_school(
        self, ctx: ScanContext, by_pupil: Mapping[str, Sequence[SessionMark]]
    ) -> Iterator[Finding]:
        """Every finding, from each pupil's L and U marks: whether any mark carries minutes
        late at all decides between one school notice and a finding per mark."""
        start, _ = ctx.school_year
        end = ctx.data_end
        sessions = ctx.session_index
        # one pass: count the late marks, note whether any carries minutes, and keep only the
        # marks that give a finding when some do (every late mark of the year, every night)
        late = 0
        recorded = False
        wrong: list[tuple[str, SessionMark, int | None]] = []
        for pupil in sorted(ctx.pupils_this_year, key=lambda p: p.id):
            for mark in by_pupil.get(pupil.id, ()):
                if not (start <= mark.date <= end and mark[:2] in sessions):
                    continue
                late += 1
                if mark.minutes_late is None:
                    if mark.code == "L":
                        wrong.append((pupil.id, mark, None))
                    continue
                recorded = True
                minutes = self.window(ctx, mark)
                if (mark.code == "L") == (mark.minutes_late > minutes):
                    wrong.append((pupil.id, mark, minutes))
        return self._school_findings(ctx, late, recorded, wrong)

    def judge_school_dumped(
        self, ctx: ScanContext, entries: Mapping[str, Any]
    ) -> Iterator[Finding]:
        """``judge_school`` on the pupils' dumped states (``CodeMarksFold.dump``: the through,
        then mark tokens), reading each token's text: a nightly scan judges every late mark of
        the year, most of them distinct (their minutes), and parsing each into a SessionMark
        cost more than judging it. Only the marks that give a finding are parsed."""
        # ISO dates and session texts compare and look up as the dates and sessions do
        start = ctx.school_year[0].isoformat()
        end = ctx.data_end.isoformat()
        sessions = _session_texts(ctx)
        windows: dict[str, int] = {}
        late = 0
        recorded = False
        wrong: list[tuple[str, str, int | None]] = []
        for pupil in sorted(ctx.pupils_this_year, key=lambda p: p.id):
            data = entries.get(pupil.id)
            if data is None:
                continue
            for token in islice(data, 1, None):
                session = token[:SESSION_END]
                if not (start <= token[:DATE_END] <= end and session in sessions):
                    continue
                late += 1
                code, _, minutes_text = token[SESSION_END:].partition(MINUTES_MARK)
                if not minutes_text:
                    if code == "L":
                        wrong.append((pupil.id, token, None))
                    continue
                recorded = True
                window = windows.get(session)
                if window is None:
                    window = windows[session] = self.window(ctx, load_mark(token))
                if (code == "L") == (int(minutes_text) > window):
                    wrong.append((pupil.id, token, window))
        # without minutes on any mark the school gets one notice: no mark is named
        named = [(pid, load_mark(token), w) for pid, token, w in wrong] if recorded else []
        return self._school_findings(ctx, late, recorded, named)

    def _school_findings(
        self,
        ctx: ScanContext,
        late: int,
        recorded: bool,
        wrong: list[tuple[str, SessionMark, int | None]],
    ) -> Iterator[Finding]:
        """The findings of the school's ``late`` marks, as ``judge_school`` counted them."""
        if not late:
            return
        if not recorded:
            yield self.finding(
                ctx,
                severity=Severity.INFO,
                template=self.NOT_RECORDED,
                discriminator="minutes-late-not-recorded",
                evidence={"late_marks": late},
            )
            return
        for pupil_id, mark, closes_after in wrong:
            ref = session_ref(mark.date, mark.session)
            if closes_after is None or mark.minutes_late is None:
                yield self.finding(
                    ctx,
                    pupil_id=pupil_id,
                    first=ref,
                    severity=Severity.WARNING,
                    template=self.NO_MINUTES,
                    discriminator="no-minutes",
                    evidence={"code": "L", "session": session_text(ref)},
                )
                continue
            should = "U" if mark.minutes_late > closes_after else "L"
            yield self.finding(
                ctx,
                pupil_id=pupil_id,
                first=ref,
                code=mark.code,
                minutes=mark.minutes_late,
                should=should,
                discriminator=f"{mark.code}->{should}",
                evidence={
                    "code": mark.code,
                    "should_be": should,
                    "minutes_late": mark.minutes_late,
                    "window_minutes": closes_after,
                },
            )


def _session_texts(ctx: ScanContext) -> frozenset[str | None]:
    """The school sessions as dumped mark tokens begin ('2025-11-03AM'), cached per context."""
    texts: frozenset[str | None] | None = ctx._cache.get("session_texts:set")
    if texts is None:
        texts = ctx._cache["session_texts:set"] = frozenset(
            session_key_text(key) for key in ctx.session_index
        )
    return texts
