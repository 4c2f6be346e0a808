"""Issue 14 item 5d: `nightly` takes the same --accept-broken-ledger --reason as `sync`; its
sync step refuses a broken chain without it, and records the reason with it."""

from __future__ import annotations

from datetime import date

from ledger_support import cli, raw
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

from registerwatch.jobs.nightly import SYNC, NightContext, Step, run_step, sync_step
from registerwatch.store import Store


def test_nightly_sync_step_refuses_a_broken_ledger_unless_given_a_reason(tmp_path):
    settings = make_settings(
        [school_table("oakfield", fake_mis("oakfield"))], f"sqlite:///{tmp_path / 'store.db'}"
    )
    # One ledger entry per pupil: 30 pupils, so that cutting the chain after entry 20 cuts it.
    pupils = [pupil("oakfield", n) for n in range(1, 31)]
    days = school_days(settings.schools[0].to_calendar(), date(2025, 9, 3), AS_OF)
    mis = FakeMis("oakfield", pupils, marks_for(pupils, days))

    def night(store, reason=None):
        ctx = NightContext(
            settings=settings,
            store=store,
            as_of=AS_OF,
            output_dir=tmp_path / "out",
            clock=lambda: NOW,
            environ={"OAKFIELD_G4S_KEY": "k"},
            adapter_factory=fake_factory({"oakfield": mis}),
            accept_broken_ledger=reason,
        )
        return run_step(Step(SYNC, sync_step), ctx, job="nightly", job_run=None)

    url = settings.store.url
    with Store.open(url) as store:
        assert night(store).outcome == "ok"
    raw(url, "DELETE FROM ledger WHERE seq > 20")
    with Store(url) as store:
        refused = night(store)
        assert refused.outcome == "failed"
        assert "ledger broken at entry 21" in refused.errors[0]
        assert "--accept-broken-ledger --reason TEXT" in refused.errors[0]
        accepted = night(store, reason="restored from backup, ticket 42")
        assert accepted.outcome == "ok"
        [sync_run] = [
            r for r in store.runs(command="sync") if r.counts.get("accepted_broken_ledger")
        ]
        assert (
            sync_run.counts["accepted_broken_ledger"]["reason"] == "restored from backup, ticket 42"
        )
        assert sync_run.counts["accepted_broken_ledger"]["broken_seq"] == 21


def test_nightly_accept_broken_ledger_needs_a_reason():
    result = cli("nightly", "--accept-broken-ledger")
    assert result.returncode == 2
    assert "--accept-broken-ledger needs --reason TEXT" in result.stderr
    help_text = cli("nightly", "--help").stdout
    assert "--accept-broken-ledger" in help_text and "--reason" in help_text
