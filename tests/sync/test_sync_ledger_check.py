"""Sync's check of the ledger before it appends walks only what was appended since the tip it
last verified (kept in the store); anything that does not hold falls back to the whole walk,
so a broken chain is still refused with the same report. ``ledger verify`` walks everything."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
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
from registerwatch.store.bookmarks import verified_ledger_tip
from registerwatch.store.ledger import LedgerEntry, link
from registerwatch.sync import sync_all
from registerwatch.sync.run import refuse_broken_ledger


def _night(store: Store):
    settings = make_settings([school_table("oakfield", fake_mis("oakfield"))])
    school = settings.schools[0]
    pupils = [pupil("oakfield", n) for n in range(1, 9)]
    days = school_days(school.to_calendar(), date(2025, 9, 3), AS_OF)
    mis = FakeMis("oakfield", pupils, marks_for(pupils, days))
    nights = [0]

    def sync(reason: str | None = None):
        nights[0] += 1
        return sync_all(
            settings,
            store,
            as_of=AS_OF,
            environ={"OAKFIELD_G4S_KEY": "k"},
            adapter_factory=fake_factory({"oakfield": mis}),
            clock=lambda: NOW + timedelta(days=nights[0]),
            accept_broken_ledger=reason,
        )

    return mis, pupils, days, sync


def kept_tip(store: Store) -> tuple[int, str] | None:
    with store.engine.connect() as conn:
        return verified_ledger_tip(conn)


def run_sql(store: Store, sql: str) -> None:
    """Run ``sql`` on the ledger as someone holding the store could, past its append-only
    triggers."""
    on = " ON ledger" if store.dialect == "postgresql" else ""
    with store.engine.begin() as conn:
        for trigger in ("ledger_no_update", "ledger_no_delete"):
            conn.execute(sa.text(f"DROP TRIGGER IF EXISTS {trigger}{on}"))
        conn.execute(sa.text(sql))


def test_the_tip_is_kept_and_advanced_by_each_append_that_extends_it(store: Store):
    mis, pupils, days, sync = _night(store)
    assert kept_tip(store) is None
    assert sync().ok
    tip = store.check_ledger()
    assert kept_tip(store) == (tip.last_seq, tip.last_hash) == (8, tip.last_hash)
    # Nothing appended since: the check walks no entry, and says where the chain ends.
    since = store.check_ledger_since_verified()
    assert since.ok and since.entries == 0 and since.last_seq == 8

    mis.set(pupils[0].id, days[-1], Session.AM, "I")
    assert sync().ok
    after = store.check_ledger()
    assert after.last_seq == 9 and kept_tip(store) == (9, after.last_hash)


def test_entries_appended_by_another_writer_are_walked(store: Store):
    *_, sync = _night(store)
    assert sync().ok
    [last] = store.ledger()[-1:]
    # An entry appended without extending the kept tip (as another process's append would,
    # had it not found the tip kept): the kept tip stays at 8 and the check walks entry 9.
    store.keep_verified_tip(
        replace(store.check_ledger(), last_seq=7, last_hash=store.ledger_entry(7).hash)
    )
    entry = LedgerEntry(
        last.school_id, last.pupil_id, last.date, last.session, "observed_change", "/", "I", NOW
    )
    store.append_ledger([entry])
    assert kept_tip(store) == (7, store.ledger_entry(7).hash)
    since = store.check_ledger_since_verified()
    assert since.ok and since.entries == 2 and since.last_seq == 9


def test_a_break_after_the_kept_tip_is_refused_with_the_whole_walks_report(store: Store):
    mis, pupils, days, sync = _night(store)
    assert sync().ok
    mis.set(pupils[0].id, days[-1], Session.AM, "I")
    mis.set(pupils[1].id, days[-1], Session.AM, "I")
    # Kept at 8; entries 9 and 10 appended by a writer that does not keep it.
    tip8 = store.check_ledger()
    assert sync().ok
    store.keep_verified_tip(tip8)
    run_sql(store, "UPDATE ledger SET new_code = 'O' WHERE seq = 10")

    check = store.check_ledger_since_verified()
    assert check == store.check_ledger()
    assert not check.ok and check.broken_seq == 10 and check.broken_school_id == "oakfield"
    with pytest.raises(LedgerIntegrityError, match="ledger broken at entry 10"):
        sync()


def test_a_rewrite_that_reaches_the_kept_tip_falls_back_to_the_whole_walk(store: Store):
    *_, sync = _night(store)
    assert sync().ok
    # Rewrite entry 3 and recompute every hash after it: the chain verifies on its own, but
    # the kept tip's entry no longer has the hash that was verified.
    records = store.ledger()
    forged = [
        LedgerEntry(
            r.school_id,
            r.pupil_id,
            r.date,
            r.session,
            r.kind,
            r.original_code,
            "#" if r.seq == 3 else r.new_code,
            r.observed_at,
            dict(r.payload),
        )
        for r in records[2:]
    ]
    run_sql(store, "DELETE FROM runs")  # no run tips left to compare with
    run_sql(store, "DELETE FROM ledger WHERE seq >= 3")
    store.append_ledger(forged)  # plain SHA-256: anyone can relink, as an attacker would
    relinked = list(link(forged, 2, records[1].hash))
    assert [r.hash for r, _ in relinked] == [r.hash for r in store.ledger()[2:]]

    assert store.check_ledger().ok  # nothing outside the chain is left to hold it against
    check = store.check_ledger_since_verified()
    assert check.ok  # ...and the whole walk, which the check fell back to, agrees
    assert check.entries == 8  # but it walked everything: the kept tip did not hold


def test_what_the_check_cannot_see_ledger_verify_does(store: Store):
    """The limit, stated: an entry before the kept tip altered without touching the tip is
    not walked by sync's check; `ledger verify` (check_ledger) walks everything."""
    *_, sync = _night(store)
    assert sync().ok
    run_sql(store, "UPDATE ledger SET new_code = 'O' WHERE seq = 2")
    assert store.check_ledger_since_verified().ok
    full = store.check_ledger()
    assert not full.ok and full.broken_seq == 2


def test_a_cut_below_the_kept_tip_is_refused(store: Store):
    *_, sync = _night(store)
    assert sync().ok
    run_sql(store, "DELETE FROM ledger WHERE seq > 5")
    with pytest.raises(LedgerIntegrityError, match="ledger broken at entry 6"):
        refuse_broken_ledger(store, None)
    assert kept_tip(store) is not None and kept_tip(store)[0] == 8  # not moved by a refusal
