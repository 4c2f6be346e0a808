"""Render the la-cme referral: pure and deterministic (no clock, stable order).

The shared absence record (la_common/absence.py) with the run's facts (``SchoolDays``,
``ThresholdDay``); ``Cause`` is nil with status ``not-known`` when every code is N or O, which is
what makes the referral due.
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

KIND: Final = "la-cme"
ROOT: Final = "LACMEReferral"


def render(header: ReturnHeader, episodes: Sequence[AbsenceEpisode]) -> RenderedReturn:
    return render_absence(
        header, episodes, root_tag=ROOT, detail_columns=RUN_COLUMNS, details=run_details
    )
