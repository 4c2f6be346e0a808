"""Issue 14 item 5b/5c: each run's tip appended to a sink outside the store (a file opened
O_APPEND 0600 in another folder, or an HTTP endpoint on a real loopback server), and
`ledger verify --against-sink` holding every tip in it against the chain."""

from __future__ import annotations

import json
import os
import stat
import threading
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from ledger_support import cli, raw, rewrite_from
from structlog.testing import capture_logs
from support.config_writer import config_text
from sync_support import (
    AS_OF,
    NOW,
    FakeMis,
    fake_factory,
    fake_mis,
    marks_for,
    pupil,
    school_days,
    school_table,
)

from registerwatch.config import parse_config
from registerwatch.errors import ConfigError
from registerwatch.schema import Session
from registerwatch.store import Store
from registerwatch.sync import sync_all

ENV = {"OAKFIELD_G4S_KEY": "k"}


class Night:
    """A store and a fake MIS, synced night after night with [ledger.sink] configured."""

    def __init__(self, tmp_path: Path, sink: dict[str, str]) -> None:
        self.url = f"sqlite:///{tmp_path / 'data' / 'store.db'}"
        (tmp_path / "data").mkdir(parents=True, exist_ok=True)
        school = school_table("oakfield", fake_mis("oakfield"))
        self.config = tmp_path / "etc" / "registerwatch.toml"
        self.config.parent.mkdir(parents=True, exist_ok=True)
        sink_toml = "\n".join(f"{k} = {json.dumps(v)}" for k, v in sink.items())
        self.config.write_text(
            config_text(self.url, [school]) + f"\n[ledger.sink]\n{sink_toml}\n", encoding="utf-8"
        )
        self.settings = parse_config(
            {"store": {"url": self.url}, "ledger": {"sink": sink}, "schools": [school]}
        )
        calendar = self.settings.schools[0].to_calendar()
        # One ledger entry per pupil's first marks: enough pupils for the cuts below.
        self.pupils = [pupil("oakfield", n) for n in range(1, 31)]
        self.days = school_days(calendar, date(2025, 9, 3), AS_OF)
        self.mis = FakeMis("oakfield", self.pupils, marks_for(self.pupils, self.days))
        self.nights = 0

    def sync(self, **kwargs) -> None:
        with Store.open(self.url) as store:
            summary = sync_all(
                self.settings,
                store,
                as_of=AS_OF,
                environ=ENV,
                adapter_factory=fake_factory({"oakfield": self.mis}),
                clock=lambda: NOW + timedelta(days=self.nights),
                **kwargs,
            )
        assert summary.ok
        self.nights += 1
        # the MIS changes a mark each night: new entries each sync
        self.mis.set(self.pupils[0].id, self.days[-1 - self.nights], Session.AM, "I")

    def verify(self, *args: str):
        return cli("ledger", "verify", "--config", str(self.config), *args)


def test_each_run_appends_its_tip_to_a_private_append_only_file(tmp_path):
    sink = tmp_path / "audit" / "tips.jsonl"
    sink.parent.mkdir()
    sink.write_text('{"seq": 1, "hash": "from-another-store"}\n', encoding="utf-8")
    sink.chmod(0o644)  # an existing file others can read is made private on the next append
    night = Night(tmp_path, {"file": str(sink)})
    night.sync()
    night.sync()
    lines = sink.read_text(encoding="utf-8").splitlines()
    assert lines[0] == '{"seq": 1, "hash": "from-another-store"}'  # appended, never rewritten
    tips = [json.loads(line) for line in lines[1:]]
    assert [t["command"] for t in tips] == ["sync", "sync"]
    with Store(night.url) as store:
        runs = sorted(store.runs(), key=lambda r: r.id)
        assert [f"{t['seq']}:{t['hash']}" for t in tips] == [r.ledger_tip for r in runs]
        assert [t["run"] for t in tips] == [r.id for r in runs]
    assert stat.S_IMODE(sink.stat().st_mode) == 0o600

    fresh = tmp_path / "audit2" / "tips.jsonl"
    fresh.parent.mkdir()
    old = os.umask(0o022)
    try:
        Night(tmp_path / "two", {"file": str(fresh)}).sync()
    finally:
        os.umask(old)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600


def test_a_sink_file_in_the_stores_folder_is_refused(tmp_path):
    night = Night(tmp_path, {"file": str(tmp_path / "data" / "tips.jsonl")})
    with pytest.raises(ConfigError, match="is in the store's folder"):
        night.sync()


def _sink_night(tmp_path: Path) -> tuple[Night, Path]:
    sink = tmp_path / "audit" / "tips.jsonl"
    sink.parent.mkdir()
    night = Night(tmp_path, {"file": str(sink)})
    for _ in range(3):
        night.sync()
    ok = night.verify("--against-sink")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "tip sink: 3 tips, each held by the chain" in ok.stdout
    return night, sink


def test_against_sink_catches_a_cut_even_when_the_runs_table_was_wiped(tmp_path):
    night, _sink = _sink_night(tmp_path)
    with Store(night.url) as store:
        records = store.ledger()
        first_tip = int(sorted(store.runs(), key=lambda r: r.id)[0].ledger_tip.split(":")[0])
    raw(night.url, f"DELETE FROM ledger WHERE seq > {first_tip - 5}", "DELETE FROM runs")
    # Inside the store nothing is left to compare with: the plain check passes...
    assert night.verify().returncode == 0
    # ...the sink, outside it, does not.
    result = night.verify("--against-sink")
    assert result.returncode == 1
    assert "the sink's tip at line 1" in result.stdout and "cut off the end" in result.stdout
    assert len(records) > first_tip


def test_against_sink_catches_a_rewritten_chain(tmp_path):
    night, _sink = _sink_night(tmp_path)
    raw(night.url, "DELETE FROM runs")
    rewrite_from(night.url, 3, "#")  # a code no entry holds
    assert night.verify().returncode == 0  # recomputed hashes, no run tips left
    result = night.verify("--against-sink", "--format", "json")
    assert result.returncode == 1
    broken = json.loads(result.stdout)["broken"]
    assert "the sink's tip at line 1" in broken["reason"] and "recomputed" in broken["reason"]


def test_against_sink_catches_a_chain_that_went_back_and_was_restored(tmp_path):
    night, sink = _sink_night(tmp_path)
    lines = sink.read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    # A run saw the chain cut back to entry 5 (then the entries were put back from a copy):
    # every entry verifies today, but the sink shows the chain went back.
    with Store(night.url) as store:
        fifth = store.ledger_entry(5)
    with sink.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"seq": 5, "hash": fifth.hash, "run": 99}) + "\n")
    assert night.verify().returncode == 0
    result = night.verify("--against-sink")
    assert result.returncode == 1
    assert f"the sink's tip at line {len(lines) + 1}" in result.stdout
    assert (
        "diverged" in result.stdout
        and f"from entry {json.loads(lines[-1])['seq']}" in result.stdout
    )
    assert first["seq"] > 5


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.tips.append(json.loads(body))  # type: ignore[attr-defined]
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        body = json.dumps(self.server.tips).encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def audit_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.tips = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_an_http_sink_gets_each_tip_and_verify_reads_them_back(tmp_path, audit_server):
    url = f"http://127.0.0.1:{audit_server.server_address[1]}/tips"
    night = Night(tmp_path, {"url": url})
    night.sync()
    night.sync()
    assert [t["command"] for t in audit_server.tips] == ["sync", "sync"]
    with Store(night.url) as store:
        assert [f"{t['seq']}:{t['hash']}" for t in audit_server.tips] == [
            r.ledger_tip for r in sorted(store.runs(), key=lambda r: r.id)
        ]
    ok = night.verify("--against-sink")
    assert ok.returncode == 0 and "tip sink: 2 tips" in ok.stdout
    raw(night.url, "DELETE FROM ledger WHERE seq > 3", "DELETE FROM runs")
    cut = night.verify("--against-sink")
    assert cut.returncode == 1 and "the sink's tip at item 1" in cut.stdout


def test_a_sink_that_cannot_be_reached_is_logged_and_the_run_goes_on(tmp_path, audit_server):
    port = audit_server.server_address[1]
    audit_server.shutdown()
    audit_server.server_close()
    night = Night(tmp_path, {"url": f"http://127.0.0.1:{port}/tips"})
    with capture_logs() as logs:
        night.sync()
    failed = [e for e in logs if e["event"] == "ledger.sink_failed"]
    assert failed and "cannot reach tip sink" in failed[0]["error"]
    result = night.verify("--against-sink")
    assert result.returncode == 1 and "cannot reach tip sink" in result.stderr
