"""A real store and config for the JSON output tests: one simulated Arbor school served on
loopback, synced, scanned, reported, its returns queued and submitted to folder transports.

``JsonWorld.run(args)`` runs one command through ``main`` and returns (exit code, stdout).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest
from support.config_writer import write_config

from registerwatch.cli import main
from registerwatch.simulator.generate import generate_school
from registerwatch.simulator.server import SimulatorServer
from registerwatch.simulator.vendors import build_app, credentials_environ, school_config

AS_OF = "2025-12-01"
SCHOOL = "oakfield"


@dataclass
class JsonWorld:
    root: Path
    config: Path
    store_url: str
    pupil: str  # a pupil's MIS id

    def run_plain(self, args: list[str]) -> tuple[int, str, str]:
        """``run`` for a fixture, where there is no capsys: stdout and stderr redirected."""
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err), pytest.raises(SystemExit) as exc:
            main([a.replace("{root}", str(self.root)) for a in args])
        return int(exc.value.code or 0), out.getvalue(), err.getvalue()

    def run(self, args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exc:
            main([a.replace("{root}", str(self.root)) for a in args])
        captured = capsys.readouterr()
        return int(exc.value.code or 0), captured.out, captured.err


@contextmanager
def json_world(root: Path) -> Iterator[JsonWorld]:
    school = generate_school(1, 80, school_id=SCHOOL, vendor="arbor")
    server = SimulatorServer(build_app("arbor", school)).start()
    store_url = f"sqlite:///{root / 'store.sqlite'}"
    table = school_config(school, "arbor", server.url)
    config = write_config(
        root / "registerwatch.toml",
        store_url,
        [table],
        transports={
            "la": {school.school.la_code: {"kind": "folder", "path": str(root / "to-la")}},
            "dfe": {"kind": "folder", "path": str(root / "to-dfe")},
        },
    )
    try:
        with mock.patch.dict(os.environ, credentials_environ(SCHOOL, "arbor")):
            yield JsonWorld(root, config, store_url, school.pupils[0].mis_id)
    finally:
        server.stop()
