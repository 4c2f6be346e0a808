"""Take the store's lock, then open the store: the one way a command that changes the store
begins (``sync``, ``submit``, ``nightly``, ``run``), so the lock is always taken before the
store is touched and released after it is closed, however the work ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from registerwatch.jobs.lock import LockKind, store_lock

if TYPE_CHECKING:
    from registerwatch.store import Store

__all__ = ["locked_store"]


@contextmanager
def locked_store(
    store_url: str,
    command: str,
    *,
    kind: LockKind = "work",
    wait: bool = False,
    should_stop: Callable[[], bool] | None = None,
    create: bool = True,
    lock: bool = True,
    environ: Mapping[str, str] | None = None,
) -> Iterator[Store | None]:
    """Hold ``command``'s lock of ``kind`` on the store at ``store_url`` and yield the store.

    Not waiting (``wait`` False) and the lock held elsewhere raises RunLockedError naming the
    holder. Yields None, having opened nothing, when ``should_stop()`` turns true while waiting.
    ``create`` False opens an existing store only (a missing store is reported, never made);
    ``lock`` False skips the lock, for work that changes nothing (``submit --dry-run``).
    """
    from registerwatch.store import Store

    held = store_lock(store_url, command, kind=kind, wait=wait, environ=environ) if lock else None
    if held is not None and not held.acquire(should_stop=should_stop):
        yield None
        return
    try:
        with Store.open(store_url) if create else Store(store_url) as store:
            yield store
    finally:
        if held is not None:
            held.release()
