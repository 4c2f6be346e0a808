"""The context every step runs in (:class:`NightContext`): settings, store, day, clock, and the
folder the night's files go to."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registerwatch.calendar import calendar_for

if TYPE_CHECKING:
    from registerwatch.config import SchoolSettings, Settings
    from registerwatch.store import Store

# Where returns go inside the night's output folder.
RETURNS_FOLDER = "returns"
# Default output folder, next to the config file, when --output is not given.
DEFAULT_OUTPUT_FOLDER = "output"


def default_output_dir(settings: Settings) -> Path:
    """``output/`` beside the config file (beside the working directory when built in code)."""
    base = settings.source_path.parent if settings.source_path is not None else Path.cwd()
    return base / DEFAULT_OUTPUT_FOLDER


@dataclass
class NightContext:
    """Everything a step needs: the settings, the store, the day, and the clock.

    ``as_of`` is the day the night's work is for (sync up to it, scan "today, before
    registration", the report day); ``clock`` gives the instants recorded and stamped.
    The factories default to the real adapters and transports; tests pass fakes.
    """

    settings: Settings
    store: Store
    as_of: date
    output_dir: Path
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    environ: Mapping[str, str] | None = None
    adapter_factory: Callable[..., Any] | None = None
    transport_factory: Callable[..., Any] | None = None
    accept_broken_ledger: str | None = None  # the reason to sync onto a broken ledger

    def now(self) -> datetime:
        return self.clock().astimezone(UTC)

    @property
    def night_dir(self) -> Path:
        """This night's folder: ``<output>/<as_of>/`` (report files, and ``returns/``)."""
        return self.output_dir / self.as_of.isoformat()

    def is_school_day(self, school: SchoolSettings, day: date | None = None) -> bool:
        return calendar_for(school).is_school_day(day or self.as_of)


__all__ = ["DEFAULT_OUTPUT_FOLDER", "RETURNS_FOLDER", "NightContext", "default_output_dir"]
