"""Write a registerwatch TOML config file from plain tables (for the command-line tests).

One writer, so the TOML spelling of a value (dates, times, inline tables, quoting) is decided
once. Tables are dicts as the tests build them for ``parse_config``; keys whose value is None
are left out, because TOML has no null.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, time
from pathlib import Path
from typing import Any


def toml_value(value: Any) -> str:
    """One value in TOML: native dates and times, inline tables, arrays, basic strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Mapping):
        return (
            "{ "
            + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items() if v is not None)
            + " }"
        )
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    # A JSON string is a valid TOML basic string (the same escapes).
    return json.dumps(str(value))


def _table(header: str, table: Mapping[str, Any]) -> list[str]:
    return [header, *(f"{k} = {toml_value(v)}" for k, v in table.items() if v is not None), ""]


def config_text(
    store_url: str,
    schools: list[Mapping[str, Any]],
    *,
    logging: Mapping[str, Any] | None = None,
    sync: Mapping[str, Any] | None = None,
    schedule: Mapping[str, Any] | None = None,
    transports: Mapping[str, Any] | None = None,
) -> str:
    """The TOML text; ``transports`` as {"dfe": {...}, "la": {"881": {...}}}, each school as
    its scalar keys plus ``mis`` and ``calendar`` tables."""
    lines = _table("[store]", {"url": store_url})
    for name, section in (("logging", logging), ("sync", sync), ("schedule", schedule)):
        if section:
            lines += _table(f"[{name}]", section)
    transports = transports or {}
    if transports.get("dfe"):
        lines += _table("[transports.dfe]", transports["dfe"])
    for code, table in transports.get("la", {}).items():
        lines += _table(f'[transports.la."{code}"]', table)
    for school in schools:
        lines.append("[[schools]]")
        lines += [
            f"{k} = {toml_value(v)}"
            for k, v in school.items()
            if k not in ("mis", "calendar") and v is not None
        ]
        lines += _table("[schools.mis]", school["mis"])
        lines += _table("[schools.calendar]", school["calendar"])
    return "\n".join(lines)


def write_config(
    path: Path,
    store_url: str,
    schools: list[Mapping[str, Any]],
    *,
    logging: Mapping[str, Any] | None = None,
    sync: Mapping[str, Any] | None = None,
    schedule: Mapping[str, Any] | None = None,
    transports: Mapping[str, Any] | None = None,
) -> Path:
    """Write the config (see ``config_text``) to ``path``, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        config_text(
            store_url, schools, logging=logging, sync=sync, schedule=schedule, transports=transports
        ),
        encoding="utf-8",
    )
    return path
