"""Commands: exporting (``registerwatch export KIND``), writing statutory returns to files.

Every kind in ``exports.registry.RETURN_MODULES`` is dispatched through ``registry.builder``, so a
return package works here as soon as it exists. Each school gets its own files, made by
``jobs.returns.export_school`` (the night uses it too): each return stands alone, so a return
that fails is named and the others are still written.

``--queue`` also puts each written return in the outbox, as the night does, so a return made by
hand is sent by the next ``registerwatch submit`` (once: the outbox's idempotency keys).

Exit status: 0 every school's return written (and queued); 1 any school failed (or the return's
package is missing, or the store is locked by another run); 2 an unknown kind or school, or
options that do not fit the kind.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from registerwatch.cli._common import (
    ConfigOption,
    FormatOption,
    OutputFormat,
    _emit_json,
    _escape,
    _load_settings,
    _parse_date,
    _print_table,
    _require_school,
    _writable_folder,
    app,
    err,
    out,
    state,
)
from registerwatch.exports import registry
from registerwatch.exports.base import redact_values
from registerwatch.jobs.returns import ReturnFailure, export_school

if TYPE_CHECKING:
    from registerwatch.config import Settings
    from registerwatch.exports.base import WrittenReturn
    from registerwatch.outbox.queue import QueuedItem

LONDON = ZoneInfo("Europe/London")
DEFAULT_OUTPUT_FOLDER = "exports"

# Which request field each kind takes beyond as-of (registry.ExportRequest: ``day`` is for
# dfe-daily, ``term`` for census-attendance).
DATE_KINDS = frozenset({"dfe-daily"})
TERM_KINDS = frozenset({"census-attendance"})


def _usage(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {_escape(message)}", highlight=False)
    return typer.Exit(2)


def _parse_options(pairs: list[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--option")
        options[key.strip().replace("-", "_")] = value.strip()
    return options


def _default_output(settings: Settings) -> Path:
    """``exports/`` beside the config file (relative paths follow the config, not the cwd)."""
    source = settings.source_path
    return (source.parent if source is not None else Path.cwd()) / DEFAULT_OUTPUT_FOLDER


@app.command("export")
def export_command(
    kind: Annotated[
        str,
        typer.Argument(
            help=f"the return to make: {', '.join(registry.RETURN_MODULES)}", show_default=False
        ),
    ],
    school: Annotated[
        str | None,
        typer.Option("--school", help="only this school id (default: every configured school)"),
    ] = None,
    day: Annotated[
        str | None,
        typer.Option(
            "--date",
            help="dfe-daily: the school day (YYYY-MM-DD; default the last school day "
            "before --as-of)",
        ),
    ] = None,
    term: Annotated[
        str | None,
        typer.Option(
            "--term",
            help="census-attendance: autumn-YYYY, spring-YYYY or summer-YYYY (the "
            "calendar year of its dates; default the last term ended)",
        ),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="the day the return is made (YYYY-MM-DD; default today); registers "
            "are counted up to the day before",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            help="folder for the XML and CSV files (default: exports/ beside the config file)",
        ),
    ] = None,
    allow_incomplete: Annotated[
        bool,
        typer.Option(
            "--allow-incomplete",
            help="write the return even when pupils on roll have unmarked "
            "sessions (or the census term is not over)",
        ),
    ] = False,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            help="a return setting KEY=VALUE, repeatable (census_age_window=4-15, "
            "ctf_pupils=leavers, ctf_unencodable=refuse, ctf_destination=8934001)",
        ),
    ] = None,
    queue: Annotated[
        bool,
        typer.Option(
            "--queue",
            help="also queue each written return in the outbox, for `registerwatch submit` "
            "(the LA returns and dfe-daily)",
        ),
    ] = False,
    config: ConfigOption = None,
    fmt: FormatOption = OutputFormat.TABLE,
) -> None:
    """Make a statutory return for each school: validate it against its XSD, then write the
    XML and a CSV for people (mode 0600); with --queue, also queue it to be submitted.

    Exit 1 when any school or return failed (the others are still written); 2 on bad usage.

    Example: registerwatch export la-sickness --school oakfield --queue
    """
    from registerwatch.jobs.locked_store import locked_store
    from registerwatch.logging import configure_logging

    if kind not in registry.RETURN_MODULES:
        raise _usage(
            f"no return called {kind!r}; choose one of {', '.join(registry.RETURN_MODULES)}"
        )
    if queue:
        from registerwatch.outbox.transports import SUBMITTED_RETURNS

        if kind not in SUBMITTED_RETURNS:
            raise _usage(
                f"--queue applies to the returns the outbox submits "
                f"({', '.join(SUBMITTED_RETURNS)}), not {kind}"
            )
    if day is not None and kind not in DATE_KINDS:
        raise _usage(f"--date applies to {', '.join(sorted(DATE_KINDS))} only, not {kind}")
    if term is not None and kind not in TERM_KINDS:
        raise _usage(f"--term applies to {', '.join(sorted(TERM_KINDS))} only, not {kind}")
    the_day = _parse_date(day, "--date") if day else None
    if term is not None:
        from registerwatch.exports.census_attendance import CensusTermError, parse_term

        try:
            parse_term(term)
        except CensusTermError as exc:
            raise typer.BadParameter(str(exc), param_hint="--term") from None
    options = _parse_options(option or [])
    generated_at = datetime.now(UTC).replace(microsecond=0)
    the_as_of = _parse_date(as_of, "--as-of") if as_of else generated_at.astimezone(LONDON).date()

    settings = _load_settings(config)
    if not state.debug:
        configure_logging(level=settings.logging.level, json=settings.logging.json_output)
    _require_school(school, [s.id for s in settings.schools])
    schools = [s for s in settings.schools if school is None or s.id == school]
    try:
        registry.builder(kind)  # a missing return package is an error before any school
    except ImportError as exc:
        if state.debug:
            raise
        missing = isinstance(exc, ModuleNotFoundError) and exc.name == registry.RETURN_MODULES[kind]
        why = (
            "is not installed in this version of registerwatch"
            if missing
            else f"could not be loaded ({type(exc).__name__}; rerun with --debug for the traceback)"
        )
        err.print(f"[bold red]error:[/] the {_escape(kind)} return {why}", highlight=False)
        raise typer.Exit(1) from None
    folder = _writable_folder(output if output is not None else _default_output(settings))

    written: list[WrittenReturn] = []
    queued: list[tuple[WrittenReturn, QueuedItem]] = []
    failed: list[tuple[str, str]] = []
    # Queuing changes the store, so it takes the work lock `submit` and the night take; a plain
    # export only reads. A missing store is reported, never created.
    with locked_store(settings.store.url, "export", create=False, lock=queue) as store:
        assert store is not None  # only a stop request while waiting yields None
        for school_settings in schools:
            request = registry.ExportRequest(
                school=school_settings,
                store=store,
                as_of=the_as_of,
                generated_at=generated_at,
                day=the_day,
                term=term,
                allow_incomplete=allow_incomplete,
                options=options,
            )
            made = export_school(kind, request, folder, queue=queue)
            written += made.written
            queued += [(e.written, q) for e in made.exported for q in e.queued]
            for failure in made.failures:
                if failure.is_bug and state.debug:
                    raise failure.error
                failed.append((school_settings.id, _failure_text(failure)))

    if fmt is OutputFormat.JSON:
        rows = [w.to_dict() for w in written]
        if queue:  # each written file with its outbox items (one per pupil episode)
            for row, w in zip(rows, written, strict=True):
                row["queued"] = [q.to_dict() for ww, q in queued if ww is w]
        _emit_json(
            {
                "kind": kind,
                "as_of": the_as_of.isoformat(),
                "returns": rows,
                "failed": [{"school": s, "error": m} for s, m in failed],
            }
        )
    else:
        _print_written(kind, written)
    if queue and fmt is not OutputFormat.JSON:
        new = sum(q.created for _, q in queued)
        out.print(
            f"{new} outbox item(s) queued, {len(queued) - new} already queued; "
            "send them with `registerwatch submit`",
            highlight=False,
        )
    for school_id, message in failed:
        err.print(f"[bold red]{_escape(school_id)} failed:[/] {_escape(message)}", highlight=False)
    if failed:
        raise typer.Exit(1)


def _failure_text(failure: ReturnFailure) -> str:
    """One school's failure for the terminal: which return, and why without quoted values."""
    if failure.is_bug:
        text = (
            f"internal error: {type(failure.error).__name__} (rerun with --debug for the traceback)"
        )
    else:
        from registerwatch.cli.summary import error_text

        text = error_text(redact_values(str(failure.error)))
    return text if failure.artefact is None else f"{failure.artefact}: {text}"


def _print_written(kind: str, written: list[WrittenReturn]) -> None:
    table = Table("school", "records", "xml", "csv", "sha256", title=f"{kind} returns written")
    for column in table.columns:
        column.overflow = "fold"
    for item in written:
        table.add_row(
            item.school_id,
            str(item.records),
            str(item.xml_path),
            str(item.csv_path),
            item.sha256[:16],
        )
    if written:
        _print_table(table)
    else:
        out.print(f"no {kind} return written", highlight=False)
