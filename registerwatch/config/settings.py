"""Deprecated path: import from :mod:`registerwatch.config` instead.

Kept only so modules other refactors are moving at the same time need no edit; once those land,
switch their ``registerwatch.config.settings`` imports to ``registerwatch.config`` and delete this.
"""

from registerwatch.config import (
    CONFIG_ENV_VAR,
    DEFAULT_STORE_URL,
    EXAMPLE_CONFIG_PATH,
    PHASES,
    VENDOR_CREDENTIALS,
    CalendarSettings,
    LoggingSettings,
    MisSettings,
    ScheduleSettings,
    SchoolSettings,
    Settings,
    StoreSettings,
    SyncSettings,
    TransportSettings,
    TransportsSettings,
    load_config,
    parse_config,
    toml_path,
)

__all__ = [
    "CONFIG_ENV_VAR", "DEFAULT_STORE_URL", "EXAMPLE_CONFIG_PATH", "PHASES", "VENDOR_CREDENTIALS",
    "CalendarSettings", "LoggingSettings", "MisSettings", "ScheduleSettings", "SchoolSettings",
    "Settings", "StoreSettings", "SyncSettings", "TransportSettings", "TransportsSettings",
    "load_config", "parse_config", "toml_path",
]
