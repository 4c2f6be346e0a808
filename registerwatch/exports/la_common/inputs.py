"""What the five LA returns are rendered from, read from the store in one place.

``build(request)`` in each return package calls :func:`open_findings` (the OPEN findings of the
LAR rule the return answers) and the ``*_inputs`` function for its shape; the result is plain,
frozen data that the return's pure ``render`` turns into XML and CSV. Nothing here reads a clock.

Episode dates (the ``ReturnRecordKey.episode`` and the ``Notification.episode_start`` the outbox
records) are chosen so that the LAR rule that raised the finding accepts the notification as the
return for it (see registerwatch/validators/returns/):

- LAR001 (sickness): a ``sickness`` return whose episode start is within [the school year's first
  I session, 31 July] closes it -> the finding's first session date.
- LAR002 / LAR003 (continuous absence / CME): a return whose episode start is within the run
  closes it -> the run's first session date (the finding's first session).
- LAR004 (new pupil): a ``new_pupil`` return with an episode start on or after the starting day
  -> the starting day (``evidence["starting_day"]``).
- LAR005 (deletion): a ``deletion`` return with an episode start on or after the pupil's starting
  day -> the leaving date (``evidence["leaving_date"]``), which is never before the starting day.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from registerwatch.errors import ExportValidationError
from registerwatch.exports.base import ReturnRecordKey
from registerwatch.exports.la_common.reference import RULE_FOR_RETURN, code_order
from registerwatch.schema import (
    SESSION_ORDER,
    Finding,
    Mark,
    Pupil,
    Session,
    SessionRef,
)

if TYPE_CHECKING:
    from registerwatch.exports.registry import ExportRequest
    from registerwatch.store import Store


@dataclass(frozen=True)
class ReturnHeader:
    """Who makes the return and when: the school's identifiers and the request's clock."""

    kind: str
    school_id: str
    school_name: str
    la_code: str
    estab: str  # the 4-digit DfE establishment number (LAESTAB without the LA code)
    urn: str
    as_of: date
    generated_at: datetime  # aware; rendered in UTC

    @classmethod
    def from_request(cls, kind: str, request: ExportRequest) -> ReturnHeader:
        school = request.school
        return cls(
            kind=kind,
            school_id=school.id,
            school_name=school.name,
            la_code=school.la_code,
            estab=school.laestab[3:],
            urn=school.urn,
            as_of=request.as_of,
            generated_at=request.generated_at,
        )

    @property
    def generated_at_utc(self) -> str:
        """ISO 8601 in UTC, so one instant renders the same bytes whatever its offset."""
        if self.generated_at.tzinfo is None or self.generated_at.utcoffset() is None:
            raise ExportValidationError(
                f"{self.kind} for school {self.school_id!r}: generated_at "
                f"{self.generated_at.isoformat()} has no timezone; pass an aware datetime"
            )
        return self.generated_at.astimezone(UTC).isoformat()


@dataclass(frozen=True)
class AbsenceEpisode:
    """One pupil's episode of absence that a sickness, continuous absence or CME return reports.

    ``session_counts`` are (code, sessions) in national-table order, counted from the register
    entries between ``start`` and ``end`` inclusive; ``ongoing`` is True when no register entry
    for the pupil follows ``end`` (the absence runs to the latest register the store holds).
    ``facts`` are the rule's evidence for the episode (see the return's render.py).
    """

    pupil_id: str
    pupil: Pupil | None
    start: SessionRef
    end: SessionRef
    session_counts: tuple[tuple[str, int], ...]
    ongoing: bool
    facts: Mapping[str, Any]
    fingerprint: str

    @property
    def key(self) -> ReturnRecordKey:
        return ReturnRecordKey(pupil_id=self.pupil_id, episode=self.start.date.isoformat())


@dataclass(frozen=True)
class RegisterEvent:
    """An admission (new pupil return) or a deletion (deletion return): ``day`` is the starting
    day or the leaving date the finding is about."""

    pupil_id: str
    pupil: Pupil | None
    day: date
    facts: Mapping[str, Any]
    fingerprint: str

    @property
    def key(self) -> ReturnRecordKey:
        return ReturnRecordKey(pupil_id=self.pupil_id, episode=self.day.isoformat())


# -- reading the store ----------------------------------------------------------------------------


def open_findings(store: Store, school_id: str, kind: str) -> list[Finding]:
    """The open findings of the rule ``kind`` answers, for pupils, in (pupil, episode) order."""
    rule = RULE_FOR_RETURN[kind]
    findings = [
        stored.finding
        for stored in store.load_findings(school_id, status="open").values()
        if stored.finding.rule == rule and stored.finding.pupil_id is not None
    ]
    return sorted(findings, key=lambda f: (f.pupil_id or "", _episode_sort(f), f.fingerprint or ""))


def _episode_sort(finding: Finding) -> str:
    if finding.first_session is not None:
        return finding.first_session.date.isoformat()
    return str(finding.evidence.get("starting_day") or finding.evidence.get("leaving_date") or "")


def pupils_by_id(store: Store, school_id: str) -> dict[str, Pupil]:
    return {p.id: p for p in store.pupils(school_id)}


def _position(day: date, session: Session) -> tuple[date, int]:
    return (day, SESSION_ORDER[Session(session)])


def count_sessions(
    marks: Iterable[Mark], start: SessionRef, end: SessionRef, codes: frozenset[str] | None
) -> tuple[tuple[tuple[str, int], ...], bool]:
    """(code, sessions) between ``start`` and ``end`` inclusive (only ``codes`` when given), in
    national-table order, and whether no entry follows ``end`` (the episode is ongoing)."""
    first, last = _position(start.date, start.session), _position(end.date, end.session)
    counts: dict[str, int] = {}
    ongoing = True
    for mark in marks:
        at = _position(mark.date, mark.session)
        if at > last:
            ongoing = False
        elif at >= first and (codes is None or mark.code in codes):
            counts[mark.code] = counts.get(mark.code, 0) + 1
    ordered = tuple(sorted(counts.items(), key=lambda item: (code_order(item[0]), item[0])))
    return ordered, ongoing


def absence_inputs(
    request: ExportRequest, kind: str, *, counted_codes: frozenset[str] | None
) -> list[AbsenceEpisode]:
    """One AbsenceEpisode per open finding (LAR001-LAR003), keyed by the episode's first date.

    ``counted_codes``: the codes whose sessions the return counts (sickness: I only, because the
    sickness total is cumulative over the school year and the days between spells are not part of
    it); None counts every entry in the episode (a continuous run, in which every school day is
    absence or a day that is not a possible session).
    """
    school_id = request.school.id
    findings = open_findings(request.store, school_id, kind)
    if not findings:
        return []
    pupils = pupils_by_id(request.store, school_id)
    episodes: dict[ReturnRecordKey, AbsenceEpisode] = {}
    problems: list[str] = []
    for finding in findings:
        assert finding.pupil_id is not None  # open_findings keeps pupil findings only
        start, end = finding.first_session, finding.last_session
        if start is None or end is None:
            problems.append(
                f"finding {finding.fingerprint} ({finding.rule}, pupil "
                f"{finding.pupil_id}) names no episode sessions"
            )
            continue
        marks = request.store.marks(school_id, start.date, None, pupil_id=finding.pupil_id)
        counts, ongoing = count_sessions(marks, start, end, counted_codes)
        episode = AbsenceEpisode(
            pupil_id=finding.pupil_id,
            pupil=pupils.get(finding.pupil_id),
            start=start,
            end=end,
            session_counts=counts,
            ongoing=ongoing,
            facts=dict(finding.evidence),
            fingerprint=finding.fingerprint or "",
        )
        # one record per (pupil, episode): the first in fingerprint order wins
        episodes.setdefault(episode.key, episode)
    if problems:
        raise ExportValidationError(
            f"{kind} for school {school_id!r}: cannot build the return", errors=problems
        )
    return sorted(episodes.values(), key=lambda e: (e.key.pupil_id or "", e.key.episode or ""))


def event_inputs(
    request: ExportRequest, kind: str, *, evidence_key: str, pupil_field: str
) -> list[RegisterEvent]:
    """One RegisterEvent per open finding (LAR004, LAR005): the day is the finding's evidence
    ``evidence_key`` (the admission or deletion it is about), else the pupil's ``pupil_field``."""
    school_id = request.school.id
    findings = open_findings(request.store, school_id, kind)
    if not findings:
        return []
    pupils = pupils_by_id(request.store, school_id)
    events: dict[ReturnRecordKey, RegisterEvent] = {}
    problems: list[str] = []
    for finding in findings:
        assert finding.pupil_id is not None
        pupil = pupils.get(finding.pupil_id)
        day = _evidence_date(finding.evidence.get(evidence_key))
        if day is None and pupil is not None:
            day = getattr(pupil, pupil_field)
        if day is None:
            problems.append(
                f"finding {finding.fingerprint} ({finding.rule}, pupil "
                f"{finding.pupil_id}) has no {evidence_key}"
            )
            continue
        event = RegisterEvent(
            pupil_id=finding.pupil_id,
            pupil=pupil,
            day=day,
            facts=dict(finding.evidence),
            fingerprint=finding.fingerprint or "",
        )
        events.setdefault(event.key, event)
    if problems:
        raise ExportValidationError(
            f"{kind} for school {school_id!r}: cannot build the return", errors=problems
        )
    return sorted(events.values(), key=lambda e: (e.key.pupil_id or "", e.key.episode or ""))


def _evidence_date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value:
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def evidence_date(facts: Mapping[str, Any], key: str) -> date | None:
    """A date the rule put in its evidence (ISO text once stored), or None."""
    return _evidence_date(facts.get(key))


def check_episodes(kind: str, school_id: str, episodes: Sequence[AbsenceEpisode]) -> None:
    """What the XSD cannot say (XSD 1.0 has no co-occurrence constraints), checked before
    rendering: an episode ends at or after it starts."""
    problems: list[str] = []
    for e in episodes:
        where = f"record (pupil {e.pupil_id}, episode {e.key.episode})"
        if _position(e.end.date, e.end.session) < _position(e.start.date, e.start.session):
            problems.append(
                f"{where}: episode ends {e.end.date.isoformat()} {e.end.session} "
                f"before it starts {e.start.date.isoformat()} {e.start.session}"
            )
    if problems:
        raise ExportValidationError(
            f"{kind} for school {school_id!r}: episodes are inconsistent; nothing was rendered",
            errors=problems,
        )
