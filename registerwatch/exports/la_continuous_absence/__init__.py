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
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from registerwatch.exports.la_common.building import build_return
from registerwatch.exports.la_common.inputs import absence_inputs
from registerwatch.exports.la_continuous_absence.render import KIND, render

if TYPE_CHECKING:
    from registerwatch.exports.base import RenderedReturn
    from registerwatch.exports.registry import ExportRequest

__all__ = ["KIND", "build", "render"]


def build(request: ExportRequest) -> list[RenderedReturn]:
    # every entry in the run counts: each school day in it is unauthorised absence or a day that
    # is not a possible session (Y4 on an unexpected closure), which the LA should see too
    episodes = absence_inputs(request, KIND, counted_codes=None)
    return build_return(request, KIND, episodes, render)
