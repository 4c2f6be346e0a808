"""Shared parts of the command line: the app, consoles, options and output helpers.

The ``registerwatch.cli`` package is the only place that prints or picks exit codes.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape as _rich_escape
from rich.table import Table

from registerwatch import __version__

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


FormatOption = Annotated[
    OutputFormat, typer.Option("--format", help="table for people, json for machines")
]
WaitOption = Annotated[
    bool,
    typer.Option(
        "--wait", help="if another run holds the store's lock, wait for it instead of exiting 1"
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        envvar="REGISTERWATCH_CONFIG",
        help="TOML config file (default: $REGISTERWATCH_CONFIG)",
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
    return _load_settings(config).store.url


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


def _print_table(table: Table) -> None:
    if out.is_terminal:
        out.print(table)
    else:
        Console(width=_FILE_TABLE_WIDTH, soft_wrap=True).print(table)


def _escape(text: str) -> str:
    return _rich_escape(text)


def _usage_error(message: str) -> NoReturn:
    """A one-line error for something the user named that does not exist: exit 2."""
    err.print(f"[bold red]error:[/] {_escape(message)}", highlight=False)
    raise typer.Exit(2)
