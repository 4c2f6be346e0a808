"""``MarksStream.map_rows`` (the adapter's one-pass mapping of a Batch answer) gives exactly what
the general path gives: ``session_registers`` + ``map_records`` with the same keep rule, record
for record (values and references), quarantine entry for quarantine entry."""

from __future__ import annotations

import itertools
from datetime import time
from typing import Any

import pytest

from registerwatch.adapters.base import Batch
from registerwatch.adapters.isams.streams import MarksStream, PresentCode
from registerwatch.schema import Mark

PRESENT = {"1": PresentCode("1", "/", "Present"), "2": PresentCode("2", "L", "Late")}

# Each field's values: plain ones, and every kind the fast path must hand to the general one.
IDS = ["7", "", None, "x1", "\u202e9"]
PUPILS = ["101", " 102 ", "", None, "10\x013"]
WHENS = [
    "2024-09-10T08:40:00",
    "2024-09-10T13:15:00",
    "2024-09-10T16:30:00",  # a later period of the afternoon
    "2024-09-10T08:40:00+01:00",
    "2024-02-30T08:40:00",
    "1980-09-10T08:40:00",
    "",
    None,
]
REGISTERED = ["1", "0", "yes", "2", None]
CODES = [(None, "1"), (None, "2"), ("N", "0"), ("n", "0"), ("QQ", "0"), (None, "9"), (None, "0")]
EXTRAS: list[dict[str, Any]] = [
    {},
    {"MinutesLate": "5", "Comment": "bus late", "LastUpdated": "2024-09-10T09:00:00"},
    {"MinutesLate": "-3"},
    {"MinutesLate": "five"},
    {"Comment": "line\nbreak"},
    {"Comment": "bad\x07bell"},
    {"Comment": "x" * 2001},
    {"LastUpdated": "not a time"},
    {"LastUpdated": "1970-01-01T00:00:00"},
    {"LastUpdated": "2024-09-10T09:00:00Z"},
]


def _rows() -> list[tuple[str, dict[str, Any]]]:
    rows = []
    combos = itertools.product(IDS, PUPILS, WHENS, REGISTERED, CODES, EXTRAS)
    for index, (ident, pupil, when, registered, (code, present), extra) in enumerate(combos):
        # Thin the product out (it is large); each field's every value stays in play.
        if index % 5:
            continue
        row: dict[str, Any] = {"@Id": ident, "PupilId": pupil, "RegistrationDateTime": when}
        row.update(Registered=registered, Code=code, PresentCode=present, **extra)
        rows.append((f"RegistrationStatus[{index + 1}]", row))
    return rows


def _general(stream: MarksStream, rows: list[tuple[str, dict[str, Any]]]) -> Batch[Mark]:
    first_period = stream.session_registers(record for _, record in rows)
    return stream.map_records(
        rows, keep=lambda record: first_period(record) and MarksStream.is_registered(record)
    )


@pytest.mark.parametrize("cutoff", [time(12, 0), time(13, 30)])
def test_map_rows_matches_the_general_path(cutoff: time) -> None:
    rows = _rows()
    stream = MarksStream(school_id="oak", pm_cutoff=cutoff, present_codes=PRESENT)
    expected = _general(stream, rows)
    mapped = stream.map_rows(rows)
    got = mapped.batch
    assert len(rows) > 10_000 and len(expected.records) > 200 and len(expected.quarantined) > 1000
    assert [m.model_dump() for m in got.records] == [m.model_dump() for m in expected.records]
    assert got.quarantined == expected.quarantined
    # Every mapped mark names its raw row, for the caller to remember repeated keys.
    assert all(id(m) in mapped.rows_of for m in got.records)
    # Rows of a later period of a session are counted (the adapter logs them), not mapped.
    assert mapped.later > 0


def test_map_rows_counts_later_periods_like_session_registers() -> None:
    rows = [
        ("a", {"@Id": "1", "PupilId": "5", "RegistrationDateTime": "2024-09-10T13:15:00"}),
        ("b", {"@Id": "2", "PupilId": "5", "RegistrationDateTime": "2024-09-10T16:30:00"}),
        ("c", {"@Id": "3", "PupilId": "5", "RegistrationDateTime": "2024-09-10T19:00:00"}),
    ]
    for _, row in rows:
        row.update(Registered="1", PresentCode="1")
    mapped = MarksStream(school_id="oak", present_codes=PRESENT).map_rows(rows)
    assert [m.source_ref for m in mapped.batch.records] == ["RegistrationStatus 1"]
    assert mapped.later == 2
