"""Scan commands: the nightly scan, the findings it keeps, and returns recorded by hand (the rule
catalogue is ``cli.rules``).

    registerwatch scan [--school ID] [--as-of DATE] [--format table|json|csv] [--output PATH]
                       [--fail-on error|warning|info|never] [--include-names]
    registerwatch findings list [--status open|resolved|all] [--school ID] [--format ...]
    registerwatch findings ack FINGERPRINT --note TEXT
    registerwatch notify record --school ID --kind KIND --pupil MIS_ID [--episode-start DATE]
                                [--made-at DATETIME] [--channel TEXT] [--reference TEXT]

Exit status: 0 clean; 1 a finding at or above ``--fail-on`` that is neither resolved nor
acknowledged, a school that could not be scanned, or a rule that failed;
2 usage or configuration error (an unknown school, fingerprint or pupil).
"""

from __future__ import annotations

import io
import sys
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from registerwatch.cli._common import (
    _FILE_TABLE_WIDTH,
    ConfigOption,
    FormatOption,
    OutputFormat,
    StoreOption,
    _emit_json,
    _escape,
    _load_settings,
    _parse_date,
    _pipe_width,
    _require_known_school,
    _store_url,
    _usage_error,
    app,
    err,
    out,
    state,
)

if TYPE_CHECKING:  # the commands import the library lazily, to keep --help fast
    from registerwatch.scan import ScanResult
    from registerwatch.schema import Severity


class ScanFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


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
notify_app = typer.Typer(
    help="Record returns made to the LA outside registerwatch.", no_args_is_help=True
)
app.add_typer(findings_app, name="findings")
app.add_typer(notify_app, name="notify")


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


def _print_scan(
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


def _emit(
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
    _emit(
        fmt,
        output,
        document=lambda: scan_document(result, include_names=include_names),
        csv_text=lambda: findings_csv(
            result.findings,
            as_of=result.as_of,
            school_names={s.id: s.name for s in settings.schools},
            include_names=include_names,
        ),
        render=lambda console: _print_scan(
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

    _emit(
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


@findings_app.command("ack")
def findings_ack(
    fingerprint: Annotated[
        str,
        typer.Argument(
            help="the finding's fingerprint, or a unique prefix of at least 8 characters"
        ),
    ],
    note: Annotated[str, typer.Option("--note", help="what was done or decided, and by whom")],
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
        item = acknowledge(opened, fingerprint, note)
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


# -- notify ---------------------------------------------------------------------------------


def _parse_instant(value: str, option: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date-time (YYYY-MM-DDTHH:MM, optionally with an offset; "
            "without one it is Europe/London time)",
            param_hint=option,
        ) from None


@notify_app.command("record")
def notify_record(
    school: Annotated[str, typer.Option("--school", help="school id")],
    kind: Annotated[
        str,
        typer.Option(
            "--kind",
            help="the return that was made: la-sickness, la-continuous-absence, la-cme, "
            "la-new-pupil or la-deletion (as `export` names them); or absence-cause with "
            "--cause, the school's cause of an absence episode",
        ),
    ],
    pupil: Annotated[str, typer.Option("--pupil", help="the pupil's MIS id")],
    episode_start: Annotated[
        str | None,
        typer.Option(
            "--episode-start",
            help="first day of the episode the return is about (YYYY-MM-DD; "
            "required for la-continuous-absence and la-cme: the finding's first "
            "session date)",
        ),
    ] = None,
    made_at: Annotated[
        str | None,
        typer.Option(
            "--made-at",
            help="when the return was made (ISO date-time; default now; without an "
            "offset, Europe/London)",
        ),
    ] = None,
    channel: Annotated[
        str, typer.Option("--channel", help="how it was made (LA portal, email, phone...)")
    ] = "recorded by hand",
    reference: Annotated[
        str | None, typer.Option("--reference", help="the LA's reference for it, if any")
    ] = None,
    cause: Annotated[
        str | None,
        typer.Option(
            "--cause",
            help="with --kind absence-cause: the cause of the absence episode as the school "
            "knows it, for the continuous absence return",
        ),
    ] = None,
    config: ConfigOption = None,
    store: StoreOption = None,
    fmt: FormatOption = OutputFormat.TABLE,
) -> None:
    """Record a return already made to the LA outside registerwatch, so the matching LAR
    finding closes on the next scan. Exit 2 for an unknown school or pupil.

    Example: registerwatch notify record --school oakfield --kind la-sickness --pupil 1234
    """
    from registerwatch.cli.vocabulary import notification_kind, return_kind
    from registerwatch.scan.findings import NotificationInputError, record_notification
    from registerwatch.schema import NotificationKind
    from registerwatch.store import Store

    episode = _parse_date(episode_start, "--episode-start") if episode_start else None
    made = _parse_instant(made_at, "--made-at") if made_at else None
    notified = notification_kind(kind)
    if (notified is NotificationKind.ABSENCE_CAUSE) != (cause is not None and bool(cause.strip())):
        _usage_error("--cause is given exactly with --kind absence_cause")
    if cause is not None:
        reference, channel = cause.strip(), "entered by the school"
    opened = Store(_store_url(config, store))
    try:
        _require_known_school(school, opened, config, store)
        recorded = record_notification(
            opened,
            school_id=school,
            kind=notified,
            pupil_mis_id=pupil,
            episode_start=episode,
            made_at=made,
            channel=channel,
            reference=reference,
        )
    except NotificationInputError as exc:
        _usage_error(str(exc))
    finally:
        opened.close()
    n = recorded.notification
    if fmt is OutputFormat.JSON:
        _emit_json(
            {
                "recorded": recorded.created,
                "school": n.school_id,
                "kind": return_kind(n.kind),
                "pupil": recorded.pupil.mis_id,
                "episode_start": n.episode_start.isoformat() if n.episode_start else None,
                "made_at": n.made_at.isoformat(),
                "channel": n.channel,
                "reference": n.reference,
            }
        )
        return
    what = f"{return_kind(n.kind)} return for pupil {recorded.pupil.mis_id} at {n.school_id}"
    if n.episode_start:
        what += f" (episode from {n.episode_start.isoformat()})"
    if recorded.created:
        out.print(
            f"recorded {_escape(what)}; the matching finding closes on the next scan",
            highlight=False,
        )
    else:
        out.print(f"already recorded: {_escape(what)}", highlight=False)
