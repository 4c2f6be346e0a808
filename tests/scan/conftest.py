"""Fixtures for these tests. The helpers live in ``scan_support``: every folder's conftest is imported
under the one name ``conftest``, so test modules must never import from it."""

from scan_support import (  # noqa: F401 - fixtures and hooks, found by pytest here
    _no_nagle,
    cli,
    elm,
    oak,
    oak_bare,
    synced_template,
)
