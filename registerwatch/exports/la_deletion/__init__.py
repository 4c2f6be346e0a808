"""la-deletion: the deletion return, answering open LAR005 findings.

SI 2024/208 reg 13(4) (VERIFIED): when a registered pupil's name is deleted from
the admission register, a return to the LA giving (a) full name, (b) address, (c) the full name
and address of any parent the pupil normally lives with, (d) at least one emergency telephone
number for each such parent, (e) the information entered under reg 8(3), if any. The ground of
deletion under reg 9 is INFERRED as a further item (§1.6); the leaving date is given too.

Episode: the leaving date (LAR005's evidence); a ``deletion`` Notification with an episode start
on or after the pupil's starting day closes LAR005, and the leaving date is never before it.
Docs: docs/returns/la-deletion.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from registerwatch.deletion_grounds import missing_items
from registerwatch.exports.la_common.building import build_return
from registerwatch.exports.la_common.inputs import event_inputs
from registerwatch.exports.la_deletion.render import KIND, render

if TYPE_CHECKING:
    from registerwatch.exports.base import RenderedReturn
    from registerwatch.exports.registry import ExportRequest

__all__ = ["KIND", "build", "missing_items", "render"]

log = structlog.get_logger(__name__)


def build(request: ExportRequest) -> list[RenderedReturn]:
    deletions = event_inputs(request, KIND, evidence_key="leaving_date", pupil_field="leaving_date")
    # An incomplete record is refused, not queued: its LAR005 finding stays open and names what
    # the MIS record lacks (completeness.py).
    complete = [d for d in deletions if not missing_items(d.pupil)]
    if len(complete) < len(deletions):
        log.info(
            "export.records_refused",
            kind=KIND,
            school_id=request.school.id,
            refused=len(deletions) - len(complete),
            reason="incomplete",
        )
    return build_return(request, KIND, complete, render)
