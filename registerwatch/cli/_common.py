"""Shared parts of the command line: the app, consoles, options and output helpers.

The ``registerwatch.cli`` package is the only place that prints or picks exit codes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape as _rich_escape
from rich.table import Table

from registerwatch import __version__

if TYPE_CHECKING:  # the CLI imports the config only when a command needs it
    from registerwatch.config import Settings

app = typer.Typer(
    name="registerwatch",
    help="Keeps English schools' attendance registers lawful: sync, scan, returns.\n\n"
    "Exit status: 0 ok; 1 findings at or above --fail-on, or failures; 2 usage or "
    "configuration error.\n\nExample: registerwatch config check --connect",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain help: paragraphs rewrapped to the terminal, no "<bool>" labels on flags.
    rich_markup_mode=None,
    # --install-completion / --show-completion for bash, zsh, fish and PowerShell.
    add_completion=True,
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


FormatOption = Annotated[
    OutputFormat, typer.Option("--format", help="table for people, json for machines")
]
WaitOption = Annotated[
    bool,
    typer.Option(
        "--wait", help="if another run holds the store's lock, wait for it instead of exiting 1"
    ),
]
# No envvar= here: config/discovery.py owns the whole order (--config, $REGISTERWATCH_CONFIG,
# ./registerwatch.toml, the user config folder) and says which one it used.
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="TOML config file (default: $REGISTERWATCH_CONFIG, else ./registerwatch.toml, "
        "else registerwatch.toml in the user config folder)",
        show_default=False,
    ),
]


class _State:
    debug = False
    log_level = "WARNING"


state = _State()


def _emit_json(payload: Any) -> None:
    out.print_json(
        json.dumps(payload, default=str), indent=2
    ) if sys.stdout.isatty() else sys.stdout.write(
        json.dumps(payload, default=str, indent=2) + "\n"
    )


def _load_settings(config: Path | None) -> Settings:
    from registerwatch.config import load_config

    return load_config(config)


def _print_version(value: bool) -> None:
    if value:
        out.print(f"registerwatch {__version__}", highlight=False)
        raise typer.Exit(0)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks and debug logs")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="print the version and exit",
            is_eager=True,  # before the "missing command" check
            callback=_print_version,
            expose_value=True,
        ),
    ] = False,
) -> None:
    state.debug = debug
    from registerwatch.logging import configure_logging

    configure_logging(level="DEBUG" if debug else state.log_level)


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "-"
    return "" if value is None else str(value)


def _parse_date(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date (YYYY-MM-DD)", param_hint=option
        ) from None


StoreOption = Annotated[
    str | None, typer.Option("--store", help="store URL (overrides the config)")
]


def _store_url(config: Path | None, store: str | None) -> str:
    if store:
        return store
    url: str = _load_settings(config).store.url
    return url


def _redacted_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# Width for tables written to a file or a pipe (a nightly job's log), where rich would otherwise
# assume 80 columns and fold school ids and record references.
_FILE_TABLE_WIDTH = 140


def _pipe_width() -> int:
    """The width the compact findings table takes in a pipe: $COLUMNS when set (as a terminal
    would say), else wide. Folding tables keep the fixed width: they stay whole in a log."""
    import os

    try:
        return max(40, int(os.environ["COLUMNS"]))
    except (KeyError, ValueError):
        return _FILE_TABLE_WIDTH


def _people_console() -> Console:
    """Where a compact table goes: the terminal at its width, else a pipe at `_pipe_width`."""
    return out if out.is_terminal else Console(width=_pipe_width(), soft_wrap=True)


def _print_table(table: Table) -> None:
    if out.is_terminal:
        out.print(table)
    else:
        Console(width=_FILE_TABLE_WIDTH, soft_wrap=True).print(table)


def _escape(text: str) -> str:
    return _rich_escape(text)


def _require_school(school: str | None, known: Iterable[str]) -> None:
    """An unknown school id is a usage error (exit 2) with a did-you-mean, before any work."""
    from registerwatch.config import unknown_school_message

    ids = sorted(known)
    if school is not None and school not in ids:
        _usage_error(unknown_school_message(school, ids))


def _require_known_school(
    school: str | None, opened: Any, config: Path | None, store: str | None
) -> None:
    """For commands that read the store: a school is known if the store or the config has it
    (the config only when it is in use, i.e. no --store)."""
    if school is None:
        return
    known = {s.id for s in opened.schools()}
    if store is None:
        known |= {s.id for s in _load_settings(config).schools}
    _require_school(school, known)


def _missing_credentials(settings: Settings, school_id: str | None = None) -> list[str]:
    """Secrets that cannot be read, for the selected school (or every school and transport).

    `sync` and `nightly` still run everything else (one school's missing password must not
    cost the others their night); when a school failed because of one of these, they exit 2,
    because the fix is configuration.
    """
    from registerwatch.errors import CredentialError

    if school_id is not None:
        try:
            settings.school(school_id).mis.credentials()
        except CredentialError as exc:
            return [str(exc)]
        return []
    try:
        settings.check_credentials()
    except CredentialError as exc:
        return list(exc.errors)
    return []


def _writable_folder(folder: Path) -> Path:
    """Make ``folder`` and prove it writable now, or raise OSError naming the folder (exit 2):
    a command that cannot write its output says so before it starts, in one line."""
    import tempfile

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".registerwatch-check-"):
            pass
    except OSError as exc:  # named by the folder, not by the probe file's random name
        raise OSError(exc.errno, exc.strerror, str(folder)) from None
    return folder


def _usage_error(message: str) -> NoReturn:
    """A one-line error for something the user named that does not exist: exit 2."""
    err.print(f"[bold red]error:[/] {_escape(message)}", highlight=False)
    raise typer.Exit(2)
