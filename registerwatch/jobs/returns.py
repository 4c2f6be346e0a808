"""Making one school's returns of one kind: the one policy ``registerwatch export`` and the
night's returns steps share.

    made = export_school("la-cme", request, folder)
    made.written     # the files written (XML and CSV, mode 0600), one per return
    made.failures    # what was not written, each naming its school, kind and return

The policy, which is what a data manager expects of a folder of returns: **each return stands
alone**. A builder that refuses the school (unmarked sessions, a bad option, a bug) is one
failure naming the school and kind, and nothing of that kind is written for it. Otherwise each
return the builder made is validated against its XSD and written on its own: one that does not
validate is named (its file name) and left out, and the others are still written, because a
sickness notification must not wait for an unrelated CME one to be fixed. The night queues
what was written itself (``jobs.nightly``); ``export --queue`` asks this function to queue each
written return in the outbox (``queue=True``), so a return made by hand can be submitted too. A
return that will not queue is a failure like one that will not validate; its file stays written.

Failures keep their exception: the caller words them (the CLI redacts XSD messages, the night
cuts them to a line) and may re-raise a bug under ``--debug``. Log events carry the kind, the
school id and counts, never the error text (an XSD error can quote a UPN).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from registerwatch.errors import RegisterwatchError
from registerwatch.exports import registry
from registerwatch.exports.base import write_return
from registerwatch.logging import get_logger

if TYPE_CHECKING:
    from registerwatch.exports.base import RenderedReturn, WrittenReturn
    from registerwatch.outbox.queue import QueuedItem

log = get_logger("registerwatch.jobs.returns")

__all__ = ["ExportedReturn", "ReturnFailure", "SchoolExport", "export_school"]


@dataclass(frozen=True)
class ExportedReturn:
    """One return as rendered and as written (the outbox queues the pair)."""

    rendered: RenderedReturn
    written: WrittenReturn
    queued: tuple[QueuedItem, ...] = ()  # its outbox items, when asked to queue


@dataclass(frozen=True)
class ReturnFailure:
    """What was not written: the whole kind for the school (``artefact`` None: the builder
    refused) or one return (``artefact``: its file name without the extension)."""

    school_id: str
    kind: str
    artefact: str | None
    error: Exception

    @property
    def is_bug(self) -> bool:
        """Not a RegisterwatchError: a bug in the return, not a problem with the data."""
        return not isinstance(self.error, RegisterwatchError)


@dataclass
class SchoolExport:
    """One school's returns of one kind: what was written and what failed."""

    school_id: str
    kind: str
    exported: list[ExportedReturn] = field(default_factory=list)
    failures: list[ReturnFailure] = field(default_factory=list)

    @property
    def written(self) -> list[WrittenReturn]:
        return [e.written for e in self.exported]

    @property
    def ok(self) -> bool:
        return not self.failures


def export_school(
    kind: str, request: registry.ExportRequest, folder: str | Path, *, queue: bool = False
) -> SchoolExport:
    """Build ``kind`` for ``request.school`` and write each return it makes into ``folder``,
    each return on its own (see the module docs); with ``queue``, also queue each written
    return in ``request.store``'s outbox (queued at ``request.generated_at``). Never raises for
    a failing return (a bug included: one school's bug must not stop the next school);
    KeyboardInterrupt and other BaseExceptions pass through."""
    school_id = request.school.id
    result = SchoolExport(school_id, kind)
    try:
        # Looked up on each call, so a return package added (or replaced in a test) is used.
        rendered = registry.builder(kind)(request)
    except Exception as exc:
        result.failures.append(ReturnFailure(school_id, kind, None, exc))
        _log_failure(exc, kind=kind, school_id=school_id)
        return result
    for artefact in rendered:
        try:
            written = write_return(artefact, folder)  # validates first: invalid never lands
        except Exception as exc:
            result.failures.append(ReturnFailure(school_id, kind, artefact.file_stem, exc))
            _log_failure(exc, kind=kind, school_id=school_id)
            continue
        queued: tuple[QueuedItem, ...] = ()
        if queue:
            from registerwatch.outbox import queue_return

            try:
                queued = tuple(
                    queue_return(
                        request.store,
                        artefact,
                        artefact_path=written.xml_path,
                        at=request.generated_at,
                    )
                )
            except Exception as exc:
                result.failures.append(ReturnFailure(school_id, kind, artefact.file_stem, exc))
                _log_failure(exc, kind=kind, school_id=school_id)
                continue
        result.exported.append(ExportedReturn(artefact, written, queued))
        log.info(
            "export.written",
            kind=kind,
            school=school_id,
            records=written.records,
            sha256=written.sha256,
            schema=written.schema,
            queued=sum(q.created for q in queued),
        )
    return result


def _log_failure(exc: Exception, **context: object) -> None:
    if isinstance(exc, RegisterwatchError):
        log.warning(
            "export.return_failed",
            error_type=type(exc).__name__,
            problems=len(getattr(exc, "errors", []) or []),
            **context,
        )
    else:
        # No traceback here: the CLI logs to the terminal, and a bug's message may quote data.
        log.error("export.return_crashed", error_type=type(exc).__name__, **context)
