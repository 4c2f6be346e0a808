"""The README's walk-through: `registerwatch simulate` + `registerwatch sync` with the example
config, for each vendor, as real processes."""

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from registerwatch.config import EXAMPLE_CONFIG_PATH
from registerwatch.simulator.vendors import credentials_environ

CLI = [sys.executable, "-m", "registerwatch.cli"]
EXAMPLE_PORTS = {
    "arbor": ("oakfield", 8101),
    "isams": ("wenlock", 8102),
    "go4schools": ("brookside", 8103),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port: int, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"simulator exited: {process.stderr.read()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError("simulator did not start listening")


@pytest.mark.parametrize("vendor", ["arbor", "isams", "go4schools"])
def test_simulate_then_sync_with_the_example_config(tmp_path: Path, vendor: str) -> None:
    school_id, example_port = EXAMPLE_PORTS[vendor]
    port = _free_port()
    # The README copies the example next to where the data should live; the test also moves
    # the simulator off the example's fixed port so parallel runs cannot collide.
    config = Path(EXAMPLE_CONFIG_PATH).read_text(encoding="utf-8")
    config = re.sub(rf"127\.0\.0\.1:{example_port}\b", f"127.0.0.1:{port}", config)
    (tmp_path / "registerwatch.toml").write_text(config, encoding="utf-8")
    simulator = subprocess.Popen(
        [*CLI, "simulate", "--vendor", vendor, "--port", str(port), "--pupils", "80"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(port, simulator)
        env = {**os.environ, **credentials_environ(school_id, vendor)}
        result = subprocess.run(
            [
                *CLI,
                "sync",
                "--config",
                str(tmp_path / "registerwatch.toml"),
                "--school",
                school_id,
                "--as-of",
                "2025-12-01",
                "--format",
                "json",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=180,
        )
    finally:
        simulator.terminate()
        simulator.wait(timeout=30)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    [school] = summary["schools"]
    assert school["school"] == school_id and school["status"] == "ok"
    assert school["fetched"]["pupils"] == 80
    assert school["marks"]["new"] > 5000
    assert (tmp_path / "registerwatch.sqlite").stat().st_mode & 0o777 == 0o600
