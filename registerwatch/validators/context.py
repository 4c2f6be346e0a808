"""What a rule sees: an in-memory, read-only view of one school's records for one scan.

Rules are linear over marks grouped per pupil: the grouping and every index is built here once,
lazily, and shared by all rules, so a school year of ~570k marks is sorted once per scan, not once
per rule. Nothing here counts school days: that is :class:`~registerwatch.calendar.SchoolCalendar`'s
job, and the context only caches its answers.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property
from itertools import chain, groupby
from operator import itemgetter
from typing import Any, Literal

from registerwatch.calendar import SchoolCalendar, school_year_bounds, school_year_of
from registerwatch.schema import (
    Amendment,
    AmendmentSource,
    Mark,
    Notification,
    NotificationKind,
    Pupil,
    Register,
    Session,
)
from registerwatch.school_age import csa_end, csa_start
from registerwatch.validators.lean_marks import (
    LazyMarks,
    PupilMark,
    SessionMark,
    rows_from_marks,
)
from registerwatch.validators.settings import DEFAULT_SETTINGS, RuleSettings

_session_of = itemgetter(0, 1)  # SessionMark -> (date, session)

SessionKey = tuple[date, Session]
MarkKey = tuple[str, date, Session]
ChangeKind = Literal["change", "deleted"]

_code_of = itemgetter(2)  # SessionMark.code


def _positions_on(marks: Sequence[SessionMark], day: date, session: Session) -> range:
    """The positions of the sorted ``marks`` on the session."""
    start = bisect.bisect_left(marks, (day, session))
    end = start
    while end < len(marks) and marks[end][0] == day and marks[end][1] == session:
        end += 1
    return range(start, end)


# A pupil with no registration group is registered all the same; the rules treat such pupils as
# one group of their own, named so in messages.
NO_GROUP = "(no group)"


@dataclass(frozen=True, slots=True)
class ObservedChange:
    """A change to a register entry that sync saw between two pulls (the amendment ledger).

    ``kind`` is ``"change"`` when the code changed and ``"deleted"`` when the entry disappeared
    from the MIS (``new_code`` is then None).
    """

    pupil_id: str
    date: date
    session: Session
    kind: ChangeKind
    original_code: str | None
    new_code: str | None
    observed_at: datetime


# The ledger's kinds (registerwatch.store.ledger.KINDS) that are observed changes to an entry.
_LEDGER_KINDS: dict[str, ChangeKind] = {"observed_change": "change", "observed_deleted": "deleted"}


def observed_changes_from_ledger(records: Iterable[Any]) -> list[ObservedChange]:
    """Observed changes and deletions from ledger entries (objects shaped like ``LedgerEntry``).

    ``observed_new`` (a first sighting) and ``mis_amendment`` (the MIS's own record, which the
    scan receives as an :class:`Amendment`) are not changes to check.
    """
    out: list[ObservedChange] = []
    for record in records:
        kind = _LEDGER_KINDS.get(record.kind)
        if kind is None:
            continue
        out.append(
            ObservedChange(
                pupil_id=record.pupil_id,
                date=record.date,
                session=Session(record.session),
                kind=kind,
                original_code=record.original_code,
                new_code=None if kind == "deleted" else record.new_code,
                observed_at=record.observed_at,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class DayMarks:
    """One pupil's marks on one school day: the day's position in the calendar and its codes."""

    date: date
    index: int  # SchoolCalendar.school_day_index: consecutive school days differ by 1
    codes: Mapping[Session, str]


@dataclass(frozen=True)
class ScanContext:
    """One school's records for a scan on ``as_of``, with the calendar and the settings.

    ``as_of`` is the scan day, "today, before registration": the registers of every session
    before it are complete, today's are not yet due (``data_end`` is the day before). A deadline
    ``due`` has passed when ``as_of > due``; on ``as_of == due`` the school still has the day.
    Read-only: sequences are stored as tuples and the cached indexes are built on first use.

    ``exposes_registers``: the MIS gives register records (opened / completed); without them
    REG001 and REG003 cannot run. ``exposes_amendments``: the MIS gives its own amendment records;
    without them AMD002 cannot tell a recorded change from an unrecorded one. It defaults to
    False because no vendor is known to expose an attendance audit publicly: a
    scan that forgot to say so gets one "could not check" notice, not an error per change.
    ``exposes_social_worker``: pupils carry the has-a-social-worker flag; without it ATT005
    says once that it could not check, rather than silently finding nothing.
    """

    school_id: str
    as_of: date
    calendar: SchoolCalendar
    pupils: Sequence[Pupil] = ()
    registers: Sequence[Register] = ()
    marks: Sequence[Mark] = ()
    mark_rows: Mapping[str, tuple[SessionMark, ...]] | None = None
    amendments: Sequence[Amendment] = ()
    observed_changes: Sequence[ObservedChange] = ()
    notifications: Sequence[Notification] = ()
    exposes_registers: bool = True
    exposes_amendments: bool = False
    exposes_social_worker: bool = True
    settings: RuleSettings = DEFAULT_SETTINGS
    #: the pupils marked on some sessions, read from the store for the sessions a nightly scan
    #: re-judges (``validators.delta``): ``marked_pupils`` answers those without indexing the
    #: year's marks
    session_pupils: Mapping[SessionKey, frozenset[str]] | None = None
    _cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in (
            "pupils",
            "registers",
            "marks",
            "amendments",
            "observed_changes",
            "notifications",
        ):
            value = getattr(self, name)
            if not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))

    # -- pupils -----------------------------------------------------------------------------

    @cached_property
    def pupils_by_id(self) -> dict[str, Pupil]:
        return {p.id: p for p in self.pupils}

    @cached_property
    def data_end(self) -> date:
        """The last day whose registers are complete: the day before ``as_of``."""
        return self.as_of - timedelta(days=1)

    @cached_property
    def school_year(self) -> tuple[date, date]:
        """First and last day (1 August - 31 July) of the school year the data runs to."""
        return school_year_bounds(school_year_of(self.data_end))

    def on_roll_in(self, pupil: Pupil, start: date, end: date) -> bool:
        """Was the pupil on roll on at least one day of [start, end]?"""
        if pupil.starting_day is not None and pupil.starting_day > end:
            return False
        return not (pupil.leaving_date is not None and pupil.leaving_date < start)

    @cached_property
    def pupils_this_year(self) -> tuple[Pupil, ...]:
        """Pupils on roll at some point from the start of the school year to ``as_of``."""
        start, _ = self.school_year
        return tuple(p for p in self.pupils if self.on_roll_in(p, start, self.as_of))

    def is_school_session(self, day: date, session: Session) -> bool:
        """A session the school was open (unexpected closures included: their register is
        still taken, with Y4)."""
        return (day, session) in self.session_index

    def is_csa(self, pupil: Pupil, day: date) -> bool:
        """Compulsory school age on ``day`` (EA 1996 s.8); True when the date of birth is unknown,
        so a missing DOB never hides a breach."""
        if pupil.dob is None:
            return True
        # is_compulsory_school_age with its two bounds cached per date of birth: the rules ask
        # again for each kept mark of each pupil every night (MRK003 alone ~6,500 times). The
        # end is computed only when asked, as there (it may raise on a bad calendar).
        dob = pupil.dob
        starts: dict[date, date] = self._cache.setdefault("csa_start", {})
        start = starts.get(dob)
        if start is None:
            start = starts[dob] = csa_start(dob)
        if day < start:
            return False
        ends: dict[date, date] = self._cache.setdefault("csa_end", {})
        end = ends.get(dob)
        if end is None:
            end = ends[dob] = csa_end(dob, self.calendar.school_year_start)
        return day <= end

    def groups_on_roll(self, day: date) -> tuple[tuple[str, tuple[Pupil, ...]], ...]:
        """(group, its non-boarders on roll on ``day``) for every group with at least one, in
        group order (cached per day: REG001 and REG002 ask for every school day). A group
        whose pupils were all on roll all year gives the same tuple every day."""
        cache = self._cache.setdefault("groups_on_roll", {})
        result: tuple[tuple[str, tuple[Pupil, ...]], ...] | None = cache.get(day)
        if result is None:
            built: list[tuple[str, tuple[Pupil, ...]]] = []
            steady = self._steady_groups
            for group in sorted(self.groups):
                on_roll = steady.get(group)
                if on_roll is None:
                    on_roll = tuple(
                        p
                        for p in self.groups[group]
                        if (p.starting_day is None or p.starting_day <= day)
                        and (p.leaving_date is None or day <= p.leaving_date)
                    )
                if on_roll:
                    built.append((group, on_roll))
            result = cache[day] = tuple(built)
        return result

    @cached_property
    def _steady_groups(self) -> dict[str, tuple[Pupil, ...]]:
        """Groups none of whose pupils joined or left within the calendar: on roll every day."""
        first, last = self.calendar.first_day, self.calendar.last_day
        return {
            group: pupils
            for group, pupils in self.groups.items()
            if all(
                (p.starting_day is None or p.starting_day <= first)
                and (p.leaving_date is None or p.leaving_date >= last)
                for p in pupils
            )
        }

    def group_on_roll(self, group: str, day: date) -> tuple[Pupil, ...]:
        """The group's non-boarders on roll on ``day`` (empty when none)."""
        cache = self._cache.setdefault("group_on_roll", {})
        by_group: dict[str, tuple[Pupil, ...]] | None = cache.get(day)
        if by_group is None:
            by_group = cache[day] = dict(self.groups_on_roll(day))
        return by_group.get(group, ())

    def group_ids_on_roll(self, group: str, day: date) -> frozenset[str]:
        """Ids of ``group_on_roll`` (cached per distinct tuple: the same set on every day for
        a steady group)."""
        pupils = self.group_on_roll(group, day)
        cache = self._cache.setdefault("group_ids", {})
        ids: frozenset[str] | None = cache.get(id(pupils))
        if ids is None:
            ids = frozenset(p.id for p in pupils)
            # keyed by identity: keep the tuple alive with its ids so the key is never reused
            cache[id(pupils)] = ids
            self._cache.setdefault("group_ids_keep", []).append(pupils)
        return ids

    @cached_property
    def groups(self) -> dict[str, tuple[Pupil, ...]]:
        """Registration group -> pupils (boarders left out: reg 10(1) registers non-boarders)."""
        out: dict[str, list[Pupil]] = defaultdict(list)
        for pupil in self.pupils:
            if not pupil.boarder:
                out[pupil.reg_group or NO_GROUP].append(pupil)
        return {g: tuple(ps) for g, ps in out.items()}

    # -- marks ------------------------------------------------------------------------------

    @cached_property
    def marks_by_pupil(self) -> Mapping[str, tuple[SessionMark, ...]]:
        """Each pupil's marks sorted by (date, session), as shared SessionMarks: the lean
        rows the store gave (``mark_rows``), or the ``marks`` given as Mark objects."""
        if self.mark_rows is not None:
            return self.mark_rows
        return rows_from_marks(self.marks)

    @cached_property
    def mark_count(self) -> int:
        rows = self.marks_by_pupil
        if isinstance(rows, LazyMarks):
            return rows.count()  # without decoding every pupil's year
        return sum(map(len, rows.values()))

    def pupil_marks(self, pupil_id: str) -> tuple[SessionMark, ...]:
        return self.marks_by_pupil.get(pupil_id, ())

    def pupil_marks_after(self, pupil_id: str, after: SessionKey | None) -> Sequence[SessionMark]:
        """The pupil's marks strictly after the ``after`` session (all of them when None), in
        (date, session) order: what a nightly fold reads, so that a context can serve it
        without decoding the pupil's whole year."""
        if after is None:
            return self.pupil_marks(pupil_id)
        rows = self.marks_by_pupil
        if isinstance(rows, LazyMarks):
            return rows.after(pupil_id, after)
        marks = rows.get(pupil_id, ())
        return marks[bisect.bisect_right(marks, after, key=_session_of) :]

    def has_mark(self, pupil_id: str, day: date, session: Session) -> bool:
        """Whether the pupil has a (live) mark on the session: a bisection of their marks."""
        marks = self.marks_by_pupil.get(pupil_id, ())
        at = bisect.bisect_left(marks, (day, session))
        return at < len(marks) and marks[at][0] == day and marks[at][1] == session

    @cached_property
    def mark_index(self) -> dict[MarkKey, SessionMark]:
        """(pupil, date, session) -> mark. Builds a key per mark: rules use ``has_mark``."""
        return {
            (pid, m.date, m.session): m for pid, marks in self.marks_by_pupil.items() for m in marks
        }

    @cached_property
    def _pupils_by_mark(self) -> dict[SessionMark, list[str]]:
        """Each distinct shared (date, session, code) -> the pupils with it: the one pass over
        every mark that the per-session views share."""
        out: dict[SessionMark, list[str]] = defaultdict(list)
        for pupil_id, marks in self.marks_by_pupil.items():
            for mark in marks:
                out[mark].append(pupil_id)
        return out

    @cached_property
    def _marks_per_session(self) -> dict[SessionKey, tuple[SessionMark, ...]]:
        out: dict[SessionKey, list[SessionMark]] = defaultdict(list)
        for mark in self._pupils_by_mark:
            out[(mark.date, mark.session)].append(mark)
        return {k: tuple(v) for k, v in out.items()}

    def session_marks(self, day: date, session: Session) -> tuple[PupilMark, ...]:
        """Every pupil's mark on the session, with its pupil, ordered by pupil (cached)."""
        cache = self._cache.setdefault("session_marks", {})
        result: tuple[PupilMark, ...] | None = cache.get((day, session))
        if result is None and not self._indexed_by_mark:
            # a few sessions asked for (MRK005 in a nightly): a bisection of each pupil's
            # marks, rather than indexing the year's marks by session for them
            result = cache[(day, session)] = tuple(
                sorted(
                    PupilMark(pid, *marks[at])
                    for pid, marks in self.marks_by_pupil.items()
                    for at in _positions_on(marks, day, session)
                )
            )
        if result is None:
            by_mark = self._pupils_by_mark
            result = cache[(day, session)] = tuple(
                sorted(
                    PupilMark(pid, *mark)
                    for mark in self._marks_per_session.get((day, session), ())
                    for pid in by_mark[mark]
                )
            )
        return result

    @cached_property
    def marks_by_session(self) -> dict[SessionKey, tuple[PupilMark, ...]]:
        """Every session's marks (a PupilMark per mark: rules iterate ``session_codes`` and ask
        ``session_marks`` for the few sessions they judge)."""
        return {key: self.session_marks(*key) for key in self._marks_per_session}

    @cached_property
    def session_codes(self) -> dict[SessionKey, frozenset[str]]:
        """The codes used on each session (so a rule about rare codes skips most sessions)."""
        if self._indexed_by_mark:
            return {
                key: frozenset(m.code for m in marks)
                for key, marks in self._marks_per_session.items()
            }
        # The distinct (date, session, code) marks, from a set union run in C: in a nightly
        # MRK005 is the only rule that asks, and indexing every mark's pupils costs ~3x more.
        codes: dict[SessionKey, set[str]] = defaultdict(set)
        for mark in set().union(*self.marks_by_pupil.values()):
            codes[(mark.date, mark.session)].add(mark.code)
        return {key: frozenset(found) for key, found in codes.items()}

    @property
    def _indexed_by_mark(self) -> bool:
        """Whether the year's marks index by (date, session, code) is built already."""
        return "_pupils_by_mark" in self.__dict__

    @cached_property
    def pupils_with_off_session_marks(self) -> frozenset[str]:
        """Pupils with a mark on a session the school was not open (weekends, holidays, planned
        closures): the statistics must leave those marks out, everyone else's can be counted
        whole."""
        index = self.session_index
        return frozenset(
            pid
            for mark, pupils in self._pupils_by_mark.items()
            if (mark.date, mark.session) not in index
            for pid in pupils
        )

    def marked_pupils(self, day: date, session: Session) -> frozenset[str]:
        """Ids of the pupils with a mark on the session (cached)."""
        if self.session_pupils is not None:
            known = self.session_pupils.get((day, session))
            if known is not None:
                return known
        cache = self._cache.setdefault("marked_pupils", {})
        result: frozenset[str] | None = cache.get((day, session))
        if result is None:
            by_mark = self._pupils_by_mark
            result = cache[(day, session)] = frozenset(
                chain.from_iterable(
                    by_mark[mark] for mark in self._marks_per_session.get((day, session), ())
                )
            )
        return result

    def marks_where(
        self, pupil_id: str, name: str, test: Callable[[SessionMark], bool]
    ) -> list[SessionMark]:
        """The pupil's marks that pass ``test``, in order. ``test`` is asked once per distinct
        (date, session, code) of the school (the answer is cached under ``name``), not once
        per mark: a rule that looks at most marks of every pupil pays a set lookup per mark."""
        cache = self._cache.setdefault("marks_where", {})
        chosen: frozenset[SessionMark] | None = cache.get(name)
        if chosen is None:
            chosen = cache[name] = frozenset(m for m in self._pupils_by_mark if test(m))
        return list(filter(chosen.__contains__, self.pupil_marks(pupil_id)))

    def marks_by_code(self, pupil_id: str) -> Mapping[str, tuple[SessionMark, ...]]:
        """The pupil's marks grouped by code, each group sorted by (date, session) (cached):
        a rule about one code reads only those marks."""
        cache = self._cache.setdefault("marks_by_code", {})
        result: Mapping[str, tuple[SessionMark, ...]] | None = cache.get(pupil_id)
        if result is None:
            # a stable sort by code keeps each code's marks in (date, session) order; sort and
            # groupby run in C, where a loop appending per mark did not
            by_code = sorted(self.pupil_marks(pupil_id), key=_code_of)
            result = cache[pupil_id] = {
                code: tuple(marks) for code, marks in groupby(by_code, key=_code_of)
            }
        return result

    def marks_with_codes(self, pupil_id: str, codes: Iterable[str]) -> list[SessionMark]:
        """The pupil's marks with any of ``codes``, sorted by (date, session)."""
        by_code = self.marks_by_code(pupil_id)
        groups = [by_code[c] for c in codes if c in by_code]
        if len(groups) == 1:
            return list(groups[0])
        return sorted(m for g in groups for m in g)

    def code_count(self, pupil_id: str, codes: Iterable[str]) -> int:
        """How many of the pupil's marks (any date) have one of ``codes``: a cheap test of
        whether a rule can fire for the pupil at all before the per-day work."""
        grouped = self._cache.get("marks_by_code", {}).get(pupil_id)
        if grouped is None and isinstance(codes, (set, frozenset)):
            # Counted in one pass rather than grouping the year by code first: in a nightly
            # scan only ATT006 and LAR006 ask, for every pupil, and nothing else groups them.
            return sum(map(codes.__contains__, map(_code_of, self.pupil_marks(pupil_id))))
        by_code = self.marks_by_code(pupil_id)
        return sum(len(by_code.get(c, ())) for c in codes)

    def code_counts(self, pupil_id: str) -> Counter[str]:
        """How many marks of each code the pupil has, over all dates: a cheap test of whether a
        rule can fire for the pupil at all before the per-day work."""
        return Counter({code: len(ms) for code, ms in self.marks_by_code(pupil_id).items()})

    def pupil_days(self, pupil_id: str) -> tuple[DayMarks, ...]:
        """The pupil's marks on school days, one entry per day with at least one mark, in order.
        Marks on days that are not school days are left out (MRK005 judges those)."""
        cache = self._cache.setdefault("pupil_days", {})
        days: tuple[DayMarks, ...] | None = cache.get(pupil_id)
        if days is None:
            grouped: dict[date, dict[Session, str]] = {}
            for mark in self.pupil_marks(pupil_id):
                grouped.setdefault(mark.date, {})[mark.session] = mark.code
            built: list[DayMarks] = []
            for day, codes in grouped.items():
                index = self.day_index(day)
                if index is not None:
                    built.append(DayMarks(date=day, index=index, codes=codes))
            days = cache[pupil_id] = tuple(built)
        return days

    # -- calendar answers, cached -----------------------------------------------------------

    def open_sessions(self, day: date) -> tuple[Session, ...]:
        """Sessions the school is open on ``day`` (the calendar's answer, cached per day)."""
        cache = self._cache.setdefault("open_sessions", {})
        sessions: tuple[Session, ...] | None = cache.get(day)
        if sessions is None:
            sessions = cache[day] = self.calendar.sessions_on(day)
        return sessions

    def day_index(self, day: date) -> int | None:
        cache = self._cache.setdefault("day_index", {})
        if day not in cache:
            cache[day] = self.calendar.school_day_index(day)
        index: int | None = cache[day]
        return index

    @cached_property
    def _school_days(self) -> list[date]:
        return self.calendar.school_days(self.calendar.first_day, self.calendar.last_day)

    @cached_property
    def session_index(self) -> dict[SessionKey, int]:
        """Every school session of the calendar -> its position (consecutive sessions differ
        by 1), so a run of consecutive sessions is a run of consecutive integers."""
        out: dict[SessionKey, int] = {}
        for day in self._school_days:
            for session in self.open_sessions(day):
                out[(day, session)] = len(out)
        return out

    @cached_property
    def school_week_mondays(self) -> list[date]:
        """Mondays of the calendar's school weeks (weeks with at least one school session)."""
        return self.calendar.school_weeks(self.calendar.first_day, self.calendar.last_day)

    def rolling_weeks_start(self, day: date, weeks: int) -> date:
        """Monday starting the last ``weeks`` school weeks up to ``day``'s week: the calendar's
        ``rolling_school_weeks_start``, answered from a cached week list (it is asked per day)."""
        mondays = self.school_week_mondays
        end = bisect.bisect_right(mondays, day)
        if end == 0:
            return self.calendar.rolling_school_weeks_start(day, weeks)
        return mondays[max(0, end - weeks)]

    def sessions_between(self, start: date, end: date) -> list[SessionKey]:
        """School sessions from ``start`` to ``end`` inclusive (the calendar's answer)."""
        return [
            (d, s) for d in self.calendar.school_days(start, end) for s in self.open_sessions(d)
        ]

    # -- other records ----------------------------------------------------------------------

    @cached_property
    def registers_by_key(self) -> dict[tuple[str, date, Session], Register]:
        return {(r.group, r.date, r.session): r for r in self.registers}

    @cached_property
    def mis_amendments(self) -> tuple[Amendment, ...]:
        return tuple(a for a in self.amendments if a.source is AmendmentSource.MIS)

    @cached_property
    def mis_amendments_by_key(self) -> dict[MarkKey, tuple[Amendment, ...]]:
        out: dict[MarkKey, list[Amendment]] = defaultdict(list)
        for amendment in self.mis_amendments:
            out[(amendment.pupil_id, amendment.date, amendment.session)].append(amendment)
        return {k: tuple(v) for k, v in out.items()}

    @cached_property
    def notifications_by_pupil(
        self,
    ) -> dict[tuple[str, NotificationKind], tuple[Notification, ...]]:
        out: dict[tuple[str, NotificationKind], list[Notification]] = defaultdict(list)
        for n in self.notifications:
            if n.pupil_id is not None:
                out[(n.pupil_id, n.kind)].append(n)
        return {k: tuple(v) for k, v in out.items()}

    def notifications_for(self, pupil_id: str, kind: NotificationKind) -> tuple[Notification, ...]:
        return self.notifications_by_pupil.get((pupil_id, kind), ())

    @classmethod
    def build(cls, *, calendar: Any, as_of: date, **records: Any) -> ScanContext:
        """A context from a schema ``Calendar`` (or a ready ``SchoolCalendar``) and record lists."""
        school_calendar = (
            calendar if isinstance(calendar, SchoolCalendar) else SchoolCalendar(calendar)
        )
        records.setdefault("school_id", school_calendar.school_id)
        return cls(calendar=school_calendar, as_of=as_of, **records)


def tracked_from(ctx: ScanContext) -> date:
    """Admissions, leavers and episodes before this day are not tracked (returns_tracked_from,
    default 1 August of the first school year the calendar configures). Not the current school
    year: a July leaver's missing return must not vanish on 1 August."""
    if ctx.settings.returns_tracked_from is not None:
        return ctx.settings.returns_tracked_from
    return school_year_bounds(school_year_of(ctx.calendar.first_day))[0]
