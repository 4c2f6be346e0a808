"""Fixtures for the sync tests. The helpers live in ``sync_support``: every folder's conftest is
imported under the one name ``conftest``, so test modules must never import from it."""

from sync_support import _no_nagle, store  # noqa: F401 - fixtures, found by pytest here
