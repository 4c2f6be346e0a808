"""Rule scenarios written in YAML: the format of the rule fixtures (``tests/validators/fixtures``).

A file holds one rule's cases. ``defaults`` is merged into every case (a case's own keys win;
mappings are merged one level deep and ``marks`` lists are concatenated, so a case adds to the
default marks). Every key is optional except a case's ``name`` and ``expect``::

    rule: MRK001
    defaults:
      as_of: 2025-11-12                 # the scan day: data runs to the day before
      school_id: test                   # default "test"
      calendar:
        terms: [2025-09-03..2025-10-24, 2025-11-03..2025-12-19]
        closures: ["2025-11-14 both planned INSET day", "2025-12-05 PM unexpected Boiler"]
        register_times: {am_open: "08:45", pm_open: "13:15", close_after_minutes: 30}
      pupils:
        - {id: p1, dob: 2014-05-01, nc_year: "6", reg_group: 6A, starting_day: 2025-09-03}
      fill: present                     # every pupil present (Y4 on unexpected closures) on
                                        # every school session on roll, first term day..as_of-1
      fill_registers: true              # a register saved 10 minutes after opening, per group
                                        # with pupils on roll, for every filled session
    cases:
      - name: n-overdue
        description: why this case exists
        marks:
          p1:
            - 2025-11-03 AM N           # one session
            - 2025-11-04 I              # every open session of the day
            - 2025-11-05..2025-11-07 G  # every open session of every school day in the range
            - 2025-11-10..2025-11-11 PM O
            - 2025-11-12 AM -           # remove the (filled) mark
            - 2025-11-13 AM L+50        # L with 50 minutes late recorded
        registers:                      # GROUP DATE SESSION [opened HH:MM] [completed HH:MM|never]
          - 6A 2025-11-03 AM opened 08:45 completed 09:40
          - 6A 2025-11-04 PM none       # remove the (filled) register
        amendments:
          - {pupil: p1, date: 2025-11-03, session: AM, original: N, amended: I, reason: GP,
             at: "2025-11-05 10:00", by: A Smith, position: Attendance officer}
        observed:                       # PUPIL DATE SESSION FROM->TO @WHEN  (TO "deleted")
          - p1 2025-11-03 AM N->O @2025-11-06 07:00
        notifications:
          - {kind: sickness, pupil: p1, episode_start: 2025-11-03}
        settings: {n_code_deadline_school_days: 5}
        exposes_registers: true
        exposes_amendments: true
        exposes_social_worker: true
        expect:                         # exactly these findings of the rule, no more
          - {pupil: p1, first: 2025-11-03 AM, last: 2025-11-03 AM, due: 2025-11-10,
             severity: error}

Wall-clock times without an offset are Europe/London. ``present`` is ``/`` in the morning and
``\\`` in the afternoon. In ``expect``, a missing ``last`` is the same as ``first``, a missing
``rule`` is the file's, and ``pupil``/``first``/``due`` default to none.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import yaml

from registerwatch.calendar import LONDON, SchoolCalendar
from registerwatch.codes import is_known_code
from registerwatch.schema import (
    Amendment,
    AmendmentSource,
    Calendar,
    Closure,
    Finding,
    Mark,
    Notification,
    Pupil,
    Register,
    Session,
    SessionRef,
    Severity,
    Term,
)
from registerwatch.validators.context import ObservedChange, ScanContext
from registerwatch.validators.settings import RuleSettings

PRESENT = {Session.AM: "/", Session.PM: "\\"}
REGISTER_SAVED_AFTER = timedelta(minutes=10)


class ScenarioError(ValueError):
    """A scenario file that cannot be read: the message names the file, case and entry."""


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value).strip())


def _instant(value: Any) -> datetime:
    """An aware datetime: ISO with an offset, or a London wall-clock 'YYYY-MM-DD HH:MM'."""
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).strip())
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=LONDON)


def _range(text: str) -> tuple[date, date]:
    if ".." in text:
        start, end = text.split("..", 1)
        return _date(start), _date(end)
    return _date(text), _date(text)


def _session_ref(text: Any) -> tuple[date, Session] | None:
    if text is None:
        return None
    day, session = str(text).split()
    return _date(day), Session(session)


@dataclass(frozen=True, order=True)
class ExpectedRow:
    """What a fixture pins down about one finding."""

    rule: str
    pupil: str | None
    first: tuple[date, Session] | None
    last: tuple[date, Session] | None
    due: date | None
    severity: str

    @classmethod
    def of(cls, finding: Finding) -> ExpectedRow:
        def ref(r: SessionRef | None) -> tuple[date, Session] | None:
            return None if r is None else (r.date, r.session)

        return cls(
            finding.rule,
            finding.pupil_id,
            ref(finding.first_session),
            ref(finding.last_session),
            finding.due,
            finding.severity.value,
        )

    def __str__(self) -> str:
        def ref(r: tuple[date, Session] | None) -> str:
            return "-" if r is None else f"{r[0].isoformat()} {r[1].value}"

        return (
            f"{self.rule} pupil={self.pupil} first={ref(self.first)} last={ref(self.last)} "
            f"due={self.due} severity={self.severity}"
        )


def _sort_key(row: ExpectedRow) -> tuple[str, str, str, str]:
    return (row.rule, row.pupil or "", str(row.first), str(row.last))


@dataclass
class Scenario:
    """One case of a fixture file, ready to build its context and compare its findings."""

    rule: str
    name: str
    description: str
    data: Mapping[str, Any]
    expect: list[ExpectedRow]
    extra_checks: list[Mapping[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.rule}-{self.name}"

    def expected_rows(self) -> list[ExpectedRow]:
        return sorted(self.expect, key=_sort_key)

    def context(self) -> ScanContext:
        try:
            return _build_context(self.data)
        except (ValueError, KeyError, TypeError) as exc:
            raise ScenarioError(f"{self.id}: {exc}") from exc


def rows_of(findings: Iterable[Finding]) -> list[ExpectedRow]:
    return sorted((ExpectedRow.of(f) for f in findings), key=_sort_key)


# -- building the records --------------------------------------------------------------------


def _calendar(school_id: str, spec: Mapping[str, Any]) -> Calendar:
    terms = []
    for term in spec.get("terms", ()):
        if isinstance(term, Mapping):
            terms.append(Term(start=_date(term["start"]), end=_date(term["end"])))
        else:
            start, end = _range(str(term))
            terms.append(Term(start=start, end=end))
    closures = []
    for closure in spec.get("closures", ()):
        if isinstance(closure, Mapping):
            closures.append(Closure(**closure))
            continue
        parts = str(closure).split(maxsplit=3)
        closures.append(
            Closure(
                date=_date(parts[0]),
                session=parts[1],
                kind=parts[2],
                reason=parts[3] if len(parts) > 3 else None,
            )
        )
    extra = {"register_times": spec["register_times"]} if "register_times" in spec else {}
    return Calendar(school_id=school_id, terms=terms, closures=closures, **extra)


def _pupils(school_id: str, specs: Iterable[Mapping[str, Any]]) -> list[Pupil]:
    pupils = []
    for spec in specs:
        values = {"school_id": school_id, "mis_id": str(spec["id"]), **spec}
        pupils.append(Pupil(**values))
    return pupils


def _mark_lines(cal: SchoolCalendar, line: str) -> list[tuple[date, Session, str]]:
    """'D S CODE', 'D CODE', 'D1..D2 CODE' or 'D1..D2 S CODE' -> (date, session, code).

    One day is taken as written, school day or not (a day the school is closed gets both
    sessions unless one is named); a range covers the school days in it and their open sessions.
    """
    parts = str(line).split()
    if len(parts) not in (2, 3):
        raise ValueError(f"mark line {line!r}: expected 'DATE[..DATE] [SESSION] CODE'")
    start, end = _range(parts[0])
    code = parts[-1]
    named = Session(parts[1]) if len(parts) == 3 else None
    if start == end:
        sessions = (named,) if named else (cal.sessions_on(start) or (Session.AM, Session.PM))
        return [(start, session, code) for session in sessions]
    return [
        (day, session, code)
        for day in cal.school_days(start, end)
        for session in cal.sessions_on(day)
        if named is None or session is named
    ]


def _marks(
    data: Mapping[str, Any], cal: SchoolCalendar, pupils: list[Pupil], as_of: date
) -> list[Mark]:
    grid: dict[tuple[str, date, Session], str] = {}
    if data.get("fill"):
        if data["fill"] != "present":
            raise ValueError(f"fill: only 'present' is understood, not {data['fill']!r}")
        start = _date(data.get("fill_from", cal.first_day))
        end = _date(data.get("fill_to", as_of - timedelta(days=1)))
        for pupil in pupils:
            if pupil.boarder:
                continue
            for day in cal.school_days(start, end):
                if not pupil.on_roll(day):
                    continue
                for session in cal.sessions_on(day):
                    code = cal.closure_code(day, session) or PRESENT[session]
                    grid[(pupil.id, day, session)] = code
    for pupil_id, lines in (data.get("marks") or {}).items():
        for line in lines:
            for day, session, code in _mark_lines(cal, line):
                key = (str(pupil_id), day, session)
                if code == "-":
                    grid.pop(key, None)
                else:
                    grid[key] = PRESENT[session] if code == "present" else code
    return [
        _mark(p, d, s, c)
        for (p, d, s), c in sorted(
            grid.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] is Session.PM)
        )
    ]


def _mark(pupil_id: str, day: date, session: Session, text: str) -> Mark:
    """'L+50' is code L with 50 minutes late recorded (MRK006)."""
    code, _, late = text.partition("+")
    return Mark(
        pupil_id=pupil_id,
        date=day,
        session=session,
        code=code,
        minutes_late=int(late) if late else None,
    )


def _registers(
    data: Mapping[str, Any], cal: SchoolCalendar, school_id: str, pupils: list[Pupil], as_of: date
) -> list[Register]:
    grid: dict[tuple[str, date, Session], Register | None] = {}

    def register(
        group: str, day: date, session: Session, opened: datetime | None, completed: datetime | None
    ) -> Register:
        return Register(
            school_id=school_id,
            group=group,
            date=day,
            session=session,
            opened_at=opened,
            completed_at=completed,
        )

    if data.get("fill_registers"):
        start = _date(data.get("fill_from", cal.first_day))
        end = _date(data.get("fill_to", as_of - timedelta(days=1)))
        groups = sorted({p.reg_group for p in pupils if p.reg_group and not p.boarder})
        for day in cal.school_days(start, end):
            for group in groups:
                if not any(
                    p.reg_group == group and p.on_roll(day) and not p.boarder for p in pupils
                ):
                    continue
                for session in cal.sessions_on(day):
                    opens = cal.register_opens(day, session)
                    grid[(group, day, session)] = register(
                        group, day, session, opens, opens + REGISTER_SAVED_AFTER
                    )
    for line in data.get("registers") or ():
        parts = str(line).split()
        group, day, session = parts[0], _date(parts[1]), Session(parts[2])
        if parts[3:] == ["none"]:
            grid[(group, day, session)] = None
            continue
        opts = dict(zip(parts[3::2], parts[4::2], strict=True))
        opens = cal.register_opens(day, session)

        def at(value: str, day: date = day) -> datetime:
            return datetime.combine(day, time.fromisoformat(value), tzinfo=LONDON)

        opened = at(opts["opened"]) if "opened" in opts else opens
        completed_text = opts.get("completed")
        completed = (
            None
            if completed_text == "never"
            else at(completed_text)
            if completed_text
            else opened + REGISTER_SAVED_AFTER
        )
        grid[(group, day, session)] = register(group, day, session, opened, completed)
    return [r for r in grid.values() if r is not None]


def _amendments(specs: Iterable[Mapping[str, Any]]) -> list[Amendment]:
    out = []
    for spec in specs:
        out.append(
            Amendment(
                pupil_id=str(spec["pupil"]),
                date=_date(spec["date"]),
                session=Session(spec["session"]),
                original_code=spec.get("original"),
                amended_code=spec.get("amended"),
                reason=spec.get("reason"),
                amended_at=_instant(spec["at"]) if spec.get("at") else None,
                amended_by_name=spec.get("by"),
                amended_by_position=spec.get("position"),
                source=AmendmentSource(spec.get("source", "mis")),
                source_ref=spec.get("ref"),
            )
        )
    return out


def _observed(lines: Iterable[str]) -> list[ObservedChange]:
    out = []
    for line in lines:
        body, _, when = str(line).partition("@")
        pupil, day, session, change = body.split()
        before, after = change.split("->")
        deleted = after == "deleted"
        for code in (before, *(() if deleted else (after,))):
            if not is_known_code(code):
                raise ValueError(f"observed line {line!r}: {code!r} is not a national code")
        out.append(
            ObservedChange(
                pupil_id=pupil,
                date=_date(day),
                session=Session(session),
                kind="deleted" if deleted else "change",
                original_code=before,
                new_code=None if deleted else after,
                observed_at=_instant(when),
            )
        )
    return out


def _notifications(
    specs: Iterable[Mapping[str, Any]], school_id: str, as_of: date
) -> list[Notification]:
    out = []
    default_made = datetime.combine(as_of - timedelta(days=1), time(16, 0), tzinfo=LONDON)
    for spec in specs:
        out.append(
            Notification(
                kind=spec["kind"],
                school_id=school_id,
                pupil_id=spec.get("pupil"),
                episode_start=_date(spec["episode_start"]) if spec.get("episode_start") else None,
                made_at=_instant(spec["made_at"]) if spec.get("made_at") else default_made,
                channel=spec.get("channel", "test"),
                reference=spec.get("reference"),
            )
        )
    return out


def _build_context(data: Mapping[str, Any]) -> ScanContext:
    school_id = str(data.get("school_id", "test"))
    as_of = _date(data["as_of"])
    cal = SchoolCalendar(_calendar(school_id, data.get("calendar") or {}))
    pupils = _pupils(school_id, data.get("pupils") or ())
    return ScanContext(
        school_id=school_id,
        as_of=as_of,
        calendar=cal,
        pupils=pupils,
        registers=_registers(data, cal, school_id, pupils, as_of),
        marks=_marks(data, cal, pupils, as_of),
        amendments=_amendments(data.get("amendments") or ()),
        observed_changes=_observed(data.get("observed") or ()),
        notifications=_notifications(data.get("notifications") or (), school_id, as_of),
        exposes_registers=bool(data.get("exposes_registers", True)),
        exposes_amendments=bool(data.get("exposes_amendments", True)),
        exposes_social_worker=bool(data.get("exposes_social_worker", True)),
        settings=RuleSettings(**(data.get("settings") or {})),
    )


# -- reading a file --------------------------------------------------------------------------


def _merge(defaults: Mapping[str, Any], case: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(defaults))
    for key, value in case.items():
        if key == "marks" and isinstance(merged.get(key), Mapping) and isinstance(value, Mapping):
            marks = {k: list(v) for k, v in merged[key].items()}
            for pupil, lines in value.items():
                marks[pupil] = marks.get(pupil, []) + list(lines)
            merged[key] = marks
        elif isinstance(merged.get(key), Mapping) and isinstance(value, Mapping):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _expected(rule: str, spec: Mapping[str, Any]) -> ExpectedRow:
    first = _session_ref(spec.get("first"))
    last = _session_ref(spec["last"]) if "last" in spec else first
    severity = Severity(spec["severity"]).value
    return ExpectedRow(
        str(spec.get("rule", rule)),
        spec.get("pupil"),
        first,
        last,
        _date(spec["due"]) if spec.get("due") else None,
        severity,
    )


def load_scenarios(path: Path | str) -> list[Scenario]:
    """Every case of one fixture file."""
    path = Path(path)
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(doc, Mapping) or "rule" not in doc or "cases" not in doc:
        raise ScenarioError(f"{path}: a fixture needs 'rule' and 'cases'")
    rule = str(doc["rule"])
    defaults = doc.get("defaults") or {}
    scenarios = []
    for case in doc["cases"]:
        if "name" not in case or "expect" not in case:
            raise ScenarioError(f"{path}: every case needs 'name' and 'expect' ({case!r:.80})")
        data = _merge(
            defaults,
            {k: v for k, v in case.items() if k not in ("name", "description", "expect", "checks")},
        )
        try:
            expect = [_expected(rule, e) for e in case["expect"] or ()]
        except (KeyError, ValueError) as exc:
            raise ScenarioError(f"{path}: case {case['name']}: bad expectation: {exc}") from exc
        scenarios.append(
            Scenario(
                rule=rule,
                name=str(case["name"]),
                description=str(case.get("description", "")),
                data=data,
                expect=expect,
                extra_checks=list(case.get("checks") or ()),
            )
        )
    return scenarios
