"""Code table and alias normalisation: vendor encodings and aliases -> national codes."""

from __future__ import annotations

from typing import Any

import pytest

from registerwatch.adapters.go4schools.mapping import CodeTable, national_code, whole_number
from registerwatch.adapters.go4schools.streams import CodesStream
from registerwatch.errors import InvalidRecord
from registerwatch.simulator.go4schools import CODE_TABLE, Go4SchoolsApp


@pytest.mark.parametrize(
    ("vendor", "national"),
    [
        ("/", "/"),
        ("\\", "\\"),
        ("L", "L"),
        ("N", "N"),
        ("#", "#"),
        ("Y4", "Y4"),
        ("<", "C1"),
        (">", "C2"),
        ("?", "J1"),  # single-character encodings of 2024 codes
        ("C1", "C1"),
        ("c1", "C1"),
        ("j1", "J1"),
        ("i", "I"),
        ("n", "N"),
        (" m ", "M"),
        ("H", "H"),  # legacy 2006 code: known, judged by date later (MRK002)
        ("L1", None),
        ("ZZ", None),
        ("", None),
        (None, None),
        (7, None),
    ],
)
def test_national_code_of_a_vendor_code(vendor: Any, national: str | None) -> None:
    assert national_code(vendor) == national


def table() -> CodeTable:
    rows = [
        {"id": 1, "code": "/", "aliases": []},
        {
            "id": 2,
            "code": "L",
            "aliases": [{"alias_id": 21, "alias_code": "L1", "alias_label": "Late - bus"}],
        },
        {
            "id": 3,
            "code": "<",
            "aliases": [{"alias_id": 31, "alias_code": "c1", "alias_label": "lower case"}],
        },
        {"id": 4, "code": ">"},
        {"id": 5, "code": "?"},
        {
            "id": 6,
            "code": "C",
            "aliases": [{"alias_id": 61, "alias_code": "C1", "alias_label": "school alias"}],
        },
        {
            "id": 7,
            "code": "I",
            "aliases": [{"alias_id": 71, "alias_code": "i", "alias_label": "lower case"}],
        },
        {
            "id": 8,
            "code": "J",
            "aliases": [{"alias_id": 81, "alias_code": "J1", "alias_label": "school alias"}],
        },
        {
            "id": 9,
            "code": "XX",
            "aliases": [
                {"alias_id": 91, "alias_code": "XX1", "alias_label": "no national meaning"}
            ],
        },
    ]
    codes, quarantined = CodesStream().read(rows)
    assert quarantined == []
    return codes


# session_mark_id, session_alias_id -> national code, vendor code kept on the mark
ALIAS_TABLE = [
    (1, None, "/", "/"),
    (2, None, "L", "L"),
    (2, 21, "L", "L1"),  # a school sub-reason means its parent's code
    (3, None, "C1", "<"),
    (3, 31, "C1", "c1"),
    (4, None, "C2", ">"),
    (5, None, "J1", "?"),
    (6, None, "C", "C"),
    (6, 61, "C1", "C1"),  # an alias that is itself a national code means that code
    (7, 71, "I", "i"),
    (8, 81, "J1", "J1"),
    ("2", "21", "L", "L1"),  # ids sent as strings
]


@pytest.mark.parametrize(("mark_id", "alias_id", "national", "vendor"), ALIAS_TABLE)
def test_alias_normalisation_table(mark_id: Any, alias_id: Any, national: str, vendor: str) -> None:
    assert table().resolve(mark_id, alias_id, resource="marks", record_ref="r") == (
        national,
        vendor,
    )


@pytest.mark.parametrize(
    ("mark_id", "alias_id", "field", "reason"),
    [
        (99, None, "session_mark_id", "unknown session_mark_id 99"),
        (2, 999, "session_alias_id", "unknown session_alias_id 999"),
        (1, 21, "session_alias_id", "belongs to code id 2"),
        (9, None, "session_mark_id", "'XX' is not a national attendance code"),
        (9, 91, "session_alias_id", "'XX1' is not a national attendance code"),
        ("two", None, "session_mark_id", "not a whole number"),
    ],
)
def test_codes_that_will_not_map_say_which_field_and_why(
    mark_id: Any, alias_id: Any, field: str, reason: str
) -> None:
    with pytest.raises(InvalidRecord) as raised:
        table().resolve(mark_id, alias_id, resource="marks", record_ref="2025-09-08/1001/AM")
    assert raised.value.field == field
    assert reason in raised.value.reason
    assert raised.value.record_ref == "2025-09-08/1001/AM"


def test_a_bad_code_row_is_quarantined_and_the_rest_load() -> None:
    codes, quarantined = CodesStream().read(
        [{"id": 1, "code": "/"}, {"code": "N"}, {"id": 3, "code": "L", "aliases": ["L1"]}]
    )
    assert set(codes.codes) == {1, 3}
    assert [(q.record_ref, q.field) for q in quarantined] == [
        ("code #2", "id"),
        ("code 3", "aliases"),
    ]


def test_every_simulator_code_round_trips_through_the_adapter_table() -> None:
    codes, quarantined = CodesStream().read(Go4SchoolsApp._codes())
    assert quarantined == []
    for row in CODE_TABLE:
        assert codes.resolve(row.id, None, resource="m", record_ref="r") == (row.national, row.code)
        for alias_id, alias_code, _ in row.aliases:
            national, vendor = codes.resolve(row.id, alias_id, resource="m", record_ref="r")
            assert vendor == alias_code
            assert Go4SchoolsApp.encode(national, alias_code) == (row.id, alias_id)


@pytest.mark.parametrize("text", ["²", "-³", "½"])
def test_a_digit_that_is_no_number_is_refused_not_raised(text: str) -> None:
    """Found by tests/fuzz: "²" passed ``isdigit`` and then broke ``int()`` mid-run."""
    with pytest.raises(InvalidRecord, match="is not a whole number"):
        whole_number(text, resource="students", record_ref="#1", field="student_id")


@pytest.mark.parametrize(("text", "number"), [(" 1002 ", 1002), ("-3", -3), ("١٢", 12)])
def test_whole_numbers_in_text_are_read_as_before(text: str, number: int) -> None:
    assert whole_number(text, resource="students", record_ref="#1", field="student_id") == number
