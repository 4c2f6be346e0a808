"""The README's exit-status promise, for every command and every kind of error, in one table:
0 ok; 1 findings at or above --fail-on, or failures; 2 usage or configuration.

One simulated Arbor school (in-process, loopback) is synced once for the module; each row then
runs one command through ``main`` and checks its exit status and its one-line message.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from unittest import mock

import pytest

from registerwatch.cli import main
from registerwatch.config import EXAMPLE_CONFIG_PATH
from registerwatch.simulator.generate import generate_school
from registerwatch.simulator.server import SimulatorServer
from registerwatch.simulator.vendors import build_app, credentials_environ

AS_OF = "2025-12-01"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("exit-codes")
    school = generate_school(1, 80, school_id="oakfield", vendor="arbor")
    server = SimulatorServer(build_app("arbor", school)).start()
    text = Path(EXAMPLE_CONFIG_PATH).read_text(encoding="utf-8")
    good = re.sub(r"127\.0\.0\.1:8101\b", f"127.0.0.1:{server.port}", text)
    (root / "registerwatch.toml").write_text(good, encoding="utf-8")
    # The same config with oakfield's MIS on a port nothing listens on.
    down = re.sub(r"127\.0\.0\.1:8101\b", f"127.0.0.1:{_free_port()}", text)
    (root / "down").mkdir()
    (root / "down" / "registerwatch.toml").write_text(down, encoding="utf-8")
    (root / "bad.toml").write_text("[store]\nurl = 3\n", encoding="utf-8")
    (root / "a-file").write_text("not a folder", encoding="utf-8")
    (root / "outbox" / "dfe").mkdir(parents=True)
    # Every secret the example config names, so only the row's own error is in the way.
    env = {
        **credentials_environ("oakfield", "arbor"),
        **credentials_environ("wenlock", "isams"),
        **credentials_environ("brookside", "go4schools"),
        "LA893_RETURNS_TOKEN": "a-token",
    }
    with mock.patch.dict(os.environ, env):
        sync = ["sync", "--config", str(root / "registerwatch.toml"), "--school", "oakfield"]
        assert _run([*sync, "--as-of", AS_OF]) == 0
        try:
            yield root, env
        finally:
            server.stop()


def _run(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(args)
    return int(exc.value.code or 0)


# command -> the arguments it needs to run (the config is added by each row)
COMMANDS: dict[str, list[str]] = {
    "sync": ["sync", "--as-of", AS_OF],
    "scan": ["scan", "--as-of", AS_OF, "--fail-on", "never"],
    "findings list": ["findings", "list"],
    "notify record": ["notify", "record", "--kind", "sickness", "--pupil", "nobody"],
    "report": ["report", "--as-of", AS_OF, "--output", "{root}/reports"],
    "export": ["export", "dfe-daily", "--as-of", AS_OF, "--allow-incomplete"],
    "submit": ["submit", "--dry-run"],
    "outbox list": ["outbox", "list"],
    "calendar school-days": ["calendar", "school-days", "--from", AS_OF, "--to", AS_OF],
}
# Commands that need a school: oakfield unless the row names another.
NEEDS_SCHOOL = {"notify record", "calendar school-days"}
COMMANDS |= {
    "nightly": ["nightly", "--as-of", AS_OF],
    "config check": ["config", "check", "--as-of", AS_OF],
    "runs": ["runs"],
    "db current": ["db", "current"],
    "ledger verify": ["ledger", "verify"],
}
SCHOOL_COMMANDS = [
    "sync",
    "scan",
    "findings list",
    "notify record",
    "report",
    "export",
    "submit",
    "outbox list",
    "calendar school-days",
]
OUTPUT_COMMANDS = ["nightly", "export", "report", "scan"]

CASES: list[tuple[str, str, list[str], int, str]] = []
for name, args in COMMANDS.items():
    if name in NEEDS_SCHOOL:
        args = [*args, "--school", "oakfield"]
    CASES.append((name, "usage", [*args, "--no-such-option"], 2, "No such option"))
    CASES.append((name, "config", [*args, "--config", "{root}/bad.toml"], 2, "store.url"))
for name in SCHOOL_COMMANDS:
    args = [*COMMANDS[name], "--school", "oakfeld"]
    CASES.append((name, "unknown school", args, 2, "did you mean 'oakfield'?"))
for name in ("sync", "nightly", "config check"):
    CASES.append(
        (
            name,
            "credentials",
            [*COMMANDS[name], "--school", "oakfield"] if name == "sync" else COMMANDS[name],
            2,
            "OAKFIELD_ARBOR_USERNAME",
        )
    )
CASES += [
    (
        "sync",
        "unreachable MIS",
        [
            "sync",
            "--as-of",
            AS_OF,
            "--school",
            "oakfield",
            "--config",
            "{root}/down/registerwatch.toml",
        ],
        1,
        "oakfield",
    ),
    (
        "nightly",
        "unreachable MIS",
        [
            "nightly",
            "--as-of",
            AS_OF,
            "--output",
            "{root}/out",
            "--config",
            "{root}/down/registerwatch.toml",
        ],
        1,
        "oakfield",
    ),
    (
        "config check --connect",
        "unreachable MIS",
        [
            "config",
            "check",
            "--connect",
            "--as-of",
            AS_OF,
            "--config",
            "{root}/down/registerwatch.toml",
        ],
        2,
        "school 'oakfield'",
    ),
    ("scan", "findings at or above --fail-on", ["scan", "--as-of", AS_OF], 1, ""),
    ("scan", "none at or above --fail-on", ["scan", "--as-of", AS_OF, "--fail-on", "never"], 0, ""),
]
for name in OUTPUT_COMMANDS:
    target = "{root}/a-file/out.json" if name == "scan" else "{root}/a-file/sub"
    CASES.append(
        (name, "unwritable output", [*COMMANDS[name], "--output", target], 2, "{root}/a-file")
    )


@pytest.mark.parametrize(
    ("command", "kind", "args", "expected", "says"),
    CASES,
    ids=[f"{c}-{k}".replace(" ", "_") for c, k, *_ in CASES],
)
def test_exit_status(world, capsys, command, kind, args, expected, says):
    root, env = world
    args = [a.format(root=root) for a in args]
    if "--config" not in args:
        args += ["--config", str(root / "registerwatch.toml")]
    environ = {} if kind == "credentials" else env
    with mock.patch.dict(os.environ, environ):
        if kind == "credentials":
            for name in env:
                os.environ.pop(name, None)
        capsys.readouterr()
        code = _run(args)
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert code == expected, output
    assert says.format(root=root) in output
    assert "internal error" not in output and "Traceback" not in output
