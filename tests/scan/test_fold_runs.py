"""A rule with a per-pupil fold state (``Rule.fold``) gives the same findings night by night,
folding one night's marks into its stored states, as it does folding the year in a full scan.

The fold here is a small one of the tests' own (count each pupil's N marks, judged against
``as_of``), standing for the mark rules' folds (``validators.folding``): the pipeline
(``validators.fold_runs``, ``scan.incremental``) is what is under test. Runs on SQLite, and on
PostgreSQL when REGISTERWATCH_TEST_PG_URL is set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from typing import Any, ClassVar

from test_incremental_scan import (  # type: ignore[import-not-found]
    FIRST_NIGHT,
    at_night,
    change_code,
    first_load,
    settings_for,
    store_urls,
    sync_days,
)

from registerwatch.scan import run_scan
from registerwatch.schema import Finding, Pupil, Session, Severity
from registerwatch.simulator.generate import generate_school
from registerwatch.simulator.model import GeneratedSchool
from registerwatch.store import Store
from registerwatch.validators import Rule, ScanContext
from registerwatch.validators.context import SessionKey
from registerwatch.validators.folding import PupilFold, session_key_from, session_key_text
from registerwatch.validators.lean_marks import SessionMark


class NCountFold(PupilFold[dict[str, Any]]):
    """Per pupil: how many N marks up to the last day of data, and the last one."""

    initial_calls: ClassVar[int] = 0
    folded_marks: ClassVar[int] = 0

    def initial(self, ctx: ScanContext, pupil: Pupil) -> dict[str, Any]:
        NCountFold.initial_calls += 1
        return {"through": None, "n": 0, "last": None}

    def fold(
        self, ctx: ScanContext, pupil: Pupil, state: dict[str, Any], marks: Sequence[SessionMark]
    ) -> dict[str, Any]:
        end: SessionKey = (ctx.data_end, Session.PM)
        for mark in marks:
            if (mark.date, mark.session) > end:
                break
            NCountFold.folded_marks += 1
            if mark.code == "N":
                state["n"] += 1
                state["last"] = (mark.date, mark.session)
        if state["through"] is None or state["through"] < end:
            state["through"] = end
        return state

    def through(self, state: dict[str, Any]) -> SessionKey | None:
        through: SessionKey | None = state["through"]
        return through

    def findings(self, ctx: ScanContext, pupil: Pupil, state: dict[str, Any]) -> Iterable[Finding]:
        if state["n"] < 3:
            return
        last = state["last"]
        # as_of-dependent on purpose: a fold's findings are judged again every night
        stale = (ctx.as_of - last[0]).days > 7
        yield self.rule.finding(
            ctx,
            pupil_id=pupil.id,
            severity=Severity.ERROR if stale else Severity.WARNING,
            discriminator="n-count",
            n=state["n"],
            last_text=f"{last[0].isoformat()} {last[1].value}",
        )

    def school_findings(
        self, ctx: ScanContext, states: Mapping[str, dict[str, Any]]
    ) -> Iterable[Finding]:
        total = sum(state["n"] for state in states.values())
        yield self.rule.finding(
            ctx, discriminator="school", template="{total} N marks", total=total
        )

    def dump(self, state: dict[str, Any]) -> Any:
        # a list whose first item is the through's text, as the folds' contract says
        return [session_key_text(state["through"]), state["n"], session_key_text(state["last"])]

    def load(self, data: Any) -> dict[str, Any]:
        through, n, last = data
        return {"through": session_key_from(through), "n": n, "last": session_key_from(last)}


class NCount(Rule):
    code = "TST901"
    name = "n-count"
    title = "Pupil {pupil} has {n} N marks, the last on {last_text}"
    severity = Severity.WARNING
    fold = NCountFold()

    def check(self, ctx: ScanContext) -> Iterable[Finding]:
        raise AssertionError("a folding rule is run through its fold by the scan")


__all__ = ["store_urls"]  # the two-store fixture, on each backend


def test_a_fold_rule_folds_each_night_into_its_stored_states(
    store_urls: tuple[str, str],
) -> None:
    school: GeneratedSchool = generate_school(7, 80, as_of=date(2025, 11, 21))
    urls = list(store_urls)
    stores = [Store.open(url) for url in urls]
    settings = [settings_for(school, url) for url in urls]
    rules = [NCount()]
    early = sorted(
        (m for m in school.marks if m.date < date(2025, 10, 10) and m.code == "/"),
        key=lambda m: (m.date, m.pupil_id, m.session),
    )
    try:
        for store in stores:
            first_load(store, school, FIRST_NIGHT - timedelta(days=1), at_night(FIRST_NIGHT))
        pupils = len(school.pupils)
        for n in range(8):
            night = FIRST_NIGHT + timedelta(days=n)
            at = at_night(night)
            for store in stores:
                sync_days(store, school, lambda d, y=night - timedelta(days=1): d == y, at)
                if n == 3:  # an old mark becomes N: that pupil alone is refolded
                    change_code(store, school, early[0], "N", at)
            NCountFold.initial_calls = NCountFold.folded_marks = 0
            nightly = run_scan(
                stores[0], settings[0], as_of=night, clock=lambda a=at: a, rules=rules
            )
            resumed = (NCountFold.initial_calls, NCountFold.folded_marks)
            full = run_scan(
                stores[1], settings[1], as_of=night, clock=lambda a=at: a, rules=rules, full=True
            )
            assert [f.finding for f in nightly.findings] == [f.finding for f in full.findings]
            assert [f.status for f in nightly.findings] == [f.status for f in full.findings]
            assert any(f.finding.pupil_id for f in full.findings), night
            if n == 0:
                assert resumed[0] == pupils
            elif n == 3:
                assert resumed[0] == 1, resumed  # the pupil whose past mark changed
            else:
                assert resumed[0] == 0, resumed
                # one night's marks at most (two sessions a pupil), not the year's
                assert resumed[1] <= 2 * pupils, resumed
    finally:
        for store in stores:
            store.close()
