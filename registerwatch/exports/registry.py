"""Every return registerwatch can produce, by the name `registerwatch export KIND` takes.

Each return package exposes ``build(request: ExportRequest) -> list[RenderedReturn]``; the
registry imports it only when asked, so one broken return never stops the others loading.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from registerwatch.config import SchoolSettings
    from registerwatch.exports.base import RenderedReturn
    from registerwatch.store import Store


@dataclass
class ExportRequest:
    """What a return is built from. The clock is passed in: rendering never reads 'now'."""

    school: SchoolSettings
    store: Store
    as_of: date  # the day the return is made ("today" for deadlines and open findings)
    generated_at: datetime  # stamped into headers; aware
    day: date | None = None  # dfe-daily: the school day the return covers
    term: str | None = None  # census-attendance: "autumn-2025", "spring-2026", "summer-2026"
    # dfe-daily: write unmarked sessions as <Unmarked/>; census: count a term not yet over to
    # the day before as_of; ctf: unmarked sessions become '#'. Otherwise unmarked pupils refuse.
    allow_incomplete: bool = False
    # Per-return settings (`registerwatch export --option KEY=VALUE`): census_age_window,
    # ctf_pupils (on-roll | leavers | all), ctf_unencodable (not-in-session | refuse),
    # ctf_destination (a LAESTAB, MMMMMMM or XXXXXXX). See docs/returns/.
    options: dict[str, Any] = field(default_factory=dict)


# kind -> module whose ``build`` renders it
RETURN_MODULES: dict[str, str] = {
    "dfe-daily": "registerwatch.exports.dfe_daily",
    "census-attendance": "registerwatch.exports.census_attendance",
    "ctf": "registerwatch.exports.ctf",
    "la-sickness": "registerwatch.exports.la_sickness",
    "la-continuous-absence": "registerwatch.exports.la_continuous_absence",
    "la-cme": "registerwatch.exports.la_cme",
    "la-new-pupil": "registerwatch.exports.la_new_pupil",
    "la-deletion": "registerwatch.exports.la_deletion",
}

# The LA notifications, made from the open LAR findings they answer.
LA_RETURNS = ("la-sickness", "la-continuous-absence", "la-cme", "la-new-pupil", "la-deletion")


def builder(kind: str) -> Callable[[ExportRequest], list[RenderedReturn]]:
    if kind not in RETURN_MODULES:
        raise KeyError(f"no return called {kind!r}; choose one of {', '.join(RETURN_MODULES)}")
    module = importlib.import_module(RETURN_MODULES[kind])
    return module.build  # type: ignore[no-any-return]
