"""JSON Schemas of the `--format json` outputs (docs/json.md), shipped with the package."""

from __future__ import annotations

from pathlib import Path

SCHEMAS = Path(__file__).parent


def schema_path(command: str) -> Path:
    """The schema file of one command's JSON output, e.g. ``notify-record``."""
    return SCHEMAS / f"{command}.json"
