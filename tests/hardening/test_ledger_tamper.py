"""Issue 14 item 5: a ledger cut short or rewritten (hashes recomputed) is caught against the
tips runs recorded outside the chain; sync refuses to append to a chain that does not verify."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime

import pytest

from registerwatch.errors import LedgerIntegrityError
from registerwatch.schema import Session
from registerwatch.store import LedgerEntry, Store
from registerwatch.sync.run import refuse_broken_ledger

SEEN = datetime(2025, 1, 7, 19, 0, tzinfo=UTC)


def _entries(n: int, code: str = "I") -> list[LedgerEntry]:
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
        for i in range(n)
    ]


@pytest.fixture
def url(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with Store.open(url) as store:
        store.append_ledger(_entries(60))
        run = store.start_run("sync")
        store.finish_run(run, "ok", {})
        [record] = store.runs()
        assert record.ledger_tip == f"60:{store.check_ledger().last_hash}"
    return url


def _raw(url: str, *statements: str, params=()) -> None:
    with Store(url) as store, store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS ledger_no_delete")
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS ledger_no_update")
        for sql in statements:
            conn.exec_driver_sql(sql, *params)


def test_a_ledger_cut_short_fails_verify_and_sync_refuses_to_append(url):
    _raw(url, "DELETE FROM ledger WHERE seq > 10")
    with Store(url) as store:
        check = store.check_ledger()
        assert not check.ok and check.broken_seq == 11
        assert "cut off the end" in (check.reason or "")
        # the next sync cannot reuse seq 11..60: it refuses to append at all
        with pytest.raises(LedgerIntegrityError, match="ledger broken at entry 11"):
            refuse_broken_ledger(store, None)
        accepted = refuse_broken_ledger(store, "restored from backup, ticket 42")
        assert accepted == {
            "broken_seq": 11,
            "why_broken": check.reason,
            "reason": "restored from backup, ticket 42",
        }


def test_a_rewritten_ledger_with_recomputed_hashes_fails_verify(url):
    # Rewrite every entry's code and recompute the whole chain, as someone holding the store
    # could: the chain verifies on its own, but not against the tip run 1 recorded.
    _raw(url, "DELETE FROM ledger")
    with Store(url) as store:
        store.append_ledger(_entries(60, code="O"))
        assert store.verify_ledger().ok
        check = store.check_ledger()
        assert not check.ok and check.broken_seq == 60
        assert "recomputed" in (check.reason or "")


def test_ledger_verify_expect_tip(url):
    with Store(url) as store:
        tip = f"60:{store.check_ledger().last_hash}"

    def verify(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "registerwatch.cli", "ledger", "verify", "--store", url, *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert verify("--expect-tip", tip).returncode == 0
    wrong = verify("--expect-tip", "60:sha256:" + "0" * 64)
    assert wrong.returncode == 1 and "ledger broken at entry 60" in wrong.stdout
    ahead = verify("--expect-tip", "70:abc")
    assert ahead.returncode == 1 and "cut off the end" in ahead.stdout
