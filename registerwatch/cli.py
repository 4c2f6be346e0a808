"""The command line: the only module that prints and chooses exit codes.

Exit status: 0 ok; 1 findings at or above --fail-on, or failures; 2 usage or configuration error.
Errors are one clear line on stderr; --debug shows the traceback.
"""

from __future__ import annotations

import json
import sys
import traceback
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from registerwatch import __version__
from registerwatch.errors import ConfigError, RegisterwatchError

app = typer.Typer(
    name="registerwatch",
    help="Keeps English schools' attendance registers lawful: sync, scan, returns.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
upn_app = typer.Typer(help="Check Unique Pupil Numbers.", no_args_is_help=True)
calendar_app = typer.Typer(help="Ask the school calendar.", no_args_is_help=True)
db_app = typer.Typer(help="Create or upgrade the store.", no_args_is_help=True)
config_app = typer.Typer(help="Check and explain the configuration file.", no_args_is_help=True)
app.add_typer(upn_app, name="upn")
app.add_typer(calendar_app, name="calendar")
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")
ledger_app = typer.Typer(help="Check the hash-chained amendment ledger.", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


FormatOption = Annotated[OutputFormat, typer.Option("--format", help="table for people, json for machines")]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", envvar="REGISTERWATCH_CONFIG",
                 help="TOML config file (default: $REGISTERWATCH_CONFIG)"),
]


class _State:
    debug = False
    log_level = "WARNING"


state = _State()


def _emit_json(payload: Any) -> None:
    out.print_json(json.dumps(payload, default=str), indent=2) if sys.stdout.isatty() else \
        sys.stdout.write(json.dumps(payload, default=str, indent=2) + "\n")


def _load_settings(config: Path | None):
    from registerwatch.config import load_config

    return load_config(config)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks and debug logs")] = False,
    version: Annotated[bool, typer.Option("--version", help="print the version and exit")] = False,
) -> None:
    if version:
        out.print(f"registerwatch {__version__}")
        raise typer.Exit(0)
    state.debug = debug
    from registerwatch.logging import configure_logging

    configure_logging(level="DEBUG" if debug else state.log_level)


# -- codes ----------------------------------------------------------------------------------


@app.command("codes")
def codes_command(fmt: FormatOption = OutputFormat.TABLE) -> None:
    """List the national attendance codes (2024 table and legacy 2006 codes)."""
    from registerwatch.codes import code_table

    rows = code_table()
    if fmt is OutputFormat.JSON:
        _emit_json(rows)
        return
    table = Table("code", "description", "category", "possible", "attendance", "authorised",
                  "unauthorised", "valid from", "valid to", title="National attendance codes")
    for row in rows:
        table.add_row(*(_cell(row[k]) for k in ("code", "description", "category", "possible",
                                                  "attendance", "authorised", "unauthorised",
                                                  "valid_from", "valid_to")))
    out.print(table)


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "-"
    return "" if value is None else str(value)


# -- upn ------------------------------------------------------------------------------------


@upn_app.command("check")
def upn_check(
    upns: Annotated[list[str], typer.Argument(help="one or more UPNs")],
    fmt: FormatOption = OutputFormat.TABLE,
) -> None:
    """Check UPNs' format and DfE check letter. Exit 1 when any is invalid."""
    from registerwatch.upn import check_upn

    results = [check_upn(u) for u in upns]
    if fmt is OutputFormat.JSON:
        _emit_json([{"upn": r.upn, "valid": r.valid, "reason": r.reason,
                     "temporary": r.temporary} for r in results])
    else:
        table = Table("UPN", "valid", "reason")
        for r in results:
            table.add_row(r.upn, "yes" if r.valid else "NO", r.reason or "")
        out.print(table)
    if not all(r.valid for r in results):
        raise typer.Exit(1)


# -- calendar -------------------------------------------------------------------------------


@calendar_app.command("school-days")
def calendar_school_days(
    school: Annotated[str, typer.Option("--school", help="school id from the config")],
    start: Annotated[str, typer.Option("--from", help="first date (YYYY-MM-DD)")],
    end: Annotated[str, typer.Option("--to", help="last date (YYYY-MM-DD)")],
    config: ConfigOption = None,
    fmt: FormatOption = OutputFormat.TABLE,
) -> None:
    """List the school days of a school between two dates (inclusive)."""
    from registerwatch.calendar import SchoolCalendar

    first, last = _parse_date(start, "--from"), _parse_date(end, "--to")
    if last < first:
        raise typer.BadParameter(f"--to {last} is before --from {first}")
    settings = _load_settings(config)
    calendar = SchoolCalendar(settings.school(school).to_calendar())
    days = calendar.school_days(first, last)
    if fmt is OutputFormat.JSON:
        _emit_json([d.isoformat() for d in days])
        return
    table = Table("date", "day", "sessions", title=f"School days for {school}: {len(days)}")
    for day in days:
        table.add_row(day.isoformat(), day.strftime("%A"),
                      " ".join(s.value for s in calendar.sessions_on(day)))
    out.print(table)


def _parse_date(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=option) from None


# -- db -------------------------------------------------------------------------------------


StoreOption = Annotated[str | None, typer.Option("--store", help="store URL (overrides the config)")]


def _store_url(config: Path | None, store: str | None) -> str:
    if store:
        return store
    return _load_settings(config).store.url


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None, store: StoreOption = None) -> None:
    """Create the store or bring it to the latest schema (Alembic migrations)."""
    from registerwatch.store import upgrade

    url = _store_url(config, store)
    revision = upgrade(url)
    err.print(f"store at revision {revision}")


@db_app.command("current")
def db_current(config: ConfigOption = None, store: StoreOption = None,
               fmt: FormatOption = OutputFormat.TABLE) -> None:
    """Show the store's schema revision."""
    from registerwatch.store import current_revision, head_revision

    url = _store_url(config, store)
    current, head = current_revision(url), head_revision()
    if fmt is OutputFormat.JSON:
        _emit_json({"current": current, "head": head, "up_to_date": current == head})
    else:
        out.print(f"current {current or '(empty)'}; latest {head}")


# -- config ---------------------------------------------------------------------------------


@config_app.command("check")
def config_check(config: ConfigOption = None, fmt: FormatOption = OutputFormat.TABLE) -> None:
    """Validate the config file; exit 2 listing every problem by its TOML path."""
    settings = _load_settings(config)
    summary = {"schools": [{"id": s.id, "vendor": s.mis.vendor.value if hasattr(s.mis.vendor, "value") else s.mis.vendor}
                           for s in settings.schools], "store": _redacted_url(settings.store.url)}
    if fmt is OutputFormat.JSON:
        _emit_json(summary)
    else:
        out.print(f"config ok: {len(summary['schools'])} school(s); store {summary['store']}")


@config_app.command("example")
def config_example() -> None:
    """Print the commented example config."""
    from registerwatch.config import EXAMPLE_CONFIG_PATH

    sys.stdout.write(Path(EXAMPLE_CONFIG_PATH).read_text(encoding="utf-8"))


def _redacted_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# -- sync -----------------------------------------------------------------------------------


@app.command("sync")
def sync_command(
    school: Annotated[str | None, typer.Option("--school", help="sync only this school id")] = None,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="sync registers up to this date (YYYY-MM-DD; default today)")] = None,
    config: ConfigOption = None,
    fmt: FormatOption = OutputFormat.TABLE,
) -> None:
    """Pull each school's registers from its MIS into the store and record every change.

    Exit 1 when any school failed (the others are still synced); quarantined records are
    listed but do not change the exit status.
    """
    from registerwatch.logging import configure_logging
    from registerwatch.store import Store
    from registerwatch.sync import sync_all

    day = _parse_date(as_of, "--as-of") if as_of else None
    settings = _load_settings(config)
    if not state.debug:
        configure_logging(level=settings.logging.level, json=settings.logging.json_output)
    store = Store.open(settings.store.url)
    try:
        live = fmt is OutputFormat.TABLE and sys.stdout.isatty()
        with _SyncProgress(enabled=live) as progress:
            summary = sync_all(settings, store, school_id=school, as_of=day,
                               progress=progress.update if live else None)
    finally:
        store.close()
    if fmt is OutputFormat.JSON:
        _emit_json(summary.to_dict())
    else:
        _print_sync_summary(summary)
    if not summary.ok:
        raise typer.Exit(1)


class _SyncProgress:
    """A live line per school while sync runs (terminal only)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._tasks: dict[str, Any] = {}
        self._progress: Any = None

    def __enter__(self) -> _SyncProgress:
        if self.enabled:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                                      TimeElapsedColumn(), console=out, transient=True)
            self._progress.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

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


# Width for tables written to a file or a pipe (a nightly job's log), where rich would otherwise
# assume 80 columns and fold school ids and record references.
_FILE_TABLE_WIDTH = 140


def _print_table(table: Table) -> None:
    if out.is_terminal:
        out.print(table)
    else:
        Console(width=_FILE_TABLE_WIDTH, soft_wrap=True).print(table)


def _print_sync_summary(summary: Any) -> None:
    table = Table("school", "status", "window", "fetched", "marks", "quarantine",
                  title=f"Sync to {summary.as_of}")
    for column, width in zip(table.columns, (10, 6, 10, 13, 10, 10), strict=True):
        column.min_width = width
        column.overflow = "fold"
    for r in summary.schools:
        fetched = "\n".join(f"{r.fetched[k]} {k}" for k in ("pupils", "registers", "marks",
                                                              "amendments"))
        marks = f"{r.marks_new} new\n{r.marks_changed} changed\n{r.marks_deleted} deleted"
        window = f"{r.window.start}\nto {r.window.end}" if r.window else "-"
        table.add_row(f"{r.school_id}\n({r.vendor})", "ok" if r.ok else "[bold red]FAILED[/]",
                      window, fetched, marks, str(len(r.quarantined)))
    _print_table(table)
    for r in summary.failed:
        out.print(f"[bold red]{_escape(r.school_id)} failed:[/] {_escape(r.error or '')}",
                  highlight=False)
    for r in summary.schools:
        for warning in r.warnings:
            out.print(f"[yellow]{_escape(r.school_id)}:[/] {_escape(warning)}", highlight=False)
    quarantined = [(r.school_id, q) for r in summary.schools for q in r.quarantined]
    if quarantined:
        # Record references and reasons only: a quarantined record's raw text may hold pupil
        # data and stays in the store.
        qtable = Table("school", "resource", "record", "field", "reason",
                       title=f"Quarantined records: {len(quarantined)} (kept in the store; "
                             "fix them in the MIS)")
        for column in qtable.columns:
            column.overflow = "fold"  # a record reference cut short cannot be looked up
        for school_id, q in quarantined:
            qtable.add_row(school_id, q.resource, q.record_ref, q.field or "", q.reason)
        _print_table(qtable)


# -- ledger ---------------------------------------------------------------------------------


@ledger_app.command("verify")
def ledger_verify(config: ConfigOption = None, store: StoreOption = None,
                  fmt: FormatOption = OutputFormat.TABLE) -> None:
    """Check the amendment ledger's hash chain. Exit 1 naming the first broken entry."""
    from registerwatch.store import Store
    from registerwatch.sync import check_ledger

    opened = Store(_store_url(config, store))
    try:
        check = check_ledger(opened)
    finally:
        opened.close()
    if fmt is OutputFormat.JSON:
        _emit_json(check.to_dict())
    elif check.ok:
        tip = "empty" if check.last_seq is None else \
            f"tip: entry {check.last_seq}, hash {check.last_hash}"
        out.print(f"ledger ok: {check.entries} entries; {tip} (keep the tip somewhere the "
                  "store's owner cannot rewrite: the chain cannot show entries cut off the end)",
                  highlight=False)
    else:
        school = check.broken_school_id or "unknown"
        out.print(f"[bold red]ledger broken[/] at entry {check.broken_seq} (school "
                  f"{_escape(school)}): {_escape(check.reason or '')}; {check.entries} entries "
                  "before it verified", highlight=False)
    if not check.ok:
        raise typer.Exit(1)


# -- entry point ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        # standalone mode: typer reports usage errors itself (exit 2) and exits with the code a
        # command raised with typer.Exit; anything else comes back here.
        app(args=args, prog_name="registerwatch")
    except RegisterwatchError as exc:
        if debug:
            traceback.print_exc()
        err.print(f"[bold red]error:[/] {_escape(str(exc))}", highlight=False)
        sys.exit(2 if isinstance(exc, ConfigError) else 1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # a bug: one line unless --debug
        if debug:
            raise
        err.print(f"[bold red]internal error:[/] {type(exc).__name__}: {_escape(str(exc))} "
                  "(rerun with --debug for the traceback)", highlight=False)
        sys.exit(1)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


if __name__ == "__main__":  # pragma: no cover
    main()
