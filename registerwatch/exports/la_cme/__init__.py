"""la-cme: the children-missing-education referral, answering open LAR003 findings.

The reason for the pupil's absence has been unknown (N or O on every session) for 10 consecutive
school days. Children missing education statutory guidance (2024) describes the schools' LA
returns (SECONDARY via edyourself); the paragraph on the 10-day referral is not
confirmed, and the referral's contents are INFERRED: the same as the continuous absence return
(full name and address, parents lived with and their phones, the episode), the cause being by
definition not known.

Episode: the run's first session date (the finding's first session); a ``cme`` Notification
whose episode start falls within the run closes LAR003. Docs: docs/returns/la-cme.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from registerwatch.exports.la_cme.render import KIND, render
from registerwatch.exports.la_common.building import build_return
from registerwatch.exports.la_common.inputs import absence_inputs

if TYPE_CHECKING:
    from registerwatch.exports.base import RenderedReturn
    from registerwatch.exports.registry import ExportRequest

__all__ = ["KIND", "build", "render"]


def build(request: ExportRequest) -> list[RenderedReturn]:
    episodes = absence_inputs(request, KIND, counted_codes=None)
    return build_return(request, KIND, episodes, render)
