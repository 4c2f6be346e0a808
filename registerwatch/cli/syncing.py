"""Sync commands: pull registers from each MIS (the ledger's commands are in ``ledger``)."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from registerwatch.cli._common import (
    ConfigOption,
    FormatOption,
    OutputFormat,
    WaitOption,
    _emit_json,
    _escape,
    _load_settings,
    _missing_credentials,
    _parse_date,
    _print_table,
    _require_school,
    _usage_error,
    app,
    err,
    out,
    state,
)

# -- sync -----------------------------------------------------------------------------------


@app.command("sync")
def sync_command(
    school: Annotated[str | None, typer.Option("--school", help="sync only this school id")] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="sync registers up to this date (YYYY-MM-DD; default today)"),
    ] = None,
    config: ConfigOption = None,
    fmt: FormatOption = OutputFormat.TABLE,
    wait: WaitOption = False,
    accept_broken_ledger: Annotated[
        bool,
        typer.Option(
            "--accept-broken-ledger",
            help="append even though `ledger verify` fails (needs --reason, kept in the run)",
        ),
    ] = False,
    reason: Annotated[
        str | None, typer.Option("--reason", help="why a broken ledger is accepted")
    ] = None,
) -> None:
    """Pull each school's registers from its MIS into the store and record every change.

    Exit 1 when any school failed (the others are still synced), or when another run holds
    the store's lock (see `registerwatch runs`); quarantined records are listed but do not
    change the exit status.

    Example: registerwatch sync --school oakfield
    """
    from registerwatch.jobs.locked_store import locked_store
    from registerwatch.logging import configure_logging
    from registerwatch.sync import sync_all

    day = _parse_date(as_of, "--as-of") if as_of else None
    if accept_broken_ledger and not (reason and reason.strip()):
        _usage_error("--accept-broken-ledger needs --reason TEXT (it is kept in the run record)")
    settings = _load_settings(config)
    _require_school(school, [s.id for s in settings.schools])
    missing = _missing_credentials(settings, school)
    if not state.debug:
        configure_logging(level=settings.logging.level, json=settings.logging.json_output)
    # The same lock as `nightly` and `run`: two syncs of one store must never overlap.
    with locked_store(settings.store.url, "sync", wait=wait) as store:
        assert store is not None  # only a stop request while waiting yields None
        live = fmt is OutputFormat.TABLE and sys.stdout.isatty()
        with _SyncProgress(enabled=live) as progress:
            summary = sync_all(
                settings,
                store,
                school_id=school,
                as_of=day,
                progress=progress.update if live else None,
                accept_broken_ledger=reason if accept_broken_ledger else None,
            )
    if fmt is OutputFormat.JSON:
        _emit_json(summary.to_dict())
    else:
        _print_sync_summary(summary)
    unread = [m for m in missing if any(m in (r.error or "") for r in summary.failed)]
    if unread:  # what failed was configuration: exit 2, not 1 (the others were still synced)
        err.print(
            "[bold red]error:[/] credentials missing: " + _escape("; ".join(unread)),
            highlight=False,
        )
        raise typer.Exit(2)
    if not summary.ok:
        raise typer.Exit(1)


class _SyncProgress:
    """A live line per school while sync runs (terminal only)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._tasks: dict[str, Any] = {}
        self._progress: Any = None
        self._done: list[str] = []

    def __enter__(self) -> _SyncProgress:
        if self.enabled:
            from rich.progress import (
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=out,
                transient=True,
            )
            self._progress.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def step(self, name: str, result: Any) -> None:
        """The night's steps after sync: one live line saying which step runs, and how the
        finished ones went, so the display never sits on a finished sync."""
        if self._progress is None:
            return
        if "night" not in self._tasks:
            self._tasks["night"] = self._progress.add_task("", total=None)
        if result is not None:
            self._done.append(f"{name} {result.outcome}")
            text = "night: " + ", ".join(self._done)
        else:
            text = "night: " + ", ".join([*self._done, f"{name}..."])
        self._progress.update(self._tasks["night"], description=_escape(text))

    def update(self, event: Any) -> None:
        from registerwatch.sync import ResourceFetched, SchoolFinished, SchoolStarted

        if self._progress is None:
            return
        school = event.school_id
        if school not in self._tasks:
            self._tasks[school] = self._progress.add_task(school, total=None)
        task = self._tasks[school]
        if isinstance(event, SchoolStarted):
            window = f"{event.start}..{event.end}" if event.start else "no school days yet"
            text = f"{school} ({event.vendor}, {window}): fetching"
        elif isinstance(event, ResourceFetched):
            text = f"{school}: {event.resource} {event.records}"
            if event.quarantined:
                text += f" ({event.quarantined} quarantined)"
        elif isinstance(event, SchoolFinished):
            text = f"{school}: {event.status}"
            self._progress.update(task, total=1, completed=1)
        else:  # pragma: no cover - every event kind is handled above
            return
        self._progress.update(task, description=_escape(text))


def _print_sync_summary(summary: Any) -> None:
    table = Table(
        "school",
        "status",
        "window",
        "fetched",
        "marks",
        "quarantine",
        title=f"Sync to {summary.as_of}",
    )
    for column, width in zip(table.columns, (10, 6, 10, 13, 10, 10), strict=True):
        column.min_width = width
        column.overflow = "fold"
    for r in summary.schools:
        fetched = "\n".join(
            f"{r.fetched[k]} {k}" for k in ("pupils", "registers", "marks", "amendments")
        )
        marks = f"{r.marks_new} new\n{r.marks_changed} changed\n{r.marks_deleted} deleted"
        window = f"{r.window.start}\nto {r.window.end}" if r.window else "-"
        table.add_row(
            f"{r.school_id}\n({r.vendor})",
            "ok" if r.ok else "[bold red]FAILED[/]",
            window,
            fetched,
            marks,
            str(len(r.quarantined)),
        )
    _print_table(table)
    for r in summary.failed:
        out.print(
            f"[bold red]{_escape(r.school_id)} failed:[/] {_escape(r.error or '')}", highlight=False
        )
    for r in summary.schools:
        for warning in r.warnings:
            out.print(f"[yellow]{_escape(r.school_id)}:[/] {_escape(warning)}", highlight=False)
    quarantined = [(r.school_id, q) for r in summary.schools for q in r.quarantined]
    if quarantined:
        # Record references and reasons only: a quarantined record's raw text may hold pupil
        # data and stays in the store.
        qtable = Table(
            "school",
            "resource",
            "record",
            "field",
            "reason",
            title=f"Quarantined records: {len(quarantined)} (kept in the store; "
            "fix them in the MIS)",
        )
        for column in qtable.columns:
            column.overflow = "fold"  # a record reference cut short cannot be looked up
        for school_id, q in quarantined:
            qtable.add_row(school_id, q.resource, q.record_ref, q.field or "", q.reason)
        _print_table(qtable)
