"""Pausing Python's cyclic garbage collector around work on a whole school year.

A school year is ~570k Mark objects alive at once, and a first sync builds tens of thousands
of them (with their records, rows and ledger payloads). Every automatic collection while they
are built or scanned rescans all of them: that roughly doubled the read and the scan
(bench/bench_scan.py) and cost a first sync about a quarter of its time (bench/bench_sync.py).
That work makes few or no reference cycles, so reference counting frees nearly everything and
the collector has little to find.

The pause is counted across threads: syncs of several schools run in threads of one process,
and the collector is enabled again only when the last thread's pause ends (and only if it was
enabled when the first began). A thread whose pause ends while another thread's is still
running collects once, in full, so a night of overlapping pauses never leaves the cycles of
finished work uncollected. Pauses nest within a thread at no cost: only the outermost counts.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_pausing_threads = 0
_enabled_before = False
_this_thread = threading.local()


@contextmanager
def collector_paused() -> Iterator[None]:
    global _pausing_threads, _enabled_before
    depth = getattr(_this_thread, "depth", 0)
    _this_thread.depth = depth + 1
    if depth == 0:
        with _lock:
            if _pausing_threads == 0:
                _enabled_before = gc.isenabled()
                gc.disable()
            _pausing_threads += 1
    try:
        yield
    finally:
        _this_thread.depth = depth
        if depth == 0:
            with _lock:
                _pausing_threads -= 1
                others_paused = _pausing_threads > 0
                if not others_paused and _enabled_before:
                    gc.enable()
            if others_paused:
                gc.collect()
