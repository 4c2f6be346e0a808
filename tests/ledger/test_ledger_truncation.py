"""Issue 14 item 5: a ledger cut short or rewritten (hashes recomputed) is caught against the
tips runs recorded outside the chain; sync refuses to append to a chain that does not verify
unless told why; sequence numbers cut off the end are never reused."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from ledger_support import cli, entries, raw, rewrite_from
from sync_support import (
    AS_OF,
    NOW,
    FakeMis,
    fake_factory,
    fake_mis,
    make_settings,
    marks_for,
    pupil,
    school_days,
    school_table,
)

from registerwatch.errors import LedgerIntegrityError
from registerwatch.schema import Session
from registerwatch.store import Store
from registerwatch.sync import sync_all
from registerwatch.sync.run import refuse_broken_ledger


@pytest.fixture
def url(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with Store.open(url) as store:
        store.append_ledger(entries(60))
        run = store.start_run("sync")
        store.finish_run(run, "ok", {})
        [record] = store.runs()
        assert record.ledger_tip == f"60:{store.check_ledger().last_hash}"
    return url


def test_a_ledger_cut_short_fails_verify_and_sync_refuses_to_append(url):
    raw(url, "DELETE FROM ledger WHERE seq > 10")
    with Store(url) as store:
        check = store.check_ledger()
        assert not check.ok and (check.broken_seq, check.broken_to) == (11, 60)
        assert "cut off the end" in (check.reason or "")
        with pytest.raises(LedgerIntegrityError, match="ledger broken at entry 11"):
            refuse_broken_ledger(store, None)
        accepted = refuse_broken_ledger(store, "restored from backup, ticket 42")
        assert accepted == {
            "broken_seq": 11,
            "broken_to": 60,
            "why_broken": check.reason,
            "reason": "restored from backup, ticket 42",
        }


def test_a_rewritten_ledger_with_recomputed_hashes_fails_verify(url):
    # Rewrite every entry's code and recompute the whole chain, as someone holding the store
    # could: the chain verifies on its own, but not against the tip run 1 recorded.
    rewrite_from(url, 1, "#")
    with Store(url) as store:
        assert store.verify_ledger().ok
        check = store.check_ledger()
        assert not check.ok and check.broken_seq == 60
        assert "recomputed" in (check.reason or "")


def test_ledger_verify_expect_tip(url):
    with Store(url) as store:
        tip = f"60:{store.check_ledger().last_hash}"

    def verify(*args: str):
        return cli("ledger", "verify", "--store", url, *args)

    assert verify("--expect-tip", tip).returncode == 0
    wrong = verify("--expect-tip", "60:sha256:" + "0" * 64)
    assert wrong.returncode == 1 and "ledger broken at entry 60" in wrong.stdout
    ahead = verify("--expect-tip", "70:abc")
    assert ahead.returncode == 1 and "cut off the end" in ahead.stdout


def test_after_the_last_50_entries_are_deleted_sync_never_reuses_their_numbers(tmp_path):
    settings = make_settings(
        [school_table("oakfield", fake_mis("oakfield"))], f"sqlite:///{tmp_path / 'store.db'}"
    )
    school = settings.schools[0]
    # One ledger entry per pupil's first marks: more than 60 entries, so 50 can be cut.
    pupils = [pupil("oakfield", n) for n in range(1, 71)]
    days = school_days(school.to_calendar(), date(2025, 9, 3), AS_OF)
    mis = FakeMis("oakfield", pupils, marks_for(pupils, days))
    env = {"OAKFIELD_G4S_KEY": "k"}

    def sync(at, reason=None):
        return sync_all(
            settings,
            store,
            as_of=AS_OF,
            environ=env,
            adapter_factory=fake_factory({"oakfield": mis}),
            clock=lambda: at,
            accept_broken_ledger=reason,
        )

    url = settings.store.url
    with Store.open(url) as store:
        assert sync(NOW).ok
        high = store.check_ledger().last_seq
        assert high is not None and high > 60
    raw(url, f"DELETE FROM ledger WHERE seq > {high - 50}")
    kept = high - 50
    for n, p in enumerate(pupils[:3]):  # the MIS changes three marks: three new entries
        mis.set(p.id, days[-1], Session.AM, "I" if n % 2 else "M")

    with Store(url) as store:
        with pytest.raises(LedgerIntegrityError, match=f"ledger broken at entry {kept + 1}"):
            sync(NOW + timedelta(days=1))
        assert store.check_ledger().last_seq == kept  # nothing appended
        summary = sync(NOW + timedelta(days=1), reason="restored from backup, ticket 42")
        assert summary.ok
        new = [r for r in store.ledger() if r.seq > kept]
        assert new, "the changed marks were ledgered"
        # numbers kept+1..high are gone for good: the new entries start after the high-water
        assert min(r.seq for r in new) == high + 1
        assert new[0].prev_hash == store.ledger_entry(kept).hash  # linked to the last present
        check = store.check_ledger()
        assert check.ok, check.reason
        [accepted] = check.accepted
        assert (accepted.first, accepted.last) == (kept + 1, high)
        assert accepted.reason == "restored from backup, ticket 42"
        # The next night syncs without being told again, and still never reuses a number.
        mis.set(pupils[0].id, days[-2], Session.PM, "I")
        assert sync(NOW + timedelta(days=2)).ok
        assert min(r.seq for r in store.ledger() if r.seq > kept) == high + 1

    result = cli("ledger", "verify", "--store", url)
    assert result.returncode == 0, result.stdout
    assert f"accepted break: entries {kept + 1}..{high} missing" in result.stdout
    assert "never reused" in result.stdout

    # A second cut after the accepted one is not covered by it.
    with Store(url) as store:
        last = store.check_ledger().last_seq
    raw(url, f"DELETE FROM ledger WHERE seq > {high + 1}")
    with Store(url) as store:
        check = store.check_ledger()
        assert not check.ok and check.broken_seq == high + 2 and check.broken_to == last
        assert "cut off the end" in (check.reason or "")
