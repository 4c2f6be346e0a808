"""The ledger's commands: `ledger verify` (the chain, against the tips kept outside it)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from registerwatch.cli._common import (
    ConfigOption,
    FormatOption,
    OutputFormat,
    StoreOption,
    _emit_json,
    _escape,
    _load_settings,
    _usage_error,
    ledger_app,
    out,
)

if TYPE_CHECKING:
    from registerwatch.config import Settings
    from registerwatch.store import LedgerCheck

NO_KEY_NOTE = (
    "no ledger key configured: the chain is plain SHA-256, so whoever can write the store can "
    "rewrite an entry and recompute every later hash; set [ledger] key_id and key_file "
    "(docs/security.md) and keep the tip outside the store ([ledger.sink], --expect-tip)"
)


@ledger_app.command("verify")
def ledger_verify(
    config: ConfigOption = None,
    store: StoreOption = None,
    fmt: FormatOption = OutputFormat.TABLE,
    expect_tip: Annotated[
        str | None,
        typer.Option(
            "--expect-tip",
            metavar="SEQ:HASH",
            help="a tip kept outside the store (from an earlier verify): it must be in the chain",
        ),
    ] = None,
    against_sink: Annotated[
        bool,
        typer.Option(
            "--against-sink",
            help="also hold every tip in the config's [ledger.sink] against the chain",
        ),
    ] = False,
) -> None:
    """Check the amendment ledger's hash chain (HMAC-keyed when [ledger] names a key). Exit 1
    naming the first broken entry, or the first tip kept outside the store that the chain
    does not hold (cut short, rewritten, diverged).

    Example: registerwatch ledger verify --against-sink
    """
    from registerwatch.store import Store

    settings = _settings(config, store, needed=against_sink)
    url = store or (settings.store.url if settings is not None else "")
    keys = settings.ledger.keys() if settings is not None else None
    sink_tips = None
    if against_sink:
        assert settings is not None
        sink = settings.ledger.tip_sink(url)
        if sink is None:
            _usage_error("--against-sink needs a [ledger.sink] in the config (file or url)")
        assert sink is not None
        sink_tips = sink.read()
    with Store(url, read_only=True) as opened:
        opened.use_ledger(keys)
        check = opened.check_ledger(expect_tip=expect_tip, sink_tips=sink_tips)
    if fmt is OutputFormat.JSON:
        document: dict[str, Any] = check.to_dict()
        if sink_tips is not None:
            document["sink_tips"] = len(sink_tips)
        _emit_json(document)
    else:
        _print_check(check, sink_tips)
        if not check.ok and settings is None:
            # --store alone loads no keys: a keyed chain then fails at its first keyed entry
            out.print(
                "[yellow]hint:[/] only --store was given, so no \\[ledger] keys were loaded; if "
                "the chain is HMAC-keyed, run again with --config naming them",
                highlight=False,
            )
    if not check.ok:
        raise typer.Exit(1)


def _settings(config: Path | None, store: str | None, *, needed: bool) -> Settings | None:
    """The config's settings (keys, sink); with only --store and no --config, none."""
    if store and config is None and not needed:
        return None
    return _load_settings(config)


def _print_check(check: LedgerCheck, sink_tips: list[Any] | None) -> None:
    if check.ok:
        tip = (
            "empty"
            if check.last_seq is None
            else f"tip: entry {check.last_seq}, hash {check.last_hash}"
        )
        out.print(
            f"ledger ok: {check.entries} entries; {tip} (keep the tip somewhere the "
            "store's owner cannot rewrite: the chain cannot show entries cut off the end)",
            highlight=False,
        )
    else:
        school = check.broken_school_id or "unknown"
        out.print(
            f"[bold red]ledger broken[/] at entry {check.broken_seq} (school "
            f"{_escape(school)}): {_escape(check.reason or '')}; {check.entries} entries "
            "before it verified",
            highlight=False,
        )
    for accepted in check.accepted:
        stretch = (
            f"entry {accepted.first}"
            if accepted.first == accepted.last
            else f"entries {accepted.first}..{accepted.last}"
        )
        out.print(
            f"[yellow]accepted break:[/] {stretch} missing or not verifiable, gone past by "
            f"run {accepted.run_id} (--accept-broken-ledger: {_escape(accepted.reason)}); "
            "those numbers are never reused",
            highlight=False,
        )
    if check.keyed:
        signed = ", ".join(repr(k) for k in check.key_ids) or "none yet"
        plain = f"; {check.unkeyed} entries from before keying are plain SHA-256" * bool(
            check.unkeyed
        )
        out.print(f"HMAC-keyed chain: entries signed with keys {signed}{plain}", highlight=False)
    else:
        out.print(f"[yellow]note:[/] {NO_KEY_NOTE}", highlight=False)
    if sink_tips is not None and check.ok:
        out.print(
            f"tip sink: {len(sink_tips)} tips, each held by the chain"
            if sink_tips
            else "tip sink: no tips in it yet",
            highlight=False,
        )
