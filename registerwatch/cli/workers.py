"""`worker`: a worker of the night's task queue (PostgreSQL stores only).

Exit status: 0 when stopped by SIGTERM/SIGINT (the job it was doing is finished first); 2 when
the store is not PostgreSQL or the config is wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from registerwatch.cli._common import ConfigOption, _escape, _load_settings, app, err
from registerwatch.cli.running import OutputDirOption, _configure, _output_dir


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
