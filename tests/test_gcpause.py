"""The collector pause is counted across threads and nests within one."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from registerwatch.gcpause import collector_paused


@pytest.fixture(autouse=True)
def collector_enabled() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.enable()
    yield
    if not was_enabled:
        gc.disable()


def test_nested_pauses_in_one_thread_restore_at_the_outermost() -> None:
    with collector_paused():
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_disabled_collector_stays_disabled() -> None:
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


def test_the_collector_is_enabled_only_when_the_last_thread_pause_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    collections: list[int] = []
    monkeypatch.setattr(gc, "collect", lambda generation=2: collections.append(generation))
    first_in, first_out, second_in, second_out = (threading.Event() for _ in range(4))

    def first() -> None:
        with collector_paused():
            first_in.set()
            first_out.wait(5)

    def second() -> None:
        with collector_paused():
            second_in.set()
            second_out.wait(5)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    threads[0].start()
    assert first_in.wait(5)
    threads[1].start()
    assert second_in.wait(5)
    first_out.set()
    threads[0].join(5)
    # The first pause ended while the second still runs: still paused, one full collection.
    assert not gc.isenabled()
    assert collections == [2]
    second_out.set()
    threads[1].join(5)
    assert gc.isenabled()
    assert collections == [2]  # the last pause hands over to automatic collection instead


def test_a_failing_body_still_ends_the_pause() -> None:
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()
