"""``Store.summary_tokens``: the stored pupil-months with an update's recomputed ones in place.

The months an update does not touch are read joined per pupil, the months it touches row by
row; a stored pupil-month the update did not recompute must still be there, one it emptied
must be gone, and a pupil only the update knows must appear (SQLite and PostgreSQL).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from registerwatch.schema import Mark
from registerwatch.store import Store
from registerwatch.store.summary import SummaryUpdate


def _sorted(tokens: dict[str, list[str]]) -> dict[str, list[str]]:
    return {pid: sorted(found) for pid, found in tokens.items()}


def test_summary_tokens_replace_only_the_recomputed_months(store: Store) -> None:
    stored = SummaryUpdate(
        months={
            ("P1", "2026-06"): ["2026-06-01AM/", "2026-06-01PM/"],
            ("P1", "2026-07"): ["2026-07-01AM/", "2026-07-01PMN"],
            ("P2", "2026-06"): ["2026-06-01AMI"],
            ("P2", "2026-07"): ["2026-07-01AM/"],
            ("P3", "2026-07"): ["2026-07-01AML:20"],
        },
        full=True,
    )
    store.save_summary("s1", stored, as_of=date(2026, 7, 1), basis="b")
    assert _sorted(store.summary_tokens("s1")) == {
        "P1": ["2026-06-01AM/", "2026-06-01PM/", "2026-07-01AM/", "2026-07-01PMN"],
        "P2": ["2026-06-01AMI", "2026-07-01AM/"],
        "P3": ["2026-07-01AML:20"],
    }
    update = SummaryUpdate(
        months={
            ("P1", "2026-07"): ["2026-07-01AM/", "2026-07-01PMO", "2026-07-02AM/"],
            ("P3", "2026-07"): [],  # every mark of the month deleted
            ("P4", "2026-07"): ["2026-07-02AM/"],  # a pupil new to the summary
        }
    )
    tokens = store.summary_tokens("s1", update)
    assert _sorted(tokens) == {
        "P1": ["2026-06-01AM/", "2026-06-01PM/", "2026-07-01AM/", "2026-07-01PMO", "2026-07-02AM/"],
        "P2": ["2026-06-01AMI", "2026-07-01AM/"],  # its July row was not recomputed: kept
        "P4": ["2026-07-02AM/"],
    }
    tokens["P4"].append("2026-07-03AM/")
    assert update.months[("P4", "2026-07")] == ["2026-07-02AM/"]  # the update is not changed


def test_summary_rebuild_files_each_mark_under_its_month(store: Store) -> None:
    days = [date(2026, 6, 29), date(2026, 6, 30), date(2026, 7, 1), date(2026, 9, 1)]
    marks = [
        Mark(pupil_id=f"s1:{pupil}", date=day, session=session, code=code)
        for pupil, code in (("P1", "/"), ("P2", "N"))
        for day in reversed(days)  # stored in any order
        for session in ("PM", "AM")
    ]
    store.upsert_marks(marks, "s1", at=datetime(2026, 9, 1, 18, tzinfo=UTC))
    months = store.summary_rebuild("s1").months
    assert sorted(months) == [
        (pid, month) for pid in ("s1:P1", "s1:P2") for month in ("2026-06", "2026-07", "2026-09")
    ]
    assert months[("s1:P1", "2026-06")] == [
        "2026-06-29AM/",
        "2026-06-29PM/",
        "2026-06-30AM/",
        "2026-06-30PM/",
    ]
    assert months[("s1:P2", "2026-07")] == ["2026-07-01AMN", "2026-07-01PMN"]
    assert months[("s1:P2", "2026-09")] == ["2026-09-01AMN", "2026-09-01PMN"]
    # what a scan reads back is every mark, whichever way the months were filed
    assert _sorted(store.summary_tokens("s1", store.summary_rebuild("s1"))) == _sorted(
        store.mark_tokens("s1")
    )
