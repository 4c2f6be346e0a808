"""The command line (typer): the only package that prints and chooses exit codes.

Exit status: 0 ok; 1 findings at or above --fail-on, or failures; 2 usage or configuration error.
Errors are one clear line on stderr; --debug shows the traceback. Each module registers its
commands on the one ``app`` in ``_common``.
"""

from __future__ import annotations

import sys
import traceback

from registerwatch.cli import (  # noqa: F401 - each module registers its commands
    demo,
    exporting,
    reference,
    reporting,
    rules,
    running,
    scanning,
    submitting,
    syncing,
)
from registerwatch.cli._common import _escape, app, err
from registerwatch.errors import ConfigError, RegisterwatchError
from registerwatch.logging import redact_text

__all__ = ["app", "main"]


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
        err.print(f"[bold red]error:[/] {_escape(redact_text(str(exc)))}", highlight=False)
        sys.exit(2 if isinstance(exc, ConfigError) else 1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # a bug: one line unless --debug
        if debug:
            raise
        err.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {_escape(redact_text(str(exc)))} "
            "(rerun with --debug for the traceback)",
            highlight=False,
        )
        sys.exit(1)
