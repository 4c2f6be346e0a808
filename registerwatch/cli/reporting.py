"""Report command: write the HTML page and CSV files people read, and say where they are."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from registerwatch.cli._common import (
    ConfigOption,
    FormatOption,
    OutputFormat,
    StoreOption,
    _emit_json,
    _escape,
    _load_settings,
    _parse_date,
    _print_table,
    app,
    out,
)


@app.command("report")
def report_command(
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="folder to write report.html, findings.csv and summary.csv to "
            "(created, mode 0700, when missing)",
        ),
    ],
    school: Annotated[
        str | None, typer.Option("--school", help="report only this school id")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="report day (YYYY-MM-DD; default today): registers count up to the "
            "day before, deadlines on or after it are not yet overdue",
        ),
    ] = None,
    include_names: Annotated[
        bool,
        typer.Option(
            "--include-names",
            help="show pupils' names beside their MIS ids (off by default: the files "
            "then carry no names)",
        ),
    ] = False,
    names: Annotated[
        bool, typer.Option("--names", hidden=True, help="the old name of --include-names")
    ] = False,
    config: ConfigOption = None,
    store: StoreOption = None,
    fmt: FormatOption = OutputFormat.TABLE,
) -> None:
    """Write the compliance report: open findings by severity, counts per rule, weekly
    attendance this term and the ages of N codes, from the store.

    Files are written atomically and readable by their owner only (they hold pupil data).
    Exit 0 when written, whatever the findings (use `scan --fail-on` to fail on findings).

    Example: registerwatch report --school oakfield
    """
    from registerwatch.calendar import LONDON
    from registerwatch.reports import write_report
    from registerwatch.schema import Severity
    from registerwatch.store import Store

    day = _parse_date(as_of, "--as-of") if as_of else datetime.now(LONDON).date()
    settings = _load_settings(config)
    if school is not None:
        settings.school(school)  # an unknown id is a configuration error (exit 2), said early
    with Store(store or settings.store.url) as opened:
        files = write_report(
            opened,
            settings,
            output,
            as_of=day,
            generated_at=datetime.now(UTC),
            school_id=school,
            include_names=include_names or names,
        )

    if fmt is OutputFormat.JSON:
        _emit_json(files.to_dict())
        return
    table = Table(
        "school",
        "errors",
        "warnings",
        "info",
        "overdue",
        "new",
        "attendance",
        title=f"Report for {day.isoformat()}",
    )
    for s in files.data.schools:
        stats = s.term_statistics
        rate = f"{stats.attendance_rate:.1f}%" if stats and stats.possible else "-"
        table.add_row(
            _escape(s.school_id),
            str(s.count(Severity.ERROR)),
            str(s.count(Severity.WARNING)),
            str(s.count(Severity.INFO)),
            str(s.overdue),
            str(s.new),
            rate,
        )
    _print_table(table)
    for label, path in (
        ("page", files.html),
        ("findings", files.findings_csv),
        ("summary", files.summary_csv),
    ):
        out.print(f"{label:<9} {_escape(str(path))}", highlight=False)
