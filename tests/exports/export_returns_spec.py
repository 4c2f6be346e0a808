"""How each registered return is rendered for the template tests, and what it must look like.

One ``ReturnSpec`` per kind in ``exports.registry.RETURN_MODULES``: the valid document the
golden file pins and the XSD cases mutate, the facts every golden test asserts, its negative
cases, what its XSD must still accept, and the XSD enumerations that mirror code tables. A new
return adds one entry here (and its cases); tests/exports/test_export_returns.py does the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import export_cases_la as la_cases
import export_cases_marks as marks_cases
import pytest
from test_export_cli_fixtures import Mutation, make_request, open_store
from test_export_la_fixtures import AS_OF, SCHOOL_ID, load, request_for, scan

from registerwatch.codes import CODES_2024
from registerwatch.exports.base import RenderedReturn
from registerwatch.exports.registers import NC_YEARS
from registerwatch.exports.registry import LA_RETURNS, builder
from registerwatch.store import Store

Cases = list[tuple[str, Mutation, tuple[str, ...]]]


@dataclass(frozen=True)
class ReturnSpec:
    kind: str
    schema: str  # registerwatch/exports/schemas/<schema>
    golden: str  # golden/<golden>.xml and .csv
    file_stem: str
    period: str | None = None  # None: not pinned for this return
    episodes: list[str] | None = None  # the records' episodes, when pinned
    cases: Cases = field(default_factory=list)
    accepted: list[tuple[str, Mutation]] = field(default_factory=list)
    # (schema file, simple type name, expected values in file order)
    enumerations: list[tuple[str, str, list[str]]] = field(default_factory=list)


_CODES = [c.code for c in CODES_2024]
_ABSENCE = [c.code for c in CODES_2024 if c.authorised or c.unauthorised]


def _la(kind: str) -> ReturnSpec:
    return ReturnSpec(
        kind=kind,
        schema=f"{kind}-1.xsd",
        golden=f"{kind}-1",
        file_stem=f"{kind}_{SCHOOL_ID}_2025-11-21",
        period="2025-11-21",
        cases=la_cases.cases_for(kind),
        accepted=[(name, mutate) for k, name, mutate in la_cases.ACCEPTED if k == kind],
        enumerations=[("la-common-1.xsd", "AttendanceCode", _CODES)],
    )


SPECS: dict[str, ReturnSpec] = {
    "dfe-daily": ReturnSpec(
        kind="dfe-daily",
        schema="dfe-daily-1.xsd",
        golden="dfe-daily-1",
        file_stem="dfe-daily_wenlock_2025-09-09",
        period="2025-09-09",
        cases=marks_cases.DFE_DAILY,
        enumerations=[
            ("dfe-daily-1.xsd", "AttendanceCodeType", _CODES),
            ("dfe-daily-1.xsd", "NCYearType", list(NC_YEARS)),
        ],
    ),
    "census-attendance": ReturnSpec(
        kind="census-attendance",
        schema="census-attendance-1.xsd",
        golden="census-attendance-1",
        file_stem="census-attendance_wenlock_autumn-2025",
        episodes=["autumn-2025"] * 4,
        cases=marks_cases.CENSUS_ATTENDANCE,
        accepted=[("second-summer-half-alone", marks_cases.summer_half_term_2_only)],
        enumerations=[
            ("census-attendance-1.xsd", "AbsenceReasonType", _ABSENCE),
            ("census-attendance-1.xsd", "NCYearType", list(NC_YEARS)),
        ],
    ),
    "ctf": ReturnSpec(
        kind="ctf",
        schema="ctf-attendance-1.xsd",
        golden="ctf-1",
        file_stem="ctf_wenlock_2026-01-05",
        episodes=["2025"] * 4,
        cases=marks_cases.CTF,
    ),
    **{kind: _la(kind) for kind in LA_RETURNS},
}


def _marks_based(folder: Path) -> dict[str, RenderedReturn]:
    store = open_store(folder / "store.db")
    try:
        requests = {
            "dfe-daily": make_request(store, as_of=date(2025, 9, 10), day=date(2025, 9, 9)),
            "census-attendance": make_request(store, as_of=date(2026, 1, 5), term="autumn-2025"),
            "ctf": make_request(store, as_of=date(2026, 1, 5)),
        }
        return {kind: _only(builder(kind)(request)) for kind, request in requests.items()}
    finally:
        store.close()


def _la_returns(folder: Path) -> dict[str, RenderedReturn]:
    with Store.open(f"sqlite:///{folder / 'store.db'}") as store:
        load(store)
        scan(store, SCHOOL_ID, AS_OF)
        return {kind: _only(builder(kind)(request_for(store))) for kind in LA_RETURNS}


def _only(returns: list[RenderedReturn]) -> RenderedReturn:
    assert len(returns) == 1
    return returns[0]


# The Wenlock school (marks-based returns) and the Elmbrook scenario (LA returns), each rendered
# once per test session.
RENDERERS: list[Callable[[Path], dict[str, RenderedReturn]]] = [_marks_based, _la_returns]


def render_all(factory: pytest.TempPathFactory) -> dict[str, RenderedReturn]:
    rendered: dict[str, RenderedReturn] = {}
    for render in RENDERERS:
        rendered |= render(factory.mktemp(render.__name__.strip("_")))
    return rendered
