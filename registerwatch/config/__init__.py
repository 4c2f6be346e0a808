"""Configuration: one TOML file (``--config`` or ``$REGISTERWATCH_CONFIG``) → :class:`Settings`.

See ``example.toml`` (:data:`EXAMPLE_CONFIG_PATH`) for every key, explained.
"""

from registerwatch.config.settings import (
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
