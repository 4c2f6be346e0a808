"""`config check`: the offline checks, and --connect against a real aiosmtpd (STARTTLS and
login), a real loopback HTTP endpoint, a folder, and an MIS simulator."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from support.tls import make_test_certificate

from registerwatch.config import find_config, parse_config
from registerwatch.config.check import check_connect, check_offline
from registerwatch.errors import ConfigError
from registerwatch.simulator.generate import generate_school
from registerwatch.simulator.server import SimulatorServer
from registerwatch.simulator.vendors import build_app, credentials_environ

DAY = date(2025, 12, 1)
TOKEN = "la-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _school(mis: dict[str, Any], la_code: str = "881") -> dict[str, Any]:
    return {
        "id": "oakfield",
        "urn": "140001",
        "laestab": f"{la_code}4001",
        "name": "Oakfield School",
        "la_code": la_code,
        "phase": "primary",
        "mis": mis,
        "calendar": {"terms": [{"start": "2025-09-03", "end": "2025-12-19"}]},
    }


def _settings(tmp_path: Path, mis: dict[str, Any], transports: dict[str, Any]) -> Any:
    return parse_config(
        {
            "store": {"url": f"sqlite:///{tmp_path / 's.sqlite'}"},
            "transports": transports,
            "schools": [_school(mis)],
        },
        config_dir=tmp_path,
    )


def _problems(lines: list[Any]) -> dict[str, list[str]]:
    return {line.subject: list(line.problems) for line in lines}


# -- offline ----------------------------------------------------------------------------------


def test_offline_names_every_missing_or_exposed_secret_and_uncovered_terms(tmp_path):
    (tmp_path / "ctf").mkdir()
    loose = tmp_path / "smtp-password"
    loose.write_text("s3cr3t-value\n")
    loose.chmod(0o644)
    settings = _settings(
        tmp_path,
        {
            "vendor": "arbor",
            "base_url": "https://oak.example/rest-v2",
            "username_env": "OAK_USER",
            "password_file": "oak-password",
        },
        {
            "la": {
                "881": {
                    "kind": "smtp",
                    "host": "mail.example",
                    "from": "a@b.example",
                    "to": "c@d.example",
                    "username_env": "SMTP_USER",
                    "password_file": "smtp-password",
                }
            }
        },
    )
    lines = check_offline(settings, as_of=date(2026, 1, 5), environ={"SMTP_USER": " "})
    problems = _problems(lines)
    school = problems["school 'oakfield'"]
    assert "environment variable OAK_USER is not set" in school
    assert any("oak-password does not exist" in p for p in school)
    assert any("do not cover 2026-01-05" in p for p in school)
    smtp = problems["LA '881' transport (smtp)"]
    assert "environment variable SMTP_USER is empty" in smtp
    assert any("readable by others (mode 0644): run chmod 600" in p for p in smtp)
    assert problems["DfE transport"] == [
        "no [transports.dfe] table: the DfE daily return cannot be submitted; add one with "
        'kind = "http", "smtp" or "folder"'
    ]
    assert "s3cr3t" not in repr(lines)


def test_offline_all_ok_when_everything_is_in_place(tmp_path):
    (tmp_path / "ctf").mkdir()
    (tmp_path / "dfe").mkdir()
    token = tmp_path / "token"
    token.write_text(TOKEN)
    token.chmod(0o600)
    settings = _settings(
        tmp_path,
        {"vendor": "ctf", "path": "ctf"},
        {
            "la": {"881": {"kind": "http", "url": "https://la.example/in", "token_file": "token"}},
            "dfe": {"kind": "folder", "path": "dfe"},
        },
    )
    lines = check_offline(settings, as_of=DAY, environ={})
    assert [(line.subject, line.ok) for line in lines] == [
        ("school 'oakfield'", True),
        ("LA '881' transport (http)", True),
        ("DfE transport (folder)", True),
    ]


# -- --connect --------------------------------------------------------------------------------


class _Endpoint(BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:
        ok = self.headers.get("Authorization") == f"Bearer {TOKEN}"
        self.send_response(204 if ok else 401)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/returns"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def tls_mail(tmp_path) -> Iterator[tuple[int, Path]]:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = make_test_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticator(server, session, envelope, mechanism, auth_data):
        assert isinstance(auth_data, LoginPassword)
        return AuthResult(success=auth_data.password == b"mail-password", handled=False)

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # pragma: no cover
            return "250 OK"

    controller = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=_free_port(),
        tls_context=context,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    )
    controller.start()
    try:
        yield controller.port, cert
    finally:
        controller.stop()


@pytest.fixture
def simulator() -> Iterator[str]:
    school = generate_school(1, 80, school_id="oakfield", vendor="arbor")
    server = SimulatorServer(build_app("arbor", school)).start()
    try:
        yield server.url
    finally:
        server.stop()


def test_connect_tries_the_mis_smtp_http_and_folder(tmp_path, endpoint, tls_mail, simulator):
    port, cert = tls_mail
    (tmp_path / "dfe").mkdir()
    settings = parse_config(
        {
            "store": {"url": f"sqlite:///{tmp_path / 's.sqlite'}"},
            "transports": {
                "la": {
                    "881": {
                        "kind": "smtp",
                        "host": "127.0.0.1",
                        "port": port,
                        "security": "starttls",
                        "from": "a@b.example",
                        "to": "c@d.example",
                        "username_env": "MAIL_USER",
                        "password_env": "MAIL_PASSWORD",
                    },
                    "330": {"kind": "http", "url": endpoint, "token_env": "LA_TOKEN"},
                },
                "dfe": {"kind": "folder", "path": "dfe"},
            },
            "schools": [
                _school(
                    {
                        "vendor": "arbor",
                        "base_url": f"{simulator}/rest-v2",
                        "username_env": "OAKFIELD_ARBOR_USERNAME",
                        "password_env": "OAKFIELD_ARBOR_PASSWORD",
                    }
                ),
            ],
        },
        config_dir=tmp_path,
    )
    env = {
        **credentials_environ("oakfield", "arbor"),
        "MAIL_USER": "u",
        "MAIL_PASSWORD": "mail-password",
        "LA_TOKEN": TOKEN,
    }
    trusting = ssl.create_default_context(cafile=str(cert))
    lines = check_connect(settings, as_of=DAY, environ=env, ssl_context=trusting)
    assert {line.subject: line.ok for line in lines} == {
        "school 'oakfield'": True,
        "LA '881' transport (smtp)": True,
        "LA '330' transport (http)": True,
        "DfE transport (folder)": True,
    }, [line.problems for line in lines]
    assert "logged in" in lines[1].detail and "authorised" in lines[2].detail

    wrong = {**env, "OAKFIELD_ARBOR_PASSWORD": "nope", "MAIL_PASSWORD": "nope", "LA_TOKEN": "nope"}
    (tmp_path / "dfe").rmdir()
    (tmp_path / "dfe").write_text("a file, not a folder")
    problems = _problems(check_connect(settings, as_of=DAY, environ=wrong, ssl_context=trusting))
    assert "OAKFIELD_ARBOR_PASSWORD" in problems["school 'oakfield'"][0]
    assert problems["LA '881' transport (smtp)"] == [
        f"127.0.0.1:{port} refused the login (535): check MAIL_USER and MAIL_PASSWORD"
    ]
    assert problems["LA '330' transport (http)"] == [
        f"{endpoint} refused the token (401): check LA_TOKEN"
    ]
    assert "does not exist" in problems["DfE transport (folder)"][0]
    assert "nope" not in repr(problems)

    # No trust for the test certificate: the check says so instead of logging in.
    untrusted = _problems(check_connect(settings, as_of=DAY, environ=env))
    assert "is not trusted" in untrusted["LA '881' transport (smtp)"][0]


def test_connect_names_an_unreachable_host(tmp_path):
    (tmp_path / "ctf").mkdir()
    settings = _settings(
        tmp_path,
        {"vendor": "ctf", "path": "ctf"},
        {
            "la": {"881": {"kind": "http", "url": f"http://127.0.0.1:{_free_port()}/in"}},
            "dfe": {
                "kind": "smtp",
                "host": "127.0.0.1",
                "port": _free_port(),
                "security": "none",
                "from": "a@b.example",
                "to": "c@d.example",
            },
        },
    )
    problems = _problems(check_connect(settings, as_of=DAY, environ={}))
    assert "connection refused" in problems["LA '881' transport (http)"][0]
    assert "connection refused" in problems["DfE transport (smtp)"][0]


# -- discovery --------------------------------------------------------------------------------


def test_discovery_order(tmp_path):
    here, user = tmp_path / "here", tmp_path / "user"
    here.mkdir()
    user.mkdir()
    (user / "registerwatch.toml").write_text("")
    found = find_config(None, {}, cwd=here, user_dir=user)
    assert (found.path, found.how) == (user / "registerwatch.toml", "the user config folder")
    (here / "registerwatch.toml").write_text("")
    found = find_config(None, {}, cwd=here, user_dir=user)
    assert (found.path, found.how) == (here / "registerwatch.toml", "the current folder")
    found = find_config(None, {"REGISTERWATCH_CONFIG": "/etc/rw.toml"}, cwd=here, user_dir=user)
    assert (str(found.path), found.how) == ("/etc/rw.toml", "$REGISTERWATCH_CONFIG")
    found = find_config("/x.toml", {"REGISTERWATCH_CONFIG": "/etc/rw.toml"}, cwd=here)
    assert (str(found.path), found.how) == ("/x.toml", "--config")
    with pytest.raises(ConfigError, match="no configuration file found"):
        find_config(None, {}, cwd=tmp_path, user_dir=tmp_path / "nowhere")
