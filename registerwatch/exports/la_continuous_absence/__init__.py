"""la-continuous-absence: the attendance (continuous absence) return, answering open LAR002
findings.

SI 2024/208 reg 13 attendance return (paragraph not confirmed; MEMORY/INFERRED that it keeps the
structure of 2006 reg 12(1)(b), VERIFIED: "the full name and address of every registered pupil of
compulsory school age who ... has been absent ... for a continuous period of not less than ten
school days, and specifying the cause of absence if known"). One return per episode of 10
continuous school days of G, N, O or U (Stockport, SECONDARY).

Episode: the run's first session date (the finding's first session); a ``continuous_absence``
Notification whose episode start falls within the run closes LAR002. Docs:
docs/returns/la-continuous-absence.md.

Besides the runs, the return carries LAR002's irregular-attendance records (2006 reg 12(1)(a):
pupils who fail to attend regularly; ``RecordType`` irregular, counting only the unauthorised
sessions the finding counted), and the cause of each episode as the school entered it
(``SchoolCause``: ``registerwatch notify record --kind absence_cause --cause ...``, one per
episode); mark comments never reach the return (legal review §3).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from registerwatch.exports.la_common.building import build_return
from registerwatch.exports.la_common.inputs import AbsenceEpisode, absence_inputs, count_sessions
from registerwatch.exports.la_continuous_absence.render import KIND, render
from registerwatch.schema import NotificationKind

if TYPE_CHECKING:
    from registerwatch.exports.base import RenderedReturn
    from registerwatch.exports.registry import ExportRequest

__all__ = ["KIND", "build", "render"]


def build(request: ExportRequest) -> list[RenderedReturn]:
    # every entry in the run counts: each school day in it is unauthorised absence or a day that
    # is not a possible session (Y4 on an unexpected closure), which the LA should see too
    episodes = absence_inputs(request, KIND, counted_codes=None)
    return build_return(request, KIND, [_complete(request, e) for e in episodes], render)


def _complete(request: ExportRequest, episode: AbsenceEpisode) -> AbsenceEpisode:
    """The episode with the school's cause, and an irregular record's own session counts."""
    facts = dict(episode.facts)
    school_id = request.school.id
    causes = request.store.notifications(
        school_id, kind=NotificationKind.ABSENCE_CAUSE.value, pupil_id=episode.pupil_id
    )
    cause = next(
        (n.reference for n in causes if n.episode_start == episode.start.date and n.reference),
        None,
    )
    if cause is not None:
        facts["school_cause"] = cause
    counts = episode.session_counts
    codes = facts.get("codes")
    if facts.get("kind") == "irregular" and isinstance(codes, list):
        # not a run: between its first and last session the pupil also attended, and only the
        # unauthorised sessions the finding counted belong in the return
        marks = request.store.marks(school_id, episode.start.date, None, pupil_id=episode.pupil_id)
        counts, _ = count_sessions(marks, episode.start, episode.end, frozenset(codes))
    return replace(episode, facts=facts, session_counts=counts)
