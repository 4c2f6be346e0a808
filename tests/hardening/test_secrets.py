"""Credentials are checked when read and never printed; one redactor knows every secret."""

from __future__ import annotations

import pytest

from registerwatch.config.credentials import read_credential
from registerwatch.errors import CredentialError
from registerwatch.logging import REDACTED, redact_text


def test_a_newline_in_an_environment_credential_is_refused_without_quoting_it() -> None:
    secret = "tok-abc123\nX-Evil: 1"
    with pytest.raises(CredentialError) as caught:
        read_credential("LA '881'", "bearer token", "LA_TOKEN", None, {"LA_TOKEN": secret})
    assert "LA_TOKEN holds more than one line" in str(caught.value)
    assert "tok-abc123" not in str(caught.value) and "Evil" not in str(caught.value)


def test_a_multi_line_credential_file_names_the_file_not_its_content(tmp_path) -> None:
    path = tmp_path / "shadow"
    path.write_text("first-line-value\nAva Smith 2012-03-04\n")
    with pytest.raises(CredentialError) as caught:
        read_credential("school 'oak'", "API key", None, path, {})
    text = str(caught.value)
    assert f"credential file {path} holds more than one line" in text
    assert "first-line-value" not in text and "Ava" not in text


def test_control_characters_and_huge_values_are_refused(tmp_path) -> None:
    with pytest.raises(CredentialError, match="control character"):
        read_credential("o", "key", "K", None, {"K": "abc\x00def"})
    with pytest.raises(CredentialError, match="longer than 4096"):
        read_credential("o", "key", "K", None, {"K": "a" * 5000})


def test_one_final_newline_in_a_file_is_still_fine(tmp_path) -> None:
    path = tmp_path / "key"
    path.write_text("s3cret-value-1\n")
    assert read_credential("o", "key", None, path, {}).get_secret_value() == "s3cret-value-1"


def test_every_secret_read_is_removed_from_any_text_the_redactor_sees() -> None:
    read_credential("o", "key", "K", None, {"K": "zq-very-secret-77"})
    text = "requests: Invalid header value b'Bearer zq-very-secret-77\\n'"
    assert "zq-very-secret-77" not in redact_text(text)
    assert REDACTED in redact_text(text)


def test_pupil_values_and_dates_are_removed_from_free_text() -> None:
    text = "pupil Ava Smith (DOB 2012-03-04, 04/03/2012) is not on roll; UPN A881400119001"
    out = redact_text(text, pupil_values=["Ava Smith"], dates=True)
    for leak in ("Ava", "Smith", "2012-03-04", "04/03/2012", "A881400119001"):
        assert leak not in out
