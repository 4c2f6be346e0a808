"""Pausing Python's cyclic garbage collector around work on a whole school year.

A school year is ~570k Mark objects alive at once. Every automatic collection while they are
built or scanned rescans all of them, which roughly doubled the read and the scan
(bench/bench_scan.py). Nothing in that work makes reference cycles, so reference counting frees
everything and the collector has nothing to find. The previous state is restored on exit, so
nesting is safe (an inner pause never re-enables the collector early).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
