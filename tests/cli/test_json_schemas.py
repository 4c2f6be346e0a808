"""Every `--format json` output is an object with named arrays, and matches the JSON Schema
shipped for its command in registerwatch/cli/schemas/ (documented in docs/json.md).

The commands run in order on one real store and config (tests/cli/json_world.py): sync, scan,
acknowledge, record, report, export and queue, submit, retry, the night, then the read-only ones.
A command that takes `--format json` without a schema file fails the test below.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from json_world import AS_OF, SCHOOL, JsonWorld, json_world

from registerwatch.cli._help import build_command
from registerwatch.cli.schemas import SCHEMAS, schema_path
from registerwatch.store import Store

DOCS = SCHEMAS.parents[2] / "docs" / "json.md"


def json_commands() -> list[str]:
    """Every command (as `group-command`) whose --format offers json."""
    found: list[str] = []

    def walk(command: Any, path: list[str]) -> None:
        for param in command.params:
            # typer keeps the option's Python type: an Enum of the formats it offers
            choices = getattr(getattr(param, "type_descriptor", None), "annotation", None)
            if (
                "--format" in getattr(param, "opts", ())
                and isinstance(choices, type)
                and issubclass(choices, Enum)
                and "json" in {member.value for member in choices}
            ):
                found.append("-".join(path))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(build_command(), [])
    return sorted(found)


def validate(document: Any, name: str) -> None:
    schema = json.loads(schema_path(name).read_text(encoding="utf-8"))
    jsonschema.validate(
        document, schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def test_every_json_command_has_a_schema_documented_in_docs_json() -> None:
    commands = json_commands()
    assert {"scan", "runs", "rules", "outbox-list", "codes"} <= set(commands)
    missing = [c for c in commands if not schema_path(c).exists()]
    assert missing == [], f"--format json without a schema in {SCHEMAS}: {missing}"
    docs = DOCS.read_text(encoding="utf-8")
    assert [c for c in commands if f"schemas/{c}.json" not in docs] == []
    # and no schema for a command that is gone
    assert sorted(p.stem for p in SCHEMAS.glob("*.json")) == commands


@pytest.mark.parametrize("path", sorted(SCHEMAS.glob("*.json")), ids=lambda p: p.stem)
def test_each_schema_is_a_valid_schema_of_an_object(path: Path) -> None:
    schema = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["type"] == "object" and schema["required"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JsonWorld]:
    with json_world(tmp_path_factory.mktemp("json")) as built:
        yield built


def _fail_one_item(store_url: str) -> int:
    """Mark one sent item failed, as a receiver's refusal would, so `outbox retry` has one."""
    with Store(store_url) as store:
        item = store.outbox_items()[0]
        store.update_outbox(item.id, state="failed", last_error="rejected by the receiver: 422")
        return item.id


def test_every_json_output_matches_its_schema(
    world: JsonWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ["--config", str(world.config)]
    validated: dict[str, Any] = {}

    def check(name: str, args: list[str], codes: tuple[int, ...] = (0,)) -> Any:
        code, out, err = world.run([*args, "--format", "json"], capsys)
        assert code in codes, f"{name}: exit {code}: {err}"
        document = json.loads(out)
        assert isinstance(document, dict), f"{name} printed a bare {type(document).__name__}"
        if dump := os.environ.get("REGISTERWATCH_DUMP_JSON"):  # to write or review a schema
            Path(dump).mkdir(parents=True, exist_ok=True)
            (Path(dump) / f"{name}.json").write_text(json.dumps(document, indent=2), "utf-8")
            if not schema_path(name).exists():
                return document
        try:
            validate(document, name)
        except jsonschema.ValidationError as exc:
            pytest.fail(f"{name}: {exc.message} at {list(exc.absolute_path)}")
        validated[name] = document
        return document

    check("sync", ["sync", "--as-of", AS_OF, *config])
    check("scan", ["scan", "--as-of", AS_OF, "--fail-on", "never", *config])
    listed = check("findings-list", ["findings", "list", *config])
    assert listed["findings"], "the simulated school has injected breaches"
    fingerprint = listed["findings"][0]["fingerprint"][:10]
    check("findings-ack", ["findings", "ack", fingerprint, "--note", "seen", *config])
    check("findings-history", ["findings", "history", fingerprint, *config])
    check(
        "notify-record",
        ["notify", "record", "--school", SCHOOL, "--kind", "la-sickness", "--pupil", world.pupil]
        + ["--made-at", "2025-12-01T09:00", *config],
    )
    check("report", ["report", "--as-of", AS_OF, "--output", "{root}/report", *config])
    exported = check(
        "export",
        ["export", "dfe-daily", "--as-of", AS_OF, "--allow-incomplete", "--queue"]
        + ["--output", "{root}/returns", *config],
    )
    assert exported["returns"] and exported["returns"][0]["queued"]
    check("submit", ["submit", *config])
    items = check("outbox-list", ["outbox", "list", *config])
    assert items["items"] and items["items"][0]["state"] in ("sent", "acknowledged")
    failed = _fail_one_item(world.store_url)
    check("outbox-retry", ["outbox", "retry", str(failed), *config])
    check("nightly", ["nightly", "--as-of", AS_OF, "--output", "{root}/night", *config], (0, 1))
    runs = check("runs", ["runs", *config])
    assert {r["command"] for r in runs["runs"]} >= {"sync", "scan", "nightly"}
    check("status", ["status", *config], (0, 1))  # 1: the 2025 registers are stale today
    check("config-check", ["config", "check", "--as-of", AS_OF, *config])
    check(
        "calendar-school-days",
        ["calendar", "school-days", "--school", SCHOOL, "--from", "2025-11-10"]
        + ["--to", "2025-11-21", *config],
    )
    check("codes", ["codes"])
    upns = check("upn-check", ["upn", "check", "B801200005001", "B80120000500X"], (1,))
    assert [u["valid"] for u in upns["upns"]] == [True, False] and upns["ok"] is False
    check("rules", ["rules"])
    check("rules-explain", ["rules", "explain", "MRK001", "--school", SCHOOL, *config])
    check("db-current", ["db", "current", *config])
    check("ledger-verify", ["ledger", "verify", *config])
    with Store(world.store_url) as store:
        store.add_user("lead@example.org", "$argon2id$not-a-real-hash", "admin", all_schools=True)
        store.add_user("dm@example.org", "$argon2id$not-a-real-hash", "viewer", schools=[SCHOOL])
    users = check("users-list", ["users", "list", *config])
    assert [u["schools"] for u in users["users"]] in (["all", [SCHOOL]], [[SCHOOL], "all"])
    check("demo", ["demo", "--dir", "{root}/demo", "--pupils", "80"])

    assert sorted(validated) == json_commands(), "a JSON command this test does not run"


def test_calendar_school_days_json_carries_the_sessions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from registerwatch.cli import main
    from registerwatch.config import EXAMPLE_CONFIG_PATH

    with pytest.raises(SystemExit) as exit_:
        main(
            ["calendar", "school-days", "--school", "brookside", "--from", "2025-11-10"]
            + ["--to", "2025-11-21", "--config", str(EXAMPLE_CONFIG_PATH), "--format", "json"]
        )
    assert exit_.value.code in (0, None)
    doc = json.loads(capsys.readouterr().out)
    validate(doc, "calendar-school-days")
    days = [d["date"] for d in doc["days"]]
    # The INSET day is no school day; the unexpected closure is (its sessions are coded Y4).
    assert "2025-11-14" not in days and "2025-11-20" in days
    assert all(d["sessions"] for d in doc["days"])
