"""The CTF attendance block (``registerwatch export ctf``): see docs/returns/ctf.md.

``build(request)`` writes one CTF for the school holding, for each selected pupil, the school
year's attendance up to the day before ``request.as_of``. Options (``request.options``):

- ``ctf_pupils``: ``on-roll`` (default: pupils on roll on the as-of date), ``leavers`` (pupils
  who left during the school year, on or before as-of) or ``all``;
- ``ctf_unencodable``: ``not-in-session`` (default: Y1-Y7 are written ``#``) or ``refuse``;
- ``ctf_destination``: the receiving school's 7-digit LAESTAB, or ``MMMMMMM`` / ``XXXXXXX``;
  without it no ``<DestSchool>`` is written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from registerwatch.exports.ctf.render import (
    CHARACTER_FOR_CODE,
    DESTINATION_OPTION,
    KIND,
    PUPILS_OPTION,
    SCHEMA_NAME,
    UNENCODABLE_OPTION,
    Destination,
    PupilSelection,
    Unencodable,
    ctf_window,
    render,
)
from registerwatch.exports.registers import (
    ExportRequestError,
    load_register,
    school_calendar,
)

if TYPE_CHECKING:
    from registerwatch.exports.base import RenderedReturn
    from registerwatch.exports.registry import ExportRequest

__all__ = [
    "CHARACTER_FOR_CODE",
    "KIND",
    "SCHEMA_NAME",
    "Destination",
    "PupilSelection",
    "Unencodable",
    "build",
    "ctf_window",
    "render",
]


def _choice(
    options: dict[str, object], key: str, kind: type[PupilSelection | Unencodable], default: str
) -> str:
    value = str(options.get(key, default)).strip().lower()
    allowed = [member.value for member in kind]
    if value not in allowed:
        raise ExportRequestError(f"{key} {value!r} must be one of {', '.join(allowed)}")
    return value


def build(request: ExportRequest) -> list[RenderedReturn]:
    options = request.options
    selection = PupilSelection(
        _choice(options, PUPILS_OPTION, PupilSelection, PupilSelection.ON_ROLL)
    )
    unencodable = Unencodable(
        _choice(options, UNENCODABLE_OPTION, Unencodable, Unencodable.NOT_IN_SESSION)
    )
    destination = (
        Destination.parse(str(options[DESTINATION_OPTION]))
        if options.get(DESTINATION_OPTION)
        else None
    )
    _, start, end = ctf_window(request.as_of)
    data = load_register(request, start, end, school_calendar(request))
    return [
        render(
            data,
            as_of=request.as_of,
            generated_at=request.generated_at,
            selection=selection,
            unencodable=unencodable,
            destination=destination,
            allow_incomplete=request.allow_incomplete,
        )
    ]
