"""Transports: how a queued return leaves (HTTP POST, SMTP, folder drop), picked from the
``[transports]`` table of the config.

``dfe-daily`` goes through ``[transports.dfe]``; the LA notifications through
``[transports.la."<la_code>"]`` of the school's LA.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from registerwatch.errors import ConfigError
from registerwatch.exports.registry import LA_RETURNS
from registerwatch.outbox.transports.base import (
    DEFAULT_RETRY,
    Receipt,
    RemoteAnswer,
    RetryPolicy,
    Submission,
    SubmissionDeferredError,
    SubmissionRejectedError,
    Transport,
)
from registerwatch.outbox.transports.folder import FolderTransport
from registerwatch.outbox.transports.http import HttpTransport
from registerwatch.outbox.transports.smtp import SmtpTransport

if TYPE_CHECKING:
    from registerwatch.config import SchoolSettings, Settings, TransportSettings

__all__ = [
    "DFE_RETURNS",
    "SUBMITTED_RETURNS",
    "FolderTransport",
    "HttpTransport",
    "Receipt",
    "RemoteAnswer",
    "RetryPolicy",
    "SmtpTransport",
    "Submission",
    "SubmissionDeferredError",
    "SubmissionRejectedError",
    "Transport",
    "TransportFactory",
    "transport_for",
    "transport_target",
]

DFE_RETURNS = ("dfe-daily",)
# The returns the outbox submits. The census and CTFs leave by other routes (COLLECT, the
# school-to-school service), so queuing one is refused rather than sent somewhere wrong.
SUBMITTED_RETURNS = (*DFE_RETURNS, *LA_RETURNS)

TransportFactory = Callable[..., Transport]
"""``(settings, return_kind, school, environ=None) -> Transport``; tests pass their own."""


def transport_target(return_kind: str, school: SchoolSettings) -> tuple[str, str]:
    """The TOML table that configures the transport for this return and school, and a label
    naming it in messages: e.g. ``('transports.la."893"', "LA '893' transport")``."""
    if return_kind in DFE_RETURNS:
        return "transports.dfe", "DfE transport"
    if return_kind in LA_RETURNS:
        return f'transports.la."{school.la_code}"', f"LA '{school.la_code}' transport"
    raise ConfigError(
        f"return {return_kind!r} is not submitted through the outbox (only "
        f"{', '.join(SUBMITTED_RETURNS)} are)"
    )


def transport_for(
    settings: Settings,
    return_kind: str,
    school: SchoolSettings,
    environ: Mapping[str, str] | None = None,
    *,
    retry: RetryPolicy = DEFAULT_RETRY,
    sleep: Callable[[float], None] = time.sleep,
) -> Transport:
    """The transport for ``return_kind`` from ``school``, with its credentials read now.

    Raises ConfigError naming the TOML table to add when none is configured, and
    CredentialError (a ConfigError) naming the variable or file when a secret cannot be read.
    """
    toml_key, label = transport_target(return_kind, school)
    configured: TransportSettings | None = (
        settings.transports.dfe
        if return_kind in DFE_RETURNS
        else settings.transports.la.get(school.la_code)
    )
    if configured is None:
        whom = "the DfE" if return_kind in DFE_RETURNS else f"LA {school.la_code!r}"
        raise ConfigError(
            f"no transport for {whom} (school {school.id!r}, return {return_kind}): add a "
            f'[{toml_key}] table to the config with kind = "http", "smtp" or "folder" '
            "(see `registerwatch config example`)"
        )
    credentials = configured.credentials(environ)
    label = f"{label} ({configured.kind})"
    if configured.kind == "http":
        assert configured.url is not None  # required for http by the settings model
        return HttpTransport(
            configured.url,
            label=label,
            toml_key=toml_key,
            token=credentials.get("token"),
            token_hint=_hint(configured, "token"),
            retry=retry,
            sleep=sleep,
            timeout=(
                5.0,
                configured.timeout_seconds or 60.0,
                configured.deadline_seconds or 90.0,
            ),
        )
    if configured.kind == "smtp":
        assert configured.host is not None and configured.from_ is not None
        assert configured.to is not None
        hints = [h for h in (_hint(configured, "username"), _hint(configured, "password")) if h]
        return SmtpTransport(
            configured.host,
            configured.smtp_port,
            security=configured.security or "starttls",
            from_addr=configured.from_,
            to_addrs=configured.to,
            label=label,
            toml_key=toml_key,
            username=credentials.get("username"),
            password=credentials.get("password"),
            credential_hint=" and ".join(hints) or None,
            retry=retry,
            sleep=sleep,
            timeout=configured.timeout_seconds or 30.0,
            deadline=configured.deadline_seconds or 120.0,
        )
    assert configured.path is not None
    return FolderTransport(configured.path, label=label, toml_key=toml_key)


def _hint(configured: TransportSettings, credential: str) -> str | None:
    """Where a credential comes from, to name in an error (the name, never the value)."""
    env_name: str | None = getattr(configured, f"{credential}_env")
    if env_name is not None:
        return env_name
    file = getattr(configured, f"{credential}_file")
    return None if file is None else f"the {credential} in {file}"
