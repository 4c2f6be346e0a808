"""The generated schools the generator tests share (module-scoped: each test module builds its
own, so a test that edits one cannot leak into another module)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from datetime import date

import pytest

from registerwatch.simulator.generate import (
    generate_school,
)
from registerwatch.simulator.model import GeneratedSchool

# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def school() -> GeneratedSchool:
    return generate_school()


@pytest.fixture(scope="module")
def big_year() -> Iterator[GeneratedSchool]:
    """1,500 pupils, secondary, a full school year (the bench measures its speed)."""
    school = generate_school(seed=5, pupils=1500, as_of=date(2026, 7, 23), vendor="arbor")
    # 600,000 long-lived objects: keep the cyclic collector from rescanning them in every
    # later test of the module (it would triple the module's run time).
    gc.freeze()
    yield school
    gc.unfreeze()
