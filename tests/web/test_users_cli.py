"""`registerwatch users ...` and `registerwatch serve` from the command line: the password is
read from stdin and never echoed, mistakes exit 2 with one line, and `serve` runs as a real
process that answers over loopback with the security headers."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from support.config_writer import write_config
from web_client import signed_in_client
from web_world import BIRCH, OAK, PASSWORD, copy_store

from registerwatch.cli import main
from registerwatch.store import Store

NEW_PASSWORD = "the data manager's passphrase"


def _run(
    args: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    stdin: str = "",
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def store_url(template: Path, tmp_path: Path) -> str:
    return copy_store(template, tmp_path / "store.db")


def test_users_add_list_disable_and_set_password(
    store_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ["--store", store_url]
    code, out, err = _run(
        [
            "users",
            "add",
            "Head@Oak.example",
            "--role",
            "viewer",
            "--school",
            OAK,
            "--password-stdin",
            *store,
        ],
        capsys,
        monkeypatch,
        stdin=NEW_PASSWORD + "\n",
    )
    assert (code, err) == (0, "")
    assert "added head@oak.example (viewer)" in out and NEW_PASSWORD not in out

    code, out, _ = _run(["users", "list", "--format", "json", *store], capsys, monkeypatch)
    listed = {u["email"]: u for u in json.loads(out)["users"]}
    assert listed["head@oak.example"]["schools"] == [OAK]
    assert listed["admin@trust.example"]["schools"] == "all"
    assert "argon2" not in out and NEW_PASSWORD not in out

    code, out, _ = _run(["users", "disable", "head@oak.example", *store], capsys, monkeypatch)
    assert code == 0
    code, out, _ = _run(
        ["users", "set-password", "head@oak.example", "--password-stdin", *store],
        capsys,
        monkeypatch,
        stdin="another long passphrase\n",
    )
    assert code == 0
    with Store(store_url) as opened:
        user = opened.user("head@oak.example")
        assert user is not None and user.disabled and user.password_hash.startswith("$argon2id$")
        actions = [e.action for e in opened.audit_entries(subject="head@oak.example")]
    assert actions == ["user_added", "user_disabled", "password_set"]


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (
            ["users", "add", "x@oak.example", "--role", "viewer", "--school", OAK],
            NEW_PASSWORD,
            "--password-stdin",
        ),
        (
            [
                "users",
                "add",
                "x@oak.example",
                "--role",
                "owner",
                "--school",
                OAK,
                "--password-stdin",
            ],
            NEW_PASSWORD,
            "role 'owner'",
        ),
        (
            [
                "users",
                "add",
                "x@oak.example",
                "--role",
                "viewer",
                "--school",
                "nowhere",
                "--password-stdin",
            ],
            NEW_PASSWORD,
            "unknown school 'nowhere'",
        ),
        (
            ["users", "add", "x@oak.example", "--role", "viewer", "--password-stdin"],
            NEW_PASSWORD,
            "--all-schools",
        ),
        (
            [
                "users",
                "add",
                "x@oak.example",
                "--role",
                "viewer",
                "--school",
                BIRCH,
                "--password-stdin",
            ],
            "short",
            "too short",
        ),
        (
            [
                "users",
                "add",
                "manager@oak.example",
                "--role",
                "viewer",
                "--school",
                OAK,
                "--password-stdin",
            ],
            NEW_PASSWORD,
            "already exists",
        ),
        (["users", "disable", "nobody@oak.example"], "", "no user nobody@oak.example"),
    ],
)
def test_mistakes_exit_2_with_one_line(
    store_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    stdin: str,
    message: str,
) -> None:
    code, out, err = _run([*args, "--store", store_url], capsys, monkeypatch, stdin=stdin + "\n")
    assert code == 2
    assert message in err
    assert NEW_PASSWORD not in out + err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_runs_as_a_process(store_url: str, tmp_path: Path, workers: int) -> None:
    """With one worker and a configured session key; with two and none, the one random key
    serve makes must be every worker's, or requests landing on the other would sign out."""
    config = write_config(
        tmp_path / "registerwatch.toml",
        store_url,
        [
            {
                "id": OAK,
                "urn": "100001",
                "laestab": "8812001",
                "name": "Oakfield",
                "la_code": "881",
                "phase": "primary",
                "mis": {
                    "vendor": "go4schools",
                    "base_url": "http://127.0.0.1:9/customer/v1",
                    "api_key_env": "OAK_KEY",
                },
                "calendar": {"terms": [{"start": "2025-09-03", "end": "2025-12-19"}]},
            }
        ],
    )
    with config.open("a", encoding="utf-8") as toml:
        toml.write('\n[web]\nidle_minutes = 20\nsecret_key_env = "TEST_WEB_SECRET"\n')
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "TEST_WEB_SECRET"}
    if workers == 1:
        env["TEST_WEB_SECRET"] = "k" * 40
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "registerwatch.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--config",
            str(config),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/login", timeout=5)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        assert response.status_code == 200
        assert "Sign in" in response.text
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "Max-Age=1200" in response.headers["set-cookie"]  # idle_minutes = 20
        assert "server" not in response.headers
        client = signed_in_client(f"http://127.0.0.1:{port}", "manager@oak.example", PASSWORD)
        try:
            # New connections, so that uvicorn's workers share them out.
            client.http.headers["connection"] = "close"
            for _ in range(12):
                assert client.get("/").status_code == 200
            # Pupil pages at once: each view is an audit write, from whichever worker.
            with Store(store_url) as opened:
                pupil_id = opened.pupils(OAK)[0].id
            with ThreadPoolExecutor(max_workers=6) as pool:
                statuses = list(pool.map(lambda _: client.get(f"/pupils/{pupil_id}"), range(18)))
            assert [r.status_code for r in statuses] == [200] * 18
        finally:
            client.close()
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0].decode()
    assert f"http://127.0.0.1:{port}/ ({workers} worker" in output
    with Store(store_url) as opened:
        views = [e for e in opened.audit_entries(subject=pupil_id) if e.action == "pupil_viewed"]
    assert len(views) == 18
    assert ("no session key configured" in output) == (workers > 1)
