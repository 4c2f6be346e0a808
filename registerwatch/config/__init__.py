"""Configuration: one TOML file (``--config`` or ``$REGISTERWATCH_CONFIG``) → :class:`Settings`.

See ``example.toml`` (:data:`EXAMPLE_CONFIG_PATH`) for every key, explained. The package is the
public face; its modules are ``types`` (constants, field types, the simple sections),
``credentials``, ``transports``, ``schools`` and ``loading`` (the whole file and its errors).
"""

from registerwatch.config.credentials import VENDOR_CREDENTIALS
from registerwatch.config.discovery import CONFIG_FILE_NAME, FoundConfig, find_config
from registerwatch.config.loading import (
    Settings,
    load_config,
    parse_config,
    unknown_school_message,
)
from registerwatch.config.schools import CalendarSettings, MisSettings, SchoolSettings
from registerwatch.config.transports import TransportSettings, TransportsSettings
from registerwatch.config.types import (
    CONFIG_ENV_VAR,
    DEFAULT_STORE_URL,
    EXAMPLE_CONFIG_PATH,
    PHASES,
    LoggingSettings,
    ScheduleSettings,
    StoreSettings,
    SyncSettings,
    toml_path,
)

__all__ = [
    "CONFIG_ENV_VAR",
    "CONFIG_FILE_NAME",
    "DEFAULT_STORE_URL",
    "EXAMPLE_CONFIG_PATH",
    "PHASES",
    "VENDOR_CREDENTIALS",
    "CalendarSettings",
    "FoundConfig",
    "LoggingSettings",
    "MisSettings",
    "ScheduleSettings",
    "SchoolSettings",
    "Settings",
    "StoreSettings",
    "SyncSettings",
    "TransportSettings",
    "TransportsSettings",
    "find_config",
    "load_config",
    "parse_config",
    "toml_path",
    "unknown_school_message",
]
