"""`worker`: a worker of the night's task queue (PostgreSQL stores only); and what `nightly
--queue` and `run` do on such a store (queue the night, or each scheduled job).

Exit status: 0 when stopped by SIGTERM/SIGINT (the job it was doing is finished first); 2 when
the store is not PostgreSQL or the config is wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from registerwatch.cli._common import (
    ConfigOption,
    OutputFormat,
    _emit_json,
    _escape,
    _load_settings,
    _parse_date,
    app,
    err,
    out,
)
from registerwatch.cli.running import (
    OutputDirOption,
    _configure,
    _output_dir,
    _run_details,
    _run_dict,
    _style,
)


@app.command("worker")
def worker_command(
    config: ConfigOption = None,
    output: OutputDirOption = None,
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency",
            "-c",
            min=1,
            max=64,
            help="jobs this worker runs at once (threads; for more CPU start more workers)",
        ),
    ] = 1,
    name: Annotated[
        str | None,
        typer.Option("--name", help="the worker's name in logs and the run history"),
    ] = None,
    stalled_after: Annotated[
        float,
        typer.Option(
            "--stalled-after",
            min=3.0,
            help="seconds without a heartbeat after which a worker is taken for dead and the "
            "jobs it was doing are done again by another",
        ),
    ] = 30.0,
) -> None:
    """Run a worker for the night's task queue until stopped: it syncs and scans schools, one
    school at a time per job, and finishes the night (returns, report, submit) queued by
    `registerwatch nightly --queue` or by `registerwatch run`.

    Needs a PostgreSQL store (the queue lives in it); start several, on one machine or many,
    all with the same config. SIGTERM or Ctrl-C finishes the running job, then exits 0.

    Example: registerwatch worker --concurrency 2 --config /etc/registerwatch/registerwatch.toml
    """
    from registerwatch.jobs.queue import require_postgres, run_worker

    settings = _load_settings(config)
    require_postgres(settings.store.url, "`registerwatch worker`")
    _configure(settings)
    folder: Path = _output_dir(settings, output)
    err.print(
        f"registerwatch worker: concurrency {concurrency}; reports and returns in "
        f"{_escape(str(folder))}; stop with SIGTERM or Ctrl-C",
        highlight=False,
    )
    run_worker(
        settings,
        output_dir=folder,
        concurrency=concurrency,
        name=name,
        heartbeat_seconds=stalled_after / 6,
        stalled_after_seconds=stalled_after,
        stalled_check_seconds=stalled_after / 2,
    )
    err.print("registerwatch worker stopped", highlight=False)


def queue_night(as_of: str | None, config: Path | None, fmt: OutputFormat, *, follow: bool) -> None:
    from registerwatch.jobs.nightly import today
    from registerwatch.jobs.queue import enqueue_night, require_postgres, wait_for_night
    from registerwatch.jobs.scheduler import StopFlag, handle_signals
    from registerwatch.store import Store

    day = _parse_date(as_of, "--as-of") if as_of else today()
    settings = _load_settings(config)
    require_postgres(settings.store.url, "`registerwatch nightly --queue`")
    _configure(settings)
    with Store.open(settings.store.url) as store:
        night = enqueue_night(settings, store, day)
        if not follow:
            if fmt is OutputFormat.JSON:
                _emit_json(night.to_dict())
            else:
                waiting = f"; still queued from before: {len(night.already_queued)}"
                out.print(
                    f"night {night.run_id} of {day.isoformat()} queued: "
                    f"{len(night.schools)} schools"
                    + (waiting if night.already_queued else "")
                    + "; follow with `registerwatch runs --command nightly`",
                    highlight=False,
                )
            return
        stop = StopFlag()
        with handle_signals(stop):
            record = wait_for_night(store, night.run_id, should_stop=stop)
    if record is None or record.finished_at is None:
        err.print(f"stopped waiting; night {night.run_id} goes on in the workers", highlight=False)
        return
    if fmt is OutputFormat.JSON:
        _emit_json({**night.to_dict(), "night": _run_dict(record)})
    else:
        out.print(
            f"night {record.id}: {_style(record.outcome)}; "
            + _escape(_run_details(record.command, record.counts)),
            highlight=False,
        )
    if record.outcome != "ok":
        raise typer.Exit(1)


def enqueuer(settings: Any) -> Any:
    """What the daemon calls instead of running a job, on a PostgreSQL store: the 02:00 night
    goes on the queue a school at a time; the other jobs go on it whole."""
    from registerwatch.jobs.queue import enqueue_job, enqueue_night

    def enqueue(store: Any, name: str, day: Any) -> None:
        if name == "nightly":
            enqueue_night(settings, store, day, kind="run")
        else:
            enqueue_job(settings.store.url, name, day)

    return enqueue
