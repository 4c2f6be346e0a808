"""The one duplicate policy (adapters/base/duplicates.py), the aggregated quarantine warning
(sync/quarantine.py) and the per-page record limit (pagination.check_page_size)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from structlog.testing import capture_logs

from registerwatch.adapters.base import Batch, PageNumberPaginator, Quarantined
from registerwatch.adapters.base.duplicates import mark_key, record_key, settle_duplicates
from registerwatch.errors import UnsafeResponseError
from registerwatch.schema import Mark, Pupil, Session
from registerwatch.sync.quarantine import log_quarantined, reason_kind

DAY = date(2025, 9, 10)
T0 = datetime(2025, 9, 10, 8, 50, tzinfo=UTC)


def mark(code: str, pupil: str = "oak:1", at: datetime | None = None, ref: str = "") -> Mark:
    return Mark(
        pupil_id=pupil, date=DAY, session="AM", code=code, recorded_at=at, source_ref=ref or None
    )


def pupil(forename: str, dob: date = date(2014, 3, 4), mis_id: str = "1") -> Pupil:
    return Pupil(
        id=f"oak:{mis_id}",
        school_id="oak",
        mis_id=mis_id,
        legal_forename=forename,
        legal_surname="Smith",
        dob=dob,
    )


def test_conflicting_marks_are_all_quarantined_with_their_raw_records_and_none_kept() -> None:
    first, second, other = mark("N"), mark("I"), mark("/", pupil="oak:2")
    batch: Batch[Mark] = Batch(records=[first, other, second])
    batch.remember(first, '{"code": "N"}', "marks 11")
    batch.remember(second, '{"code": "I"}', "marks 12")
    settled = settle_duplicates(batch, resource="marks", school="oak")
    assert batch.records == [other]
    assert settled.conflicting_keys == 1
    assert [(q.record_ref, q.field, q.raw) for q in batch.quarantined] == [
        ("marks 11 (version 1 of 2)", "code", '{"code": "N"}'),
        ("marks 12 (version 2 of 2)", "code", '{"code": "I"}'),
    ]
    assert all(q.reason.startswith("conflicting-duplicate:") for q in batch.quarantined)


def test_exact_copies_are_dropped_and_counted_and_a_later_recording_stands() -> None:
    copy_a, copy_b = mark("N", ref="row 1"), mark("N", ref="row 2")  # only the row id differs
    older, newer = mark("N", "oak:2", T0), mark("I", "oak:2", T0.replace(hour=10))
    batch: Batch[Mark] = Batch(records=[copy_a, older, copy_b, newer])
    settled = settle_duplicates(batch, resource="marks", school="oak")
    assert batch.records == [copy_a, newer] and batch.quarantined == []
    assert (settled.exact_dropped, settled.superseded, settled.conflicting_keys) == (1, 1, 0)


def test_two_pupils_with_one_mis_id_are_quarantined_naming_the_fields_not_the_values() -> None:
    batch: Batch[Pupil] = Batch(records=[pupil("Ava"), pupil("Eve", date(2013, 1, 1))])
    settle_duplicates(batch, resource="pupils", school="oak")
    assert batch.records == []
    fields = {q.field for q in batch.quarantined}
    assert fields == {"dob,legal_forename"}
    for q in batch.quarantined:
        assert "Ava" not in q.reason + q.record_ref and "2013" not in q.reason
        assert q.raw.startswith("as mapped: ")  # no raw kept by a stream: the mapped record
    assert [q.record_ref for q in batch.quarantined] == [
        "pupils 1 (version 1 of 2)",
        "pupils 1 (version 2 of 2)",
    ]


def test_a_upn_keyed_pupil_is_named_by_a_digest() -> None:
    batch: Batch[Pupil] = Batch(
        records=[pupil("Ava", mis_id="E893400116001"), pupil("Eve", mis_id="E893400116001")]
    )
    settle_duplicates(batch, resource="pupils", school="oak")
    assert all("E893400116001" not in q.record_ref for q in batch.quarantined)


def test_a_million_junk_records_are_one_warning_per_kind() -> None:
    entries = [
        Quarantined("marks", f"marks {n}", "code", f"unknown attendance code 'Q{n}'")
        for n in range(5000)
    ] + [Quarantined("marks", "marks x", "date", "'2025-02-30' is not a valid date")]
    with capture_logs() as logs:
        log_quarantined(entries, school="oak", vendor="arbor", resource="marks")
    assert [(e["field"], e["reason"], e["count"]) for e in logs] == [
        ("code", "unknown attendance code <value>", 5000),
        ("date", "<value> is not a valid date", 1),
    ]
    assert logs[0]["examples"] == ["marks 0", "marks 1", "marks 2"]
    assert reason_kind("code \"x\" and 'y'") == "code <value> and <value>"


def test_a_page_over_the_record_limit_is_refused_before_it_is_mapped() -> None:
    paginator = PageNumberPaginator(100)
    paginator.max_records = 150
    pages = paginator.pages(lambda _n: [{"id": i} for i in range(151)], what="arbor students")
    with pytest.raises(UnsafeResponseError, match="page 1 holds 151 records, more than the limit"):
        next(pages)


@pytest.mark.parametrize("session", list(Session))
def test_a_marks_key_holds_its_sessions_value(session: Session) -> None:
    mark = Mark(pupil_id="s:1", date=date(2025, 9, 8), session=session, code="/")
    key = mark_key(mark)
    assert key == record_key(mark) == ("s:1", date(2025, 9, 8), session.value)
    assert type(key[2]) is type(session.value) is str
