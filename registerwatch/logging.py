"""Structured logging (structlog) with pupil data redacted from every event.

:func:`configure_logging` sends all logs, registerwatch's own and those of libraries that use the
standard :mod:`logging` module (requests/urllib3, SQLAlchemy, Alembic), through one handler on
stderr: JSON lines when the stream is not a terminal, readable console output when it is; ISO-8601
UTC timestamps. Both chains, structlog's and the standard library's, run
:func:`redact_pupil_data` before anything is rendered.

What :func:`redact_pupil_data` catches
--------------------------------------
* Values under pupil-data keys, at any depth of dicts, lists, tuples, pydantic models and
  dataclasses: names (``forename``, ``surname``, ``legal_*``, ``preferred_*``, ``former_*``,
  ``middle_names``, ``name``, ``full_name``, ``display_name``, vendor spellings such as
  ``legalFirstName`` / ``Forename``), identifiers (``upn``, ``former_upn``, ``uln``, ``uci``),
  dates of birth (``dob``, ``date_of_birth``, ``DateOfBirth``, ``birth_date``) and contact
  details (any key containing ``address``; ``postcode``, ``phone``, ``email``). Keys are compared
  ignoring case, ``_`` and ``-``. The value becomes ``"[redacted]"``. (Dates elsewhere in the
  event become ISO strings on the way.)
* Any string (including the event message, exception tracebacks and the repr of objects that are
  not plain data) containing a UPN-shaped token: a letter from ABCDEFGHJKLMNPQRTUVWXYZ, eleven
  digits, and a final digit or letter.
* Inside the same event's strings: every name and date of birth that the event also carried
  under a pupil-data key (a date as ``2012-03-04`` and ``04/03/2012``), so
  ``log.info("late mark for Ava Smith", forename="Ava", surname="Smith")`` loses both.
* Secrets: values under ``password``, ``secret``, ``token``, ``api_key``, ``authorization`` and
  similar keys, and ``apiKey=...``/``token=...`` query parameters in URLs (urllib3 logs request
  URLs at DEBUG and the iSAMS Batch API takes its key in the query string).

What it does not catch
----------------------
* A name or date of birth in free text when the same event does not also carry it under a
  pupil-data key: ``log.info(f"{pupil.legal_forename} was late")`` leaks. Log identifiers
  (``pupil_id``), never interpolated names.
* Pupil data under keys it does not know (``who="Ava Smith"``) or inside objects it cannot see
  into, other than UPN-shaped tokens in their repr.
* Events logged before any configuration through a logger taken straight from
  ``structlog.get_logger`` use structlog's defaults, which do not redact. :func:`get_logger`
  installs a redacting fallback; the CLI calls :func:`configure_logging` first thing.
* Over-redaction is the accepted cost: ``name`` is always redacted (use ``rule``,
  ``school_id``...), and a name that is also an ordinary word is removed wherever it appears in
  that event.
"""

from __future__ import annotations

import dataclasses
import logging as stdlib_logging
import re
import sys
import threading
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from enum import Enum
from typing import Any, TextIO

import structlog
from pydantic import BaseModel

REDACTED = "[redacted]"

# Compared after lower-casing and removing everything but letters and digits, so `legal_forename`,
# `legalForename` and `Legal-Forename` are one key.
_PUPIL_NAME_KEYS = frozenset(
    {
        "forename",
        "forenames",
        "surname",
        "surnames",
        "firstname",
        "lastname",
        "givenname",
        "familyname",
        "middlename",
        "middlenames",
        "name",
        "fullname",
        "displayname",
        "pupilname",
        "studentname",
        "childname",
        "preferredname",
    }
)
_PUPIL_NAME_PREFIXES = ("legal", "preferred", "former")
_PUPIL_ID_KEYS = frozenset(
    {"upn", "formerupn", "uniquepupilnumber", "uln", "uniquelearnernumber", "uci"}
)
_DOB_KEYS = frozenset({"dob", "dateofbirth", "birthdate", "birthday", "dateofbirthday"})
_CONTACT_KEYS = frozenset(
    {"address", "addresslines", "postcode", "phone", "telephone", "mobile", "email"}
)
_SECRET_KEYS = frozenset(
    {
        "password",
        "passwd",
        "secret",
        "clientsecret",
        "token",
        "accesstoken",
        "refreshtoken",
        "apikey",
        "authorization",
    }
)

# The DfE UPN: check letter (no I, O or S), 11 digits, final digit or letter (temporary UPNs).
UPN_PATTERN = re.compile(
    r"(?<![A-Za-z0-9])[ABCDEFGHJKLMNPQRTUVWXYZ]\d{11}[0-9A-Z](?![A-Za-z0-9])", re.IGNORECASE
)
_SECRET_QUERY = re.compile(
    r"(?i)\b(api_?key|access_token|token|client_secret|password)=[^&\s#\"']+"
)


# Every configured secret value (credentials.read_credential registers each one it reads): any
# text that passes through the redactor loses them, whatever key or message they sit in.
_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()
_secret_pattern: re.Pattern[str] | None = None
_DATE_TOKEN = re.compile(r"(?<!\d)(?:\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{4})(?!\d)")
# Shorter values would blank ordinary words out of every message ("nope", "test"); a
# credential that short is left out of the redactor (docs/security.md states the limit).
MIN_SECRET_LENGTH = 8


def register_secret(value: str) -> None:
    """Remember a secret value so that :func:`redact_text` (and every log line) removes it."""
    global _secret_pattern
    if len(value) < MIN_SECRET_LENGTH:
        return
    with _SECRETS_LOCK:
        if value in _SECRETS:
            return
        _SECRETS.add(value)
        words = sorted(_SECRETS, key=len, reverse=True)
        _secret_pattern = re.compile("|".join(re.escape(w) for w in words))


def redact_text(
    text: str, *, pupil_values: Iterable[str] = (), dates: bool = False, limit: int | None = None
) -> str:
    """The one redactor for free text that can reach stdout, a log, the runs table or the
    outbox: configured secrets, UPN-shaped tokens and secret query parameters always;
    ``pupil_values`` (names, dates of birth known to be in play) and, with ``dates``, every
    date-shaped token; cut to ``limit`` characters."""
    names = {v.strip() for v in pupil_values if v and len(v.strip()) >= 2}
    for value in list(names):
        names.update(w for w in re.split(r"[\s,]+", value) if len(w) >= 2)
    text = _scrub_text(text, _scrubber(names, set()))
    if dates:
        text = _DATE_TOKEN.sub(REDACTED, text)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def _normalise_key(key: object) -> str:
    return re.sub(r"[^a-z0-9]", "", str(key).lower())


def _key_kind(key: object) -> str | None:
    """'name' or 'dob' (values also scrubbed from the event's strings), 'other' (pupil data
    redacted in place) or 'secret'; None for a key to keep."""
    norm = _normalise_key(key)
    if norm in _DOB_KEYS:
        return "dob"
    # "address" anywhere: address, future_address, home_address, email_address.
    if norm in _PUPIL_ID_KEYS or norm in _CONTACT_KEYS or "address" in norm:
        return "other"
    if norm in _PUPIL_NAME_KEYS or norm.startswith(_PUPIL_NAME_PREFIXES):
        return "name"
    if norm in _SECRET_KEYS:
        return "secret"
    return None


def _plain(value: Any) -> Any:
    """Turn the event's values into plain data the redactor can see into.

    Renderers would otherwise ``repr()`` a pydantic model or dataclass, printing every field
    (names, date of birth) without looking at the keys.
    """
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, BaseModel):
        try:
            return _plain(value.model_dump(mode="json"))
        except Exception:  # a model that cannot dump: fall back to its repr, scrubbed below
            return repr(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Enum):
        return _plain(value.value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def _collect(value: Any, names: set[str], dobs: set[str]) -> None:
    """Find the values stored under pupil-name and date-of-birth keys, at any depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            kind = _key_kind(key)
            if kind == "name":
                for text in _strings(item):
                    names.add(text)
                    names.update(word for word in re.split(r"[\s,]+", text) if len(word) >= 2)
            elif kind == "dob":
                for text in _strings(item):
                    dobs.add(text)
                    try:
                        born = date.fromisoformat(text[:10])
                    except ValueError:
                        continue
                    dobs.update({born.isoformat(), born.strftime("%d/%m/%Y")})
            else:
                _collect(item, names, dobs)
    elif isinstance(value, list):
        for item in value:
            _collect(item, names, dobs)


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        if value.strip() and value != REDACTED:
            yield value.strip()
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _scrubber(names: set[str], dobs: set[str]) -> re.Pattern[str] | None:
    # Longest first so "Ava Smith" goes before "Ava" can leave "[redacted] Smith" half-done.
    words = sorted(names | dobs, key=len, reverse=True)
    if not words:
        return None
    alternatives = "|".join(re.escape(w) for w in words)
    return re.compile(rf"(?<![\w/-])(?:{alternatives})(?![\w/-])", re.IGNORECASE)


def _scrub_text(text: str, extra: re.Pattern[str] | None) -> str:
    secrets = _secret_pattern
    if secrets is not None:
        text = secrets.sub(REDACTED, text)
    text = UPN_PATTERN.sub(REDACTED, text)
    text = _SECRET_QUERY.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    if extra is not None:
        text = extra.sub(REDACTED, text)
    return text


def _clean(value: Any, extra: re.Pattern[str] | None) -> Any:
    if isinstance(value, dict):
        return {
            key: (
                REDACTED if _key_kind(key) is not None and item is not None else _clean(item, extra)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_clean(item, extra) for item in value]
    if isinstance(value, str):
        return _scrub_text(value, extra)
    return value


def redact_pupil_data(logger: Any, method: str, event_dict: Any) -> Any:
    """structlog processor: remove pupil names, UPNs and dates of birth (see module docs).

    Idempotent, so running it in both the structlog and the standard-library chain is harmless.
    Keys structlog itself relies on (``level``, ``timestamp``, ``logger``) are left alone.
    """
    plain = _plain(event_dict)
    names: set[str] = set()
    dobs: set[str] = set()
    _collect(plain, names, dobs)
    return _clean(plain, _scrubber(names, dobs))


_HANDLER_MARK = "_registerwatch_handler"


class _StderrHandler(stdlib_logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler bound to whatever ``sys.stderr`` is when a record is written."""

    def __init__(self) -> None:
        stdlib_logging.Handler.__init__(self)

    @property
    def stream(self) -> TextIO:
        return sys.stderr


def _is_tty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or not a real file
        return False


def configure_logging(
    level: str | int = "INFO", json: bool | None = None, stream: TextIO | None = None
) -> None:
    """Send every log line through redaction to ``stream`` (stderr by default).

    ``json=None`` chooses JSON lines unless ``stream`` is a terminal. Calling it again replaces
    the previous configuration (tests and the CLI's ``--log-level`` rely on that).
    """
    out = sys.stderr if stream is None else stream
    use_json = (not _is_tty(out)) if json is None else json
    numeric_level = _level_number(level)

    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    renderer: Any
    if use_json:
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
    else:
        # The default console exception formatter (rich) prints local variables, which hold
        # pupil records; tracebacks are rendered to text by format_exc_info and redacted first.
        renderer = structlog.dev.ConsoleRenderer(
            colors=_is_tty(out), exception_formatter=structlog.dev.plain_traceback
        )

    # Standard-library records (urllib3, SQLAlchemy, Alembic) reach the same renderer, after
    # the same redaction.
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            structlog.stdlib.ExtraAdder(),
            timestamper,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_pupil_data,
            renderer,
        ],
    )
    # With no stream given, stderr is looked up at each write: the CLI (and in-process tests
    # that swap sys.stderr) must never be left writing to a stream that has since closed.
    handler = stdlib_logging.StreamHandler(out) if stream is not None else _StderrHandler()
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)

    root = stdlib_logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(numeric_level)
    # Alembic logs every migration step it considers at INFO ("Context impl SQLiteImpl", "Will
    # assume transactional DDL"): at INFO they would bury the night's own events and a live
    # progress display, so they show only when debugging.
    stdlib_logging.getLogger("alembic").setLevel(
        numeric_level if numeric_level <= stdlib_logging.DEBUG else stdlib_logging.WARNING
    )

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.filter_by_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            structlog.stdlib.PositionalArgumentsFormatter(),
            timestamper,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            # Redacted here too, before the event is handed to the standard-library handlers:
            # any other handler on the root logger (pytest's, a library's) sees it clean.
            redact_pupil_data,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: a logger fetched at import time must follow a later reconfiguration.
        cache_logger_on_first_use=False,
    )


def _level_number(level: str | int) -> int:
    if isinstance(level, int):
        return level
    number = stdlib_logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise ValueError(
            f"unknown log level {level!r}; use DEBUG, INFO, WARNING, ERROR or CRITICAL"
        )
    return number


def get_logger(name: str) -> Any:
    """A structlog logger named ``name`` (use ``__name__``); events are dotted past-tense facts.

    If nothing has configured structlog yet (a library caller, a test), a minimal chain is
    installed first so that redaction never depends on the CLI having called
    :func:`configure_logging`; that call replaces it.
    """
    if not structlog.is_configured():
        _configure_fallback()
    return structlog.stdlib.get_logger(name)


def _configure_fallback() -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_pupil_data,
            structlog.dev.ConsoleRenderer(
                colors=False, exception_formatter=structlog.dev.plain_traceback
            ),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(stdlib_logging.INFO),
        # sys.stderr looked up per logger, so a replaced stderr (pytest, a daemon) is followed.
        logger_factory=lambda *args: structlog.WriteLogger(sys.stderr),
        cache_logger_on_first_use=False,
    )


def pupil_key_kind(key: object) -> str | None:
    """'name', 'dob', 'other' (pupil data) or 'secret' for a field name; None otherwise."""
    return _key_kind(key)
