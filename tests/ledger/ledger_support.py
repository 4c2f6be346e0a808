"""Helpers for the ledger tests: entries, raw tampering, a config with [ledger], the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from registerwatch.schema import Session
from registerwatch.store import LedgerEntry, Store
from registerwatch.store.ledger import link

SEEN = datetime(2025, 1, 7, 19, 0, tzinfo=UTC)
KEY_1 = "k1-" + "a1b2c3d4" * 8  # 67 characters, as `openssl rand -hex 32` gives 64
KEY_2 = "k2-" + "9f8e7d6c" * 8


def entries(n: int, code: str = "I", start: int = 0) -> list[LedgerEntry]:
    return [
        LedgerEntry(
            school_id="wenlock",
            pupil_id=f"wenlock:{i}",
            date=date(2025, 1, 6),
            session=Session.AM,
            kind="observed_change",
            original_code="N",
            new_code=code,
            observed_at=SEEN,
        )
        for i in range(start, start + n)
    ]


def raw(url: str, *statements: str, params: Any = ()) -> None:
    """Write the store behind registerwatch's back, as someone holding the file could."""
    with Store(url) as store, store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS ledger_no_delete")
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS ledger_no_update")
        for sql in statements:
            conn.exec_driver_sql(sql, *params)


def rewrite_from(url: str, seq: int, code: str, key: bytes | None = None, key_id=None) -> None:
    """Rewrite entry ``seq`` (its new code) and recompute every later hash, as an attacker
    without the ledger's key would: plain SHA-256, or HMAC under a key they guessed."""
    from registerwatch.store.ledger_keys import LedgerKeys

    with Store(url) as store:
        records = store.ledger()
    keys = LedgerKeys(key_id, {key_id: key}) if key is not None else None
    before = [r for r in records if r.seq < seq]
    tail = [r for r in records if r.seq >= seq]
    forged = [
        LedgerEntry(
            school_id=r.school_id,
            pupil_id=r.pupil_id,
            date=r.date,
            session=r.session,
            kind=r.kind,
            original_code=r.original_code,
            new_code=code if r.seq == seq else r.new_code,
            observed_at=r.observed_at,
            payload=dict(r.payload),
        )
        for r in tail
    ]
    prev = before[-1].hash if before else "0" * 64
    relinked = [record for record, _text in link(forged, seq - 1, prev, keys)]
    with Store(url) as store, store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS ledger_no_update")
        for r in relinked:
            conn.execute(
                sa.text(
                    "UPDATE ledger SET new_code = :code, prev_hash = :prev, hash = :hash, "
                    "key_id = :key_id WHERE seq = :seq"
                ),
                {
                    "code": r.new_code,
                    "prev": r.prev_hash,
                    "hash": r.hash,
                    "key_id": r.key_id,
                    "seq": r.seq,
                },
            )


def ledger_toml(
    key_id: str | None = None,
    key_file: Path | None = None,
    *,
    key_env: str | None = None,
    retired: list[tuple[str, Path]] = (),  # type: ignore[assignment]
    keyed_from_seq: int | None = None,
    sink_file: Path | None = None,
    sink_url: str | None = None,
) -> str:
    lines = ["", "[ledger]"]
    if key_id is not None:
        lines.append(f'key_id = "{key_id}"')
    if key_file is not None:
        lines.append(f'key_file = "{key_file}"')
    if key_env is not None:
        lines.append(f'key_env = "{key_env}"')
    if keyed_from_seq is not None:
        lines.append(f"keyed_from_seq = {keyed_from_seq}")
    for old_id, old_file in retired:
        lines += ["", "[[ledger.retired_keys]]", f'key_id = "{old_id}"', f'key_file = "{old_file}"']
    if sink_file is not None or sink_url is not None:
        lines += ["", "[ledger.sink]"]
        lines.append(f'file = "{sink_file}"' if sink_file is not None else f'url = "{sink_url}"')
    return "\n".join(lines) + "\n"


def key_file(folder: Path, name: str, secret: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(secret + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """registerwatch in a real process."""
    return subprocess.run(
        [sys.executable, "-m", "registerwatch.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )
