"""Issue 10's acceptance, with real processes: `registerwatch nightly` and `registerwatch submit`
run as subprocesses against `registerwatch simulate` (an Arbor-style school, as in the README).

One module-scoped store goes through four nights in order, each test taking up where the one
before left it: a good night whose LA returns stay queued (no LA transport is configured yet);
`submit` once the LA's folder is configured; a night with the simulator stopped; a night with it
back. The simulator serves registers up to Friday 28 November 2025 (its school's as-of is Monday
1 December), so the good night is Monday's.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.config_writer import write_config

from registerwatch.simulator.generate import generate_school
from registerwatch.simulator.vendors import credentials_environ, school_config

CLI = [sys.executable, "-m", "registerwatch.cli"]
SCHOOL = "oakfield"  # the example config's Arbor school: `simulate --vendor arbor` serves it
SEED, PUPILS = 1, 80  # simulate's default seed; 80 pupils carry every injected breach
MONDAY, TUESDAY = "2025-12-01", "2025-12-02"
LAR = ("LAR001", "LAR002", "LAR003", "LAR004", "LAR005")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class World:
    folder: Path
    port: int
    env: dict[str, str]
    simulator: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.simulator = subprocess.Popen(
            [*CLI, "simulate", "--vendor", "arbor", "--port", str(self.port)]
            + ["--pupils", str(PUPILS), "--seed", str(SEED)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.simulator.poll() is not None:
                raise AssertionError(f"simulator exited: {self.simulator.stderr.read()}")  # type: ignore[union-attr]
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise AssertionError("simulator did not start listening")

    def stop(self) -> None:
        if self.simulator is not None:
            self.simulator.terminate()
            self.simulator.wait(timeout=30)
            self.simulator = None

    def config(self, *, la_transport: bool) -> Path:
        school = generate_school(SEED, PUPILS, school_id=SCHOOL, vendor="arbor")
        table = school_config(school, "arbor", f"http://127.0.0.1:{self.port}")
        la = {school.school.la_code: {"kind": "folder", "path": "la-drop"}} if la_transport else {}
        return write_config(
            self.folder / "registerwatch.toml",
            "sqlite:///rw.sqlite",
            [table],
            logging={"level": "WARNING"},
            sync={"timeout_seconds": 5},
            transports={"la": la},
        )

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args, "--config", str(self.folder / "registerwatch.toml")],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=600,
        )

    def json(self, *args: str, codes: tuple[int, ...] = (0, 1)) -> Any:
        result = self.run(*args, "--format", "json")
        assert result.returncode in codes, result.stderr[-3000:]
        return json.loads(result.stdout)

    def findings(self) -> dict[str, dict[str, Any]]:
        doc = self.json("findings", "list", "--status", "all")
        return {f["fingerprint"]: f for f in doc["findings"]}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("night")
    env = {**os.environ, **credentials_environ(SCHOOL, "arbor")}
    env.pop("REGISTERWATCH_CONFIG", None)
    w = World(folder, _free_port(), env)
    w.config(la_transport=False)
    w.start()
    try:
        yield w
    finally:
        w.stop()


def test_a_night_whose_la_returns_are_queued_shows_each_lar_finding_as_queued(world: World) -> None:
    night = world.json("nightly", "--as-of", MONDAY)
    steps = {s["step"]: s for s in night["steps"]}
    assert steps["sync"]["outcome"] == steps["scan"]["outcome"] == "ok"
    queued = steps["la-returns"]["counts"]["queued"]
    assert queued >= 1
    # No LA transport yet: submit leaves every LA item queued and says why.
    assert steps["submit"]["counts"]["deferred"] == queued
    (school,) = night["schools"]
    assert (school["school"], school["registers_complete_to"]) == (SCHOOL, "2025-11-28")

    scan = world.json("scan", "--as-of", MONDAY)
    answered = [f for f in scan["findings"] if f["rule"] in LAR and f["return"] is not None]
    assert len(answered) >= queued  # an episode's return can answer more than one finding
    assert {f["return"]["state"] for f in answered} == {"queued"}
    assert all(f["return"]["sent_at"] is None for f in answered)
    # The night's own report is written after its LA returns are queued, so it says they will
    # be sent rather than asking for them to be made.
    report = (world.folder / "output" / MONDAY / "report.html").read_text(encoding="utf-8")
    assert "will be sent" in report


def test_submit_closes_the_lar_findings_its_returns_answer(world: World) -> None:
    scan = world.json("scan", "--as-of", MONDAY)
    answered = {f["fingerprint"] for f in scan["findings"] if f["return"] is not None}
    assert answered

    world.config(la_transport=True)
    sent = world.json("submit")
    assert sent["counts"]["sent"] >= 1 and sent["counts"]["failed"] == 0
    assert len(list((world.folder / "la-drop").glob("*.xml"))) == sent["counts"]["sent"]

    after = world.findings()
    assert {after[fp]["status"] for fp in answered} == {"resolved"}
    history = world.json("findings", "history", sorted(answered)[0])
    (closing,) = [e for e in history["events"] if e["cause"] == "return sent"]
    assert closing["event"] in ("resolved", "resolved_late")


def test_a_failed_sync_night_keeps_the_findings_and_opens_syn001_then_a_good_night_resolves_it(
    world: World,
) -> None:
    before = world.findings()
    world.stop()
    night = world.json("nightly", "--as-of", TUESDAY)
    steps = {s["step"]: s for s in night["steps"]}
    assert night["outcome"] == "partial"
    assert steps["sync"]["outcome"] == "failed"
    (school,) = night["schools"]
    assert school["registers_complete_to"] == "2025-11-28" and school["stale"] is True
    assert school["last_sync"]["outcome"] == "failed"

    after = world.findings()
    syn = [f for f in after.values() if f["rule"] == "SYN001"]
    assert [f["status"] for f in syn] == ["open"]
    assert "registers complete to 2025-11-28" in syn[0]["message"]
    # Nothing else opened or resolved: the unseen day was not judged.
    unchanged = {fp: f["status"] for fp, f in after.items() if f["rule"] != "SYN001"}
    assert unchanged == {fp: f["status"] for fp, f in before.items()}
    assert steps["la-returns"]["counts"]["queued"] == 0  # no returns from stale registers

    world.start()
    good = world.json("nightly", "--as-of", TUESDAY)
    assert {s["step"]: s["outcome"] for s in good["steps"]}["sync"] == "ok"
    (school,) = good["schools"]
    assert school["registers_complete_to"] == "2025-12-01" and school["stale"] is False
    (resolved,) = [f for f in world.findings().values() if f["rule"] == "SYN001"]
    assert resolved["status"] == "resolved"
