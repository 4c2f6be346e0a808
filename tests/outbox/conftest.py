"""Fixtures for these tests. The helpers live in ``outbox_support``: every folder's conftest is imported
under the one name ``conftest``, so test modules must never import from it."""

from outbox_support import (  # noqa: F401 - fixtures and hooks, found by pytest here
    env,
    receiver,
    store,
    test_schemas,
)
