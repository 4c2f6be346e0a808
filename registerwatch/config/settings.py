"""Settings: one TOML file, validated into typed, immutable models.

The whole product reads its configuration through :func:`load_config`. The file names *where*
secrets live (an environment variable or a file), never the secrets themselves; they are read at
use time by ``credentials(environ)`` and handed out as :class:`pydantic.SecretStr`, so they never
appear in a repr, a model dump, an error or a log line.

Every problem in a file is reported at once, each named by its TOML path
(``schools[1].mis.password_env: field required``), because an IT engineer fixing a config should
not have to run the tool once per typo. Checks that span several keys of one table (which
credentials a vendor needs, overlapping terms) run once that table's own keys are valid; where a
check only needs keys written earlier in the same table it is a field check, so it is reported
alongside everything else.

Relative paths (the SQLite store, credential files, CTF folders, folder transports) are resolved
against the directory holding the config file, not the working directory, so a nightly job started
from anywhere finds the same files.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
import tomllib
import types
from collections.abc import Mapping
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from registerwatch.errors import ConfigError, CredentialError
from registerwatch.schema.models import (
    Calendar,
    Closure,
    RegisterTimes,
    School,
    Term,
    Vendor,
)

CONFIG_ENV_VAR = "REGISTERWATCH_CONFIG"
"""Environment variable naming the config file when ``--config`` is not given."""

EXAMPLE_CONFIG_PATH = Path(__file__).with_name("example.toml")
"""The shipped, fully commented example configuration."""

DEFAULT_STORE_URL = "sqlite:///registerwatch.sqlite"
"""Relative, so it lands next to the config file (see :class:`StoreSettings`)."""

# GIAS "phase of education", kebab-cased. Special schools and PRUs are "not-applicable" in GIAS.
Phase = Literal[
    "nursery",
    "primary",
    "middle-deemed-primary",
    "secondary",
    "middle-deemed-secondary",
    "16-plus",
    "all-through",
    "not-applicable",
]
PHASES: tuple[str, ...] = get_args(Phase)

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]


# --------------------------------------------------------------------------------------------
# Reusable field types. Messages never echo the value: a misplaced secret must not end up in an
# error shown on screen or written to a log.
# --------------------------------------------------------------------------------------------

def _digits(count: int, example: str) -> Any:
    pattern = re.compile(rf"[0-9]{{{count}}}")  # \d would accept non-ASCII digits

    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f'must be exactly {count} digits in quotes, e.g. "{example}"')
        return value

    return AfterValidator(check)


def _require_str(value: Any) -> Any:
    # TOML integers would lose leading zeros and pydantic's own message ("Input should be a valid
    # string") does not say how to fix it.
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError("must be a string: put the number in quotes")
    return value


Urn = Annotated[str, BeforeValidator(_require_str), _digits(6, "137245")]
Laestab = Annotated[str, BeforeValidator(_require_str), _digits(7, "8932001")]
LaCode = Annotated[str, BeforeValidator(_require_str), _digits(3, "893")]

_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]*")


def _check_slug(value: str) -> str:
    if not _SLUG.fullmatch(value):
        raise ValueError(
            "must be a lowercase slug (letters a-z, digits, '-' and '_', starting with a letter "
            "or digit), e.g. \"oakfield\""
        )
    return value


SchoolId = Annotated[str, AfterValidator(_check_slug)]

# Upper case only: a password pasted into `password_env` by mistake would otherwise be accepted
# as a variable name and then echoed back in "environment variable ... is not set".
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


def _check_env_name(value: str) -> str:
    if not _ENV_NAME.fullmatch(value):
        raise ValueError(
            "must be the NAME of an environment variable (upper-case letters, digits and '_'), "
            "never the secret itself"
        )
    return value


EnvVarName = Annotated[str, AfterValidator(_check_env_name)]


def _non_empty_path(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        raise ValueError("must not be empty")
    return value


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    value = value.expanduser()
    config_dir = (info.context or {}).get("config_dir")
    if config_dir is not None and not value.is_absolute():
        value = Path(config_dir) / value
    return value


ConfigPath = Annotated[Path, BeforeValidator(_non_empty_path), AfterValidator(_resolve_path)]
"""A path; relative ones are resolved against the config file's directory."""

NonEmptyStr = Annotated[str, Field(min_length=1)]

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


def _check_email(value: str) -> str:
    if not _EMAIL.fullmatch(value):
        raise ValueError('must be an email address, e.g. "attendance@la.example"')
    return value


Email = Annotated[str, AfterValidator(_check_email)]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_http_url(value: str) -> str:
    """An http(s) URL without embedded credentials; plain http only to this machine.

    Pupil data and Basic-auth passwords cross these links, so cleartext is allowed only for
    loopback (the simulators and local test servers).
    """
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError('must be an http(s) URL, e.g. "https://school.uk.arbor.sc/rest-v2"')
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not contain a user name or password; name them with *_env or *_file")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError("must use https (plain http is allowed only for 127.0.0.1 / localhost)")
    # Adapters join resource paths onto it; one spelling avoids "//" and missing segments.
    return value.rstrip("/")


def _raise_problems(problems: list[Problem]) -> None:
    """Report several problems, each at its own key, from one cross-key check.

    Pydantic lets a model validator raise only one error at the table's own location, so the
    individual problems travel in the error context and :func:`_format_errors` expands them.
    """
    if problems:
        summary = "; ".join(f"{toml_path(loc) or '(table)'}: {msg}" for loc, msg in problems)
        raise PydanticCustomError(
            "config_problems", "{summary}", {"summary": summary, "problems": problems}
        )


class _Section(BaseModel):
    # extra="forbid": a misspelt key is an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True,
                              populate_by_name=True)


# --------------------------------------------------------------------------------------------
# Credentials
# --------------------------------------------------------------------------------------------

def _read_credential(owner: str, what: str, env_name: str | None, file: Path | None,
                     environ: Mapping[str, str]) -> SecretStr:
    """Read one secret from its environment variable or file, or say exactly what to set."""
    if env_name is not None:
        value = environ.get(env_name)
        if value is None:
            raise CredentialError(
                f"{owner}: environment variable {env_name} is not set (it should hold the {what})"
            )
        if not value.strip():
            raise CredentialError(f"{owner}: environment variable {env_name} is empty "
                                  f"(it should hold the {what})")
        return SecretStr(value)
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
                f"{owner}: cannot read credential file {file}: {exc.strerror}") from None
        # `echo secret > file` and editors add a final newline; nothing else is trimmed because
        # spaces can be part of a password.
        value = text.rstrip("\r\n")
        if not value:
            raise CredentialError(f"{owner}: credential file {file} is empty "
                                  f"(it should hold the {what})")
        return SecretStr(value)
    raise CredentialError(f"{owner}: no {what} is configured (set its *_env or *_file key)")


def _credential_problems(model: BaseModel, modes: tuple[tuple[str, ...], ...],
                         owner_kind: str) -> list[Problem]:
    """Check that one complete set of credentials (a "mode") is named, each by env or file.

    ``modes`` lists the alternatives a service accepts, e.g. iSAMS takes a client id and secret
    (REST, OAuth2) or an API key (Batch API). An empty ``modes`` means no credentials.
    """
    problems: list[Problem] = []

    def given(cred: str) -> bool:
        return getattr(model, f"{cred}_env") is not None or getattr(model, f"{cred}_file") is not None

    for mode in modes:
        for cred in mode:
            if getattr(model, f"{cred}_env") is not None and getattr(model, f"{cred}_file") is not None:
                problems.append(((f"{cred}_file",),
                                 f"set only one of {cred}_env and {cred}_file"))
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
        problems.append(((), f"credentials required for {owner_kind}: set {options} "
                             "(each may be a *_file instead)"))
        return problems
    for mode in incomplete:
        for cred in mode:
            if not given(cred):
                problems.append(((f"{cred}_env",), f"field required (or set {cred}_file)"))
    return problems


def _check_key_used(kind: str, value: Any, allowed: dict[str, tuple[str, ...]],
                    field: str) -> None:
    """Reject a key that the chosen vendor / transport kind never uses."""
    if value is None:
        return
    users = allowed.get(kind)
    if users is not None and field not in users:
        uses = f"it uses: {', '.join(users)}" if users else "it needs no credentials"
        raise ValueError(f"not used by {kind!r} ({uses})")


# --------------------------------------------------------------------------------------------
# [store], [logging], [sync], [schedule]
# --------------------------------------------------------------------------------------------

_SQLITE_URL = re.compile(r"(sqlite(?:\+\w+)?):///(.*)", re.DOTALL)


class StoreSettings(_Section):
    """``[store]``: where registerwatch keeps its data (SQLAlchemy URL)."""

    url: str = Field(default=DEFAULT_STORE_URL, validate_default=True)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str, info: ValidationInfo) -> str:
        scheme = value.split(":", 1)[0].split("+", 1)[0]
        if scheme == "sqlite":
            match = _SQLITE_URL.fullmatch(value)
            if match is None:
                if value in ("sqlite://", "sqlite:"):
                    return value
                raise ValueError('must look like "sqlite:///registerwatch.sqlite"')
            prefix, rest = match.groups()
            path, sep, query = rest.partition("?")
            # ":memory:" and SQLite "file:" URIs (uri=true) are not filesystem paths.
            if path and path != ":memory:" and not path.startswith("file:"):
                file = Path(path).expanduser()
                config_dir = (info.context or {}).get("config_dir")
                if not file.is_absolute() and config_dir is not None:
                    file = Path(config_dir) / file
                path = file.as_posix()
            return f"{prefix}:///{path}{sep}{query}"
        if scheme == "postgresql":
            parts = urlsplit(value)
            if parts.password is not None or re.search(r"(?i)(^|&)password=", parts.query):
                # A password here would be in every repr of the settings; libpq reads it from the
                # environment or ~/.pgpass instead.
                raise ValueError("must not contain a password: set PGPASSWORD or use ~/.pgpass")
            return value
        raise ValueError('must be a "sqlite:///..." or "postgresql://..." URL')


class LoggingSettings(_Section):
    """``[logging]``: how much to log and in which format (logs go to stderr)."""

    level: Annotated[LogLevel, BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v)] = "INFO"
    format: Literal["auto", "json", "console"] = "auto"

    @property
    def json_output(self) -> bool | None:
        """The ``json`` argument for :func:`registerwatch.logging.configure_logging`."""
        return {"auto": None, "json": True, "console": False}[self.format]


class SyncSettings(_Section):
    """``[sync]``: how registers are pulled from the MIS."""

    # Registers can be amended after the day; without a change feed, sync re-pulls this window.
    trailing_school_days: int = Field(default=10, ge=1, le=60)
    # ... and every this many days the whole school year, so a change or deletion older than
    # the trailing window is still seen (0 = never after the first sync).
    full_repull_days: int = Field(default=7, ge=0, le=366)
    # iSAMS has no AM/PM flag: a registration at or after this time is the afternoon session.
    isams_pm_cutoff: time = time(12, 0)
    concurrency: int = Field(default=4, ge=1, le=32)
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)


class ScheduleSettings(_Section):
    """``[schedule]``: wall-clock times (Europe/London) for the daemon's jobs."""

    nightly: time = time(2, 0)
    dfe_daily: time = time(16, 0)
    returns: time = time(7, 0)


# --------------------------------------------------------------------------------------------
# [transports]
# --------------------------------------------------------------------------------------------

TransportKind = Literal["http", "smtp", "folder"]

# Which keys each kind uses; any other kind-specific key is an error, so a half-converted
# transport (kind changed, old keys left behind) is caught.
_TRANSPORT_KEYS: dict[str, tuple[str, ...]] = {
    "http": ("url", "token_env", "token_file"),
    "smtp": ("host", "port", "security", "from", "to", "username_env", "username_file",
             "password_env", "password_file"),
    "folder": ("path",),
}
_TRANSPORT_REQUIRED: dict[str, tuple[str, ...]] = {
    "http": ("url",), "smtp": ("host", "from", "to"), "folder": ("path",),
}
_SMTP_DEFAULT_PORT = {"starttls": 587, "tls": 465, "none": 25}


class TransportSettings(_Section):
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
    to: Annotated[list[Email], BeforeValidator(lambda v: [v] if isinstance(v, str) else v),
                  Field(min_length=1)] | None = Field(default=None, validate_default=True)
    username_env: EnvVarName | None = None
    username_file: ConfigPath | None = None
    password_env: EnvVarName | None = None
    password_file: ConfigPath | None = None
    # folder: drop the artefact into this directory (e.g. a share the LA collects from).
    path: ConfigPath | None = Field(default=None, validate_default=True)

    _owner: str = PrivateAttr(default="transport")

    @field_validator("url", "token_env", "token_file", "host", "port", "security", "from_", "to",
                     "username_env", "username_file", "password_env", "password_file", "path")
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
        _check_key_used(kind, value, _TRANSPORT_KEYS, key)
        if key == "url":
            return _check_http_url(value)
        if key == "host" and not value:
            raise ValueError("must not be empty")
        return value

    @model_validator(mode="after")
    def _check_pairs(self) -> TransportSettings:
        problems: list[Problem] = []
        for cred in ("token", "username", "password"):
            if getattr(self, f"{cred}_env") is not None and getattr(self, f"{cred}_file") is not None:
                problems.append(((f"{cred}_file",), f"set only one of {cred}_env and {cred}_file"))
        if self.kind == "smtp":
            has_user = self.username_env is not None or self.username_file is not None
            has_password = self.password_env is not None or self.password_file is not None
            if has_user != has_password:
                missing = "password" if has_user else "username"
                problems.append(((f"{missing}_env",),
                                 f"field required when SMTP authentication is used (or set {missing}_file)"))
            if self.security == "none" and self.host is not None and not _is_loopback(self.host):
                problems.append((("security",), '"none" (no TLS) is allowed only for a loopback host'))
        _raise_problems(problems)
        return self

    @property
    def smtp_port(self) -> int:
        """The SMTP port, defaulting by ``security`` (587 STARTTLS, 465 TLS, 25 none)."""
        return self.port or _SMTP_DEFAULT_PORT[self.security or "starttls"]

    def credentials(self, environ: Mapping[str, str] | None = None) -> dict[str, SecretStr]:
        """Read this transport's secrets now: ``token`` (http) or ``username``/``password`` (smtp)."""
        env = os.environ if environ is None else environ
        out: dict[str, SecretStr] = {}
        for cred, what in (("token", "bearer token"), ("username", "SMTP user name"),
                           ("password", "SMTP password")):
            env_name, file = getattr(self, f"{cred}_env"), getattr(self, f"{cred}_file")
            if env_name is not None or file is not None:
                out[cred] = _read_credential(self._owner, what, env_name, file, env)
        return out


def _la_code_key(value: str) -> str:
    if not re.fullmatch(r"[0-9]{3}", value):
        raise ValueError('the table name must be a 3-digit LA code, e.g. [transports.la."893"]')
    return value


class TransportsSettings(_Section):
    """``[transports]``: how returns reach each LA (by LA code) and the DfE."""

    la: dict[Annotated[str, AfterValidator(_la_code_key)], TransportSettings] = Field(default_factory=dict)
    dfe: TransportSettings | None = None

    @model_validator(mode="after")
    def _name_owners(self) -> TransportsSettings:
        # Credential errors name the transport, so the engineer knows which variable is meant.
        for code, transport in self.la.items():
            transport._owner = f"transport for LA '{code}'"
        if self.dfe is not None:
            self.dfe._owner = "DfE transport"
        return self


# --------------------------------------------------------------------------------------------
# [[schools]]
# --------------------------------------------------------------------------------------------

# Which credentials each vendor's API takes (reference/mis-apis.md): Arbor HTTP Basic; iSAMS
# OAuth2 client credentials (REST) or an API key (Batch XML); GO 4 Schools a bearer key; a CTF
# is a file and needs none. Each tuple is one complete alternative.
VENDOR_CREDENTIALS: dict[Vendor, tuple[tuple[str, ...], ...]] = {
    Vendor.ARBOR: (("username", "password"),),
    Vendor.ISAMS: (("client_id", "client_secret"), ("api_key",)),
    Vendor.GO4SCHOOLS: (("api_key",),),
    Vendor.CTF: (),
}
_CREDENTIAL_LABELS = {
    "username": "API user name", "password": "API password", "client_id": "OAuth client id",
    "client_secret": "OAuth client secret", "api_key": "API key",
}
_VENDOR_KEYS: dict[str, tuple[str, ...]] = {
    vendor.value: tuple(f"{cred}_{how}" for mode in modes for cred in mode for how in ("env", "file"))
    for vendor, modes in VENDOR_CREDENTIALS.items()
}


class MisSettings(_Section):
    """``[schools.mis]``: where the school's registers come from, and the names of its secrets."""

    vendor: Vendor
    base_url: str | None = Field(default=None, validate_default=True)
    path: ConfigPath | None = Field(default=None, validate_default=True)
    username_env: EnvVarName | None = None
    username_file: ConfigPath | None = None
    password_env: EnvVarName | None = None
    password_file: ConfigPath | None = None
    client_id_env: EnvVarName | None = None
    client_id_file: ConfigPath | None = None
    client_secret_env: EnvVarName | None = None
    client_secret_file: ConfigPath | None = None
    api_key_env: EnvVarName | None = None
    api_key_file: ConfigPath | None = None

    # Set by the enclosing school so credential errors can name it.
    _school_id: str | None = PrivateAttr(default=None)

    @field_validator("base_url", "path")
    @classmethod
    def _source_for_vendor(cls, value: Any, info: ValidationInfo) -> Any:
        vendor = info.data.get("vendor")
        if vendor is None:
            return value
        is_ctf = vendor is Vendor.CTF
        if info.field_name == "base_url":
            if is_ctf and value is not None:
                raise ValueError("not used by 'ctf' (set path to the CTF file or folder)")
            if not is_ctf and value is None:
                raise ValueError(f"field required for vendor '{vendor.value}'")
            return None if value is None else _check_http_url(value)
        if is_ctf and value is None:
            raise ValueError("field required for vendor 'ctf' (a CTF XML file or a folder of them)")
        if not is_ctf and value is not None:
            raise ValueError(f"not used by vendor '{vendor.value}' (only by 'ctf')")
        return value

    @field_validator(*(f"{c}_{h}" for c in _CREDENTIAL_LABELS for h in ("env", "file")))
    @classmethod
    def _credential_for_vendor(cls, value: Any, info: ValidationInfo) -> Any:
        vendor = info.data.get("vendor")
        if vendor is not None:
            assert info.field_name is not None
            _check_key_used(vendor.value, value, _VENDOR_KEYS, info.field_name)
        return value

    @model_validator(mode="after")
    def _check_credentials(self) -> MisSettings:
        _raise_problems(_credential_problems(self, VENDOR_CREDENTIALS[self.vendor],
                                             f"vendor '{self.vendor.value}'"))
        return self

    def credentials(self, environ: Mapping[str, str] | None = None) -> dict[str, SecretStr]:
        """Read the configured secrets now (``os.environ`` by default).

        Keys: ``username``/``password`` (arbor); ``client_id``/``client_secret`` and/or
        ``api_key`` (isams); ``api_key`` (go4schools); none for ctf. Raises CredentialError
        naming the school and the variable or file to set.
        """
        env = os.environ if environ is None else environ
        owner = f"school '{self._school_id}'" if self._school_id else "MIS"
        out: dict[str, SecretStr] = {}
        for mode in VENDOR_CREDENTIALS[self.vendor]:
            for cred in mode:
                env_name, file = getattr(self, f"{cred}_env"), getattr(self, f"{cred}_file")
                if env_name is None and file is None:
                    continue  # an alternative mode this school does not use (iSAMS)
                what = f"{self.vendor.value} {_CREDENTIAL_LABELS[cred]}"
                out[cred] = _read_credential(owner, what, env_name, file, env)
        return out


class CalendarSettings(_Section):
    """``[schools.calendar]``: term dates, closures and register times."""

    terms: list[Term] = Field(min_length=1)
    closures: list[Closure] = Field(default_factory=list)
    register_times: RegisterTimes = Field(default_factory=RegisterTimes)

    @model_validator(mode="after")
    def _check_dates(self) -> CalendarSettings:
        problems: list[Problem] = []
        # Half-terms are the gaps between terms, so order and overlap matter: an overlap would
        # count a holiday as school days.
        for i in range(1, len(self.terms)):
            before, term = self.terms[i - 1], self.terms[i]
            if term.start <= before.end:
                problems.append(((("terms", i, "start")),
                                 f"{term.start} is not after terms[{i - 1}] ends ({before.end}); "
                                 "terms must be in date order and must not overlap"))
        sessions_by_day: dict[date, tuple[int, set[str]]] = {}
        for i, closure in enumerate(self.closures):
            day = closure.date
            if not any(t.start <= day <= t.end for t in self.terms):
                problems.append((("closures", i, "date"),
                                 f"{day} is not inside any term (only term days can be closed)"))
            elif day.weekday() >= 5:
                problems.append((("closures", i, "date"),
                                 f"{day} is a {day.strftime('%A')}, not a school day"))
            sessions = {"AM", "PM"} if closure.session == "both" else {closure.session}
            if day in sessions_by_day and sessions_by_day[day][1] & sessions:
                problems.append((("closures", i),
                                 f"closes {day} again (already closed by closures[{sessions_by_day[day][0]}])"))
            first, seen = sessions_by_day.get(day, (i, set()))
            sessions_by_day[day] = (first, seen | sessions)
        times = self.register_times
        am_close = _add_minutes(times.am_open, times.close_after_minutes)
        if am_close is None or am_close > times.pm_open:
            closes = "after midnight" if am_close is None else f"{am_close:%H:%M}"
            problems.append((("register_times", "pm_open"),
                             f"must be after the morning register closes "
                             f"(am_open + close_after_minutes = {closes})"))
        _raise_problems(problems)
        return self


def _add_minutes(at: time, minutes: int) -> time | None:
    """``at`` plus ``minutes``, or None when that passes midnight."""
    total = at.hour * 60 + at.minute + minutes
    return None if total >= 24 * 60 else time(total // 60, total % 60)


class SchoolSettings(_Section):
    """One ``[[schools]]`` entry."""

    id: SchoolId
    urn: Urn
    laestab: Laestab
    name: NonEmptyStr
    la_code: LaCode
    phase: Phase
    mis: MisSettings
    calendar: CalendarSettings

    @field_validator("la_code")
    @classmethod
    def _matches_laestab(cls, value: str, info: ValidationInfo) -> str:
        laestab = info.data.get("laestab")
        if laestab is not None and laestab[:3] != value:
            raise ValueError(
                f"does not match laestab, which starts {laestab[:3]} "
                "(a LAESTAB is the 3-digit LA code followed by the 4-digit establishment number)")
        return value

    @model_validator(mode="after")
    def _name_mis_owner(self) -> SchoolSettings:
        self.mis._school_id = self.id
        return self

    def to_school(self) -> School:
        return School(id=self.id, urn=self.urn, laestab=self.laestab, name=self.name,
                      la_code=self.la_code, phase=self.phase, vendor=self.mis.vendor)

    def to_calendar(self) -> Calendar:
        return Calendar(school_id=self.id, terms=list(self.calendar.terms),
                        closures=list(self.calendar.closures),
                        register_times=self.calendar.register_times)


class Settings(_Section):
    """The whole configuration file."""

    store: StoreSettings = Field(default_factory=dict, validate_default=True)  # type: ignore[arg-type]
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    transports: TransportsSettings = Field(default_factory=TransportsSettings)
    schools: list[SchoolSettings] = Field(min_length=1)

    _source: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check_schools(self) -> Settings:
        problems: list[Problem] = []
        for key in ("id", "urn", "laestab"):
            seen: dict[str, int] = {}
            for i, school in enumerate(self.schools):
                value = getattr(school, key)
                if value in seen:
                    problems.append((("schools", i, key),
                                     f"duplicate: schools[{seen[value]}] has the same {key}"))
                seen.setdefault(value, i)
        cutoff = self.sync.isams_pm_cutoff
        for i, school in enumerate(self.schools):
            times = school.calendar.register_times
            if school.mis.vendor is Vendor.ISAMS and not times.am_open < cutoff <= times.pm_open:
                # Otherwise morning registrations would be filed as PM, or the reverse.
                problems.append((("sync", "isams_pm_cutoff"),
                                 f"{cutoff:%H:%M} must be after school '{school.id}' am_open "
                                 f"({times.am_open:%H:%M}) and no later than its pm_open "
                                 f"({times.pm_open:%H:%M})"))
        _raise_problems(problems)
        return self

    @property
    def source_path(self) -> Path | None:
        """The file these settings were loaded from (None when built in code)."""
        return self._source

    def school(self, school_id: str) -> SchoolSettings:
        """The school with this id, or ConfigError listing the known ids."""
        for school in self.schools:
            if school.id == school_id:
                return school
        known = ", ".join(s.id for s in self.schools)
        raise ConfigError(f"no school {school_id!r} in the configuration (known: {known})")

    def check_credentials(self, environ: Mapping[str, str] | None = None) -> None:
        """Try every configured secret now; raise one CredentialError listing all that fail."""
        problems: list[str] = []
        owners: list[MisSettings | TransportSettings] = [s.mis for s in self.schools]
        owners += list(self.transports.la.values())
        if self.transports.dfe is not None:
            owners.append(self.transports.dfe)
        for owner in owners:
            try:
                owner.credentials(environ)
            except CredentialError as exc:
                problems.append(str(exc))
        if problems:
            raise CredentialError("credentials could not be read", errors=problems)


# --------------------------------------------------------------------------------------------
# Loading and error reporting
# --------------------------------------------------------------------------------------------

def load_config(path: str | Path | None = None,
                environ: Mapping[str, str] | None = None) -> Settings:
    """Load and validate the TOML config at ``path``, or at ``$REGISTERWATCH_CONFIG``.

    Raises ConfigError listing every problem by TOML path. Secrets are not read here (see
    ``credentials()``), so a config can be checked on a machine that lacks them.
    """
    env = os.environ if environ is None else environ
    if path is None:
        named = env.get(CONFIG_ENV_VAR, "").strip()
        if not named:
            raise ConfigError(
                f"no configuration file given: pass --config or set {CONFIG_ENV_VAR} "
                f"(an annotated example is {EXAMPLE_CONFIG_PATH})")
        path = named
    # normpath, not resolve(): tidy "a/../b" without replacing a symlinked config directory.
    file = Path(os.path.normpath(Path(path).expanduser().absolute()))
    try:
        with file.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"configuration file {file} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"configuration file {file} is a directory, not a TOML file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"configuration file {file} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {file}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {file} is not valid TOML",
                          errors=[_describe_toml_error(exc)]) from None
    settings = parse_config(data, config_dir=file.parent, source=file)
    return settings


def parse_config(data: Mapping[str, Any], *, config_dir: str | Path | None = None,
                 source: str | Path | None = None) -> Settings:
    """Validate an already-parsed TOML document (tests, the simulator and ``demo`` build these).

    Relative paths are resolved against ``config_dir`` (left relative when it is None).
    """
    context = {"config_dir": Path(config_dir) if config_dir is not None else None}
    try:
        settings = Settings.model_validate(dict(data), context=context)
    except ValidationError as exc:
        errors = _format_errors(exc)
        where = f"configuration file {source}" if source is not None else "configuration"
        count = f"{len(errors)} problem{'s' if len(errors) != 1 else ''}"
        raise ConfigError(f"{where} is invalid ({count})", errors=errors) from None
    settings._source = Path(source) if source is not None else None
    return settings


_TOML_POSITION = re.compile(r"^(?P<msg>.*?)\s*\(at line (?P<line>\d+), column (?P<col>\d+)\)$")


def _describe_toml_error(exc: tomllib.TOMLDecodeError) -> str:
    text = str(exc)
    match = _TOML_POSITION.match(text)
    if match is None:
        return text
    return f"line {match['line']}, column {match['col']}: {match['msg']}"


_BARE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
# Python names that differ from their TOML key; pydantic reports some errors by field name.
_TOML_KEYS = {"from_": "from"}


def toml_path(loc: Loc) -> str:
    """``('schools', 1, 'mis', 'password_env')`` → ``schools[1].mis.password_env``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            part = _TOML_KEYS.get(part, part)
            key = part if _BARE_KEY.fullmatch(part) else json.dumps(part)
            out += f".{key}" if out else key
    return out


def _format_errors(exc: ValidationError) -> list[str]:
    lines: list[str] = []
    # include_input=False: inputs never reach the message, so a mistyped secret cannot leak.
    for err in exc.errors(include_url=False, include_input=False):
        loc: Loc = tuple(err["loc"])
        if err["type"] == "config_problems":
            for sub_loc, message in err["ctx"]["problems"]:
                lines.append(f"{toml_path(loc + tuple(sub_loc))}: {message}")
            continue
        if loc and loc[-1] == "[key]":  # a dict key (e.g. an LA code) failed validation
            loc = loc[:-1]
        lines.append(f"{toml_path(loc) or '(top level)'}: {_message(err, loc)}")
    return lines


def _message(err: Any, loc: Loc) -> str:
    kind: str = err["type"]
    ctx: dict[str, Any] = err.get("ctx") or {}
    if kind == "missing":
        return "field required"
    if kind == "extra_forbidden":
        return _unknown_key_message(loc)
    if kind in ("literal_error", "enum"):
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        return "must be one of " + ", ".join(choices)
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    if kind.startswith("time"):
        return 'must be a time such as "08:45"'
    if kind.startswith("date") or kind.startswith("datetime"):
        return 'must be a date such as "2025-09-03"'
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "must be a whole number"
    if kind in ("float_parsing", "float_type"):
        return "must be a number"
    if kind in ("bool_parsing", "bool_type"):
        return "must be true or false"
    if kind == "string_type":
        return "must be a string (in quotes)"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be a table"
    if kind == "list_type":
        return "must be an array ([...], or one [[table]] per entry)"
    if kind == "too_short":
        if ctx.get("min_length") == 1:
            return "must have at least one entry"
        return f"must have at least {ctx.get('min_length')} entries"
    if kind == "string_too_short":
        return "must not be empty"
    bounds = {"greater_than_equal": ("at least", "ge"), "less_than_equal": ("at most", "le"),
              "greater_than": ("greater than", "gt"), "less_than": ("less than", "lt")}
    if kind in bounds:
        words, key = bounds[kind]
        return f"must be {words} {ctx.get(key)}"
    return str(err["msg"])


def _unknown_key_message(loc: Loc) -> str:
    allowed = _allowed_keys(loc[:-1])
    key = loc[-1] if loc else ""
    if not allowed:
        return "unknown key"
    close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown key; did you mean {close[0]!r}?"
    return "unknown key (allowed here: " + ", ".join(allowed) + ")"


def _allowed_keys(loc: Loc) -> list[str] | None:
    """The keys the table at ``loc`` accepts, found by walking the model types."""
    tp: Any = Settings
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str):
            fields = {(f.alias or name): f.annotation for name, f in tp.model_fields.items()}
            if part not in fields:
                return None
            tp = fields[part]
        elif get_origin(tp) is list and isinstance(part, int):
            tp = get_args(tp)[0]
        elif get_origin(tp) is dict and isinstance(part, str):
            tp = get_args(tp)[1]
        else:
            return None
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [f.alias or name for name, f in tp.model_fields.items()]
    return None


def _unwrap(tp: Any) -> Any:
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in get_args(tp) if a is not type(None)]
            if len(members) != 1:
                return tp
            tp = members[0]
        else:
            return tp
