"""The web tests' world: two generated schools synced from loopback Arbor simulators and
scanned by every rule (as a night would leave them), an outbox with one item per school (one
failed), one account per role for ``oakfield``, one for ``birch`` (the other school) and a real
uvicorn server on loopback serving the app.

Built once per test session into a SQLite file (``template``); each test module copies it.
"""

from __future__ import annotations

import asyncio
import copy
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import uvicorn
from argon2 import PasswordHasher
from starlette.applications import Starlette

from registerwatch.config import parse_config
from registerwatch.config.web import WebSettings
from registerwatch.scan import run_scan
from registerwatch.simulator import server as simulator_server
from registerwatch.simulator.generate import generate_school
from registerwatch.simulator.server import SimulatorServer
from registerwatch.simulator.vendors import build_app, credentials_environ, school_config
from registerwatch.store import Store
from registerwatch.sync import sync_all
from registerwatch.web.accounts import create_user
from registerwatch.web.app import create_app

AS_OF = date(2025, 12, 1)
SYNCED_AT = datetime(2025, 12, 1, 19, 0, tzinfo=UTC)
SCANNED_AT = datetime(2025, 12, 1, 19, 30, tzinfo=UTC)
# The app's clock: the next morning.
NOW = datetime(2025, 12, 2, 8, 0, tzinfo=UTC)
OAK, BIRCH = "oakfield", "birch"
PASSWORD = "correct horse battery staple"
# Real Argon2id, at a cost that keeps many sign-ins quick in tests (production uses
# argon2-cffi's defaults).
TEST_HASHER = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
SECRET = b"test-session-key-" + b"x" * 32

# email -> (role, schools or None for all)
ACCOUNTS: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "viewer@oak.example": ("viewer", (OAK,)),
    "manager@oak.example": ("data-manager", (OAK,)),
    "admin@trust.example": ("admin", None),
    "manager@birch.example": ("data-manager", (BIRCH,)),
}


def _serve_simulator(app: Any) -> SimulatorServer:
    server = SimulatorServer(app)
    threading.Thread(
        target=server._server.serve_forever,
        kwargs={"poll_interval": 0.01},
        name="sim-web",
        daemon=True,
    ).start()
    return server


def build_template(folder: Path) -> Path:
    """Sync and scan two schools into a new store; queue one return each; add the accounts."""
    path = folder / "store.db"
    url = f"sqlite:///{path}"
    simulator_server._Handler.disable_nagle_algorithm = True  # type: ignore[attr-defined]
    schools = [
        generate_school(5, 90, school_id=OAK, vendor="arbor", as_of=AS_OF),
        generate_school(6, 85, school_id=BIRCH, vendor="arbor", as_of=AS_OF),
    ]
    servers = [_serve_simulator(build_app("arbor", copy.deepcopy(s))) for s in schools]
    try:
        tables = [
            school_config(s, "arbor", srv.url) for s, srv in zip(schools, servers, strict=True)
        ]
        tables[1]["urn"], tables[1]["laestab"] = "100777", "8817777"
        settings = parse_config(
            {"store": {"url": url}, "sync": {"timeout_seconds": 5}, "schools": tables}
        )
        environ = {}
        for s in schools:
            environ |= credentials_environ(s.school.id, "arbor")
        with Store.open(url) as store:
            summary = sync_all(
                settings, store, as_of=AS_OF, environ=environ, clock=lambda: SYNCED_AT
            )
            assert summary.ok, [s.error for s in summary.schools]
            run_scan(store, settings, as_of=AS_OF, clock=lambda: SCANNED_AT)
            for school_id, state in ((OAK, "failed"), (BIRCH, "queued")):
                item, _ = store.enqueue_outbox(
                    return_kind="la-sickness",
                    school_id=school_id,
                    idempotency_key=f"test-{school_id}",
                    payload=b'<?xml version="1.0"?><Return school="' + school_id.encode() + b'"/>',
                    pupil_id=None,
                    at=SCANNED_AT,
                )
                if state == "failed":
                    store.update_outbox(
                        item.id,
                        state="failed",
                        last_error="LA said 503",
                        attempted=True,
                        at=SCANNED_AT,
                    )
            for email, (role, scope) in ACCOUNTS.items():
                create_user(
                    store,
                    email,
                    PASSWORD,
                    role,
                    schools=scope or (),
                    all_schools=scope is None,
                    actor="test",
                    hasher=TEST_HASHER,
                    at=SCANNED_AT,
                )
    finally:
        for srv in servers:
            srv.stop()
    return path


def copy_store(template: Path, target: Path) -> str:
    with sqlite3.connect(template) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    target.chmod(0o600)
    return f"sqlite:///{target}"


@dataclass
class LiveServer:
    """uvicorn serving the app on a loopback port, in a thread."""

    app: Starlette
    store: Store
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_server(store: Store, settings: WebSettings | None = None) -> LiveServer:
    app = create_app(
        store, settings or WebSettings(), secret=SECRET, hasher=TEST_HASHER, clock=lambda: NOW
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=lambda: asyncio.run(server.serve(sockets=[sock])), name="uvicorn-web", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    return LiveServer(app, store, f"http://127.0.0.1:{port}", server, thread)


def serving(store: Store) -> Iterator[LiveServer]:
    live = start_server(store)
    try:
        yield live
    finally:
        live.stop()
