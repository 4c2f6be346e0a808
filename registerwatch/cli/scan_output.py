"""How `scan` and `findings list` print: the scan's table and notes for people, and the three
formats (table, JSON, CSV) to stdout or to a file (atomically, mode 0600)."""

from __future__ import annotations

import io
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from registerwatch.cli._common import _FILE_TABLE_WIDTH, _emit_json, _escape, _pipe_width, err, out

if TYPE_CHECKING:
    from registerwatch.scan import ScanResult
    from registerwatch.schema import Severity


class ScanFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


def print_scan(
    console: Console,
    result: ScanResult,
    *,
    include_names: bool,
    fail_on: Severity | None,
    wide: bool = False,
    show_resolved: bool = False,
) -> None:
    from registerwatch.cli.findings_table import findings_table

    counts = result.counts()
    schools = [s for s in result.schools if s.status == "scanned"]
    title = (
        f"Scan of {len(schools)} school(s) as of {result.as_of.isoformat()}: "
        f"{counts['new']} new, {counts['open']} open, {counts['resolved']} resolved"
    )
    shown = [f for f in result.findings if show_resolved or f.status != "resolved"]
    if shown:
        console.print(
            findings_table(
                shown, title=title, include_names=include_names, wide=wide, width=console.width
            )
        )
    else:
        console.print(f"{title}: no findings to show.", highlight=False)
    if len(shown) < len(result.findings):
        console.print(
            f"{len(result.findings) - len(shown)} resolved finding(s) not shown (--all shows them)",
            highlight=False,
        )
    if result.read_only:
        console.print(
            "[yellow]read-only:[/] --as-of is before the latest recorded scan, so nothing was "
            "recorded (give --record to record it).",
            highlight=False,
        )
    for school in result.schools:
        name = _escape(school.school_id)
        if school.status == "not_synced":
            console.print(
                f"[yellow]{name}:[/] never synced, nothing judged (not 0 errors); run "
                f"`registerwatch sync --school {name}` first",
                highlight=False,
            )
        elif school.status == "scanned":
            complete = school.registers_complete_to
            console.print(
                f"{'[bold red]' if school.stale else ''}{name}: registers complete to "
                f"{complete.isoformat() if complete else 'not recorded'}"
                f"{' (behind: SYN001)[/]' if school.stale else ''}",
                highlight=False,
            )
        elif school.status == "failed":
            console.print(
                f"[bold red]{name} could not be scanned:[/] {_escape(school.error or '')}",
                highlight=False,
            )
        for code, error in sorted(school.failed_rules.items()):
            console.print(
                f"[bold red]{name}: rule {code} failed[/] ({_escape(error)}); its "
                "open findings were kept open. This is a bug: please report it.",
                highlight=False,
            )
    failing = result.failing(fail_on)
    if fail_on is not None:
        acked = sum(1 for f in result.findings if f.status != "resolved" and f.acknowledged)
        console.print(
            f"{len(failing)} unacknowledged finding(s) at or above {fail_on}"
            f"{f'; {acked} acknowledged' if acked else ''}.",
            highlight=False,
        )


def _rendered_table(render: Any) -> str:
    """What a table view prints, as plain text for a file."""
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=_FILE_TABLE_WIDTH,
        soft_wrap=True,
        no_color=True,
        color_system=None,
        force_terminal=False,
    )
    render(console)
    return buffer.getvalue()


def _deliver(text: str, output: Path | None, *, bom: bool = False) -> None:
    """Print ``text`` to stdout, or write it to ``output`` (0600, atomically)."""
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    from registerwatch.files import write_private

    # A byte-order mark lets Excel open a UTF-8 CSV (accented names) without mangling it.
    write_private(output, ("\ufeff" if bom else "") + text)
    err.print(f"wrote {output}", highlight=False)


def emit(
    fmt: ScanFormat, output: Path | None, *, document: Any, csv_text: Any, render: Any
) -> None:
    """Emit one of the three formats; ``document``/``csv_text``/``render`` build them lazily."""
    import json

    if fmt is ScanFormat.JSON:
        if output is None:
            _emit_json(document())
        else:
            _deliver(json.dumps(document(), indent=2) + "\n", output)
    elif fmt is ScanFormat.CSV:
        _deliver(csv_text(), output, bom=output is not None)
    elif output is None:
        # A pipe or a nightly job's log gets the width a file gets, not rich's 80 columns.
        render(out if out.is_terminal else Console(width=_pipe_width(), soft_wrap=True))
    else:
        _deliver(_rendered_table(render), output)
