"""la-sickness: the sickness return to the local authority, answering open LAR001 findings.

SI 2024/208 reg 13 (paragraph not confirmed): pupils coded I where there are reasonable grounds to
believe they will miss 15 school days, consecutive or cumulative, through sickness (SECONDARY:
Hertfordshire); the return's contents are INFERRED (full name and address,
possibly the parents' details). One record per pupil and school year: LAR001 raises one finding
per pupil per school year, and "only one sickness return is required for a continuous period of
sickness in a school year" (Hertfordshire).

Episode: the first session of the school year coded I (the finding's first session); a
``sickness`` Notification with that episode start closes LAR001 (it accepts any episode start
from that day to 31 July). Docs: docs/returns/la-sickness.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from registerwatch.codes import ILLNESS_CODE
from registerwatch.exports.la_common.building import build_return
from registerwatch.exports.la_common.inputs import absence_inputs
from registerwatch.exports.la_sickness.render import KIND, render

if TYPE_CHECKING:
    from registerwatch.exports.base import RenderedReturn
    from registerwatch.exports.registry import ExportRequest

__all__ = ["KIND", "build", "render"]


def build(request: ExportRequest) -> list[RenderedReturn]:
    # only I sessions count: the total is cumulative over the school year, so the days between
    # spells of illness are not part of the episode's sessions
    episodes = absence_inputs(request, KIND, counted_codes=frozenset({ILLNESS_CODE}))
    return build_return(request, KIND, episodes, render)
