"""The package as it is installed: one version, the systemd units shipped in deploy/systemd/
valid for systemd, and the README's production install using them."""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import registerwatch

ROOT = Path(__file__).resolve().parents[1]
UNITS = ROOT / "deploy" / "systemd"
INSTALLED = "/usr/local/bin/registerwatch"


def test_the_version_is_written_in_one_place() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert "version" not in project and "version" in project["dynamic"]
    # what the installed distribution says is what the package says (`--version` prints it)
    assert importlib.metadata.version("registerwatch") == registerwatch.__version__


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_the_systemd_units_verify(tmp_path: Path) -> None:
    command = Path(sys.executable).parent / "registerwatch"
    assert command.exists(), "the registerwatch command is installed beside this Python"
    for unit in UNITS.iterdir():
        text = unit.read_text(encoding="utf-8")
        assert unit.suffix == ".timer" or INSTALLED in text
        # systemd checks that ExecStart names an executable: this test's one stands in for it.
        (tmp_path / unit.name).write_text(text.replace(INSTALLED, str(command)), "utf-8")
    units = sorted(str(p) for p in tmp_path.iterdir())
    assert len(units) == 5  # the daemon, the nightly service and timer, the worker, the web app
    done = subprocess.run(
        ["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    problems = [line for line in done.stderr.splitlines() if "registerwatch" in line]
    assert not problems, problems


def test_the_readme_installs_the_wheel_and_the_shipped_units() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "python -m build" in readme and "pipx install" in readme
    for unit in UNITS.iterdir():
        assert f"deploy/systemd/{unit.name}" in readme
    assert "/opt/registerwatch/.venv" not in readme
