"""``[transports]``: how returns reach each LA (by LA code) and the DfE."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from registerwatch.config.credentials import check_key_used, read_credential
from registerwatch.config.types import (
    ConfigPath,
    Email,
    EnvVarName,
    Problem,
    Section,
    check_http_url,
    is_loopback,
    raise_problems,
)

TransportKind = Literal["http", "smtp", "folder"]

# Which keys each kind uses; any other kind-specific key is an error, so a half-converted
# transport (kind changed, old keys left behind) is caught.
_TRANSPORT_KEYS: dict[str, tuple[str, ...]] = {
    "http": ("url", "token_env", "token_file"),
    "smtp": (
        "host",
        "port",
        "security",
        "from",
        "to",
        "username_env",
        "username_file",
        "password_env",
        "password_file",
    ),
    "folder": ("path",),
}
_TRANSPORT_REQUIRED: dict[str, tuple[str, ...]] = {
    "http": ("url",),
    "smtp": ("host", "from", "to"),
    "folder": ("path",),
}
_SMTP_DEFAULT_PORT = {"starttls": 587, "tls": 465, "none": 25}


class TransportSettings(Section):
    """One way to deliver a return: ``kind = "http" | "smtp" | "folder"`` and that kind's keys."""

    kind: TransportKind
    # http: POST the artefact here, with an optional bearer token.
    url: str | None = Field(default=None, validate_default=True)
    token_env: EnvVarName | None = None
    token_file: ConfigPath | None = None
    # smtp
    host: str | None = Field(default=None, validate_default=True)
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] | None = None
    from_: Email | None = Field(default=None, alias="from", validate_default=True)
    to: (
        Annotated[
            list[Email],
            BeforeValidator(lambda v: [v] if isinstance(v, str) else v),
            Field(min_length=1),
        ]
        | None
    ) = Field(default=None, validate_default=True)
    username_env: EnvVarName | None = None
    username_file: ConfigPath | None = None
    password_env: EnvVarName | None = None
    password_file: ConfigPath | None = None
    # folder: drop the artefact into this directory (e.g. a share the LA collects from).
    path: ConfigPath | None = Field(default=None, validate_default=True)
    # http and smtp: per-read (per-command) timeout and the whole delivery's wall-clock deadline;
    # unset means the transport's defaults (60 s / 90 s for http, 30 s / 120 s for smtp).
    timeout_seconds: float | None = Field(default=None, gt=0, le=600)
    deadline_seconds: float | None = Field(default=None, gt=0, le=3600)

    _owner: str = PrivateAttr(default="transport")

    @field_validator(
        "url",
        "token_env",
        "token_file",
        "host",
        "port",
        "security",
        "from_",
        "to",
        "username_env",
        "username_file",
        "password_env",
        "password_file",
        "path",
    )
    @classmethod
    def _belongs_to_kind(cls, value: Any, info: ValidationInfo) -> Any:
        kind = info.data.get("kind")
        if kind is None:  # kind itself is invalid; that error is enough
            return value
        key = "from" if info.field_name == "from_" else info.field_name
        assert key is not None
        if value is None:
            if key in _TRANSPORT_REQUIRED[kind]:
                raise ValueError(f"field required for kind {kind!r}")
            return value
        check_key_used(kind, value, _TRANSPORT_KEYS, key)
        if key == "url":
            return check_http_url(value)
        if key == "host" and not value:
            raise ValueError("must not be empty")
        return value

    @model_validator(mode="after")
    def _check_pairs(self) -> TransportSettings:
        problems: list[Problem] = []
        for cred in ("token", "username", "password"):
            if (
                getattr(self, f"{cred}_env") is not None
                and getattr(self, f"{cred}_file") is not None
            ):
                problems.append(((f"{cred}_file",), f"set only one of {cred}_env and {cred}_file"))
        if self.kind == "smtp":
            has_user = self.username_env is not None or self.username_file is not None
            has_password = self.password_env is not None or self.password_file is not None
            if has_user != has_password:
                missing = "password" if has_user else "username"
                problems.append(
                    (
                        (f"{missing}_env",),
                        f"field required when SMTP authentication is used (or set {missing}_file)",
                    )
                )
            if self.security == "none" and self.host is not None and not is_loopback(self.host):
                problems.append(
                    (("security",), '"none" (no TLS) is allowed only for a loopback host')
                )
        raise_problems(problems)
        return self

    @property
    def smtp_port(self) -> int:
        """The SMTP port, defaulting by ``security`` (587 STARTTLS, 465 TLS, 25 none)."""
        return self.port or _SMTP_DEFAULT_PORT[self.security or "starttls"]

    def credentials(self, environ: Mapping[str, str] | None = None) -> dict[str, SecretStr]:
        """Read this transport's secrets now: ``token`` (http) or ``username``/``password`` (smtp)."""
        env = os.environ if environ is None else environ
        out: dict[str, SecretStr] = {}
        for cred, what in (
            ("token", "bearer token"),
            ("username", "SMTP user name"),
            ("password", "SMTP password"),
        ):
            env_name, file = getattr(self, f"{cred}_env"), getattr(self, f"{cred}_file")
            if env_name is not None or file is not None:
                out[cred] = read_credential(self._owner, what, env_name, file, env)
        return out


def _la_code_key(value: str) -> str:
    if not re.fullmatch(r"[0-9]{3}", value):
        raise ValueError('the table name must be a 3-digit LA code, e.g. [transports.la."893"]')
    return value


class TransportsSettings(Section):
    """``[transports]``: how returns reach each LA (by LA code) and the DfE."""

    la: dict[Annotated[str, AfterValidator(_la_code_key)], TransportSettings] = Field(
        default_factory=dict
    )
    dfe: TransportSettings | None = None
    # Wall-clock budget for one `submit`: items not reached by then stay queued with the reason
    # (a hung receiver must not hold the run lock for hours).
    submit_budget_seconds: float = Field(default=900.0, gt=0, le=86400)

    @model_validator(mode="after")
    def _name_owners(self) -> TransportsSettings:
        # Credential errors name the transport, so the engineer knows which variable is meant.
        for code, transport in self.la.items():
            transport._owner = f"transport for LA '{code}'"
        if self.dfe is not None:
            self.dfe._owner = "DfE transport"
        return self
