"""Fixtures for the Arbor tests. The helpers live in ``arbor_support``: every folder's conftest is
imported under the one name ``conftest``, so test modules must never import from it."""

from arbor_support import (  # noqa: F401 - fixtures, found by pytest here
    app,
    loopback,
    make_adapter,
    school,
    server,
    sleeps,
)
