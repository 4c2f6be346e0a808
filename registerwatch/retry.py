"""One retry policy for everything registerwatch sends or fetches over a network.

MIS APIs (adapters) and return receivers (outbox transports) fail the same ways: 429 with a
Retry-After, 5xx, timeouts. Both back off the same way: equal-jitter exponential backoff, never
sooner than the server's Retry-After, and never waiting longer than ``max_retry_after`` (past
that the work is left for the next run rather than holding this one up).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    # A Retry-After longer than this is not waited for: the run reports the work as deferred.
    max_retry_after: float = 120.0


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - datetime.now(when.tzinfo)).total_seconds())


def backoff_delay(
    policy: RetryPolicy, attempt: int, retry_after: float | None, rng: random.Random
) -> float | None:
    """Seconds to wait before try ``attempt + 1``; None when the server's Retry-After is longer
    than the policy waits."""
    if retry_after is not None and retry_after > policy.max_retry_after:
        return None
    ceiling = min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1))
    delay = rng.uniform(ceiling / 2, ceiling)
    return delay if retry_after is None else max(delay, retry_after)
