"""Credentials: which secrets each vendor needs, and reading one from its variable or file.

The config names *where* secrets live (an environment variable or a file), never the secrets
themselves; they are read at use time and handed out as :class:`pydantic.SecretStr`, so they
never appear in a repr, a model dump, an error or a log line.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from registerwatch.adapters.vendors import vendor_credentials
from registerwatch.config.types import Problem
from registerwatch.errors import CredentialError
from registerwatch.logging import register_secret
from registerwatch.schema.models import Vendor

# Which credentials each vendor's API takes, as each vendor declares them (FACTS.credentials:
# Arbor HTTP Basic; iSAMS OAuth2 client credentials or an API key; GO 4 Schools a bearer key;
# a CTF is a file and needs none). Each tuple is one complete alternative.
VENDOR_CREDENTIALS: dict[Vendor, tuple[tuple[str, ...], ...]] = vendor_credentials()
CREDENTIAL_LABELS = {
    "username": "API user name",
    "password": "API password",
    "client_id": "OAuth client id",
    "client_secret": "OAuth client secret",
    "api_key": "API key",
}
VENDOR_KEYS: dict[str, tuple[str, ...]] = {
    vendor.value: tuple(
        f"{cred}_{how}" for mode in modes for cred in mode for how in ("env", "file")
    )
    for vendor, modes in VENDOR_CREDENTIALS.items()
}


MAX_CREDENTIAL_LENGTH = 4096  # no API key, password or token is longer; a whole file is
# Identities, not secrets: a user name such as "registerwatch" is an ordinary word, and
# redacting it would blank that word out of every later message and log line.
IDENTITY_LABELS = frozenset({"API user name", "OAuth client id", "SMTP user name"})


def _checked(owner: str, value: str, where: str, what: str) -> SecretStr:
    """Refuse a value no credential can be, without ever quoting it; register the rest with
    the redactor so no error text or log line can carry it."""
    if "\n" in value or "\r" in value:
        problem = "holds more than one line (a credential is exactly one value)"
    elif any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        problem = "contains a control character"
    elif len(value) > MAX_CREDENTIAL_LENGTH:
        problem = f"is longer than {MAX_CREDENTIAL_LENGTH} characters"
    else:
        if not what.endswith(tuple(IDENTITY_LABELS)):
            register_secret(value)
        return SecretStr(value)
    raise CredentialError(f"{owner}: {where} {problem}; it should hold only the {what}")


def read_credential(
    owner: str, what: str, env_name: str | None, file: Path | None, environ: Mapping[str, str]
) -> SecretStr:
    """Read one secret from its environment variable or file, or say exactly what to set."""
    if env_name is not None:
        value = environ.get(env_name)
        if value is None:
            raise CredentialError(
                f"{owner}: environment variable {env_name} is not set (it should hold the {what})"
            )
        if not value.strip():
            raise CredentialError(
                f"{owner}: environment variable {env_name} is empty (it should hold the {what})"
            )
        return _checked(owner, value, f"environment variable {env_name}", what)
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CredentialError(
                f"{owner}: credential file {file} does not exist (create it holding the {what})"
            ) from None
        except UnicodeDecodeError:
            # `from None`: the decode error carries the file's raw bytes.
            raise CredentialError(f"{owner}: credential file {file} is not UTF-8 text") from None
        except OSError as exc:
            raise CredentialError(
                f"{owner}: cannot read credential file {file}: {exc.strerror}"
            ) from None
        # `echo secret > file` and editors add a final newline; nothing else is trimmed because
        # spaces can be part of a password.
        value = text.removesuffix("\n").removesuffix("\r")
        if not value:
            raise CredentialError(
                f"{owner}: credential file {file} is empty (it should hold the {what})"
            )
        return _checked(owner, value, f"credential file {file}", what)
    raise CredentialError(f"{owner}: no {what} is configured (set its *_env or *_file key)")


def credential_problems(
    model: BaseModel, modes: tuple[tuple[str, ...], ...], owner_kind: str
) -> list[Problem]:
    """Check that one complete set of credentials (a "mode") is named, each by env or file.

    ``modes`` lists the alternatives a service accepts, e.g. iSAMS takes a client id and secret
    (REST, OAuth2) or an API key (Batch API). An empty ``modes`` means no credentials.
    """
    problems: list[Problem] = []

    def given(cred: str) -> bool:
        return (
            getattr(model, f"{cred}_env") is not None or getattr(model, f"{cred}_file") is not None
        )

    for mode in modes:
        for cred in mode:
            if (
                getattr(model, f"{cred}_env") is not None
                and getattr(model, f"{cred}_file") is not None
            ):
                problems.append(((f"{cred}_file",), f"set only one of {cred}_env and {cred}_file"))
    if not modes:
        return problems
    complete = [mode for mode in modes if all(given(c) for c in mode)]
    started = [mode for mode in modes if any(given(c) for c in mode)]
    if complete:
        # A second, half-written mode is still a mistake worth naming.
        incomplete = [m for m in started if m not in complete]
    elif started:
        incomplete = started
    elif len(modes) == 1:
        incomplete = list(modes)
    else:
        options = " or ".join(" and ".join(f"{c}_env" for c in mode) for mode in modes)
        problems.append(
            (
                (),
                f"credentials required for {owner_kind}: set {options} "
                "(each may be a *_file instead)",
            )
        )
        return problems
    for mode in incomplete:
        for cred in mode:
            if not given(cred):
                problems.append(((f"{cred}_env",), f"field required (or set {cred}_file)"))
    return problems


def check_key_used(kind: str, value: Any, allowed: dict[str, tuple[str, ...]], field: str) -> None:
    """Reject a key that the chosen vendor / transport kind never uses."""
    if value is None:
        return
    users = allowed.get(kind)
    if users is not None and field not in users:
        uses = f"it uses: {', '.join(users)}" if users else "it needs no credentials"
        raise ValueError(f"not used by {kind!r} ({uses})")
