"""`registerwatch status` and `registerwatch findings history`: how fresh each school's data is,
and what happened to a finding."""

from __future__ import annotations

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
    _store_url,
    _usage_error,
    app,
    out,
)
from registerwatch.cli.scanning import findings_app


@findings_app.command("history")
def findings_history(
    fingerprint: Annotated[
        str, typer.Argument(help="the finding's fingerprint, or a unique prefix (8+ characters)")
    ],
    config: ConfigOption = None,
    store: StoreOption = None,
    fmt: FormatOption = OutputFormat.TABLE,
) -> None:
    """Each status change of a finding, with its time, its cause (scan, acknowledgement,
    return sent, resolved late) and who made it (the audit trail's web user, or cli:<login>
    for an acknowledgement typed here). Exit 2 for an unknown or ambiguous fingerprint.

    Example: registerwatch findings history 3f2a9c1d
    """
    from registerwatch.scan.findings import (
        AmbiguousFingerprintError,
        FindingNotFoundError,
        find_finding,
        finding_timeline,
    )
    from registerwatch.store import Store

    with Store(_store_url(config, store)) as opened:
        try:
            stored = find_finding(opened, fingerprint)
        except (FindingNotFoundError, AmbiguousFingerprintError) as exc:
            _usage_error(str(exc))
        fp = stored.finding.fingerprint or ""
        events = finding_timeline(opened, fp)
    if fmt is OutputFormat.JSON:
        _emit_json(
            {
                "fingerprint": fp,
                "rule": stored.finding.rule,
                "status": stored.status,
                "resolution": stored.resolution,
                "events": [
                    {
                        "at": e.at.isoformat(),
                        "event": e.event,
                        "cause": e.cause,
                        "detail": e.detail,
                        "by": e.by,
                    }
                    for e in events
                ],
            }
        )
        return
    table = Table(
        "when", "change", "cause", "by", "detail", title=f"{stored.finding.rule} {fp[:12]}"
    )
    for e in events:
        table.add_row(
            e.at.isoformat(timespec="minutes"),
            e.event,
            e.cause,
            _escape(e.by or ""),
            _escape(e.detail or ""),
        )
    out.print(table)


@app.command("status")
def status_command(
    config: ConfigOption = None,
    fmt: FormatOption = OutputFormat.TABLE,
) -> None:
    """Per school: registers complete to, last sync (when, outcome), last scan, open errors and
    warnings, returns queued / sent / failed today. Exit 1 when any school is stale (or never
    synced) or any return failed, so a monitoring check can call it.

    Example: registerwatch status --format json
    """
    from registerwatch.jobs.status import school_statuses
    from registerwatch.store import Store

    settings = _load_settings(config)
    with Store(settings.store.url, read_only=True) as opened:
        rows = school_statuses(opened, settings)
    if fmt is OutputFormat.JSON:
        _emit_json({"schools": [r.to_dict() for r in rows]})
    else:
        table = Table(
            "school",
            "registers complete to",
            "last sync",
            "last scan",
            "errors",
            "warnings",
            "returns today (queued/sent/failed)",
            "state",
            title="registerwatch status",
        )
        for r in rows:
            table.add_row(
                r.school_id,
                r.complete_to_text,
                r.last_sync_text,
                r.last_scan.isoformat(timespec="minutes") if r.last_scan else "never",
                str(r.errors),
                str(r.warnings),
                f"{r.returns['queued']}/{r.returns['sent']}/{r.returns['failed']}",
                r.problem or "ok",
            )
        out.print(table)
        for r in rows:
            if r.problem:
                out.print(f"{r.school_id}: {_escape(r.problem)}", highlight=False)
    if any(r.problem for r in rows):
        raise typer.Exit(1)
