"""Reference commands: codes, UPN checks, the school calendar and the store schema."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from registerwatch.cli._common import (
    ConfigOption,
    FormatOption,
    OutputFormat,
    StoreOption,
    _cell,
    _emit_json,
    _load_settings,
    _parse_date,
    _store_url,
    app,
    calendar_app,
    db_app,
    err,
    out,
    upn_app,
)

# -- codes ----------------------------------------------------------------------------------


@app.command("codes")
def codes_command(fmt: FormatOption = OutputFormat.TABLE) -> None:
    """List the national attendance codes (2024 table and legacy 2006 codes).

    Example: registerwatch codes --format json
    """
    from registerwatch.codes import code_table

    rows = code_table()
    if fmt is OutputFormat.JSON:
        _emit_json({"codes": rows})
        return
    table = Table(
        "code",
        "description",
        "category",
        "possible",
        "attendance",
        "authorised",
        "unauthorised",
        "valid from",
        "valid to",
        title="National attendance codes",
    )
    for row in rows:
        table.add_row(
            *(
                _cell(row[k])
                for k in (
                    "code",
                    "description",
                    "category",
                    "possible",
                    "attendance",
                    "authorised",
                    "unauthorised",
                    "valid_from",
                    "valid_to",
                )
            )
        )
    out.print(table)


# -- upn ------------------------------------------------------------------------------------


@upn_app.command("check")
def upn_check(
    upns: Annotated[list[str], typer.Argument(help="one or more UPNs")],
    fmt: FormatOption = OutputFormat.TABLE,
) -> None:
    """Check UPNs' format and DfE check letter. Exit 1 when any is invalid.

    Example: registerwatch upn check B801200005001
    """
    from registerwatch.upn import check_upn

    results = [check_upn(u) for u in upns]
    if fmt is OutputFormat.JSON:
        _emit_json(
            {
                "ok": all(r.valid for r in results),
                "upns": [
                    {"upn": r.upn, "valid": r.valid, "reason": r.reason, "temporary": r.temporary}
                    for r in results
                ],
            }
        )
    else:
        table = Table("UPN", "valid", "reason")
        for r in results:
            table.add_row(r.upn, "yes" if r.valid else "NO", r.reason or "")
        out.print(table)
    if not all(r.valid for r in results):
        raise typer.Exit(1)


# -- calendar -------------------------------------------------------------------------------


@calendar_app.command("school-days")
def calendar_school_days(
    school: Annotated[str, typer.Option("--school", help="school id from the config")],
    start: Annotated[str, typer.Option("--from", help="first date (YYYY-MM-DD)")],
    end: Annotated[str, typer.Option("--to", help="last date (YYYY-MM-DD)")],
    config: ConfigOption = None,
    fmt: FormatOption = OutputFormat.TABLE,
) -> None:
    """List the school days of a school between two dates (inclusive).

    Example: registerwatch calendar school-days --school oakfield --from 2025-09-01 --to 2025-09-30
    """
    from registerwatch.calendar import calendar_for

    first, last = _parse_date(start, "--from"), _parse_date(end, "--to")
    if last < first:
        raise typer.BadParameter(f"--to {last} is before --from {first}")
    settings = _load_settings(config)
    calendar = calendar_for(settings.school(school))
    days = calendar.school_days(first, last)
    if fmt is OutputFormat.JSON:
        # The sessions too: a day with a half-day closure is a school day with one session.
        _emit_json(
            {
                "school": school,
                "from": first.isoformat(),
                "to": last.isoformat(),
                "days": [
                    {
                        "date": day.isoformat(),
                        "weekday": day.strftime("%A"),
                        "sessions": [s.value for s in calendar.sessions_on(day)],
                    }
                    for day in days
                ],
            }
        )
        return
    table = Table("date", "day", "sessions", title=f"School days for {school}: {len(days)}")
    for day in days:
        table.add_row(
            day.isoformat(),
            day.strftime("%A"),
            " ".join(s.value for s in calendar.sessions_on(day)),
        )
    out.print(table)


# -- db -------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None, store: StoreOption = None) -> None:
    """Create the store or bring it to the latest schema (Alembic migrations).

    Example: registerwatch db upgrade --config registerwatch.toml
    """
    from registerwatch.store import upgrade

    url = _store_url(config, store)
    revision = upgrade(url)
    err.print(f"store at revision {revision}")
    from registerwatch.jobs.queue import apply_queue_schema, is_postgres

    if is_postgres(url):  # the workers' task queue lives in the PostgreSQL store
        created = apply_queue_schema(url)
        err.print("task queue tables created" if created else "task queue tables present")


@db_app.command("current")
def db_current(
    config: ConfigOption = None, store: StoreOption = None, fmt: FormatOption = OutputFormat.TABLE
) -> None:
    """Show the store's schema revision.

    Example: registerwatch db current
    """
    from registerwatch.store import current_revision, head_revision

    url = _store_url(config, store)
    current, head = current_revision(url), head_revision()
    if fmt is OutputFormat.JSON:
        _emit_json({"current": current, "head": head, "up_to_date": current == head})
    else:
        out.print(f"current {current or '(empty)'}; latest {head}")
