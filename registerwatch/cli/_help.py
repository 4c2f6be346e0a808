"""The click command built from the typer app, with metavars people read (``--school ID``).

Typer labels each option with its Python type (``<str>``, ``<path>``); this names the value
instead, by the option's name, for every command at once so no module has to remember.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import typer

from registerwatch.cli._common import app

_METAVARS = {
    "--school": "ID",
    "--school-id": "ID",
    "--as-of": "DATE",
    "--from": "DATE",
    "--to": "DATE",
    "--episode-start": "DATE",
    "--made-at": "DATETIME",
    "--config": "FILE",
    "--store": "URL",
    "--output": "PATH",
    "--dir": "FOLDER",
    "--port": "PORT",
    "--fault": "KIND[:TIMES]",
    "--date": "DATE",
    "--term": "TERM",
    "--option": "KEY=VALUE",
    "--pupil": "MIS_ID",
    "--command": "NAME",
}


@cache
def build_command() -> Any:
    command = typer.main.get_command(app)
    _name_values(command)
    return command


def _no_type_label(ctx: Any) -> None:
    return None


def _name_values(command: Any) -> None:
    for param in command.params:
        if param.param_type_name == "argument":
            if param.metavar is None:
                param.metavar = param.name.upper()
            # typer would print "CODE <str>": the name says enough, the help says the rest.
            param.display_type_rich = _no_type_label
            continue
        if getattr(param, "is_flag", False) or param.param_type_name != "option":
            continue
        described = getattr(param, "type_descriptor", None)
        if param.metavar is not None or (described is not None and described.is_choice):
            continue  # choices are their own label: <table|json>
        long_name = next((o for o in param.opts if o.startswith("--")), None)
        name = _METAVARS.get(long_name or "")
        if name is None:
            kind = param.bare_type() if hasattr(param, "bare_type") else ""
            name = {"int": "N", "float": "NUMBER"}.get(kind, "TEXT")
        param.metavar = name
    for child in getattr(command, "commands", {}).values():
        _name_values(child)
