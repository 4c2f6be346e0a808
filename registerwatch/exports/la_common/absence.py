"""The record shape the three absence returns share (sickness, continuous absence, CME).

One ``<Record>`` per pupil episode::

    <Record>
      <RecordKey>            pupil ref + episode (the episode's first date)
      <Pupil>                full name, UPN, sex, DOB, NC year, address
      <ParentsLivedWith>     each parent the pupil normally lives with: name, address, phone
      <Episode>
        <Start session=".."> <End session=".."> <Ongoing>
        ...                  the return's own facts (render.py of each return)
        <Sessions>           sessions by national code within the episode
        <Cause>              the cause of absence if known
      </Episode>
    </Record>

Each return's ``render.py`` supplies the root tag and its own facts (``details``); everything
else, XML and CSV alike, is written here so the three stay the same shape.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from lxml import etree

from registerwatch.exports.base import RenderedReturn, sub, yes_no
from registerwatch.exports.la_common import xml
from registerwatch.exports.la_common.inputs import (
    AbsenceEpisode,
    ReturnHeader,
    check_episodes,
    evidence_date,
)
from registerwatch.exports.la_common.items import (
    NOT_HELD,
    NOT_KNOWN,
    Item,
    parent_items,
    pupil_items,
)
from registerwatch.exports.la_common.reference import cause_of

#: writes a return's own Episode elements and returns its own CSV cells
Details = Callable[[etree._Element, AbsenceEpisode], list[str]]

HEAD_COLUMNS: Final = ("pupil_ref", "episode")
EPISODE_COLUMNS: Final = ("episode_start", "episode_end", "ongoing")
TAIL_COLUMNS: Final = ("sessions_by_code", "cause", "parents_lived_with")


def cause(episode: AbsenceEpisode) -> Item:
    """The cause the episode's codes state, else not-known (reference.CAUSE_CODES)."""
    stated = cause_of([code for code, _ in episode.session_counts])
    return stated if stated is not None else NOT_KNOWN


def render_absence(
    header: ReturnHeader,
    episodes: Sequence[AbsenceEpisode],
    *,
    root_tag: str,
    detail_columns: Sequence[str],
    details: Details,
) -> RenderedReturn:
    check_episodes(header.kind, header.school_id, episodes)
    ordered = sorted(episodes, key=lambda e: (e.key.pupil_id or "", e.key.episode or ""))
    root = xml.new_root(root_tag, header, len(ordered))
    records = xml.records_of(root)
    rows: list[Sequence[object]] = []
    for episode in ordered:
        record = sub(records, "Record")
        xml.record_key(record, episode.key)
        who = pupil_items(episode.pupil)
        xml.pupil(record, who)
        lived_with = parent_items(episode.pupil, lived_with_only=True)
        xml.parents(record, "ParentsLivedWith", lived_with, with_lives_with=False)
        block = sub(record, "Episode")
        xml.session_date(block, "Start", episode.start)
        xml.session_date(block, "End", episode.end)
        sub(block, "Ongoing", yes_no(episode.ongoing))
        own = details(block, episode)
        xml.session_counts(block, episode.session_counts)
        why = cause(episode)
        xml.item(block, "Cause", why)
        rows.append(
            [
                episode.key.pupil_id,
                episode.key.episode,
                *xml.pupil_cells(who),
                f"{episode.start.date.isoformat()} {episode.start.session.value}",
                f"{episode.end.date.isoformat()} {episode.end.session.value}",
                yes_no(episode.ongoing),
                *own,
                xml.counts_cell(episode.session_counts),
                str(why),
                xml.parents_cell(lived_with, with_lives_with=False),
            ]
        )
    columns = (*HEAD_COLUMNS, *xml.PUPIL_COLUMNS, *EPISODE_COLUMNS, *detail_columns, *TAIL_COLUMNS)
    return xml.finish(
        root, header, keys=[e.key for e in ordered], csv_header=columns, csv_rows=rows
    )


# -- the facts of a continuous run (LAR002, LAR003) ----------------------------------------------

RUN_COLUMNS: Final = ("school_days", "threshold_day")


def run_details(block: etree._Element, episode: AbsenceEpisode) -> list[str]:
    """``SchoolDays``: consecutive school days in the run so far (LAR002/LAR003 count them; days
    that are not possible sessions neither count nor break the run); ``ThresholdDay``: the day the
    run reached the threshold (the 10th school day)."""
    days_value = episode.facts.get("school_days")
    days: Item = str(days_value) if isinstance(days_value, int) and days_value > 0 else NOT_HELD
    xml.item(block, "SchoolDays", days)
    threshold = evidence_date(episode.facts, "threshold_day")
    threshold_item: Item = threshold.isoformat() if threshold is not None else NOT_HELD
    xml.item(block, "ThresholdDay", threshold_item)
    return [str(days), str(threshold_item)]
