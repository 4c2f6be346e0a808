"""The shared return parts: CSV cells a spreadsheet would run, and XSD messages without values."""

import pytest

from registerwatch.errors import ExportValidationError
from registerwatch.exports.base import RenderedReturn, redact_values, validate


def _rendered(xml: bytes, rows=()) -> RenderedReturn:
    return RenderedReturn(
        kind="dfe-daily",
        school_id="oakfield",
        schema_name="dfe-daily-1.xsd",
        xml=xml,
        csv_header=["name", "phone", "count"],
        csv_rows=list(rows),
        file_stem="x",
    )


def test_csv_cells_that_a_spreadsheet_would_run_are_quoted():
    text = (
        _rendered(b"<x/>", [['=HYPERLINK("http://evil")', "+44 1234 567890", 3], ["Ann", None, -1]])
        .csv_bytes()
        .decode()
    )
    lines = text.split("\r\n")
    assert lines[1] == '"\'=HYPERLINK(""http://evil"")",\'+44 1234 567890,3'
    # numbers are numbers, whatever their sign; only text is guarded
    assert lines[2] == "Ann,,-1"


def test_redact_values_removes_quoted_values_from_xsd_messages():
    message = (
        "Element 'UPN': [facet 'pattern'] The value 'A801200005001' is not accepted by "
        "the pattern '[A-Z]'. Duplicate key-sequence ['A801200005001', 'AM'] in unique"
    )
    redacted = redact_values(message)
    assert "A801200005001" not in redacted
    assert "The value (withheld)" in redacted and "key-sequence [values withheld]" in redacted


def test_validation_errors_never_quote_the_offending_value():
    with pytest.raises(ExportValidationError) as exc:
        validate(_rendered(b"<DfEDailyAttendance><UPN>A801200005001</UPN></DfEDailyAttendance>"))
    assert "A801200005001" not in str(exc.value)
