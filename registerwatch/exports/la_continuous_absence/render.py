"""Render the la-continuous-absence return: pure and deterministic (no clock, stable order).

The shared absence record (la_common/absence.py) with the run's facts (``SchoolDays``,
``ThresholdDay``: la_common.absence.run_details), the sessions by code in the run and the cause if
the codes state one (G: holiday not granted; U: arrived after the register closed; N/O: not
known).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from registerwatch.exports.base import RenderedReturn
from registerwatch.exports.la_common.absence import (
    RUN_COLUMNS,
    render_absence,
    run_details,
)
from registerwatch.exports.la_common.inputs import AbsenceEpisode, ReturnHeader

KIND: Final = "la-continuous-absence"
ROOT: Final = "LAContinuousAbsenceReturn"


def render(header: ReturnHeader, episodes: Sequence[AbsenceEpisode]) -> RenderedReturn:
    return render_absence(
        header, episodes, root_tag=ROOT, detail_columns=RUN_COLUMNS, details=run_details
    )
