"""The ``build(request)`` every LA return shares: inputs from the store, then the pure render."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from registerwatch.exports.base import RenderedReturn
from registerwatch.exports.la_common.inputs import ReturnHeader
from registerwatch.logging import get_logger

if TYPE_CHECKING:
    from registerwatch.exports.registry import ExportRequest

log = get_logger(__name__)

T = TypeVar("T")


def build_return(
    request: ExportRequest,
    kind: str,
    inputs: Sequence[T],
    render: Callable[[ReturnHeader, Sequence[T]], RenderedReturn],
) -> list[RenderedReturn]:
    """No open finding, no return: an empty list, never an empty file."""
    if not inputs:
        log.debug("export.nothing_due", kind=kind, school_id=request.school.id)
        return []
    rendered = render(ReturnHeader.from_request(kind, request), inputs)
    # counts and hashes only: never pupil data in a log event
    log.info(
        "export.rendered",
        kind=kind,
        school_id=request.school.id,
        records=rendered.record_count,
        sha256=rendered.sha256,
    )
    return [rendered]
