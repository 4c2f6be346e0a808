"""Pupil data never reaches the log: the configured pipeline is tested end to end.

``structlog.testing.capture_logs`` replaces the processor chain, so it would not prove the
redaction runs; these tests configure the real pipeline onto a StringIO and read what it wrote.
"""

from __future__ import annotations

import io
import json
import logging as stdlib_logging
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from registerwatch.logging import (
    REDACTED,
    UPN_PATTERN,
    configure_logging,
    get_logger,
    redact_pupil_data,
)
from registerwatch.schema import Contact, Pupil

UPN = "A123456789012"
FORMER_UPN = "B987654321098"
TEMP_UPN = "C12345678901A"
DOB = "2012-03-04"
PERSONAL = [
    "Ava",
    "Smith",
    "Zephyrine",
    "Okonkwo-Blake",
    UPN,
    FORMER_UPN,
    TEMP_UPN,
    DOB,
    "04/03/2012",
]


@pytest.fixture
def configure() -> Iterator[Callable[..., io.StringIO]]:
    """Configure the real pipeline onto a fresh StringIO; undo it afterwards."""
    root = stdlib_logging.getLogger()
    previous_level = root.level

    def _configure(level: str = "DEBUG", json_output: bool | None = True) -> io.StringIO:
        stream = io.StringIO()
        configure_logging(level, json=json_output, stream=stream)
        return stream

    yield _configure
    for handler in [h for h in root.handlers if getattr(h, "_registerwatch_handler", False)]:
        root.removeHandler(handler)
    root.setLevel(previous_level)
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def assert_no_personal_data(text: str) -> None:
    leaked = [value for value in PERSONAL if value.lower() in text.lower()]
    assert leaked == [], f"leaked {leaked} in {text!r}"


def test_names_upns_and_dob_are_removed_at_every_depth_and_inside_the_message(
    configure: Callable[..., io.StringIO],
) -> None:
    stream = configure()
    log = get_logger("registerwatch.sync")

    log.info(
        f"sync.pupil_updated for Ava Smith (UPN {UPN}, born {DOB})",
        forename="Ava",
        surname="Smith",
        upn=UPN,
        dob=DOB,
        school_id="oakfield",
        pupil_id="oakfield:1001",
        sessions=14,
        code="N",
        pupil={
            "legal_forename": "Zephyrine",
            "former_upn": FORMER_UPN,
            "contacts": [{"name": "Okonkwo-Blake", "relationship": "mother"}],
            "marks": [{"date": "2025-09-04", "session": "AM", "code": "/"}],
        },
        note=f"temporary UPN {TEMP_UPN} issued",
    )

    output = stream.getvalue()
    assert_no_personal_data(output)
    [event] = lines(stream)
    assert event["event"] == (
        f"sync.pupil_updated for {REDACTED} {REDACTED} (UPN {REDACTED}, born {REDACTED})"
    )
    assert {k: event[k] for k in ("forename", "surname", "upn", "dob")} == dict.fromkeys(
        ("forename", "surname", "upn", "dob"), REDACTED
    )
    # Non-personal fields survive untouched, nested ones included.
    assert (event["school_id"], event["pupil_id"], event["sessions"], event["code"]) == (
        "oakfield",
        "oakfield:1001",
        14,
        "N",
    )
    assert event["pupil"]["contacts"] == [{"name": REDACTED, "relationship": "mother"}]
    assert event["pupil"]["marks"] == [{"date": "2025-09-04", "session": "AM", "code": "/"}]
    assert event["note"] == f"temporary UPN {REDACTED} issued"
    assert (event["level"], event["logger"]) == ("info", "registerwatch.sync")


def test_vendor_field_spellings_are_redacted(configure: Callable[..., io.StringIO]) -> None:
    stream = configure()

    get_logger("registerwatch.adapters").warning(
        "adapter.record_quarantined",
        record={
            "legalFirstName": "Ava",
            "legalLastName": "Smith",
            "dateOfBirth": DOB,
            "uniquePupilNumber": UPN,
            "Forename": "Zephyrine",
            "preferred_surname": "Okonkwo-Blake",
            "studentNumber": "0123",
        },
        reason="unknown attendance mark 'Q9'",
    )

    assert_no_personal_data(stream.getvalue())
    [event] = lines(stream)
    assert event["record"]["studentNumber"] == "0123"
    assert event["reason"] == "unknown attendance mark 'Q9'"


def test_a_pupil_model_passed_as_a_value_is_redacted_field_by_field(
    configure: Callable[..., io.StringIO],
) -> None:
    stream = configure()
    pupil = Pupil(
        id="oakfield:1001",
        school_id="oakfield",
        mis_id="1001",
        upn=UPN,
        legal_forename="Ava",
        legal_surname="Smith",
        dob=date(2012, 3, 4),
        nc_year="7",
        contacts=[Contact(name="Okonkwo-Blake", phone="01632 960001")],
    )

    get_logger("registerwatch.store").info("store.pupil_saved", pupil=pupil)

    output = stream.getvalue()
    assert_no_personal_data(output)
    assert "01632 960001" not in output
    [event] = lines(stream)
    assert (event["pupil"]["id"], event["pupil"]["nc_year"], event["pupil"]["dob"]) == (
        "oakfield:1001",
        "7",
        REDACTED,
    )


def test_dob_given_as_a_date_object_is_scrubbed_from_other_strings_in_both_formats(
    configure: Callable[..., io.StringIO],
) -> None:
    stream = configure()

    get_logger("t").info(
        "pupil.checked",
        date_of_birth=date(2012, 3, 4),
        detail="born 04/03/2012 i.e. 2012-03-04",
        checked_on="2025-09-04",
    )

    [event] = lines(stream)
    assert event["date_of_birth"] == REDACTED
    assert event["detail"] == f"born {REDACTED} i.e. {REDACTED}"
    assert event["checked_on"] == "2025-09-04"  # other dates are not personal


def test_context_bound_pupil_data_is_redacted(configure: Callable[..., io.StringIO]) -> None:
    stream = configure()
    structlog.contextvars.bind_contextvars(upn=UPN, school_id="oakfield")

    get_logger("t").bind(surname="Smith").info("scan.finding_opened", rule="MRK001")

    assert_no_personal_data(stream.getvalue())
    [event] = lines(stream)
    assert (event["school_id"], event["rule"], event["upn"], event["surname"]) == (
        "oakfield",
        "MRK001",
        REDACTED,
        REDACTED,
    )


def test_exception_tracebacks_are_scrubbed(configure: Callable[..., io.StringIO]) -> None:
    stream = configure()
    log = get_logger("registerwatch.sync")

    try:
        raise ValueError(f"duplicate UPN {UPN}")
    except ValueError:
        log.exception("sync.failed", school_id="oakfield")

    assert_no_personal_data(stream.getvalue())
    [event] = lines(stream)
    assert "Traceback (most recent call last)" in event["exception"]
    assert event["exception"].endswith(f"ValueError: duplicate UPN {REDACTED}")


def test_standard_library_records_go_through_the_same_redaction(
    configure: Callable[..., io.StringIO],
) -> None:
    stream = configure()

    stdlib_logging.getLogger("urllib3.connectionpool").debug(
        '%s "POST /api/batch/1.0/xml.ashx?apiKey=%s HTTP/1.1" 200',
        "https://wenlock.isams.cloud:443",
        "0A1C996B-8E74-4388-A3C4-8DA1E40ADA57",
    )
    stdlib_logging.getLogger("thirdparty").warning(
        "pupil %s rejected", UPN, extra={"surname": "Smith", "batch": 7}
    )
    try:
        raise KeyError(UPN)
    except KeyError:
        stdlib_logging.getLogger("thirdparty").exception("lookup failed")

    output = stream.getvalue()
    assert_no_personal_data(output)
    assert "0A1C996B" not in output
    url_event, warning, failure = lines(stream)
    assert url_event["event"] == (
        'https://wenlock.isams.cloud:443 "POST /api/batch/1.0/xml.ashx'
        f'?apiKey={REDACTED} HTTP/1.1" 200'
    )
    assert (url_event["logger"], url_event["level"]) == ("urllib3.connectionpool", "debug")
    assert (warning["event"], warning["surname"], warning["batch"]) == (
        f"pupil {REDACTED} rejected",
        REDACTED,
        7,
    )
    assert "KeyError" in failure["exception"]


class _Keep(stdlib_logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[stdlib_logging.LogRecord] = []

    def emit(self, record: stdlib_logging.LogRecord) -> None:
        self.records.append(record)


def test_other_handlers_on_the_root_logger_receive_redacted_events(
    configure: Callable[..., io.StringIO],
) -> None:
    configure()
    other = _Keep()
    stdlib_logging.getLogger().addHandler(other)
    try:
        get_logger("t").info(f"sync.pupil_updated {UPN}", surname="Smith", school_id="oakfield")
    finally:
        stdlib_logging.getLogger().removeHandler(other)

    [record] = other.records
    assert record.msg == {
        "event": f"sync.pupil_updated {REDACTED}",
        "surname": REDACTED,
        "school_id": "oakfield",
        "logger": "t",
        "level": "info",
        "timestamp": record.msg["timestamp"],
    }  # type: ignore[index]


def test_secrets_under_secret_keys_are_redacted(configure: Callable[..., io.StringIO]) -> None:
    stream = configure()

    get_logger("t").info(
        "adapter.authenticated",
        password="hunter2-long",
        api_key="k-123456",
        headers={"Authorization": "Basic b2FrOmh1bnRlcjI="},
        token_env="DFE_TOKEN",
    )

    [event] = lines(stream)
    assert (event["password"], event["api_key"], event["headers"]["Authorization"]) == (
        REDACTED,
        REDACTED,
        REDACTED,
    )
    assert event["token_env"] == "DFE_TOKEN"  # the *name* of a variable is not a secret


def test_console_renderer_is_redacted_too(configure: Callable[..., io.StringIO]) -> None:
    stream = configure(json_output=False)

    get_logger("t").info(
        "sync.pupil_updated %s", UPN, forename="Ava", dob=DOB, school_id="oakfield"
    )
    try:
        raise RuntimeError(f"Ava Smith {UPN}")
    except RuntimeError:
        get_logger("t").exception("sync.failed", forename="Ava", surname="Smith")

    output = stream.getvalue()
    assert_no_personal_data(output)
    assert "sync.pupil_updated" in output and "school_id=oakfield" in output
    assert "RuntimeError" in output
    assert not output.lstrip().startswith("{")


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_json_is_chosen_unless_the_stream_is_a_terminal(
    configure: Callable[..., io.StringIO],
) -> None:
    pipe = io.StringIO()
    configure_logging("INFO", stream=pipe)
    get_logger("t").info("run.started", school_id="oakfield")
    assert json.loads(pipe.getvalue())["event"] == "run.started"

    terminal = FakeTerminal()
    configure_logging("INFO", stream=terminal)
    get_logger("t").info("run.started", school_id="oakfield")
    text = terminal.getvalue()
    assert "run.started" in text and "school_id" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_timestamps_are_iso_utc(configure: Callable[..., io.StringIO]) -> None:
    stream = configure()
    before = datetime.now(UTC)

    get_logger("t").info("run.started")

    [event] = lines(stream)
    assert event["timestamp"].endswith("Z")
    stamp = datetime.fromisoformat(event["timestamp"])
    assert stamp.utcoffset() is not None and stamp.utcoffset().total_seconds() == 0
    assert before <= stamp <= datetime.now(UTC)


def test_level_filters_and_reconfiguring_does_not_duplicate_output(
    configure: Callable[..., io.StringIO],
) -> None:
    first = configure("DEBUG")
    second = configure("WARNING")
    log = get_logger("t")

    log.info("run.started")
    stdlib_logging.getLogger("lib").info("noise")
    log.warning("run.slow", seconds=12)

    assert first.getvalue() == ""
    assert [e["event"] for e in lines(second)] == ["run.slow"]


def test_logs_go_to_stderr_by_default(
    configure: Callable[..., io.StringIO], capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", json=True)

    get_logger("t").info("run.started", upn=UPN)

    captured = capsys.readouterr()
    assert captured.out == ""
    assert json.loads(captured.err)["upn"] == REDACTED


def test_logger_used_before_configuration_still_redacts(capsys: pytest.CaptureFixture[str]) -> None:
    structlog.reset_defaults()
    try:
        get_logger("early").info(f"import.checked {UPN}", surname="Smith", school_id="oakfield")
    finally:
        structlog.reset_defaults()

    err = capsys.readouterr().err
    assert "import.checked" in err and "school_id=oakfield" in err
    assert_no_personal_data(err)


def test_unknown_log_level_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        configure_logging("LOUD", stream=io.StringIO())


# --------------------------------------------------------------------------------------------
# The processor on its own
# --------------------------------------------------------------------------------------------


def test_redaction_is_idempotent_and_does_not_mutate_the_input() -> None:
    event = {"event": f"x {UPN}", "surname": "Smith", "nested": {"dob": DOB}}
    original = json.loads(json.dumps(event))

    once = redact_pupil_data(None, "info", event)
    twice = redact_pupil_data(None, "info", once)

    assert (
        once
        == twice
        == {"event": f"x {REDACTED}", "surname": REDACTED, "nested": {"dob": REDACTED}}
    )
    assert event == original


def test_none_under_a_personal_key_stays_none() -> None:
    assert redact_pupil_data(None, "info", {"event": "e", "former_upn": None}) == {
        "event": "e",
        "former_upn": None,
    }


@pytest.mark.parametrize(
    "token",
    [
        "I12345678901A",  # I is never a UPN check letter
        "A1234567890123",  # 14 characters
        "A12345678901",  # 12 characters
        "xA123456789012",  # part of a longer token
        "2025-09-04",
    ],
)
def test_tokens_that_are_not_upns_are_kept(token: str) -> None:
    assert redact_pupil_data(None, "info", {"event": f"saw {token} today"})["event"] == (
        f"saw {token} today"
    )


_UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"
upns = st.builds(
    lambda letter, digits, last: letter + digits + last,
    st.sampled_from(_UPN_LETTERS),
    st.text(alphabet="0123456789", min_size=11, max_size=11),
    st.sampled_from("0123456789" + _UPN_LETTERS),
)
# Text without letters or digits cannot join onto the UPN or form another one.
surrounding = st.text(alphabet=st.characters(exclude_categories=("L", "N", "Cs")), max_size=20)


@given(upn=upns, before=surrounding, after=surrounding)
def test_any_upn_shaped_token_is_scrubbed_from_any_string(
    upn: str, before: str, after: str
) -> None:
    assert UPN_PATTERN.fullmatch(upn)

    out = redact_pupil_data(None, "info", {"event": before + upn + after, "n": [before + upn]})

    assert out["event"] == before + REDACTED + after
    assert out["n"] == [before + REDACTED]
