"""Render the la-continuous-absence return: pure and deterministic (no clock, stable order).

The shared absence record (la_common/absence.py) with the run's facts (``SchoolDays``,
``ThresholdDay``: la_common.absence.run_details), the sessions by code in the run and the cause if
the codes state one (G: holiday not granted; U: arrived after the register closed; N/O: not
known).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from lxml import etree

from registerwatch.exports.base import RenderedReturn, sub
from registerwatch.exports.la_common import xml
from registerwatch.exports.la_common.absence import (
    RUN_COLUMNS,
    render_absence,
    run_details,
)
from registerwatch.exports.la_common.inputs import AbsenceEpisode, ReturnHeader
from registerwatch.exports.la_common.items import NOT_KNOWN, Item

KIND: Final = "la-continuous-absence"
ROOT: Final = "LAContinuousAbsenceReturn"
COLUMNS: Final = ("record_type", *RUN_COLUMNS, "school_cause")


def details(block: etree._Element, episode: AbsenceEpisode) -> list[str]:
    """``RecordType``: continuous (a run of 10 school days, reg 12(1)(b)) or irregular (reg
    12(1)(a)); the run's facts; ``SchoolCause``: the cause the school entered, else not known."""
    record_type = "irregular" if episode.facts.get("kind") == "irregular" else "continuous"
    sub(block, "RecordType", record_type)
    cells = run_details(block, episode)
    entered = episode.facts.get("school_cause")
    cause: Item = entered.strip() if isinstance(entered, str) and entered.strip() else NOT_KNOWN
    xml.item(block, "SchoolCause", cause)
    return [record_type, *cells, str(cause)]


def render(header: ReturnHeader, episodes: Sequence[AbsenceEpisode]) -> RenderedReturn:
    return render_absence(header, episodes, root_tag=ROOT, detail_columns=COLUMNS, details=details)
