"""A generated school's records as the rules read them: one ``ScanContext`` builder for the
tests that scan a ``generate_school`` school (rule oracles, report and web worlds)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from registerwatch.simulator.model import GeneratedSchool
from registerwatch.validators import ObservedChange, ScanContext
from registerwatch.validators.settings import DEFAULT_SETTINGS, RuleSettings


def context(
    school: GeneratedSchool,
    as_of: date | None = None,
    settings: RuleSettings = DEFAULT_SETTINGS,
    *,
    changes: Sequence[ObservedChange] = (),
    **rows: Any,
) -> ScanContext:
    """The school's records scanned on ``as_of`` (default: the day it was generated to; marks
    after it are in the context, as planned absences are in a store). ``rows``: ``mark_rows``
    in place of the school's marks. The simulators serve registers and an amendment audit in
    every vendor style, so both are exposed."""
    day = school.as_of if as_of is None else as_of
    assert day is not None, "a school generated without as_of needs one here"
    records: dict[str, Any] = dict(rows) if rows else {"marks": school.marks}
    return ScanContext.build(
        calendar=school.calendar,
        as_of=day,
        school_id=school.school.id,
        pupils=school.pupils,
        registers=school.registers,
        amendments=school.amendments,
        notifications=school.notifications,
        observed_changes=changes,
        exposes_registers=True,
        exposes_amendments=True,
        settings=settings,
        **records,
    )
