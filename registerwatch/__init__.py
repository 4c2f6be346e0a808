"""registerwatch: keeps English schools' attendance registers lawful."""

# The one place the version is written: pyproject.toml reads it (setuptools dynamic attr),
# the wheel's metadata carries it, and `registerwatch --version` prints it.
__version__ = "0.2.0"
