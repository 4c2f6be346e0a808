"""Scan commands: the nightly scan and the findings it keeps (how they print is
``cli.scan_output``; returns recorded by hand, ``cli.notifying``; the rule catalogue,
``cli.rules``).

    registerwatch scan [--school ID] [--as-of DATE] [--format table|json|csv] [--output PATH]
                       [--fail-on error|warning|info|never] [--include-names]
    registerwatch findings list [--status open|resolved|all] [--school ID] [--format ...]
    registerwatch findings ack FINGERPRINT --note TEXT

Exit status: 0 clean; 1 a finding at or above ``--fail-on`` that is neither resolved nor
acknowledged, a school that could not be scanned, or a rule that failed;
2 usage or configuration error (an unknown school, fingerprint or pupil).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from registerwatch.cli._common import (
    ConfigOption,
    FormatOption,
    OutputFormat,
    StoreOption,
    _emit_json,
    _escape,
    _load_settings,
    _parse_date,
    _require_known_school,
    _store_url,
    _usage_error,
    app,
    err,
    out,
    state,
)
from registerwatch.cli.scan_output import ScanFormat, emit, print_scan

if TYPE_CHECKING:  # the commands import the library lazily, to keep --help fast
    from registerwatch.schema import Severity


class FailOn(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    NEVER = "never"


class StatusChoice(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    ALL = "all"


ScanFormatOption = Annotated[
    ScanFormat,
    typer.Option("--format", help="table for people, json for machines, csv for spreadsheets"),
]
IncludeNamesOption = Annotated[
    bool,
    typer.Option(
        "--include-names",
        help="add each pupil's name (pupil_name); without it, pupils are named "
        "by MIS id and UPN only",
    ),
]
OutputOption = Annotated[
    Path | None,
    typer.Option("--output", help="write the output to this file instead (atomically, mode 0600)"),
]

findings_app = typer.Typer(
    help="List and acknowledge the findings the scan keeps.", no_args_is_help=True
)
app.add_typer(findings_app, name="findings")


def _severity(fail_on: FailOn) -> Severity | None:
    from registerwatch.schema import Severity

    return None if fail_on is FailOn.NEVER else Severity(fail_on.value)


# -- rendering ------------------------------------------------------------------------------

WideOption = Annotated[
    bool,
    typer.Option(
        "--wide", help="every column (sessions, the acknowledgement note), whole messages"
    ),
]


# -- scan -----------------------------------------------------------------------------------


@app.command("scan")
def scan_command(
    school: Annotated[str | None, typer.Option("--school", help="scan only this school id")] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="judge every deadline as on this date (YYYY-MM-DD; default today, Europe/London)",
        ),
    ] = None,
    fmt: ScanFormatOption = ScanFormat.TABLE,
    output: OutputOption = None,
    fail_on: Annotated[
        FailOn,
        typer.Option(
            "--fail-on",
            help="exit 1 when an unresolved, unacknowledged finding is at or above this severity",
        ),
    ] = FailOn.ERROR,
    include_names: IncludeNamesOption = False,
    wide: WideOption = False,
    show_all: Annotated[
        bool, typer.Option("--all", help="the table also lists the findings this scan resolved")
    ] = False,
    config: ConfigOption = None,
    record: Annotated[
        bool,
        typer.Option(
            "--record",
            help="record the findings even when --as-of is before the latest recorded scan",
        ),
    ] = False,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="read every mark from the marks table, not the summary kept by the last scan",
        ),
    ] = False,
) -> None:
    """Run every compliance rule over the store and record the findings (new, open, resolved).

    A scan with --as-of before the latest recorded scan is read-only (it prints what it finds
    and changes no stored status) unless --record is given. A school's marks are read from the
    summary its last scan kept plus what changed since, unless --full (or the first scan, a
    backdated one, or a change of rules or configuration: docs/scan.md).

    The table lists new and open findings, new first, then by severity and due date (--all
    adds the resolved ones; --wide shows every column). Exit 1 when an
    unresolved, unacknowledged finding is at or above --fail-on (default error), or when a
    school or a rule could not be checked; 2 for a usage or configuration error.

    Example: registerwatch scan --fail-on warning
    """
    from registerwatch.logging import configure_logging
    from registerwatch.scan import run_scan
    from registerwatch.scan.output import findings_csv, scan_document
    from registerwatch.store import Store

    day = _parse_date(as_of, "--as-of") if as_of else None
    settings = _load_settings(config)
    if not state.debug:
        configure_logging(level=settings.logging.level, json=settings.logging.json_output)
    if school is not None:
        settings.school(school)  # ConfigError (exit 2) before the store is touched
    threshold = _severity(fail_on)
    with Store(settings.store.url) as store:
        result = run_scan(store, settings, as_of=day, school_id=school, record=record, full=full)
    emit(
        fmt,
        output,
        document=lambda: scan_document(result, include_names=include_names),
        csv_text=lambda: findings_csv(
            result.findings,
            as_of=result.as_of,
            school_names={s.id: s.name for s in settings.schools},
            include_names=include_names,
        ),
        render=lambda console: print_scan(
            console,
            result,
            include_names=include_names,
            fail_on=threshold,
            # a file is read in an editor, not a terminal: every column, whole messages
            wide=wide or output is not None,
            show_resolved=show_all,
        ),
    )
    if output is not None and fmt is not ScanFormat.TABLE:
        counts = result.counts()
        err.print(
            f"{counts['new']} new, {counts['open']} open, {counts['resolved']} resolved; "
            f"{len(result.failing(threshold))} need action",
            highlight=False,
        )
    if not result.ok or result.failing(threshold):
        raise typer.Exit(1)


# -- findings -------------------------------------------------------------------------------


@findings_app.command("list")
def findings_list(
    status: Annotated[
        StatusChoice, typer.Option("--status", help="which findings")
    ] = StatusChoice.OPEN,
    school: Annotated[str | None, typer.Option("--school", help="only this school id")] = None,
    fmt: ScanFormatOption = ScanFormat.TABLE,
    output: OutputOption = None,
    include_names: IncludeNamesOption = False,
    wide: WideOption = False,
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """List the stored findings (default: open ones), as the last scan left them.

    The id column is a short fingerprint: `registerwatch findings ack ID --note ...` takes it.

    Example: registerwatch findings list --school oakfield --status open
    """
    from registerwatch.cli.findings_table import findings_table
    from registerwatch.scan import today_in_london
    from registerwatch.scan.findings import list_findings
    from registerwatch.scan.output import findings_csv, findings_document
    from registerwatch.store import Store

    with Store(_store_url(config, store), read_only=True) as opened:
        _require_known_school(school, opened, config, store)
        findings = list_findings(opened, school_id=school, status=status.value)
        school_names = {s.id: s.name for s in opened.schools()}

    def render(console: Console) -> None:
        which = "" if status is StatusChoice.ALL else f"{status.value} "
        if findings:
            console.print(
                findings_table(
                    findings,
                    title=f"{len(findings)} {which}finding(s)",
                    include_names=include_names,
                    wide=wide or output is not None,
                    width=console.width,
                )
            )
        else:
            console.print(f"No {which}findings.", highlight=False)

    emit(
        fmt,
        output,
        document=lambda: findings_document(
            findings, status=status.value, include_names=include_names
        ),
        csv_text=lambda: findings_csv(
            findings,
            as_of=today_in_london(),
            school_names=school_names,
            include_names=include_names,
        ),
        render=render,
    )


def _cli_login() -> str:
    """``cli:<login>``: who typed the command, as the audit trail names it (the OS account;
    ``cli`` alone when the environment does not say)."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@findings_app.command("ack")
def findings_ack(
    fingerprint: Annotated[
        str,
        typer.Argument(
            help="the finding's fingerprint, or a unique prefix of at least 8 characters"
        ),
    ],
    note: Annotated[str, typer.Option("--note", help="what was done or decided, and by whom")],
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            help="who acknowledges, for the finding's history (default: cli:<your login>)",
        ),
    ] = None,
    config: ConfigOption = None,
    store: StoreOption = None,
    fmt: FormatOption = OutputFormat.TABLE,
) -> None:
    """Acknowledge a finding with a note. It stays listed, but no longer fails the scan until
    it is resolved or its severity rises. Exit 2 for an unknown or ambiguous fingerprint.

    Example: registerwatch findings ack 3f9a2c1b --note "agreed with the LA"
    """
    from registerwatch.scan.findings import (
        AmbiguousFingerprintError,
        FindingNotFoundError,
        acknowledge,
    )
    from registerwatch.scan.output import finding_record
    from registerwatch.store import Store

    opened = Store(_store_url(config, store))
    try:
        item = acknowledge(opened, fingerprint, note, by=by or _cli_login())
    except (FindingNotFoundError, AmbiguousFingerprintError) as exc:
        _usage_error(str(exc))
    finally:
        opened.close()
    if fmt is OutputFormat.JSON:
        _emit_json(finding_record(item))
        return
    f = item.finding
    who = f"pupil {item.pupil.mis_id}" if item.pupil else "the school"
    out.print(
        f"acknowledged {f.rule} ({f.severity}) for {_escape(who)} at "
        f"{_escape(f.school_id)}: {_escape(item.ack_note or '')}",
        highlight=False,
    )
