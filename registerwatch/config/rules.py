"""Rule settings in the config: ``[rules]``, ``[las."881"]`` and ``[schools.rules]``.

Every :class:`~registerwatch.validators.settings.RuleSettings` field is a key at each level. A
school's effective settings are the defaults, overridden by ``[rules]``, then by its LA's table,
then by its own ``[schools.rules]``: the LA agrees the return schedule with all its schools, and a
school may still set its own attendance triggers.

Each level is validated on its own (types and bounds, unknown keys named by TOML path); checks
across fields (severe absence not below persistent) run on the merged settings, since a level
may set only one of the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ConfigDict, ValidationError, create_model

from registerwatch.validators.settings import DEFAULT_SETTINGS, RuleSettings

DEFAULT_SOURCE = "default"
GLOBAL_SOURCE = "[rules]"


def _overrides_base() -> Any:
    # The same fields, types, bounds and descriptions as RuleSettings, without its cross-field
    # validator; `model_fields_set` then says which keys a level actually wrote.
    fields: dict[str, Any] = {
        name: (info.annotation, info) for name, info in RuleSettings.model_fields.items()
    }
    return create_model(
        "RuleOverridesBase",
        __config__=ConfigDict(extra="forbid", frozen=True),
        **fields,
    )


class RuleOverrides(_overrides_base()):  # type: ignore[misc]
    """One level's rule settings: any subset of the RuleSettings keys."""


def written(overrides: RuleOverrides | None) -> dict[str, Any]:
    """The keys a level wrote, with their validated values."""
    if overrides is None:
        return {}
    return {name: getattr(overrides, name) for name in sorted(overrides.model_fields_set)}


def la_source(la_code: str) -> str:
    return f'[las."{la_code}"]'


SCHOOL_SOURCE = "[schools.rules]"


@dataclass(frozen=True)
class EffectiveSetting:
    """One setting's value for a school, and the config table it came from."""

    name: str
    value: Any
    source: str


def merge_levels(levels: list[tuple[str, RuleOverrides | None]]) -> dict[str, EffectiveSetting]:
    """Every setting's value and source after applying ``levels`` (lowest first)."""
    out = {
        name: EffectiveSetting(name, getattr(DEFAULT_SETTINGS, name), DEFAULT_SOURCE)
        for name in RuleSettings.model_fields
    }
    for source, overrides in levels:
        for name, value in written(overrides).items():
            out[name] = EffectiveSetting(name, value, source)
    return out


def build_settings(merged: dict[str, EffectiveSetting]) -> RuleSettings:
    """The RuleSettings of merged values; ValueError (the first problem) when they conflict."""
    changed = {name: s.value for name, s in merged.items() if s.source != DEFAULT_SOURCE}
    if not changed:
        return DEFAULT_SETTINGS
    try:
        return RuleSettings.model_validate(changed)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        message = str(first.get("ctx", {}).get("error", first["msg"]))
        raise ValueError(message.removeprefix("Value error, ")) from None
