"""The command line (typer): the only package that prints and chooses exit codes.

Exit status: 0 ok; 1 findings at or above --fail-on, or failures (an MIS that cannot be
reached, a disk that is full, a port in use); 2 usage or configuration error (a bad option, an
unknown school, a config or credential problem, terms that do not cover the day, an output
folder that cannot be written). Errors are one clear line on stderr; --debug shows the
traceback. Each module registers its commands on the one ``app`` in ``_common``.
"""

from __future__ import annotations

import errno
import sys
import traceback

from registerwatch.cli import (  # noqa: F401 - each module registers its commands
    configuring,
    demo,
    exporting,
    freshness,
    ledger,
    notifying,
    reference,
    reporting,
    rules,
    running,
    scanning,
    submitting,
    syncing,
    web,
    workers,
)
from registerwatch.cli._common import _escape, app, err
from registerwatch.cli._help import build_command
from registerwatch.errors import CalendarError, ConfigError, RegisterwatchError
from registerwatch.logging import redact_text

__all__ = ["app", "exit_code_for", "main"]

# OSErrors that mean the setup is wrong (restarting will not help): exit 2, like a bad config.
_SETUP_ERRNOS = frozenset(
    {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR, errno.EEXIST}
)


def exit_code_for(exc: BaseException) -> int:
    """The exit status an error leaves with (the README's promise, in one place)."""
    if isinstance(exc, ConfigError | CalendarError):
        return 2  # CalendarError: the config's terms do not cover the day asked about
    if isinstance(exc, OSError) and exc.errno in _SETUP_ERRNOS:
        return 2
    return 1


def describe_os_error(exc: OSError) -> str:
    """One line naming the path or port and what to do, never "internal error"."""
    reason = exc.strerror or type(exc).__name__
    path = exc.filename
    if exc.errno == errno.EADDRINUSE:
        return f"address in use: {reason}; stop the other process or choose another --port"
    if exc.errno == errno.ENOSPC:
        return f"no space left on the device holding {path or 'the output'}: free some space"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (
            f"cannot write {path or 'the output'}: {reason.lower()}; fix its permissions or "
            "choose another folder (--output)"
        )
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return f"cannot use {path} as a folder: a file is in the way; choose another --output"
    where = f" {path}" if path else ""
    return f"cannot use{where}: {reason}"


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        # standalone mode: click reports usage errors itself (exit 2) and exits with the code a
        # command raised with typer.Exit; anything else comes back here.
        build_command().main(args=args, prog_name="registerwatch")
    except RegisterwatchError as exc:
        if debug:
            traceback.print_exc()
        err.print(f"[bold red]error:[/] {_escape(redact_text(str(exc)))}", highlight=False)
        sys.exit(exit_code_for(exc))
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as exc:  # the machine, not the code: a folder, a disk, a port
        if debug:
            traceback.print_exc()
        err.print(f"[bold red]error:[/] {_escape(describe_os_error(exc))}", highlight=False)
        sys.exit(exit_code_for(exc))
    except Exception as exc:  # a bug: one line unless --debug
        if debug:
            raise
        err.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {_escape(redact_text(str(exc)))} "
            "(rerun with --debug for the traceback)",
            highlight=False,
        )
        sys.exit(1)
