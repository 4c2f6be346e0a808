"""`registerwatch serve` (the web app) and `registerwatch users ...` (its accounts)."""

from __future__ import annotations

import getpass
import os
import secrets
import sys
from typing import Annotated, Any

import typer

from registerwatch.cli._common import (
    ConfigOption,
    FormatOption,
    OutputFormat,
    StoreOption,
    _emit_json,
    _escape,
    _load_settings,
    _print_table,
    _store_url,
    _usage_error,
    app,
    out,
    state,
)

users_app = typer.Typer(
    help="Accounts of the web app (`registerwatch serve`).", no_args_is_help=True
)
app.add_typer(users_app, name="users")


def _actor() -> str:
    """Who the audit trail names for a command-line change: the operating-system account."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (a container)
        return "cli"


def _password_from_stdin(given: bool) -> str:
    if not given:
        _usage_error(
            "give the password on stdin with --password-stdin (never as an argument: "
            "arguments show in the process list and shell history)"
        )
    text = sys.stdin.readline().rstrip("\r\n")
    if not text:
        _usage_error("no password on stdin")
    return text


PasswordStdinOption = Annotated[
    bool, typer.Option("--password-stdin", help="read the password from the first line of stdin")
]


def default_workers() -> int:
    """One worker process per CPU, at most four: the app's work is Python under one lock per
    process, so a second process uses a second core; SQLite and PostgreSQL both take several
    processes (the store's busy timeout makes an audit write wait for another's)."""
    return max(1, min(os.cpu_count() or 1, 4))


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port to listen on")] = 8080,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="worker processes (default: one per CPU, at most 4)",
            show_default=False,
        ),
    ] = None,
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """Serve the web app: data managers review and act on findings, per-school access.

    Behind a reverse proxy, list its address in [web] trusted_proxies so that HTTPS (and
    Secure cookies) and client addresses come through. Create the first admin with
    `registerwatch users add EMAIL --role admin --all-schools --password-stdin`.

    Example: registerwatch serve --host 127.0.0.1 --port 8080 --workers 2
    """
    import uvicorn

    from registerwatch.store import Store
    from registerwatch.web import app as web_app

    settings = _load_settings(config)
    count = workers or default_workers()
    url = store or settings.store.url
    opened = Store(url)
    try:
        if not opened.users():
            out.print(
                "no user yet: create the first admin with `registerwatch users add EMAIL "
                "--role admin --all-schools --password-stdin`",
                highlight=False,
            )
        server_options: dict[str, Any] = {
            "host": host,
            "port": port,
            "proxy_headers": True,
            "forwarded_allow_ips": settings.web.trusted_proxies,
            # Access lines carry paths, and paths carry pupil ids: the app logs the route's
            # pattern instead (web.request).
            "access_log": False,
            "server_header": False,
        }
        if count == 1:
            target: Any = web_app.create_app(opened, settings.web)
        else:
            # Every worker builds its own app (web.app.app_from_environment); they must share
            # one session key, so a missing one is made here, once, for all of them.
            key_env = settings.web.secret_key_env
            if settings.web.secret_key_file is None and not os.environ.get(key_env, "").strip():
                out.print(
                    f"no session key configured: sessions end when serve restarts (set ${key_env})",
                    highlight=False,
                )
                os.environ[key_env] = secrets.token_urlsafe(32)
            os.environ[web_app.STORE_ENV] = url
            os.environ[web_app.CONFIG_ENV] = str(config.resolve()) if config else ""
            os.environ[web_app.LOG_LEVEL_ENV] = "DEBUG" if state.debug else state.log_level
            target = web_app.FACTORY
            server_options |= {"factory": True, "workers": count}
        out.print(
            f"registerwatch web app on http://{host}:{port}/ ({count} worker"
            f"{'s' if count > 1 else ''})",
            highlight=False,
        )
        uvicorn.run(target, **server_options)
    finally:
        opened.close()


@users_app.command("add")
def users_add(
    email: Annotated[str, typer.Argument(help="the person's email (their sign-in name)")],
    role: Annotated[str, typer.Option("--role", help="viewer, data-manager or admin")],
    school: Annotated[
        list[str] | None, typer.Option("--school", help="a school id they may see (repeat)")
    ] = None,
    all_schools: Annotated[
        bool, typer.Option("--all-schools", help="they may see every school")
    ] = False,
    morning_email: Annotated[
        bool, typer.Option("--morning-email", help="send them the morning summary email")
    ] = False,
    password_stdin: PasswordStdinOption = False,
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """Create an account. Exit 2 for a bad email, role, password or unknown school.

    Example: registerwatch users add head@oak.sch.uk --role viewer --school oak --password-stdin < pw.txt
    """
    from registerwatch.store import Store
    from registerwatch.web.accounts import AccountError, create_user

    password = _password_from_stdin(password_stdin)
    url = _store_url(config, store)
    with Store.open(url) as opened:
        known = {s.id for s in opened.schools()}
        if store is None:
            known |= {s.id for s in _load_settings(config).schools}
        unknown = sorted(set(school or ()) - known)
        if unknown:
            _usage_error(
                f"unknown school {unknown[0]!r}: known schools are {', '.join(sorted(known)) or 'none'}"
            )
        try:
            user = create_user(
                opened,
                email,
                password,
                role,
                schools=school or (),
                all_schools=all_schools,
                morning_email=morning_email,
                actor=_actor(),
            )
        except AccountError as exc:
            _usage_error(str(exc))
    out.print(f"added {_escape(user.email)} ({user.role})", highlight=False)


@users_app.command("list")
def users_list(
    config: ConfigOption = None, store: StoreOption = None, fmt: FormatOption = OutputFormat.TABLE
) -> None:
    """List the accounts (never their passwords or hashes).

    Example: registerwatch users list
    """
    from rich.table import Table

    from registerwatch.store import Store

    with Store(_store_url(config, store), read_only=True) as opened:
        users = opened.users()
    rows = [
        {
            "email": u.email,
            "role": u.role,
            "schools": "all" if u.all_schools else list(u.schools),
            "morning_email": u.morning_email,
            "disabled": u.disabled,
            "created_at": u.created_at.isoformat(),
        }
        for u in users
    ]
    if fmt is OutputFormat.JSON:
        _emit_json({"users": rows})
        return
    if not rows:
        out.print(
            "No users yet: `registerwatch users add EMAIL --role admin --all-schools --password-stdin`.",
            highlight=False,
        )
        return
    table = Table(title=f"{len(rows)} user(s)")
    for column in ("email", "role", "schools", "morning email", "state"):
        table.add_column(column)
    for u in users:
        table.add_row(
            _escape(u.email),
            u.role,
            "all" if u.all_schools else _escape(", ".join(u.schools)),
            "yes" if u.morning_email else "-",
            "disabled" if u.disabled else "active",
        )
    _print_table(table)


@users_app.command("disable")
def users_disable(
    email: Annotated[str, typer.Argument(help="the account's email")],
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """Disable an account: it can no longer sign in, and its open sessions end.

    Example: registerwatch users disable leaver@oak.sch.uk
    """
    from registerwatch.store import Store
    from registerwatch.web.accounts import AccountError, set_disabled

    with Store(_store_url(config, store)) as opened:
        try:
            set_disabled(opened, email, True, actor=_actor())
        except AccountError as exc:
            _usage_error(str(exc))
    out.print(f"disabled {_escape(email.strip().lower())}", highlight=False)


@users_app.command("set-password")
def users_set_password(
    email: Annotated[str, typer.Argument(help="the account's email")],
    password_stdin: PasswordStdinOption = False,
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """Set an account's password (read from stdin); its other sessions end.

    Example: registerwatch users set-password head@oak.sch.uk --password-stdin < pw.txt
    """
    from registerwatch.store import Store
    from registerwatch.web.accounts import AccountError, set_password

    password = _password_from_stdin(password_stdin)
    with Store(_store_url(config, store)) as opened:
        try:
            set_password(opened, email, password, actor=_actor())
        except AccountError as exc:
            _usage_error(str(exc))
    out.print(f"password set for {_escape(email.strip().lower())}", highlight=False)
