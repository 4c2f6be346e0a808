"""`config check` (offline, or `--connect` to try each MIS and transport) and `config example`.

Exit status: 0 every line ok; 2 any problem (it is configuration, whatever the cause), so a
deployment script can run `registerwatch config check --connect` before enabling the timer.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from registerwatch.cli._common import (
    ConfigOption,
    FormatOption,
    OutputFormat,
    _emit_json,
    _escape,
    _load_settings,
    _parse_date,
    _redacted_url,
    config_app,
    out,
)


@config_app.command("check")
def config_check(
    config: ConfigOption = None,
    connect: Annotated[
        bool,
        typer.Option(
            "--connect",
            help="also try each MIS (log in, read one day) and each transport (SMTP login, "
            "HTTP endpoint, folder write)",
        ),
    ] = False,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="the day the terms must cover (YYYY-MM-DD; default today)"),
    ] = None,
    fmt: FormatOption = OutputFormat.TABLE,
) -> None:
    """Check the config and everything it names: one line per school and transport, saying
    what to fix. Exit 2 on any problem.

    Offline it checks the file, that every credential variable is set and every credential
    file exists and is private (chmod 600), that the terms cover the day, and that every
    school's LA has a transport. --connect also logs in to each MIS and transport.

    Example: registerwatch config check --connect
    """
    from registerwatch.config.check import check_connect, check_offline
    from registerwatch.jobs.nightly import today

    day = _parse_date(as_of, "--as-of") if as_of else today()
    settings = _load_settings(config)
    check = check_connect if connect else check_offline
    lines = check(settings, as_of=day)
    source = settings.source_path
    found = f"{source} (found by {settings.found_by})" if source else "(built in code)"
    failed = [line for line in lines if not line.ok]
    if fmt is OutputFormat.JSON:
        _emit_json(
            {
                "config": str(source) if source else None,
                "found_by": settings.found_by,
                "store": _redacted_url(settings.store.url),
                "connect": connect,
                "ok": not failed,
                "checks": [line.to_dict() for line in lines],
                "warnings": settings.warnings(),
            }
        )
    else:
        out.print(f"config: {_escape(found)}", highlight=False)
        out.print(f"store: {_escape(_redacted_url(settings.store.url))}", highlight=False)
        for line in lines:
            if line.ok:
                detail = f" ({line.detail})" if line.detail else ""
                out.print(f"[green]ok[/]      {_escape(line.subject + detail)}", highlight=False)
            for problem in line.problems:
                out.print(
                    f"[bold red]PROBLEM[/] {_escape(line.subject)}: {_escape(problem)}",
                    highlight=False,
                )
        # Warnings do not change the exit status: the config is valid, only doubtful.
        for warning in settings.warnings():
            out.print(f"[yellow]warning:[/] {_escape(warning)}", highlight=False)
        what = "checked and tried" if connect else "checked (add --connect to try them)"
        summary = f"{len(lines)} schools and transports {what}"
        out.print(
            f"{summary}: {len(failed)} with problems" if failed else f"{summary}: all ok",
            highlight=False,
        )
    if failed:
        raise typer.Exit(2)


@config_app.command("example")
def config_example() -> None:
    """Print the commented example config.

    Example: registerwatch config example > registerwatch.toml
    """
    from registerwatch.config import EXAMPLE_CONFIG_PATH

    sys.stdout.write(Path(EXAMPLE_CONFIG_PATH).read_text(encoding="utf-8"))
