"""Submission commands: `submit` sends the queued returns; `outbox list` / `outbox retry`."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.table import Table

from registerwatch.cli._common import (
    ConfigOption,
    FormatOption,
    OutputFormat,
    StoreOption,
    WaitOption,
    _emit_json,
    _escape,
    _load_settings,
    _people_console,
    _print_table,
    _require_known_school,
    _require_school,
    _store_url,
    _usage_error,
    app,
    out,
    state,
)

outbox_app = typer.Typer(
    help="Look at the outbox of statutory returns, and re-offer failed ones.", no_args_is_help=True
)
app.add_typer(outbox_app, name="outbox")


class OutboxState(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"
    FAILED = "failed"


# -- submit ---------------------------------------------------------------------------------


@app.command("submit")
def submit_command(
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="list what would be sent, and where; send and change nothing"
        ),
    ] = False,
    school: Annotated[
        str | None, typer.Option("--school", help="only this school's returns")
    ] = None,
    config: ConfigOption = None,
    fmt: FormatOption = OutputFormat.TABLE,
    wait: WaitOption = False,
) -> None:
    """Send every queued return once, through its transport, and record each receipt.

    Exit 1 when any item was rejected (now failed) or could not be sent this run (still
    queued: the next run retries it), or when another run holds the store's lock.

    Example: registerwatch submit --dry-run
    """
    from registerwatch.jobs.locked_store import locked_store
    from registerwatch.logging import configure_logging
    from registerwatch.outbox import submit

    settings = _load_settings(config)
    _require_school(school, [s.id for s in settings.schools])
    if not state.debug:
        configure_logging(level=settings.logging.level, json=settings.logging.json_output)
    # The work lock `sync`, `nightly` and `run` take: two submits of one store never overlap,
    # so no item is sent by two runs at once. A dry run sends and changes nothing: no lock.
    # A missing store is reported, never created (create=False): a dry run changes nothing,
    # and a real run has nothing to send without one.
    with locked_store(
        settings.store.url, "submit", wait=wait, create=False, lock=not dry_run
    ) as opened:
        assert opened is not None  # only a stop request while waiting yields None
        report = submit(settings, opened, dry_run=dry_run, school_id=school)
    if fmt is OutputFormat.JSON:
        _emit_json(report.to_dict())
    else:
        _print_report(report)
    if not report.ok:
        raise typer.Exit(1)


_OUTCOME_STYLE = {
    "acknowledged": "green",
    "sent": "green",
    "failed": "bold red",
    "deferred": "yellow",
    "skipped": "dim",
    "would-send": "cyan",
}


def _print_report(report: Any) -> None:
    if not report.items:
        out.print(
            "the outbox has nothing queued" + (" (dry run)" if report.dry_run else ""),
            highlight=False,
        )
        return
    title = "Dry run: nothing was sent" if report.dry_run else "Submitted"
    table = Table(
        "id",
        "return",
        "school",
        "pupil",
        "episode",
        "outcome",
        "where" if report.dry_run else "receipt",
        title=title,
    )
    for column in table.columns:
        column.overflow = "fold"  # a receipt or key cut short cannot be looked up
    for o in report.items:
        style = _OUTCOME_STYLE.get(o.outcome, "")
        where = o.transport if report.dry_run else o.receipt
        table.add_row(
            str(o.item_id),
            o.return_kind,
            o.school_id,
            o.pupil_id or "",
            o.episode or "",
            f"[{style}]{o.outcome}[/]",
            _escape(where or ""),
        )
    _print_table(table)
    from registerwatch.cli.summary import collapse_repeats

    # The same refusal for every item a transport was offered is said once, with a count.
    for outcome, colour in (("failed", "bold red"), ("deferred", "yellow")):
        errors = [
            f"item {o.item_id} {outcome}: {o.error}"
            for o in report.items
            if o.error and o.outcome == outcome
        ]
        for line in collapse_repeats(errors):
            head, _, rest = line.partition(": ")
            out.print(f"[{colour}]{_escape(head)}:[/] {_escape(rest)}", highlight=False)
    counts = ", ".join(f"{n} {name}" for name, n in report.counts().items() if n)
    out.print(counts, highlight=False)


# -- outbox ---------------------------------------------------------------------------------


def _item_dict(item: Any) -> dict[str, Any]:
    """An outbox item without its payload (the artefact holds pupil data; it stays stored)."""
    return {
        "id": item.id,
        "return_kind": item.return_kind,
        "school_id": item.school_id,
        "pupil_id": item.pupil_id,
        "episode": item.episode,
        "idempotency_key": item.idempotency_key,
        "sha256": item.sha256,
        "state": item.state,
        "attempts": item.attempts,
        "last_error": item.last_error,
        # The receiver's last answer as data; its body is never kept, only its SHA-256.
        "remote": None
        if item.remote_status is None and item.remote_class is None
        else {
            "status": item.remote_status,
            "classification": item.remote_class,
            "body_sha256": item.remote_sha256,
        },
        "receipt": item.receipt,
        "artefact_path": item.artefact_path,
        "created_at": item.created_at.isoformat(),
        "updated_at": item.updated_at.isoformat(),
    }


_STATE_STYLE = {"acknowledged": "green", "sent": "green", "failed": "bold red", "queued": "cyan"}


def _short_keys(items: list[Any]) -> dict[str, str]:
    """Each idempotency key's digest cut to the shortest prefix (at least 8) no other shares."""
    from registerwatch.cli.findings_table import short_fingerprints

    return short_fingerprints([_digest(i.idempotency_key) for i in items])


def _digest(key: str) -> str:
    """The hex digest at the end of an idempotency key (``<kind>.<school>.<digest>``)."""
    return key.rsplit(".", 1)[-1]


@outbox_app.command("list")
def outbox_list(
    item_state: Annotated[
        OutboxState | None, typer.Option("--state", help="only items in this state")
    ] = None,
    school: Annotated[str | None, typer.Option("--school", help="only this school's items")] = None,
    wide: Annotated[
        bool,
        typer.Option(
            "--wide", help="every column (episode, key, updated), whole receipts and errors"
        ),
    ] = False,
    config: ConfigOption = None,
    store: StoreOption = None,
    fmt: FormatOption = OutputFormat.TABLE,
) -> None:
    """List the outbox: each return's state, attempts, receipt or last error.

    One line per item; --wide shows every column. `outbox retry` takes the id, or the key
    (as the receiver saw it) or a unique prefix of its digest.

    Example: registerwatch outbox list --state failed
    """
    from registerwatch.store import Store

    with Store(_store_url(config, store)) as opened:
        _require_known_school(school, opened, config, store)
        items = opened.outbox_items(
            state=item_state.value if item_state else None, school_id=school
        )
    if fmt is OutputFormat.JSON:
        _emit_json({"items": [_item_dict(i) for i in items]})
        return
    if not items:
        out.print(
            "the outbox is empty" + (f" (state {item_state.value})" if item_state else ""),
            highlight=False,
        )
        return
    title = f"Outbox: {len(items)} items"
    if wide:
        _print_table(_wide_outbox(items, title))
        return
    from registerwatch.cli.compact import Cell, compact_table

    schools = len({i.school_id for i in items}) > 1
    if not schools:
        title += f" (school {items[0].school_id})"
    rows = [
        [
            Cell(str(i.id)),
            Cell(i.state, _STATE_STYLE.get(i.state, "")),
            Cell(i.return_kind),
            *([Cell(i.school_id)] if schools else []),
            Cell(i.pupil_id or "-"),
            Cell(_note(i)),
        ]
        for i in items
    ]
    headers = ["id", "state", "return", *(["school"] if schools else []), "pupil", "note"]
    console = _people_console()
    console.print(compact_table(title, headers, rows, width=console.width))


def _note(item: Any) -> str:
    """The receipt of a sent item, else the last error, with the attempts when more than one."""
    note = item.receipt if item.state in ("sent", "acknowledged") else item.last_error
    tries = f"{item.attempts} attempts" if item.attempts > 1 else ""
    return ": ".join(part for part in (tries, note or "") if part)


def _wide_outbox(items: list[Any], title: str) -> Table:
    keys = _short_keys(items)
    table = Table(
        "id",
        "return",
        "school",
        "pupil",
        "episode",
        "state",
        "attempts",
        "receipt / last error",
        "updated",
        "key",
        title=title,
    )
    for column in table.columns:
        column.overflow = "fold"
    for i in items:
        note = i.receipt if i.state in ("sent", "acknowledged") else (i.last_error or "")
        table.add_row(
            str(i.id),
            i.return_kind,
            i.school_id,
            i.pupil_id or "",
            i.episode or "",
            i.state,
            str(i.attempts),
            _escape(note or ""),
            i.updated_at.isoformat(timespec="seconds"),
            keys[_digest(i.idempotency_key)],
        )
    return table


def _resolve_item(store: Any, ref: str) -> int:
    """An item's id from what `outbox retry` was given: the id, the whole idempotency key, or a
    unique prefix (at least 8 characters) of the key's digest, as `outbox list --wide` shows
    it. A usage error (exit 2) when nothing or more than one item matches."""
    from registerwatch.scan.findings import MIN_PREFIX

    if ref.isdigit():
        return int(ref)
    items = store.outbox_items()
    matches = [i for i in items if i.idempotency_key == ref]
    if not matches:
        if len(ref) < MIN_PREFIX:
            _usage_error(
                f"{ref!r} is too short: give the item's id or at least {MIN_PREFIX} characters "
                "of its key (see `registerwatch outbox list --wide`)"
            )
        matches = [i for i in items if _digest(i.idempotency_key).startswith(ref.lower())]
    if not matches:
        _usage_error(f"no outbox item {ref!r} (see `registerwatch outbox list`)")
    if len(matches) > 1:
        ids = ", ".join(str(i.id) for i in matches)
        _usage_error(f"{ref!r} matches outbox items {ids}: give more of the key, or the id")
    item_id: int = matches[0].id
    return item_id


@outbox_app.command("retry")
def outbox_retry(
    item: Annotated[
        str,
        typer.Argument(
            help="the failed item's id, or its key or a unique prefix of the key's digest "
            "(see `outbox list --wide`)"
        ),
    ],
    config: ConfigOption = None,
    store: StoreOption = None,
    fmt: FormatOption = OutputFormat.TABLE,
) -> None:
    """Put a failed item back in the queue once its cause is fixed; `submit` then resends it
    (same bytes, same idempotency key).

    Example: registerwatch outbox retry 42
    """
    from registerwatch.outbox import retry_failed
    from registerwatch.store import Store

    with Store(_store_url(config, store)) as opened:
        retried = retry_failed(opened, _resolve_item(opened, item))
    if fmt is OutputFormat.JSON:
        _emit_json(_item_dict(retried))
    else:
        out.print(
            f"item {retried.id} ({retried.return_kind}, school {_escape(retried.school_id)}) is "
            "queued again; run `registerwatch submit` to send it",
            highlight=False,
        )
