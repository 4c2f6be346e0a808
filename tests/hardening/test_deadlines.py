"""Slow and hostile MIS servers on loopback: every request ends within its deadline."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from support.hostile_server import hostile_server

from registerwatch.adapters.base import ApiClient, RetryPolicy
from registerwatch.errors import (
    MisTooSlowError,
    RetriableApiError,
    UnsafeResponseError,
)


def client(base: str, **kw: object) -> ApiClient:
    return ApiClient(
        base,
        school_id="oakfield",
        credential_hint="OAKFIELD_API_KEY",
        retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02),
        sleep=lambda _s: None,
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("path", ["drip", "header-drip"])
def test_a_dripping_server_fails_as_mis_too_slow_within_the_deadline(path: str) -> None:
    with hostile_server() as base:
        started = time.monotonic()
        with pytest.raises(MisTooSlowError, match="MIS too slow"):
            client(base, timeout=(1.0, 2.0, 1.5)).get_json(path)
        # Not retried: the deadline was the whole budget.
        assert time.monotonic() - started < 4


def test_a_truncated_body_is_retriable_and_named() -> None:
    with hostile_server() as base:
        with pytest.raises(RetriableApiError, match="cut off mid-body"):
            client(base).get_json("truncated")


def test_a_gzip_bomb_stops_at_the_size_limit() -> None:
    with hostile_server() as base:
        with pytest.raises(UnsafeResponseError, match="more than 1 MB"):
            client(base, max_bytes=2**20).get_json("bomb")


def test_a_redirect_to_another_host_is_refused() -> None:
    with hostile_server() as base:
        with pytest.raises(UnsafeResponseError, match=r"redirected \(302\) to attacker\.example"):
            client(base).get_json("redirect")


def test_deeply_nested_json_is_refused_not_a_crash() -> None:
    with hostile_server() as base:
        with pytest.raises(UnsafeResponseError, match="nested too deeply"):
            client(base).get_json("nested")


def test_sigterm_ends_a_hung_request_within_seconds(tmp_path) -> None:
    with hostile_server() as base:
        script = textwrap.dedent(
            f"""
            import sys
            from registerwatch.adapters.base import ApiClient
            from registerwatch.errors import StopRequestedError
            from registerwatch.jobs.scheduler import StopFlag, handle_signals
            c = ApiClient({base!r}, school_id="oak", credential_hint="X",
                          timeout=(5.0, 60.0, 600.0))
            print("ready", flush=True)
            with handle_signals(StopFlag()):
                try:
                    c.get_json("hang")
                except StopRequestedError as exc:
                    print("stopped:", exc, flush=True)
                    sys.exit(3)
            """
        )
        proc = subprocess.Popen(
            [sys.executable, "-c", script],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": os.getcwd()},
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.5)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 3, out
        assert "stopped while waiting for the MIS" in out
        assert time.monotonic() - sent < 3
