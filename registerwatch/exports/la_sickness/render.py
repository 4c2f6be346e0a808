"""Render the la-sickness return: pure and deterministic (inputs in, bytes out; no clock).

The record is the shared absence record (la_common/absence.py) with these Episode facts, from
LAR001's evidence:

- ``IllnessDays``: school days of illness in the school year so far (a day with I on one of two
  sessions is half a day), as LAR001 counts them.
- ``ThresholdReached/ReachedOn``: the day the total reached the threshold (15 school days), or
  ``ThresholdExpected/SpellStart`` + ``SpellDays``: not reached yet, but the pupil is in an
  ongoing spell that will reach it at this rate (LAR001's "reasonable grounds to believe" test,
  INFERRED, see the rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from lxml import etree

from registerwatch.errors import ExportValidationError
from registerwatch.exports.base import RenderedReturn, sub
from registerwatch.exports.la_common import xml
from registerwatch.exports.la_common.absence import render_absence
from registerwatch.exports.la_common.inputs import (
    AbsenceEpisode,
    ReturnHeader,
    evidence_date,
)
from registerwatch.exports.la_common.items import NOT_HELD, Item

KIND: Final = "la-sickness"
ROOT: Final = "LASicknessReturn"
DETAIL_COLUMNS: Final = (
    "illness_days",
    "threshold",
    "threshold_reached_on",
    "spell_start",
    "spell_days",
)


def illness_days(episode: AbsenceEpisode) -> Item:
    value = episode.facts.get("illness_days")
    if not isinstance(value, int | float) or isinstance(value, bool):
        return NOT_HELD
    # LAR001 counts half days: 15 -> "15", 10.5 -> "10.5"
    return f"{value:g}" if value == int(value) else f"{value:.1f}"


def _details(block: etree._Element, episode: AbsenceEpisode) -> list[str]:
    days = illness_days(episode)
    xml.item(block, "IllnessDays", days)
    reached = evidence_date(episode.facts, "reached_on")
    if reached is not None:
        sub(sub(block, "ThresholdReached"), "ReachedOn", reached)
        return [str(days), "reached", reached.isoformat(), "", ""]
    spell_start = evidence_date(episode.facts, "spell_start")
    spell_days = episode.facts.get("spell_days")
    if spell_start is None or not isinstance(spell_days, int) or spell_days < 1:
        raise ExportValidationError(
            f"{KIND}: finding {episode.fingerprint} (pupil {episode.pupil_id}) says neither when "
            "the threshold was reached nor the ongoing spell; re-run the scan"
        )
    expected = sub(block, "ThresholdExpected")
    sub(expected, "SpellStart", spell_start)
    sub(expected, "SpellDays", spell_days)
    return [str(days), "expected", "", spell_start.isoformat(), str(spell_days)]


def render(header: ReturnHeader, episodes: Sequence[AbsenceEpisode]) -> RenderedReturn:
    return render_absence(
        header, episodes, root_tag=ROOT, detail_columns=DETAIL_COLUMNS, details=_details
    )
