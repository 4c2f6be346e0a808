"""Issue 14 item 6: the store's files are private, a full disk and a read-only store are named,
and the read commands work on a store nobody may write."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from registerwatch.config import EXAMPLE_CONFIG_PATH
from registerwatch.errors import StoreError
from registerwatch.schema import Session
from registerwatch.store import LedgerEntry, Store

NOBODY = 65534
SEEN = datetime(2025, 1, 7, 19, 0, tzinfo=UTC)


def _entries(n: int) -> list[LedgerEntry]:
    return [
        LedgerEntry(
            school_id="wenlock",
            pupil_id=f"wenlock:{i}",
            date=date(2025, 1, 6),
            session=Session.AM,
            kind="observed_change",
            original_code="N",
            new_code="I",
            observed_at=SEEN,
        )
        for i in range(n)
    ]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_an_existing_world_readable_store_and_its_wal_files_are_made_private(tmp_path):
    path = tmp_path / "store.db"
    Store.open(f"sqlite:///{path}").close()
    os.chmod(path, 0o644)
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").touch(mode=0o644)
        os.chmod(f"{path}{suffix}", 0o644)
    with capture_logs() as logs:
        store = Store(f"sqlite:///{path}")
    store.append_ledger(_entries(2))
    assert _mode(path) == 0o600
    for suffix in ("-wal", "-shm"):
        assert _mode(Path(f"{path}{suffix}")) == 0o600
    store.close()
    warned = [e for e in logs if e["event"] == "store.permissions_tightened"]
    assert {Path(e["file"]).name for e in warned} == {"store.db", "store.db-wal", "store.db-shm"}
    assert all(e["log_level"] == "warning" and e["was"] == "0o644" for e in warned)


def test_a_new_stores_wal_and_shm_files_are_private(tmp_path):
    path = tmp_path / "store.db"
    with Store.open(f"sqlite:///{path}") as store:
        store.append_ledger(_entries(1))
        with store.engine.connect() as conn:  # holds the WAL open so both files exist
            conn.exec_driver_sql("SELECT 1")
            for suffix in ("", "-wal", "-shm"):
                assert _mode(Path(f"{path}{suffix}")) == 0o600, suffix


def test_a_full_disk_is_named_as_such(tmp_path):
    path = tmp_path / "store.db"
    store = Store.open(f"sqlite:///{path}")
    store.engine.dispose()

    @sa.event.listens_for(store.engine, "connect")
    def _tiny(dbapi_connection, _record):  # SQLITE_FULL, exactly as a full disk reports it
        dbapi_connection.execute("PRAGMA max_page_count=1")

    with pytest.raises(StoreError, match="disk holding the store is full"):
        store.append_ledger(_entries(500))
    store.close()


def test_a_read_only_store_is_named_as_such_when_written(tmp_path):
    path = tmp_path / "store.db"
    Store.open(f"sqlite:///{path}").close()
    with Store(f"sqlite:///{path}", read_only=True) as store:
        with pytest.raises(StoreError, match="the store is read-only"):
            store.start_run("sync")


def _read_only_runner(folder: Path) -> list[str] | None:
    """A command prefix that runs its command with ``folder`` on a read-only filesystem.

    As root chmod stops nothing, so the folder is bind-mounted onto itself read-only in a
    private mount namespace (``unshare -m``): writes fail with EROFS, as on a read-only disk.
    Without root, chmod is enough. None when neither is possible here."""
    if os.geteuid() != 0:
        return []
    if shutil.which("unshare") is None:
        return None
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, str(folder), "true"], capture_output=True
    )
    return ["unshare", "-m", "sh", "-c", script, str(folder)] if probe.returncode == 0 else None


def test_read_commands_work_on_a_read_only_store(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "registerwatch.sqlite"
    url = f"sqlite:///{path}"
    with Store.open(url) as store:
        store.append_ledger(_entries(3))
        run = store.start_run("sync")
        store.finish_run(run, "ok", {"schools": 1})
    config = Path(EXAMPLE_CONFIG_PATH).read_text(encoding="utf-8")
    config = re.sub(r'(?m)^url = "sqlite:///registerwatch.sqlite"', f'url = "{url}"', config)
    (tmp_path / "registerwatch.toml").write_text(config, encoding="utf-8")
    # the last connection's close checkpointed and removed them: SQLite must create them anew
    assert not Path(f"{path}-wal").exists() and not Path(f"{path}-shm").exists()
    prefix = _read_only_runner(folder)
    if prefix is None:
        pytest.skip("cannot make a read-only filesystem here (needs unshare and mount)")
    os.chmod(path, 0o400)
    os.chmod(folder, 0o555)
    try:
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}

        def run_ro(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*prefix, *args], capture_output=True, text=True, timeout=120, env=env
            )

        # Proof that the store really cannot be written, by the same means the commands run in.
        probe = run_ro(
            sys.executable, "-c", f"open({str(path)!r}, 'ab'); open({str(folder)!r} + '/x', 'w')"
        )
        assert probe.returncode != 0
        assert "Read-only file system" in probe.stderr or "PermissionError" in probe.stderr

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return run_ro(sys.executable, "-m", "registerwatch.cli", *args)

        verify = cli("ledger", "verify", "--store", url)
        assert verify.returncode == 0, verify.stderr
        assert "ledger ok: 3 entries" in verify.stdout
        runs = cli("runs", "--store", url, "--format", "json")
        assert runs.returncode == 0, runs.stderr
        assert '"sync"' in runs.stdout
        findings = cli("findings", "list", "--store", url)
        assert findings.returncode == 0, findings.stderr
        status = cli("status", "--config", str(tmp_path / "registerwatch.toml"))
        # exit 1 is status's answer "a school never synced", not a failure to open the store
        assert status.returncode in (0, 1), status.stderr
        assert "registerwatch status" in status.stdout, status.stdout + status.stderr
        # a write is refused with the plain reason, not as "internal error"
        write = cli("db", "upgrade", "--store", url)
        assert write.returncode != 0
        assert "internal error" not in write.stdout + write.stderr
        if prefix:  # on a read-only filesystem (not mere permissions) it is named as such
            assert "the store is read-only" in write.stdout + write.stderr
    finally:
        os.chmod(folder, 0o755)
        os.chmod(path, 0o600)
