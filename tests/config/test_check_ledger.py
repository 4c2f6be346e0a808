"""`config check` looks at [ledger] when it names a key or a tip sink: every key readable and
long enough, the tip sink allowed where it is and its folder there."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from registerwatch.config import parse_config
from registerwatch.config.check import check_offline

DAY = date(2025, 11, 3)
KEY = "k" * 64


def _settings(tmp_path: Path, ledger: dict[str, Any] | None) -> Any:
    (tmp_path / "ctf").mkdir(exist_ok=True)
    (tmp_path / "dfe").mkdir(exist_ok=True)
    raw: dict[str, Any] = {
        "store": {"url": f"sqlite:///{tmp_path / 'store' / 's.sqlite'}"},
        "transports": {
            "la": {"881": {"kind": "folder", "path": "dfe"}},
            "dfe": {"kind": "folder", "path": "dfe"},
        },
        "schools": [
            {
                "id": "oakfield",
                "urn": "100001",
                "laestab": "8814001",
                "name": "Oakfield",
                "la_code": "881",
                "phase": "secondary",
                "mis": {"vendor": "ctf", "path": "ctf"},
                "calendar": {"terms": [{"start": "2025-09-03", "end": "2025-12-19"}]},
            }
        ],
    }
    if ledger is not None:
        raw["ledger"] = ledger
    return parse_config(raw, config_dir=tmp_path)


def _ledger_line(lines: list[Any]) -> Any:
    (line,) = [line for line in lines if line.subject == "ledger"]
    return line


def test_no_ledger_line_for_a_plain_chain(tmp_path: Path) -> None:
    lines = check_offline(_settings(tmp_path, None), as_of=DAY, environ={})
    assert "ledger" not in [line.subject for line in lines]
    assert all(line.ok for line in lines), [line.problems for line in lines]


def test_a_readable_key_and_a_sink_folder_are_ok(tmp_path: Path) -> None:
    (tmp_path / "tips").mkdir()
    settings = _settings(
        tmp_path,
        {"key_id": "2027-01", "key_env": "RW_LEDGER_KEY", "sink": {"file": "tips/tips.jsonl"}},
    )
    line = _ledger_line(check_offline(settings, as_of=DAY, environ={"RW_LEDGER_KEY": KEY}))
    assert line.ok, line.problems
    assert "signs with key '2027-01'" in line.detail
    assert KEY not in repr(line)


def test_an_unset_key_a_short_key_and_a_missing_sink_folder_are_named(tmp_path: Path) -> None:
    short = tmp_path / "old.key"
    short.write_text("short")
    short.chmod(0o600)
    settings = _settings(
        tmp_path,
        {
            "key_id": "2027-01",
            "key_env": "RW_LEDGER_KEY",
            "retired_keys": [{"key_id": "2026-09", "key_file": "old.key"}],
            "sink": {"file": "nowhere/tips.jsonl"},
        },
    )
    line = _ledger_line(check_offline(settings, as_of=DAY, environ={}))
    assert not line.ok
    text = " | ".join(line.problems)
    assert "RW_LEDGER_KEY" in text
    assert "nowhere does not exist" in text
    # the unset current key is reported first; after setting it, the short retired key is
    line = _ledger_line(check_offline(settings, as_of=DAY, environ={"RW_LEDGER_KEY": KEY}))
    assert any("'2026-09'" in p and "shorter than" in p for p in line.problems), line.problems


def test_a_key_file_others_can_read_is_named(tmp_path: Path) -> None:
    loose = tmp_path / "ledger.key"
    loose.write_text(KEY)
    loose.chmod(0o644)
    settings = _settings(tmp_path, {"key_id": "2027-01", "key_file": "ledger.key"})
    line = _ledger_line(check_offline(settings, as_of=DAY, environ={}))
    assert any("chmod 600" in p for p in line.problems), line.problems
    assert KEY not in repr(line)


def test_a_tip_sink_beside_the_store_is_refused(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    settings = _settings(tmp_path, {"sink": {"file": "store/tips.jsonl"}})
    line = _ledger_line(check_offline(settings, as_of=DAY, environ={}))
    assert any("store's folder" in p for p in line.problems), line.problems
