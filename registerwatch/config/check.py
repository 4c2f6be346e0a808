"""``config check``: everything that can be verified before the first night, one line per thing.

:func:`check_offline` needs no network: every credential named by the config is set (a variable)
or present, readable and private (a file); each school's terms cover the day; each school's LA
has a transport, and the DfE one exists. :func:`check_connect` then tries each MIS (authenticate
and one cheap read through the adapter) and each transport (SMTP connect, STARTTLS and login;
the HTTP endpoint reachable and authorised; the folder writable), so a wrong password shows up
when the engineer sets it up, not at 02:00.

Whether a secret's *value* is well formed is ``credentials.py``'s business; this module only
asks whether it can be read and who else can read it. Nothing here prints, and no secret value
ever reaches a :class:`CheckLine`.
"""

from __future__ import annotations

import os
import smtplib
import socket
import ssl
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registerwatch.config.credentials import VENDOR_CREDENTIALS
from registerwatch.config.schools import SchoolSettings
from registerwatch.config.transports import TransportSettings
from registerwatch.errors import ConfigError
from registerwatch.schema.models import Vendor

if TYPE_CHECKING:
    from registerwatch.config.loading import Settings

# Seconds to wait for a transport to answer during --connect: long enough for a slow mail
# relay, short enough that a firewalled host does not hang the check.
CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class CheckLine:
    """One thing checked: ``subject`` names it, ``problems`` say what to fix (empty: ok)."""

    subject: str
    problems: tuple[str, ...] = ()
    detail: str = ""  # what was verified, shown when ok

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "ok": self.ok,
            "problems": list(self.problems),
            "detail": self.detail,
        }


# -- offline ------------------------------------------------------------------------------------


def check_offline(
    settings: Settings, *, as_of: date, environ: Mapping[str, str] | None = None
) -> list[CheckLine]:
    """One line per school and per transport; nothing leaves the machine."""
    env = os.environ if environ is None else environ
    lines = [_school_offline(school, settings, as_of, env) for school in settings.schools]
    for subject, _key, transport in _transports(settings):
        lines.append(CheckLine(subject, tuple(_transport_offline(transport, env))))
    ledger = _ledger_offline(settings, env)
    if ledger is not None:
        lines.append(ledger)
    if settings.transports.dfe is None:
        lines.append(
            CheckLine(
                "DfE transport",
                (
                    "no [transports.dfe] table: the DfE daily return cannot be submitted; add "
                    'one with kind = "http", "smtp" or "folder"',
                ),
            )
        )
    return lines


def _school_offline(
    school: SchoolSettings, settings: Settings, as_of: date, env: Mapping[str, str]
) -> CheckLine:
    problems: list[str] = []
    mis = school.mis
    for mode in VENDOR_CREDENTIALS[mis.vendor]:
        for cred in mode:
            problems += _credential_problems(
                getattr(mis, f"{cred}_env"), getattr(mis, f"{cred}_file"), env
            )
    if mis.vendor is Vendor.CTF and mis.path is not None and not Path(mis.path).exists():
        problems.append(f"CTF path {mis.path} does not exist: create it or fix mis.path")
    terms = school.calendar.terms
    first, last = terms[0].start, terms[-1].end
    if not first <= as_of <= last:
        problems.append(
            f"the terms in [schools.calendar] run {first} to {last} and do not cover "
            f"{as_of}: add this school year's terms"
        )
    if school.la_code not in settings.transports.la:
        problems.append(f'no transport for its LA: add a [transports.la."{school.la_code}"] table')
    detail = f"{mis.vendor.value}; terms {first} to {last}"
    return CheckLine(f"school '{school.id}'", tuple(problems), detail)


def _ledger_offline(settings: Settings, env: Mapping[str, str]) -> CheckLine | None:
    """``[ledger]``, when it names a key or a tip sink: every key can be read (and is long
    enough), and the tip sink is allowed where it is and its folder exists. None without one
    (a plain SHA-256 chain needs nothing)."""
    ledger = settings.ledger
    if not ledger.keyed and ledger.sink is None:
        return None
    problems: list[str] = []
    parts: list[str] = []
    if ledger.keyed:
        sources = [(ledger.key_env, ledger.key_file)] if ledger.key_id else []
        sources += [(key.key_env, key.key_file) for key in ledger.retired_keys]
        for key_env, key_file in sources:
            problems += _credential_problems(key_env, key_file, env)
        if not problems:
            try:  # as a run reads them: a key too short, say
                ledger.keys(env)
            except ConfigError as exc:  # CredentialError included: the message names the key
                problems.append(str(exc))
        parts.append(
            f"signs with key {ledger.key_id!r}" if ledger.key_id else "verifies only (no key)"
        )
        if ledger.retired_keys:
            parts.append(f"{len(ledger.retired_keys)} retired key(s)")
    if ledger.sink is not None:
        try:
            ledger.tip_sink(settings.store.url, env)
        except ConfigError as exc:
            problems.append(str(exc))
        if ledger.sink.file is not None:
            folder = ledger.sink.file.expanduser().parent
            if not folder.is_dir():
                problems.append(
                    f"ledger.sink.file: folder {folder} does not exist: create it or fix the path"
                )
            parts.append(f"tip sink {ledger.sink.file}")
        else:
            parts.append("tip sink over HTTP")
    return CheckLine("ledger", tuple(problems), "; ".join(parts))


def _transport_offline(transport: TransportSettings, env: Mapping[str, str]) -> list[str]:
    problems: list[str] = []
    for cred in ("token", "username", "password"):
        problems += _credential_problems(
            getattr(transport, f"{cred}_env"), getattr(transport, f"{cred}_file"), env
        )
    if transport.kind == "folder" and transport.path is not None:
        folder = Path(transport.path)
        if not folder.is_dir():
            problems.append(f"folder {folder} does not exist: create it or fix path")
    return problems


def _credential_problems(
    env_name: str | None, file: Path | None, env: Mapping[str, str]
) -> list[str]:
    if env_name is not None:
        value = env.get(env_name)
        if value is None:
            return [f"environment variable {env_name} is not set"]
        if not value.strip():
            return [f"environment variable {env_name} is empty"]
        return []
    if file is None:
        return []
    path = Path(file)
    try:
        info = path.stat()
    except FileNotFoundError:
        return [f"credential file {path} does not exist: create it holding the secret"]
    except OSError as exc:
        return [f"cannot read credential file {path}: {exc.strerror}"]
    if not stat.S_ISREG(info.st_mode):
        return [f"credential file {path} is not a regular file"]
    problems: list[str] = []
    if not os.access(path, os.R_OK):
        problems.append(f"credential file {path} is not readable by this user: fix its owner")
    if info.st_mode & 0o077:
        problems.append(
            f"credential file {path} is readable by others (mode "
            f"{stat.S_IMODE(info.st_mode):04o}): run chmod 600 {path}"
        )
    elif info.st_size == 0:
        problems.append(f"credential file {path} is empty")
    return problems


def _transports(settings: Settings) -> list[tuple[str, str, TransportSettings]]:
    found = [
        (f"LA '{code}' transport ({t.kind})", f'transports.la."{code}"', t)
        for code, t in settings.transports.la.items()
    ]
    if settings.transports.dfe is not None:
        dfe = settings.transports.dfe
        found.append((f"DfE transport ({dfe.kind})", "transports.dfe", dfe))
    return found


# -- connect ------------------------------------------------------------------------------------


def check_connect(
    settings: Settings,
    *,
    as_of: date,
    environ: Mapping[str, str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> list[CheckLine]:
    """The offline lines, then each MIS and transport tried for real (once, no retries)."""
    env = os.environ if environ is None else environ
    offline = check_offline(settings, as_of=as_of, environ=env)
    by_subject = {line.subject: line for line in offline}
    lines: list[CheckLine] = []
    for school in settings.schools:
        line = by_subject.pop(f"school '{school.id}'")
        if line.ok:
            line = _school_connect(school, settings, as_of, env)
        lines.append(line)
    for subject, key, transport in _transports(settings):
        line = by_subject.pop(subject)
        if line.ok:
            line = CheckLine(subject, *_transport_connect(transport, key, env, ssl_context))
        lines.append(line)
    return lines + list(by_subject.values())


def _school_connect(
    school: SchoolSettings, settings: Settings, as_of: date, env: Mapping[str, str]
) -> CheckLine:
    from registerwatch.adapters.registry import build_adapter
    from registerwatch.errors import FatalApiError, RegisterwatchError
    from registerwatch.retry import RetryPolicy

    subject = f"school '{school.id}'"
    # The last day before as_of: a register that exists, and a read of one day is cheap.
    day = as_of - timedelta(days=1)
    try:
        adapter = build_adapter(
            school, settings.sync, env, retry=RetryPolicy(max_attempts=1), sleep=lambda _s: None
        )
        try:
            adapter.registers(day, day)
        finally:
            adapter.close()
    except FatalApiError as exc:
        return CheckLine(subject, (f"the MIS refused: {exc}",))
    except RegisterwatchError as exc:
        return CheckLine(subject, (f"could not read from the MIS: {exc}",))
    except OSError as exc:
        return CheckLine(subject, (f"could not read from the MIS: {exc.strerror or exc}",))
    where = school.mis.base_url or str(school.mis.path)
    return CheckLine(subject, (), f"{school.mis.vendor.value} at {where}: authenticated and read")


def _transport_connect(
    transport: TransportSettings,
    key: str,
    env: Mapping[str, str],
    ssl_context: ssl.SSLContext | None,
) -> tuple[tuple[str, ...], str]:
    from registerwatch.errors import RegisterwatchError

    try:
        secrets = {k: v.get_secret_value() for k, v in transport.credentials(env).items()}
    except RegisterwatchError as exc:
        return (str(exc),), ""
    if transport.kind == "smtp":
        return _try_smtp(transport, key, secrets, ssl_context)
    if transport.kind == "http":
        return _try_http(transport, key, secrets)
    return _try_folder(transport, key)


def _try_smtp(
    transport: TransportSettings,
    key: str,
    secrets: dict[str, str],
    ssl_context: ssl.SSLContext | None,
) -> tuple[tuple[str, ...], str]:
    assert transport.host is not None
    host, port = transport.host, transport.smtp_port
    security = transport.security or "starttls"
    context = ssl_context or ssl.create_default_context()
    where = f"{host}:{port}"
    client: smtplib.SMTP | None = None
    try:
        if security == "tls":
            client = smtplib.SMTP_SSL(host, port, timeout=CONNECT_TIMEOUT, context=context)
        else:
            client = smtplib.SMTP(host, port, timeout=CONNECT_TIMEOUT)
        client.ehlo()
        if security == "starttls":
            client.starttls(context=context)
            client.ehlo()
        if "username" in secrets:
            client.login(secrets["username"], secrets["password"])
    except smtplib.SMTPNotSupportedError:
        offered = "STARTTLS" if security == "starttls" else "authentication"
        return (f"{where} does not offer {offered}: check security and port in [{key}]",), ""
    except smtplib.SMTPAuthenticationError as exc:
        hint = _hint(transport, ("username", "password"))
        return (f"{where} refused the login ({exc.smtp_code}): check {hint}",), ""
    except ssl.SSLCertVerificationError as exc:
        return (
            f"the certificate of {host} is not trusted ({exc.verify_message}): check host in "
            f"[{key}]",
        ), ""
    except (smtplib.SMTPException, OSError) as exc:
        return (
            f"cannot talk to the mail server {where}: {_reason(exc)}; check host and port "
            f"in [{key}]",
        ), ""
    finally:
        if client is not None:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                pass
    login = ", logged in" if "username" in secrets else ""
    return (), f"{where} ({security}{login})"


def _try_http(
    transport: TransportSettings, key: str, secrets: dict[str, str]
) -> tuple[tuple[str, ...], str]:
    import requests

    assert transport.url is not None
    headers = {"Authorization": f"Bearer {secrets['token']}"} if "token" in secrets else {}
    # HEAD sends nothing a receiver could mistake for a return; 405 still proves it is there.
    try:
        response = requests.head(
            transport.url, headers=headers, timeout=CONNECT_TIMEOUT, allow_redirects=False
        )
    except requests.RequestException as exc:
        return (f"cannot reach {transport.url}: {_reason(exc)}; check url in [{key}]",), ""
    if response.status_code in (401, 403):
        hint = _hint(transport, ("token",))
        fix = f"check {hint}" if hint else f"set token_env in [{key}]"
        return (f"{transport.url} refused the token ({response.status_code}): {fix}",), ""
    if response.status_code in (405, 501):
        # A receiver that only takes POST cannot say whether the token is good without a
        # return to post; say so rather than claim it was checked.
        return (), f"{transport.url} reachable (it does not answer HEAD, so the token is not tried)"
    if response.status_code == 404 or response.status_code >= 500:
        return (
            f"{transport.url} answered {response.status_code}: check url in [{key}] with the LA",
        ), ""
    return (), f"{transport.url} reachable and authorised ({response.status_code})"


def _try_folder(transport: TransportSettings, key: str) -> tuple[tuple[str, ...], str]:
    assert transport.path is not None
    folder = Path(transport.path)
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".registerwatch-check-"):
            pass
    except OSError as exc:
        return (
            f"cannot write into {folder}: {exc.strerror}; fix its permissions or path in [{key}]",
        ), ""
    return (), f"{folder} writable"


def _hint(transport: TransportSettings, creds: tuple[str, ...]) -> str:
    names = []
    for cred in creds:
        env_name, file = getattr(transport, f"{cred}_env"), getattr(transport, f"{cred}_file")
        if env_name is not None:
            names.append(env_name)
        elif file is not None:
            names.append(f"the file {file}")
    return " and ".join(names)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    inner = exc
    while inner.__cause__ or inner.__context__:
        following = inner.__cause__ or inner.__context__
        assert following is not None
        inner = following
        if isinstance(inner, ConnectionRefusedError):
            return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__
