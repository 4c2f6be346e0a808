"""When the daemon's jobs run: the [schedule] times, Europe/London wall clock, through the clock
changes, whatever the machine's own time zone, with `schedule`'s job list and next_run moved by
time-machine (no real waiting)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as wall_time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from hypothesis import given
from hypothesis import strategies as st
from scheduler_support import runs_of, settings_for

from registerwatch.calendar import LONDON
from registerwatch.jobs.lock import RunLock
from registerwatch.jobs.nightly import Job, NightContext, Step, StepResult
from registerwatch.jobs.scheduler import (
    LondonDailyJob,
    Scheduler,
    StopFlag,
    job_times,
    next_occurrence,
)
from registerwatch.store import Store

NEW_YORK = ZoneInfo("America/New_York")


def london(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)


class Ran:
    """Fake jobs: each records (job, as_of) when it runs."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, date]] = []

    def job(self, name: str) -> Job:
        def step(ctx: NightContext) -> StepResult:
            self.calls.append((name, ctx.as_of))
            return StepResult("work", "ok", {})

        return Job(name, (Step("work", step),))

    def jobs(self) -> dict[str, Job]:
        return {n: self.job(n) for n in ("nightly", "returns", "dfe-daily")}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'rw.sqlite'}")
    yield opened
    opened.close()


def make_scheduler(store: Store, tmp_path: Path, ran: Ran, **schedule: str) -> Scheduler:
    settings = settings_for(str(store.url), schedule=schedule or None)
    return Scheduler(
        settings,
        store,
        output_dir=tmp_path / "out",
        stop=StopFlag(),
        work_lock=lambda command: RunLock(tmp_path / "rw.lock", command),
        jobs=ran.jobs(),
        clock=lambda: datetime.now(UTC),
    )


# -- next_occurrence ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "after", "expected_utc"),
    [
        # later the same day / tomorrow
        (wall_time(16, 0), london(2025, 10, 1, 12, 0), datetime(2025, 10, 1, 15, 0, tzinfo=UTC)),
        (wall_time(2, 0), london(2025, 10, 1, 12, 0), datetime(2025, 10, 2, 1, 0, tzinfo=UTC)),
        # exactly at the time: the next one, not this one (it has just run)
        (wall_time(2, 0), london(2025, 10, 2, 2, 0), datetime(2025, 10, 3, 1, 0, tzinfo=UTC)),
        # clocks go back on Sunday 26 October 2025: 02:00 is GMT that night
        (wall_time(2, 0), london(2025, 10, 25, 3, 0), datetime(2025, 10, 26, 2, 0, tzinfo=UTC)),
        # clocks go forward on Sunday 29 March 2026: 02:00 is BST that night
        (wall_time(2, 0), london(2026, 3, 28, 3, 0), datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),
        # 01:30 does not exist on 29 March 2026: it runs at 02:30 BST
        (wall_time(1, 30), london(2026, 3, 28, 3, 0), datetime(2026, 3, 29, 1, 30, tzinfo=UTC)),
        # 01:30 happens twice on 26 October 2025: the first (BST) one
        (wall_time(1, 30), london(2025, 10, 25, 3, 0), datetime(2025, 10, 26, 0, 30, tzinfo=UTC)),
    ],
)
def test_next_occurrence_keeps_london_wall_time(
    at: wall_time, after: datetime, expected_utc: datetime
) -> None:
    # In UTC: Python never calls a time in the repeated hour equal to one in another zone.
    assert next_occurrence(at, after).astimezone(UTC) == expected_utc


def test_next_occurrence_from_the_second_pass_of_the_repeated_hour() -> None:
    # 01:10 GMT on 26 October 2025, after 01:30 BST has already gone by: tomorrow's 01:30.
    after = datetime(2025, 10, 26, 1, 10, tzinfo=UTC)
    assert next_occurrence(wall_time(1, 30), after).astimezone(UTC) == datetime(
        2025, 10, 27, 1, 30, tzinfo=UTC
    )


@given(
    st.datetimes(
        min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
    ),
    st.times().map(lambda t: t.replace(second=0, microsecond=0)),
)
def test_next_occurrence_is_the_first_wall_time_match_within_a_day(
    after: datetime, at: wall_time
) -> None:
    found = next_occurrence(at, after)
    assert found > after
    assert found - after <= timedelta(days=1, hours=1)  # a day, plus a clock change
    local = found.astimezone(LONDON)
    exists = local.time().replace(tzinfo=None) == at
    # Either the wall time itself, or (inside the skipped March hour) an hour after it.
    assert exists or (local.hour, local.minute) == ((at.hour + 1) % 24, at.minute)


# -- the schedule --------------------------------------------------------------------------------


def test_default_times_come_from_config_in_time_order() -> None:
    assert job_times(settings_for("sqlite://")) == {
        "nightly": wall_time(2, 0),
        "returns": wall_time(7, 0),
        "dfe-daily": wall_time(16, 0),
    }


def test_jobs_are_on_schedules_job_list_with_london_next_runs(store: Store, tmp_path: Path) -> None:
    with time_machine.travel(london(2025, 10, 1, 12, 0), tick=False):
        scheduler = make_scheduler(store, tmp_path, Ran())
        assert [repr(j) for j in scheduler.schedule.jobs] == [
            "LondonDailyJob('nightly' at 02:00 Europe/London)",
            "LondonDailyJob('returns' at 07:00 Europe/London)",
            "LondonDailyJob('dfe-daily' at 16:00 Europe/London)",
        ]
        assert scheduler.next_runs() == {
            "dfe-daily": london(2025, 10, 1, 16, 0),
            "nightly": london(2025, 10, 2, 2, 0),
            "returns": london(2025, 10, 2, 7, 0),
        }
        # schedule itself sleeps until the soonest: 4 hours (capped to the loop's minute).
        assert scheduler.schedule.idle_seconds == 4 * 3600
        assert scheduler.idle_seconds() == 60


def test_times_from_the_config_file_are_used(store: Store, tmp_path: Path) -> None:
    with time_machine.travel(london(2025, 10, 1, 12, 0), tick=False):
        scheduler = make_scheduler(
            store, tmp_path, Ran(), nightly="01:15", returns="06:45", dfe_daily="17:30"
        )
        assert scheduler.next_runs() == {
            "dfe-daily": london(2025, 10, 1, 17, 30),
            "nightly": london(2025, 10, 2, 1, 15),
            "returns": london(2025, 10, 2, 6, 45),
        }


@pytest.mark.parametrize("machine_zone", [UTC, NEW_YORK, LONDON])
def test_the_machines_own_zone_does_not_move_the_jobs(
    store: Store, tmp_path: Path, machine_zone: object
) -> None:
    # time-machine sets the process's local zone (TZ) to a ZoneInfo destination's zone.
    start = datetime(2025, 10, 1, 11, 0, tzinfo=UTC).astimezone(machine_zone)  # type: ignore[arg-type]
    with time_machine.travel(start, tick=False):
        scheduler = make_scheduler(store, tmp_path, Ran())
        assert scheduler.next_runs()["nightly"] == london(2025, 10, 2, 2, 0)
        nightly = next(j for j in scheduler.scheduled if j.name == "nightly")
        # schedule's own next_run is naive machine-local time for the same instant.
        assert nightly.next_run == london(2025, 10, 2, 2, 0).astimezone().replace(tzinfo=None)


def test_each_job_runs_at_its_time_once_with_todays_as_of(store: Store, tmp_path: Path) -> None:
    ran = Ran()
    with time_machine.travel(london(2025, 10, 1, 15, 59, 59), tick=False) as traveller:
        scheduler = make_scheduler(store, tmp_path, ran)
        scheduler.run_pending()
        assert ran.calls == []
        traveller.move_to(london(2025, 10, 1, 16, 0))
        scheduler.run_pending()
        scheduler.run_pending()
        assert ran.calls == [("dfe-daily", date(2025, 10, 1))]
        assert scheduler.next_runs()["dfe-daily"] == london(2025, 10, 2, 16, 0)
        traveller.move_to(london(2025, 10, 2, 2, 0, 30))
        scheduler.run_pending()
        assert ran.calls[-1] == ("nightly", date(2025, 10, 2))
        traveller.move_to(london(2025, 10, 2, 7, 0))
        scheduler.run_pending()
        assert ran.calls[-1] == ("returns", date(2025, 10, 2))
    assert len(ran.calls) == 3
    assert [(r.command, r.outcome) for r in runs_of(str(store.url))] == [
        ("dfe-daily", "ok"),
        ("dfe-daily:work", "ok"),
        ("nightly", "ok"),
        ("nightly:work", "ok"),
        ("returns", "ok"),
        ("returns:work", "ok"),
    ]


def test_jobs_missed_while_busy_run_once_in_time_order(store: Store, tmp_path: Path) -> None:
    ran = Ran()
    with time_machine.travel(london(2025, 10, 1, 17, 0), tick=False) as traveller:
        scheduler = make_scheduler(store, tmp_path, ran)
        # Say the machine was busy (or asleep) from 01:00 to 08:30: both come due together.
        traveller.move_to(london(2025, 10, 2, 8, 30))
        scheduler.run_pending()
        scheduler.run_pending()
        assert ran.calls == [("nightly", date(2025, 10, 2)), ("returns", date(2025, 10, 2))]
        assert scheduler.next_runs()["nightly"] == london(2025, 10, 3, 2, 0)


def test_the_nightly_job_keeps_0200_across_the_october_clock_change(
    store: Store, tmp_path: Path
) -> None:
    ran = Ran()
    with time_machine.travel(datetime(2025, 10, 25, 12, 0, tzinfo=UTC), tick=False) as traveller:
        scheduler = make_scheduler(store, tmp_path, ran)
        assert scheduler.next_runs()["nightly"] == datetime(2025, 10, 26, 2, 0, tzinfo=UTC)
        # 01:59 GMT on the Sunday (the second 01:59 of the night): not yet.
        traveller.move_to(datetime(2025, 10, 26, 1, 59, tzinfo=UTC))
        scheduler.run_pending()
        assert ("nightly", date(2025, 10, 26)) not in ran.calls
        traveller.move_to(datetime(2025, 10, 26, 2, 0, tzinfo=UTC))
        scheduler.run_pending()
        assert ("nightly", date(2025, 10, 26)) in ran.calls
        assert scheduler.next_runs()["nightly"] == datetime(2025, 10, 27, 2, 0, tzinfo=UTC)


def test_the_nightly_job_keeps_0200_across_the_march_clock_change(
    store: Store, tmp_path: Path
) -> None:
    ran = Ran()
    with time_machine.travel(datetime(2026, 3, 28, 12, 0, tzinfo=UTC), tick=False) as traveller:
        scheduler = make_scheduler(store, tmp_path, ran)
        # 02:00 BST on 29 March is 01:00 UTC, the instant the clocks jump.
        assert scheduler.next_runs()["nightly"] == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
        traveller.move_to(datetime(2026, 3, 29, 1, 0, tzinfo=UTC))
        scheduler.run_pending()
        # Saturday's 16:00 DfE job, held up until now, is still Saturday's.
        assert ran.calls == [("dfe-daily", date(2026, 3, 28)), ("nightly", date(2026, 3, 29))]
        assert scheduler.next_runs()["nightly"] == datetime(2026, 3, 30, 1, 0, tzinfo=UTC)


def test_no_job_starts_once_a_stop_is_requested(store: Store, tmp_path: Path) -> None:
    ran = Ran()
    with time_machine.travel(london(2025, 10, 1, 17, 0), tick=False) as traveller:
        scheduler = make_scheduler(store, tmp_path, ran)
        scheduler.stop.request("test")
        traveller.move_to(london(2025, 10, 2, 2, 0))
        scheduler.run_pending()
        summary = scheduler.run_forever()  # returns at once: already stopping
    assert ran.calls == []
    assert summary.outcome == "ok" and summary.stopped_by == "test"
    records = runs_of(str(store.url))
    assert [(r.command, r.outcome) for r in records] == [("run", "ok")]
    assert records[0].counts == {
        "jobs_run": 0,
        "jobs_failed": 0,
        "jobs_interrupted": 0,
        "lock_failures": [],
        "stopped_by": "test",
    }


def test_london_daily_job_reports_next_run_in_london() -> None:
    import schedule

    with time_machine.travel(london(2025, 12, 1, 9, 0), tick=False):
        job = LondonDailyJob(wall_time(7, 0), schedule.Scheduler(), name="returns")
        job.do(lambda: None)
        assert job.next_run_at == london(2025, 12, 2, 7, 0)
