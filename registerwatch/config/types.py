"""Config building blocks: constants, reusable field types, the simple sections and TOML paths.

Messages never echo the value: a misplaced secret must not end up in an error shown on screen or
written to a log. Relative paths (the SQLite store, credential files, CTF folders, folder
transports) are resolved against the directory holding the config file, not the working
directory, so a nightly job started from anywhere finds the same files.
"""

from __future__ import annotations

import ipaddress
import json
import re
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from registerwatch.adapters.vendors import vendor_facts
from registerwatch.schema.models import Vendor

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
# Reusable field types
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
            'or digit), e.g. "oakfield"'
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


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_http_url(value: str) -> str:
    """An http(s) URL without embedded credentials; plain http only to this machine.

    Pupil data and Basic-auth passwords cross these links, so cleartext is allowed only for
    loopback (the simulators and local test servers).
    """
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError('must be an http(s) URL, e.g. "https://school.uk.arbor.sc/rest-v2"')
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not contain a user name or password; name them with *_env or *_file")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError("must use https (plain http is allowed only for 127.0.0.1 / localhost)")
    # Adapters join resource paths onto it; one spelling avoids "//" and missing segments.
    return value.rstrip("/")


def raise_problems(problems: list[Problem]) -> None:
    """Report several problems, each at its own key, from one cross-key check.

    Pydantic lets a model validator raise only one error at the table's own location, so the
    individual problems travel in the error context and :func:`_format_errors` expands them.
    """
    if problems:
        summary = "; ".join(f"{toml_path(loc) or '(table)'}: {msg}" for loc, msg in problems)
        raise PydanticCustomError(
            "config_problems", "{summary}", {"summary": summary, "problems": problems}
        )


class Section(BaseModel):
    # extra="forbid": a misspelt key is an error, not a silently ignored setting.
    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, populate_by_name=True
    )


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


# --------------------------------------------------------------------------------------------
# [store], [logging], [sync], [schedule]
# --------------------------------------------------------------------------------------------

_SQLITE_URL = re.compile(r"(sqlite(?:\+\w+)?):///(.*)", re.DOTALL)


class StoreSettings(Section):
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


class LoggingSettings(Section):
    """``[logging]``: how much to log and in which format (logs go to stderr)."""

    level: Annotated[
        LogLevel, BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v)
    ] = "INFO"
    format: Literal["auto", "json", "console"] = "auto"

    @property
    def json_output(self) -> bool | None:
        """The ``json`` argument for :func:`registerwatch.logging.configure_logging`."""
        return {"auto": None, "json": True, "console": False}[self.format]


def isams_pm_cutoff_default() -> time:
    """iSAMS's declared pm cut-off (its FACTS), the default of ``[sync] isams_pm_cutoff``."""
    cutoff: time | None = vendor_facts(Vendor.ISAMS).pm_cutoff
    assert cutoff is not None
    return cutoff


class SyncSettings(Section):
    """``[sync]``: how registers are pulled from the MIS."""

    # Registers can be amended after the day; without a change feed, sync re-pulls this window.
    trailing_school_days: int = Field(default=10, ge=1, le=60)
    # ... and every this many days the whole school year, so a change or deletion older than
    # the trailing window is still seen (0 = never after the first sync).
    full_repull_days: int = Field(default=7, ge=0, le=366)
    # iSAMS has no AM/PM flag: a registration at or after this time is the afternoon session.
    # The default is iSAMS's declared fact (FACTS.pm_cutoff).
    isams_pm_cutoff: time = Field(default_factory=lambda: isams_pm_cutoff_default())
    concurrency: int = Field(default=4, ge=1, le=32)
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    # Wall-clock limit for one whole request (connect, headers and body): a server dripping a
    # byte at a time never trips the per-read timeout above. Per school: [schools.mis].
    deadline_seconds: float = Field(default=120.0, gt=0, le=3600)
    # Records one page of an MIS listing may hold; a page over it fails the school as a junk
    # or runaway answer (every vendor pages at 1,000 or fewer). Per school: [schools.mis].
    max_records_per_page: int = Field(default=10_000, ge=100, le=1_000_000)


class ScheduleSettings(Section):
    """``[schedule]``: wall-clock times (Europe/London) for the daemon's jobs."""

    nightly: time = time(2, 0)
    dfe_daily: time = time(16, 0)
    returns: time = time(7, 0)
