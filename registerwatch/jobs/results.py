"""What a step and a job report: outcomes, :class:`StepResult`, :class:`JobResult`, and the one
way an error becomes a line of the run history (:func:`error_text`).

Error texts stored in the run history are cut to their first line and scrubbed of UPN-shaped
tokens, because an XSD error list can quote the values it refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from registerwatch.errors import RegisterwatchError
from registerwatch.logging import UPN_PATTERN, get_logger, redact_text

log = get_logger("registerwatch.jobs.nightly")

Outcome = Literal["ok", "partial", "failed", "interrupted"]
OUTCOMES: tuple[Outcome, ...] = ("ok", "partial", "failed", "interrupted")

# An error text in the run history is one line of at most this many characters.
ERROR_TEXT_LIMIT = 500


@dataclass
class StepResult:
    """How one step went: ``outcome``, what it counted, and one line per failure."""

    name: str
    outcome: Outcome
    counts: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    run_id: int | None = None  # its row in the runs table (None when it could not be recorded)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.name,
            "outcome": self.outcome,
            "counts": dict(self.counts),
            "errors": list(self.errors),
            "run_id": self.run_id,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class JobResult:
    """How one job went: its steps in order, and the steps a stop request skipped."""

    name: str
    trigger: str  # "nightly" (one-shot) or "run" (the daemon)
    as_of: date
    outcome: Outcome
    steps: list[StepResult]
    skipped: list[str] = field(default_factory=list)
    run_id: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def failed(self) -> bool:
        """Any step failed, in whole or for some school: what makes ``nightly`` exit 1."""
        return any(s.outcome in ("failed", "partial") for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "job": self.name,
            "trigger": self.trigger,
            "as_of": self.as_of.isoformat(),
            "outcome": self.outcome,
            "run_id": self.run_id,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "steps": [s.to_dict() for s in self.steps],
            "skipped": list(self.skipped),
        }


def combine(outcomes: Sequence[Outcome], *, interrupted: bool = False) -> Outcome:
    """One outcome for many: interrupted beats everything; all ok is ok; all failed is failed;
    anything else is partial. Nothing at all is ok (there was nothing to do)."""
    if interrupted:
        return "interrupted"
    if all(o == "ok" for o in outcomes):
        return "ok"
    if all(o == "failed" for o in outcomes):
        return "failed"
    return "partial"


def outcome_of(done: int, failed: int) -> Outcome:
    """A step over several schools or items: ``done`` succeeded, ``failed`` did not."""
    if not failed:
        return "ok"
    return "failed" if not done else "partial"


def error_text(exc: BaseException | str) -> str:
    """An error as one line fit for the run history and logs: the first line only (a
    validation error's list of problems can quote pupil data), UPN-shaped tokens removed."""
    text = exc if isinstance(exc, str) else (str(exc) or type(exc).__name__)
    if not isinstance(exc, str) and not isinstance(exc, RegisterwatchError):
        text = (
            f"internal error {type(exc).__name__}: {text} (a bug: rerun with --debug and report it)"
        )
    first = text.strip().splitlines()[0] if text.strip() else text
    first = redact_text(UPN_PATTERN.sub("[redacted]", first))
    return first if len(first) <= ERROR_TEXT_LIMIT else first[: ERROR_TEXT_LIMIT - 1] + "…"


def log_failure(exc: BaseException, **context: Any) -> None:
    """Log a failed school, step or return: a RegisterwatchError as one warning line; anything
    else is a bug, logged with its traceback (the redactor still scrubs it)."""
    if isinstance(exc, RegisterwatchError):
        log.warning(
            "nightly.failed", error_type=type(exc).__name__, error=error_text(exc), **context
        )
    else:
        log.error("nightly.crashed", error_type=type(exc).__name__, exc_info=exc, **context)


__all__ = [
    "ERROR_TEXT_LIMIT",
    "OUTCOMES",
    "JobResult",
    "Outcome",
    "StepResult",
    "combine",
    "error_text",
    "log_failure",
    "outcome_of",
]
