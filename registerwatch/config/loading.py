"""The whole file: :class:`Settings`, :func:`load_config` and error reporting.

Every problem in a file is reported at once, each named by its TOML path
(``schools[1].mis.password_env: field required``), because an IT engineer fixing a config should
not have to run the tool once per typo. Checks that span several keys of one table (which
credentials a vendor needs, overlapping terms) run once that table's own keys are valid; where a
check only needs keys written earlier in the same table it is a field check, so it is reported
alongside everything else.
"""

from __future__ import annotations

import difflib
import re
import tomllib
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from registerwatch.config.discovery import find_config
from registerwatch.config.ledger import LedgerSettings
from registerwatch.config.rules import (
    GLOBAL_SOURCE,
    SCHOOL_SOURCE,
    EffectiveSetting,
    RuleOverrides,
    build_settings,
    la_source,
    merge_levels,
    written,
)
from registerwatch.config.schools import (
    MAX_REGISTER_WINDOW_MINUTES,
    MisSettings,
    SchoolSettings,
    window_warning,
)
from registerwatch.config.transports import TransportSettings, TransportsSettings
from registerwatch.config.types import (
    LaCode,
    Loc,
    LoggingSettings,
    Problem,
    ScheduleSettings,
    Section,
    StoreSettings,
    SyncSettings,
    raise_problems,
    toml_path,
)
from registerwatch.config.web import WebSettings
from registerwatch.errors import ConfigError, CredentialError
from registerwatch.schema.models import Vendor
from registerwatch.validators.settings import RuleSettings


class Settings(Section):
    """The whole configuration file."""

    store: StoreSettings = Field(default_factory=dict, validate_default=True)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    transports: TransportsSettings = Field(default_factory=TransportsSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)  # HMAC key, tip sink
    # rule settings for every school, then per LA (by LA code), then [schools.rules]
    rules: RuleOverrides = Field(default_factory=RuleOverrides)
    las: dict[LaCode, RuleOverrides] = Field(default_factory=dict)
    schools: list[SchoolSettings] = Field(min_length=1)

    _source: Path | None = PrivateAttr(default=None)
    _found_by: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check_schools(self) -> Settings:
        problems: list[Problem] = []
        for key in ("id", "urn", "laestab"):
            seen: dict[str, int] = {}
            for i, school in enumerate(self.schools):
                value = getattr(school, key)
                if value in seen:
                    problems.append(
                        (
                            ("schools", i, key),
                            f"duplicate: schools[{seen[value]}] has the same {key}",
                        )
                    )
                seen.setdefault(value, i)
        for i, school in enumerate(self.schools):
            try:
                build_settings(self._merged_rules(school))
            except ValueError as exc:
                problems.append(
                    (("schools", i, "rules"), f"the merged rule settings are invalid: {exc}")
                )
        cutoff = self.sync.isams_pm_cutoff
        for school in self.schools:
            times = school.calendar.register_times
            if school.mis.vendor is Vendor.ISAMS and not times.am_open < cutoff <= times.pm_open:
                # Otherwise morning registrations would be filed as PM, or the reverse.
                problems.append(
                    (
                        ("sync", "isams_pm_cutoff"),
                        f"{cutoff:%H:%M} must be after school '{school.id}' am_open "
                        f"({times.am_open:%H:%M}) and no later than its pm_open "
                        f"({times.pm_open:%H:%M})",
                    )
                )
        raise_problems(problems)
        return self

    @property
    def source_path(self) -> Path | None:
        """The file these settings were loaded from (None when built in code)."""
        return self._source

    @property
    def found_by(self) -> str | None:
        """How :func:`load_config` chose the file (``--config``, ``$REGISTERWATCH_CONFIG``...)."""
        return self._found_by

    def school(self, school_id: str) -> SchoolSettings:
        """The school with this id, or ConfigError listing the known ids."""
        for school in self.schools:
            if school.id == school_id:
                return school
        raise ConfigError(unknown_school_message(school_id, [s.id for s in self.schools]))

    def _merged_rules(self, school: SchoolSettings) -> dict[str, EffectiveSetting]:
        return merge_levels(
            [
                (GLOBAL_SOURCE, self.rules),
                (la_source(school.la_code), self.las.get(school.la_code)),
                (SCHOOL_SOURCE, school.rules),
            ]
        )

    def warnings(self) -> list[str]:
        """Lawful but doubtful settings, each named by TOML path (``config check`` prints them;
        they never stop a run)."""
        out: list[str] = []
        for i, school in enumerate(self.schools):
            for loc, message in school.calendar.warnings():
                out.append(f"{toml_path(('schools', i, 'calendar', *loc))}: {message}")
        for loc, minutes in self._rule_window_settings():
            out.append(f"{toml_path(loc)}: {window_warning(minutes)}")
        return out

    def _rule_window_settings(self) -> list[tuple[Loc, int]]:
        levels: list[tuple[Loc, RuleOverrides]] = [(("rules",), self.rules)]
        levels += [(("las", code), table) for code, table in self.las.items()]
        levels += [(("schools", i, "rules"), s.rules) for i, s in enumerate(self.schools)]
        return [
            ((*loc, "register_close_minutes"), minutes)
            for loc, table in levels
            if (minutes := written(table).get("register_close_minutes")) is not None
            and minutes > MAX_REGISTER_WINDOW_MINUTES
        ]

    def rule_settings(self, school_id: str) -> RuleSettings:
        """The school's effective rule settings: its [schools.rules] over its LA's
        [las."<code>"] over [rules] over the defaults."""
        return build_settings(self._merged_rules(self.school(school_id)))

    def rule_setting_sources(self, school_id: str) -> dict[str, EffectiveSetting]:
        """Every rule setting's effective value for the school and the table it came from."""
        return self._merged_rules(self.school(school_id))

    def check_credentials(self, environ: Mapping[str, str] | None = None) -> None:
        """Try every configured secret now; raise one CredentialError listing all that fail."""
        problems: list[str] = []
        owners: list[MisSettings | TransportSettings] = [s.mis for s in self.schools]
        owners += list(self.transports.la.values())
        if self.transports.dfe is not None:
            owners.append(self.transports.dfe)
        for owner in owners:
            try:
                owner.credentials(environ)
            except CredentialError as exc:
                problems.append(str(exc))
        if problems:
            raise CredentialError("credentials could not be read", errors=problems)


def unknown_school_message(school_id: str, known: list[str]) -> str:
    """Name the unknown id, the known ones, and the closest (difflib) when one is close."""
    close = difflib.get_close_matches(school_id, known, n=1, cutoff=0.6)
    message = f"no school {school_id!r} in the configuration (known: {', '.join(known) or 'none'})"
    return message + (f"; did you mean {close[0]!r}?" if close else "")


# --------------------------------------------------------------------------------------------
# Loading and error reporting
# --------------------------------------------------------------------------------------------


def load_config(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Load and validate the TOML config at ``path``, or the one :func:`find_config` finds.

    Raises ConfigError listing every problem by TOML path. Secrets are not read here (see
    ``credentials()``), so a config can be checked on a machine that lacks them.
    """
    found = find_config(path, environ)
    file = found.path
    try:
        with file.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"configuration file {file} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"configuration file {file} is a directory, not a TOML file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"configuration file {file} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {file}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"configuration file {file} is not valid TOML", errors=[_describe_toml_error(exc)]
        ) from None
    settings = parse_config(data, config_dir=file.parent, source=file)
    settings._found_by = found.how
    return settings


def parse_config(
    data: Mapping[str, Any],
    *,
    config_dir: str | Path | None = None,
    source: str | Path | None = None,
) -> Settings:
    """Validate an already-parsed TOML document (tests, the simulator and ``demo`` build these).

    Relative paths are resolved against ``config_dir`` (left relative when it is None).
    """
    context = {"config_dir": Path(config_dir) if config_dir is not None else None}
    try:
        settings = Settings.model_validate(dict(data), context=context)
    except ValidationError as exc:
        errors = _format_errors(exc)
        where = f"configuration file {source}" if source is not None else "configuration"
        count = f"{len(errors)} problem{'s' if len(errors) != 1 else ''}"
        raise ConfigError(f"{where} is invalid ({count})", errors=errors) from None
    settings._source = Path(source) if source is not None else None
    return settings


_TOML_POSITION = re.compile(r"^(?P<msg>.*?)\s*\(at line (?P<line>\d+), column (?P<col>\d+)\)$")


def _describe_toml_error(exc: tomllib.TOMLDecodeError) -> str:
    text = str(exc)
    match = _TOML_POSITION.match(text)
    if match is None:
        return text
    return f"line {match['line']}, column {match['col']}: {match['msg']}"


def _format_errors(exc: ValidationError) -> list[str]:
    lines: list[str] = []
    # include_input=False: inputs never reach the message, so a mistyped secret cannot leak.
    for err in exc.errors(include_url=False, include_input=False):
        loc: Loc = tuple(err["loc"])
        if err["type"] == "config_problems":
            for sub_loc, message in err["ctx"]["problems"]:
                lines.append(f"{toml_path(loc + tuple(sub_loc))}: {message}")
            continue
        if loc and loc[-1] == "[key]":  # a dict key (e.g. an LA code) failed validation
            loc = loc[:-1]
        lines.append(f"{toml_path(loc) or '(top level)'}: {_message(err, loc)}")
    return lines


def _message(err: Any, loc: Loc) -> str:
    kind: str = err["type"]
    ctx: dict[str, Any] = err.get("ctx") or {}
    if kind == "missing":
        return "field required"
    if kind == "extra_forbidden":
        return _unknown_key_message(loc)
    if kind in ("literal_error", "enum"):
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        return "must be one of " + ", ".join(choices)
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    if kind.startswith("time"):
        return 'must be a time such as "08:45"'
    if kind.startswith(("date", "datetime")):
        return 'must be a date such as "2025-09-03"'
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "must be a whole number"
    if kind in ("float_parsing", "float_type"):
        return "must be a number"
    if kind in ("bool_parsing", "bool_type"):
        return "must be true or false"
    if kind == "string_type":
        return "must be a string (in quotes)"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be a table"
    if kind == "list_type":
        return "must be an array ([...], or one [[table]] per entry)"
    if kind == "too_short":
        if ctx.get("min_length") == 1:
            return "must have at least one entry"
        return f"must have at least {ctx.get('min_length')} entries"
    if kind == "string_too_short":
        return "must not be empty"
    bounds = {
        "greater_than_equal": ("at least", "ge"),
        "less_than_equal": ("at most", "le"),
        "greater_than": ("greater than", "gt"),
        "less_than": ("less than", "lt"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        return f"must be {words} {ctx.get(key)}"
    return str(err["msg"])


def _unknown_key_message(loc: Loc) -> str:
    allowed = _allowed_keys(loc[:-1])
    key = loc[-1] if loc else ""
    if not allowed:
        return "unknown key"
    close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown key; did you mean {close[0]!r}?"
    return "unknown key (allowed here: " + ", ".join(allowed) + ")"


def _allowed_keys(loc: Loc) -> list[str] | None:
    """The keys the table at ``loc`` accepts, found by walking the model types."""
    tp: Any = Settings
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str):
            fields = {(f.alias or name): f.annotation for name, f in tp.model_fields.items()}
            if part not in fields:
                return None
            tp = fields[part]
        elif get_origin(tp) is list and isinstance(part, int):
            tp = get_args(tp)[0]
        elif get_origin(tp) is dict and isinstance(part, str):
            tp = get_args(tp)[1]
        else:
            return None
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [f.alias or name for name, f in tp.model_fields.items()]
    return None


def _unwrap(tp: Any) -> Any:
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in get_args(tp) if a is not type(None)]
            if len(members) != 1:
                return tp
            tp = members[0]
        else:
            return tp
