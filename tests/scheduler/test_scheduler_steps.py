"""The night's steps: failure isolation between steps and between schools, the run history,
stopping at a safe point, and school-day gating of the returns."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from scheduler_support import (
    BANK_HOLIDAY,
    HALF_TERM,
    INSET,
    SATURDAY,
    SCHOOL_DAY,
    Recorder,
    fake_school,
    runs_of,
    settings_for,
)

import registerwatch.exports.registry as registry
from registerwatch.errors import CredentialError, ExportValidationError, RegisterwatchError
from registerwatch.jobs import nightly
from registerwatch.jobs.nightly import (
    Job,
    NightContext,
    Step,
    combine,
    dfe_daily_step,
    error_text,
    la_returns_step,
    run_job,
)
from registerwatch.jobs.scheduler import StopFlag
from registerwatch.store import Store

NOW = datetime(2025, 10, 1, 1, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'rw.sqlite'}")
    yield opened
    opened.close()


def context(
    store: Store,
    tmp_path: Path,
    as_of: date = SCHOOL_DAY,
    schools: list[dict[str, Any]] | None = None,
    synced: bool = True,
) -> NightContext:
    settings = settings_for(str(store.url), schools)
    if synced:  # as a first sync leaves it; the returns steps make nothing for an unsynced school
        for school in settings.schools:
            store.upsert_school(school.to_school(), at=NOW)
    return NightContext(
        settings=settings, store=store, as_of=as_of, output_dir=tmp_path / "out", clock=lambda: NOW
    )


# -- outcomes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcomes", "interrupted", "expected"),
    [
        ([], False, "ok"),
        (["ok", "ok"], False, "ok"),
        (["failed", "failed"], False, "failed"),
        (["ok", "failed"], False, "partial"),
        (["ok", "partial"], False, "partial"),
        (["ok"], True, "interrupted"),
        (["failed"], True, "interrupted"),
    ],
)
def test_outcomes_combine(outcomes: list[Any], interrupted: bool, expected: str) -> None:
    assert combine(outcomes, interrupted=interrupted) == expected


def test_error_texts_are_one_line_without_upns() -> None:
    exc = ExportValidationError(
        "la-sickness for school 'ashby' does not validate",
        errors=["line 3: 'Smith' is not a valid value"],
    )
    assert error_text(exc) == "la-sickness for school 'ashby' does not validate"
    assert (
        error_text(RegisterwatchError("pupil A801200005001 has no mark"))
        == "pupil [redacted] has no mark"
    )
    assert (
        error_text(KeyError("x"))
        == "internal error KeyError: 'x' (a bug: rerun with --debug and report it)"
    )
    assert len(error_text(RegisterwatchError("x" * 2000))) == nightly.ERROR_TEXT_LIMIT


# -- a job ---------------------------------------------------------------------------------------


def test_a_failing_or_crashing_step_is_recorded_and_the_next_one_runs(
    store: Store, tmp_path: Path
) -> None:
    rec = Recorder()
    job = Job(
        "nightly",
        (
            Step("a", rec.ok("a", schools_ok=2)),
            Step(
                "b",
                rec.raises(
                    "b",
                    CredentialError("school 'brook': environment variable BROOK_KEY is not set"),
                ),
            ),
            Step("c", rec.raises("c", ZeroDivisionError("division by zero"))),
            Step("d", rec.ok("d")),
        ),
    )
    result = run_job(job, context(store, tmp_path), trigger="nightly")
    assert rec.calls == ["a", "b", "c", "d"]
    assert [(s.name, s.outcome) for s in result.steps] == [
        ("a", "ok"),
        ("b", "failed"),
        ("c", "failed"),
        ("d", "ok"),
    ]
    assert result.steps[1].errors == ["school 'brook': environment variable BROOK_KEY is not set"]
    assert result.steps[2].errors == [
        "internal error ZeroDivisionError: division by zero (a bug: rerun with --debug and "
        "report it)"
    ]
    assert result.outcome == "partial" and result.failed and result.skipped == []

    records = runs_of(str(store.url))
    assert [(r.command, r.outcome) for r in records] == [
        ("nightly", "partial"),
        ("nightly:a", "ok"),
        ("nightly:b", "failed"),
        ("nightly:c", "failed"),
        ("nightly:d", "ok"),
    ]
    job_record, a, b = records[0], records[1], records[2]
    assert job_record.counts == {
        "trigger": "nightly",
        "as_of": "2025-10-01",
        "steps": {"a": "ok", "b": "failed", "c": "failed", "d": "ok"},
        "skipped": [],
        "step_runs": [a.id, b.id, records[3].id, records[4].id],
        "errors": 2,
    }
    assert a.counts == {
        "schools_ok": 2,
        "errors": [],
        "job": "nightly",
        "job_run": job_record.id,
        "as_of": "2025-10-01",
        "seconds": a.counts["seconds"],
    }
    assert b.counts["errors"] == result.steps[1].errors
    assert all(r.started_at == NOW and r.finished_at == NOW for r in records)


def test_a_stop_during_a_step_finishes_it_and_skips_the_rest(store: Store, tmp_path: Path) -> None:
    rec, stop = Recorder(), StopFlag()
    job = Job(
        "nightly",
        (
            Step("a", rec.ok("a")),
            Step("b", rec.then("b", lambda: stop.request("SIGTERM"))),
            Step("c", rec.ok("c")),
            Step("d", rec.ok("d")),
        ),
    )
    result = run_job(job, context(store, tmp_path), trigger="run", should_stop=stop)
    assert rec.calls == ["a", "b"]
    assert result.outcome == "interrupted" and result.skipped == ["c", "d"]
    assert not result.failed  # nothing failed: it was asked to stop
    records = runs_of(str(store.url))
    assert [(r.command, r.outcome) for r in records] == [
        ("nightly", "interrupted"),
        ("nightly:a", "ok"),
        ("nightly:b", "ok"),
    ]
    assert records[0].counts["skipped"] == ["c", "d"]
    assert records[0].counts["steps"] == {"a": "ok", "b": "ok"}


class _BrokenHistory:
    """A store whose runs table refuses every write; everything else is the real store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def start_run(self, *args: Any, **kwargs: Any) -> int:
        raise RegisterwatchError("runs table is locked")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def test_a_run_history_that_cannot_be_written_does_not_stop_the_night(
    store: Store, tmp_path: Path
) -> None:
    rec = Recorder()
    ctx = context(store, tmp_path)
    ctx.store = _BrokenHistory(store)  # type: ignore[assignment]
    result = run_job(
        Job("nightly", (Step("a", rec.ok("a")), Step("b", rec.ok("b")))), ctx, trigger="nightly"
    )
    assert rec.calls == ["a", "b"] and result.outcome == "ok"
    assert result.run_id is None and [s.run_id for s in result.steps] == [None, None]


# -- the real steps' reading of their modules' results --------------------------------------------


def test_sync_step_is_partial_when_some_schools_fail(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from registerwatch import sync

    seen: dict[str, Any] = {}

    def fake_sync_all(settings: Any, store: Any, **kwargs: Any) -> sync.SyncSummary:
        seen.update(kwargs)
        return sync.SyncSummary(
            as_of=kwargs["as_of"],
            schools=[
                sync.SchoolSyncResult("ashby", "arbor", marks_new=5),
                sync.SchoolSyncResult(
                    "brook",
                    "isams",
                    status="failed",
                    error="school 'brook': MIS returned 401 — check BROOK_SECRET",
                ),
            ],
        )

    monkeypatch.setattr(sync, "sync_all", fake_sync_all)
    result = nightly.sync_step(context(store, tmp_path))
    assert seen["as_of"] == SCHOOL_DAY
    assert result.outcome == "partial"
    assert result.errors == ["school 'brook': MIS returned 401 — check BROOK_SECRET"]
    assert result.counts["schools_ok"] == 1 and result.counts["schools_failed"] == 1
    assert result.counts["marks_new"] == 5


def test_submit_step_counts_deliveries_and_names_failures(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import registerwatch.outbox as outbox
    from registerwatch.outbox import SubmitOutcome, SubmitReport

    def item(n: int, outcome: str, error: str | None = None) -> SubmitOutcome:
        return SubmitOutcome(
            n, "la-sickness", "ashby", f"ashby:{n}", "2025-09-10", f"k{n}", outcome, error=error
        )

    report = SubmitReport(
        dry_run=False,
        items=[
            item(1, "sent"),
            item(2, "deferred", "no transport for LA '881': add [transports.la]"),
        ],
    )
    monkeypatch.setattr(outbox, "submit", lambda settings, store, **kw: report)
    result = nightly.submit_step(context(store, tmp_path))
    assert result.outcome == "partial"
    assert result.counts["sent"] == 1 and result.counts["deferred"] == 1
    assert result.errors == ["no transport for LA '881': add [transports.la]"]
    monkeypatch.setattr(outbox, "submit", lambda settings, store, **kw: SubmitReport(False))
    assert nightly.submit_step(context(store, tmp_path)).outcome == "ok"


# -- returns: school days only --------------------------------------------------------------------


class FakeBuilders:
    """Stands in for exports.registry.builder: records each build, renders nothing (or raises
    for the schools in ``failing``)."""

    def __init__(self, failing: dict[str, Exception] | None = None) -> None:
        self.calls: list[tuple[str, str, date, date | None]] = []
        self.failing = failing or {}

    def __call__(self, kind: str) -> Any:
        def build(request: Any) -> list[Any]:
            self.calls.append((kind, request.school.id, request.as_of, request.day))
            if request.school.id in self.failing:
                raise self.failing[request.school.id]
            return []

        return build


@pytest.fixture
def builders(monkeypatch: pytest.MonkeyPatch) -> FakeBuilders:
    fake = FakeBuilders()
    monkeypatch.setattr(registry, "builder", fake)
    return fake


TWO_SCHOOLS = [fake_school("ashby", 140201), fake_school("brook", 140202)]


@pytest.mark.parametrize(
    "day",
    [SATURDAY, HALF_TERM, INSET, BANK_HOLIDAY],
    ids=["saturday", "half-term", "inset-day", "bank-holiday"],
)
def test_no_la_returns_on_a_day_that_is_not_a_school_day(
    store: Store, tmp_path: Path, builders: FakeBuilders, day: date
) -> None:
    result = la_returns_step(context(store, tmp_path, day, TWO_SCHOOLS))
    assert builders.calls == []
    assert result.outcome == "ok"
    assert result.counts["schools_not_school_day"] == 2 and result.counts["rendered"] == 0


def test_la_returns_are_built_for_every_school_on_a_school_day(
    store: Store, tmp_path: Path, builders: FakeBuilders
) -> None:
    result = la_returns_step(context(store, tmp_path, SCHOOL_DAY, TWO_SCHOOLS))
    assert builders.calls == [
        (kind, school, SCHOOL_DAY, None)
        for school in ("ashby", "brook")
        for kind in registry.LA_RETURNS
    ]
    assert result.outcome == "ok" and result.counts["schools_not_school_day"] == 0


def test_school_days_are_each_schools_own(
    store: Store, tmp_path: Path, builders: FakeBuilders
) -> None:
    closed = fake_school(
        "brook",
        140302,
        closures=[
            {"date": SCHOOL_DAY, "session": "both", "kind": "planned", "reason": "INSET day"}
        ],
    )
    result = la_returns_step(
        context(store, tmp_path, SCHOOL_DAY, [fake_school("ashby", 140301), closed])
    )
    assert {school for _, school, _, _ in builders.calls} == {"ashby"}
    assert result.counts["schools_not_school_day"] == 1


@pytest.mark.parametrize(
    ("as_of", "covered"),
    [
        (date(2025, 10, 2), date(2025, 10, 1)),  # Thursday night: Wednesday's return
        (date(2025, 10, 4), date(2025, 10, 3)),  # Saturday night: Friday's return
        (date(2025, 10, 6), None),  # Monday night: Sunday was not a school day
        (date(2025, 11, 15), None),  # the day after an INSET day
        (date(2025, 10, 25), date(2025, 10, 24)),  # half-term Saturday: the last term day (AM only)
    ],
)
def test_nightly_dfe_daily_is_for_the_day_just_finished(
    store: Store, tmp_path: Path, builders: FakeBuilders, as_of: date, covered: date | None
) -> None:
    result = dfe_daily_step(context(store, tmp_path, as_of))
    expected = [] if covered is None else [("dfe-daily", "ashby", as_of, covered)]
    assert builders.calls == expected
    assert result.outcome == "ok"
    assert result.counts["schools_not_school_day"] == (1 if covered is None else 0)


def test_the_daemons_dfe_daily_is_for_today(
    store: Store, tmp_path: Path, builders: FakeBuilders
) -> None:
    job = nightly.SCHEDULED["dfe-daily"]
    assert job.step_names == ("sync", "dfe-daily", "submit")
    step = {s.name: s.run for s in job.steps}["dfe-daily"]
    step(context(store, tmp_path, SCHOOL_DAY))
    step(context(store, tmp_path, SATURDAY))
    assert builders.calls == [("dfe-daily", "ashby", SCHOOL_DAY, SCHOOL_DAY)]


def test_one_schools_failing_return_does_not_stop_the_others(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeBuilders(
        {
            "ashby": ExportValidationError(
                "la-cme for school 'ashby' does not validate", errors=["line 9: bad value 'Smith'"]
            )
        }
    )
    monkeypatch.setattr(registry, "builder", fake)
    result = la_returns_step(context(store, tmp_path, SCHOOL_DAY, TWO_SCHOOLS))
    assert [c[1] for c in fake.calls].count("brook") == len(registry.LA_RETURNS)
    assert [c[1] for c in fake.calls].count("ashby") == len(registry.LA_RETURNS)
    assert result.outcome == "partial"
    assert result.counts["failed"] == len(registry.LA_RETURNS)
    assert result.errors[0] == "la-cme for school 'ashby' does not validate"
    assert all("Smith" not in e for e in result.errors)


def test_no_return_is_made_for_a_school_never_synced(
    store: Store, tmp_path: Path, builders: FakeBuilders
) -> None:
    result = dfe_daily_step(context(store, tmp_path, date(2025, 10, 2), synced=False))
    assert builders.calls == []
    assert result.outcome == "failed"
    assert result.errors == [
        "school 'ashby' has not been synced yet, so no DfE daily return "
        "was made (see the sync step)"
    ]


def test_the_job_lists(builders: FakeBuilders) -> None:
    assert nightly.ONE_SHOT.step_names == (
        "sync",
        "scan",
        "la-returns",
        "report",
        "dfe-daily",
        "submit",
    )
    assert {n: j.step_names for n, j in nightly.SCHEDULED.items()} == {
        "nightly": ("sync", "scan", "report"),
        "returns": ("la-returns", "submit"),
        "dfe-daily": ("sync", "dfe-daily", "submit"),
    }


def test_the_night_folder_is_dated(store: Store, tmp_path: Path) -> None:
    ctx = context(store, tmp_path, SCHOOL_DAY)
    assert ctx.night_dir == tmp_path / "out" / "2025-10-01"
    assert nightly.default_output_dir(ctx.settings) == Path.cwd() / "output"
    assert nightly.today(
        lambda: datetime(2025, 10, 1, 23, 30, tzinfo=UTC)
    ) == SCHOOL_DAY + timedelta(days=1)  # 00:30 BST on 2 October
