"""Which configuration file to use: ``--config``, then ``$REGISTERWATCH_CONFIG``, then
``./registerwatch.toml``, then the platform's user config folder.

The order is the usual one for command-line tools (the most explicit wins), so a cron job or a
systemd unit that names its file is never surprised by a file someone left in its working
directory. :func:`find_config` also says *how* the file was found, which ``config check``
prints: an engineer who edits one file while the tool reads another loses an afternoon.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from registerwatch.config.types import CONFIG_ENV_VAR, EXAMPLE_CONFIG_PATH
from registerwatch.errors import ConfigError

CONFIG_FILE_NAME = "registerwatch.toml"


def user_config_dir() -> Path:
    """The platform's per-user config folder for registerwatch (XDG on Linux)."""
    import platformdirs

    return Path(platformdirs.user_config_dir("registerwatch", appauthor=False))


@dataclass(frozen=True)
class FoundConfig:
    path: Path
    how: str  # "--config", "$REGISTERWATCH_CONFIG", "the current folder", "the user config folder"


def find_config(
    path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user_dir: Path | None = None,
) -> FoundConfig:
    """The config file to load, and how it was chosen; ConfigError listing the places tried."""
    env = os.environ if environ is None else environ
    if path is not None:
        return FoundConfig(_tidy(path), "--config")
    named = env.get(CONFIG_ENV_VAR, "").strip()
    if named:
        return FoundConfig(_tidy(named), f"${CONFIG_ENV_VAR}")
    here = (cwd if cwd is not None else Path.cwd()) / CONFIG_FILE_NAME
    if here.is_file():
        return FoundConfig(_tidy(here), "the current folder")
    user = (user_dir if user_dir is not None else user_config_dir()) / CONFIG_FILE_NAME
    if user.is_file():
        return FoundConfig(_tidy(user), "the user config folder")
    raise ConfigError(
        f"no configuration file found: pass --config or set {CONFIG_ENV_VAR}, or create "
        f"./{CONFIG_FILE_NAME} or {user} "
        f"(an annotated example is {EXAMPLE_CONFIG_PATH}; `registerwatch config example` prints it)"
    )


def _tidy(path: str | Path) -> Path:
    # normpath, not resolve(): tidy "a/../b" without replacing a symlinked config directory.
    return Path(os.path.normpath(Path(path).expanduser().absolute()))
