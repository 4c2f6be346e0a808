"""la-new-pupil: the new pupil return, answering open LAR004 findings.

SI 2024/208 reg 13(1) (VERIFIED): by the end of the fifth day after the day a
pupil's name is entered in the admission register, a return to the LA "giving all the information
about the pupil that is entered in the admission register" (reg 13(2)-(3) exemptions are LAR004's
business: no finding, no record). The admission register's contents are reg 8 (INFERRED list,
§1.5; the 2006 reg 5 list is VERIFIED); the record gives every reg 8 item the common schema holds
(see render.py) and says which it does not (reference.NOT_IN_SCHEMA).

Episode: the starting day (LAR004's evidence); a ``new_pupil`` Notification with an episode start
on or after the starting day closes LAR004. Docs: docs/returns/la-new-pupil.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from registerwatch.exports.la_common.building import build_return
from registerwatch.exports.la_common.inputs import event_inputs
from registerwatch.exports.la_new_pupil.render import KIND, render

if TYPE_CHECKING:
    from registerwatch.exports.base import RenderedReturn
    from registerwatch.exports.registry import ExportRequest

__all__ = ["KIND", "build", "render"]


def build(request: ExportRequest) -> list[RenderedReturn]:
    admissions = event_inputs(
        request, KIND, evidence_key="starting_day", pupil_field="starting_day"
    )
    return build_return(request, KIND, admissions, render)
