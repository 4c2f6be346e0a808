"""registerwatch: keeps English schools' attendance registers lawful."""

from importlib.metadata import PackageNotFoundError, version

# The version lives in one place, pyproject.toml; the installed metadata carries it here.
try:
    __version__ = version("registerwatch")
except PackageNotFoundError:  # pragma: no cover - run from a source tree never installed
    __version__ = "0+unknown"
