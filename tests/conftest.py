"""Shared test fixtures: where the public data in ../shared/data lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# The `browser` fixture of the headless-Chromium tests (the report and the web app) and the
# `mailbox` fixture, a real SMTP server on loopback (the outbox and the morning email).
pytest_plugins = ["support.chromium", "support.smtp"]

# Property tests check behaviour, never speed: hypothesis's default 200 ms deadline per example is a
# timed test in disguise, and it fails on a loaded two-core CI machine. Speed lives in bench/.
settings.register_profile(
    "registerwatch", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("registerwatch")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("REGISTERWATCH_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    """The folder of public data files; tests that need it skip cleanly when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"public data folder {SHARED_DATA} not present")
    return SHARED_DATA
