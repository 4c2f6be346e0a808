"""Running unattended: `run` (the daemon), `nightly` (the whole night once, for cron) and `runs`
(the run history).

Exit status: `run` 0 when stopped by SIGTERM/SIGINT; `nightly` 0 when every step went through for
every school, 1 when any step or school failed (the rest of the night still ran); both 1 when the
store is locked by another run (RunLockedError, naming the holder) and 2 for a configuration
error. A stop during `nightly` finishes the current step, records the night as interrupted and
exits 0 unless something had already failed. `nightly --queue` (PostgreSQL stores) queues the
night for `registerwatch worker`s and exits 0 (with `--follow`: once they finished it, 1 if any
step failed); on a SQLite store it exits 2.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from registerwatch.cli._common import (
    ConfigOption,
    FormatOption,
    OutputFormat,
    StoreOption,
    WaitOption,
    _emit_json,
    _escape,
    _load_settings,
    _missing_credentials,
    _parse_date,
    _people_console,
    _print_table,
    _store_url,
    _usage_error,
    _writable_folder,
    app,
    err,
    out,
    state,
)
from registerwatch.cli.syncing import _SyncProgress

OutputDirOption = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        help="folder for each night's report and returns, in a dated subfolder "
        "(default: output/ beside the config file)",
    ),
]

_OUTCOME_STYLE = {
    "ok": "green",
    "partial": "yellow",
    "failed": "bold red",
    "interrupted": "magenta",
    "crashed": "bold red",
}

# The counts worth a glance, per step, in the order shown; other steps show every number.
_STEP_COUNTS: dict[str, tuple[str, ...]] = {
    "sync": (
        "schools_ok",
        "schools_failed",
        "marks_new",
        "marks_changed",
        "marks_deleted",
        "quarantined",
    ),
    "scan": ("schools_scanned", "schools_failed", "rules_failed", "new", "open", "resolved"),
    "report": ("open", "error", "warning", "overdue"),
    "la-returns": (
        "rendered",
        "records",
        "queued",
        "already_queued",
        "failed",
        "schools_not_school_day",
    ),
    "dfe-daily": ("rendered", "queued", "already_queued", "failed", "schools_not_school_day"),
    "submit": ("sent", "acknowledged", "failed", "deferred"),
}


def _configure(settings: Any) -> None:
    if not state.debug:
        from registerwatch.logging import configure_logging

        configure_logging(level=settings.logging.level, json=settings.logging.json_output)


def _output_dir(settings: Any, output: Path | None) -> Path:
    """The output folder, made and proved writable now: a night that cannot write its report
    should say so in one line before it starts, not after an hour of sync."""
    from registerwatch.jobs.nightly import default_output_dir

    folder = (output if output is not None else default_output_dir(settings)).absolute()
    return _writable_folder(folder)


def _style(outcome: str | None) -> str:
    if outcome is None:
        return "[dim]unfinished[/]"
    style = _OUTCOME_STYLE.get(outcome)
    return f"[{style}]{_escape(outcome)}[/]" if style else _escape(outcome)


def _when(at: datetime | None, *, seconds: bool = True) -> str:
    from registerwatch.calendar import LONDON

    if at is None:
        return "-"
    return f"{at.astimezone(LONDON):%Y-%m-%d %H:%M}" + (
        f"{at.astimezone(LONDON)::%S %Z}" if seconds else ""
    )


def _took(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "-"
    seconds = max(0, int((end - start).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _counts_text(step: str, counts: dict[str, Any]) -> str:
    keys = _STEP_COUNTS.get(step)
    if keys is None:
        keys = tuple(
            k for k, v in counts.items() if isinstance(v, int | float) and not isinstance(v, bool)
        )
    return ", ".join(
        f"{k.replace('_', ' ')} {counts[k]}"
        for k in keys
        if isinstance(counts.get(k), int | float) and counts.get(k)
    )


# -- run -----------------------------------------------------------------------------------------


@app.command("run")
def run_command(
    config: ConfigOption = None,
    output: OutputDirOption = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="if another `registerwatch run` is running on this store, stand by and "
            "take over when it stops, instead of exiting 1",
        ),
    ] = False,
) -> None:
    """Run the scheduled jobs until stopped: nightly sync, scan and report; the LA returns and
    submission in the morning; the DfE daily return after the afternoon registers close.

    Times come from the config's \\[schedule] table (Europe/London). SIGTERM or Ctrl-C
    finishes the current step, records it, and exits 0. Exit 1 if another daemon already runs
    on this store.

    Example: registerwatch run --config /etc/registerwatch/registerwatch.toml
    """
    from registerwatch.cli.workers import enqueuer
    from registerwatch.jobs.lock import store_lock
    from registerwatch.jobs.locked_store import locked_store
    from registerwatch.jobs.queue import is_postgres
    from registerwatch.jobs.scheduler import Scheduler, StopFlag, handle_signals

    settings = _load_settings(config)
    _configure(settings)
    url = settings.store.url
    folder = _output_dir(settings, output)
    stop = StopFlag()
    with handle_signals(stop):
        with locked_store(url, "run", kind="daemon", wait=wait, should_stop=stop) as store:
            if store is None:
                err.print(
                    "stopped while waiting for the other daemon; nothing was run", highlight=False
                )
                return
            scheduler = Scheduler(
                settings,
                store,
                output_dir=folder,
                stop=stop,
                work_lock=lambda command: store_lock(url, command),
                enqueue=enqueuer(settings) if is_postgres(url) else None,
            )
            times = ", ".join(f"{name} {at:%H:%M}" for name, at in scheduler.times.items())
            upcoming = next(iter(scheduler.next_runs().items()), None)
            following = f"; next: {upcoming[0]} at {_when(upcoming[1])}" if upcoming else ""
            err.print(
                f"registerwatch run: {times} (Europe/London){following}; reports and "
                f"returns in {_escape(str(folder))}; stop with SIGTERM or Ctrl-C",
                highlight=False,
            )
            summary = scheduler.run_forever()
    failed = sum(1 for j in summary.jobs if j.failed)
    err.print(
        f"registerwatch run stopped ({summary.stopped_by or 'asked'}): "
        f"{len(summary.jobs)} jobs run, {failed} with failures; see `registerwatch runs`",
        highlight=False,
    )


# -- nightly -------------------------------------------------------------------------------------


@app.command("nightly")
def nightly_command(
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="the day the night is for (YYYY-MM-DD; default today in London)"
        ),
    ] = None,
    config: ConfigOption = None,
    output: OutputDirOption = None,
    wait: WaitOption = False,
    fmt: FormatOption = OutputFormat.TABLE,
    queue: Annotated[
        bool,
        typer.Option(
            "--queue",
            help="put the night on the task queue for `registerwatch worker`s instead of "
            "doing it here (PostgreSQL stores only)",
        ),
    ] = False,
    follow: Annotated[
        bool,
        typer.Option("--follow", help="with --queue: wait for the workers to finish the night"),
    ] = False,
    accept_broken_ledger: Annotated[
        bool,
        typer.Option(
            "--accept-broken-ledger",
            help="sync even though `ledger verify` fails (needs --reason, kept in the run)",
        ),
    ] = False,
    reason: Annotated[
        str | None, typer.Option("--reason", help="why a broken ledger is accepted")
    ] = None,
) -> None:
    """Do the whole night once (for cron): sync, scan, then on school days the LA returns that
    are due, the report, the DfE daily return for the day just finished, and submit.

    Each step runs whatever happened to the one before. Exit 1 if any step, or any school in a
    step, failed; 0 otherwise. Every step is recorded: see `registerwatch runs`. With --queue
    the workers do it (one sync and one scan task per school); --follow waits for them.

    Example: registerwatch nightly --output /var/lib/registerwatch/output
    """
    if accept_broken_ledger and (queue or follow):
        # The queued night checks the chain once, when it is queued, and refuses a broken one:
        # accepting a break is a deliberate act done once, in-process, with its reason.
        _usage_error(
            "--accept-broken-ledger is not taken with --queue: run `registerwatch sync "
            "--accept-broken-ledger --reason TEXT` once, then queue the night"
        )
    if queue or follow:
        from registerwatch.cli.workers import queue_night

        queue_night(as_of, config, fmt, follow=follow)
        return
    from registerwatch.jobs.locked_store import locked_store
    from registerwatch.jobs.nightly import ONE_SHOT, NightContext, run_job, today
    from registerwatch.jobs.scheduler import StopFlag, handle_signals
    from registerwatch.jobs.status import school_statuses

    day = _parse_date(as_of, "--as-of") if as_of else today()
    if accept_broken_ledger and not (reason and reason.strip()):
        _usage_error("--accept-broken-ledger needs --reason TEXT (it is kept in the run record)")
    settings = _load_settings(config)
    _configure(settings)
    folder = _output_dir(settings, output)
    missing = _missing_credentials(settings)
    stop = StopFlag()
    with handle_signals(stop):
        with locked_store(settings.store.url, "nightly", wait=wait, should_stop=stop) as store:
            if store is None:
                err.print("stopped while waiting for the lock; nothing was run", highlight=False)
                return
            ctx = NightContext(
                settings=settings,
                store=store,
                as_of=day,
                output_dir=folder,
                clock=lambda: datetime.now(UTC),
                accept_broken_ledger=reason if accept_broken_ledger else None,
            )
            live = fmt is OutputFormat.TABLE and sys.stdout.isatty()
            with _SyncProgress(enabled=live) as progress:
                result = run_job(
                    ONE_SHOT,
                    ctx,
                    trigger="nightly",
                    should_stop=stop,
                    on_step=progress.step if live else None,
                )
            # How far each school's registers are judged: the night's first question after a
            # failed sync (issue 10), so the summary answers it without `registerwatch status`.
            schools = school_statuses(store, settings, as_of=day)
    if fmt is OutputFormat.JSON:
        _emit_json({**result.to_dict(), "schools": [_night_school(s) for s in schools]})
    else:
        _print_night(result, folder)
        _print_night_schools(schools)
    errors = [e for step in result.steps for e in step.errors]
    unread = [m for m in missing if any(m in e for e in errors)]
    if unread:  # what failed was configuration: exit 2, not 1 (the rest of the night still ran)
        err.print(
            "[bold red]error:[/] credentials missing: " + _escape("; ".join(unread)),
            highlight=False,
        )
        raise typer.Exit(2)
    if result.failed:
        raise typer.Exit(1)


def _print_night(result: Any, folder: Path) -> None:
    table = Table(
        "step",
        "outcome",
        "took",
        "counts",
        "errors",
        title=f"Night of {result.as_of.isoformat()}: {result.outcome}",
    )
    for column in table.columns:
        column.overflow = "fold"
    for step in result.steps:
        table.add_row(
            step.name,
            _style(step.outcome),
            f"{step.seconds:.1f}s",
            _escape(_counts_text(step.name, step.counts)),
            str(len(step.errors)),
        )
    for name in result.skipped:
        table.add_row(name, "[magenta]skipped[/]", "-", "stopped before this step", "-")
    _print_table(table)
    from registerwatch.cli.summary import for_people

    for step in result.steps:
        for error in for_people(step.errors):
            out.print(f"[bold red]{_escape(step.name)}:[/] {_escape(error)}", highlight=False)
    # Say where the files are only when the report step wrote them.
    report = next((s for s in result.steps if s.name == "report"), None)
    if report is not None and report.outcome == "ok":
        out.print(
            f"report and returns in {_escape(str(folder / result.as_of.isoformat()))}",
            highlight=False,
        )
    else:
        out.print("[bold red]no report was written[/] (see the report step above)", highlight=False)


def _night_school(status: Any) -> dict[str, Any]:
    row = status.to_dict()
    return {
        k: row[k]
        for k in (
            "school",
            "registers_complete_to",
            "never_synced",
            "stale",
            "last_sync",
            "problem",
        )
    }


def _print_night_schools(schools: list[Any]) -> None:
    table = Table("school", "registers complete to", "note", title="Registers judged")
    for column in table.columns:
        column.overflow = "fold"
    for status in schools:
        problem = status.problem
        table.add_row(
            _escape(status.school_id),
            status.complete_to_text,
            f"[bold red]{_escape(problem)}[/]" if problem else "",
        )
    if schools:
        _print_table(table)


# -- runs ----------------------------------------------------------------------------------------


@app.command("runs")
def runs_command(
    limit: Annotated[
        int,
        typer.Option(
            "--limit", "-n", min=1, max=10_000, help="how many runs to show, newest first"
        ),
    ] = 30,
    command: Annotated[
        str | None,
        typer.Option(
            "--command",
            help="only runs of this command or step, e.g. nightly, nightly:sync, "
            "sync, scan, submit, run",
        ),
    ] = None,
    wide: Annotated[
        bool,
        typer.Option("--wide", help="every column (finish time with seconds), whole details"),
    ] = False,
    config: ConfigOption = None,
    store: StoreOption = None,
    fmt: FormatOption = OutputFormat.TABLE,
) -> None:
    """List the run history, newest first: every job and step with its outcome (ok, partial,
    failed, interrupted; blank while running or if the process died) and counts.

    One line per run (times Europe/London); --wide shows every column and whole details.

    Example: registerwatch runs --command nightly -n 10
    """
    from registerwatch.store import Store

    with Store(_store_url(config, store), read_only=True) as opened:
        records = opened.runs(command=command, limit=limit)
    if fmt is OutputFormat.JSON:
        _emit_json({"runs": [_run_dict(r) for r in records]})
        return
    if not records:
        out.print("no runs recorded yet" + (f" for {command}" if command else ""), highlight=False)
        return
    title = f"Runs (newest first, {len(records)} shown)"
    if wide:
        _print_table(_wide_runs(records, title))
        return
    from registerwatch.cli.compact import Cell, compact_table

    rows = [
        [
            Cell(str(r.id)),
            Cell(r.command),
            Cell(_when(r.started_at, seconds=False)),
            Cell(_took(r.started_at, r.finished_at)),
            Cell(r.outcome or "unfinished", _OUTCOME_STYLE.get(r.outcome or "", "dim")),
            Cell(_run_details(r.command, r.counts)),
        ]
        for r in records
    ]
    headers = ["id", "command", "started", "took", "outcome", "details"]
    console = _people_console()
    console.print(compact_table(title, headers, rows, width=console.width))


def _wide_runs(records: list[Any], title: str) -> Table:
    table = Table("id", "command", "started", "finished", "took", "outcome", "details", title=title)
    for column in table.columns:
        column.overflow = "fold"
    for r in records:
        table.add_row(
            str(r.id),
            _escape(r.command),
            _when(r.started_at),
            _when(r.finished_at),
            _took(r.started_at, r.finished_at),
            _style(r.outcome),
            _escape(_run_details(r.command, r.counts)),
        )
    return table


def _run_dict(record: Any) -> dict[str, Any]:
    return {
        "id": record.id,
        "command": record.command,
        "started_at": record.started_at.isoformat(),
        "finished_at": record.finished_at.isoformat() if record.finished_at else None,
        "outcome": record.outcome,
        "counts": record.counts,
    }


def _run_details(command: str, counts: dict[str, Any]) -> str:
    parts: list[str] = []
    if isinstance(counts.get("steps"), dict) and counts["steps"]:
        parts.append(" ".join(f"{k} {v}" for k, v in counts["steps"].items()))
    if counts.get("skipped"):
        parts.append("skipped: " + ", ".join(map(str, counts["skipped"])))
    if counts.get("lock_error"):
        parts.append(str(counts["lock_error"]))
    step = command.split(":", 1)[1] if ":" in command else command
    if counts.get("school"):  # a queued night's step, done for one school by one worker
        by = f" by {counts['worker']}" if counts.get("worker") else ""
        parts.append(f"school {counts['school']}{by}")
    if not parts or counts.get("school"):
        text = _counts_text(step, counts)
        if text:
            parts.append(text)
    errors = counts.get("errors")
    if isinstance(errors, list) and errors:
        parts.append(f"{len(errors)} errors, first: {errors[0]}")
    return "; ".join(parts)
