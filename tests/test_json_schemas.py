"""`--format json` outputs against the JSON Schemas shipped in registerwatch/cli/schemas/."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from registerwatch.cli import main
from registerwatch.config import EXAMPLE_CONFIG_PATH

SCHEMAS = Path(__file__).resolve().parents[1] / "registerwatch" / "cli" / "schemas"


def schema(name: str) -> dict:
    return json.loads((SCHEMAS / f"{name}.json").read_text(encoding="utf-8"))


def validate(document: object, name: str) -> None:
    jsonschema.validate(
        document, schema(name), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


@pytest.mark.parametrize("path", sorted(SCHEMAS.glob("*.json")), ids=lambda p: p.stem)
def test_each_schema_is_a_valid_schema_and_documented(path: Path) -> None:
    jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text(encoding="utf-8")))
    docs = (SCHEMAS.parents[2] / "docs" / "json.md").read_text(encoding="utf-8")
    assert f"schemas/{path.name}" in docs


def test_calendar_school_days_json_matches_its_schema(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(
            [
                "calendar",
                "school-days",
                "--school",
                "brookside",
                "--from",
                "2025-11-10",
                "--to",
                "2025-11-21",
                "--config",
                str(EXAMPLE_CONFIG_PATH),
                "--format",
                "json",
            ]
        )
    assert exit_.value.code in (0, None)
    doc = json.loads(capsys.readouterr().out)
    validate(doc, "calendar-school-days")
    days = [d["date"] for d in doc["days"]]
    # The INSET day is no school day; the unexpected closure is (its sessions are coded Y4).
    assert "2025-11-14" not in days and "2025-11-20" in days
