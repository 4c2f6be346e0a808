"""Hostile input for the fuzz suite: strategies, the run profile, and the properties.

Profiles (hypothesis settings applied to the fuzz tests only, never to the rest of the suite):

- ``ci`` (the default): a few dozen examples per test, derandomised (the same examples every
  run, so CI is reproducible and bounded), no deadline (a loaded CI machine is slow, not wrong).
- ``long``: thousands of random examples per test, for a night's run by hand:
  ``REGISTERWATCH_FUZZ_PROFILE=long .venv/bin/pytest tests/fuzz -n 2``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from registerwatch.adapters.base import Batch
from registerwatch.logging import pupil_key_kind

PROFILE_ENV = "REGISTERWATCH_FUZZ_PROFILE"
_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile(
    "fuzz-ci",
    max_examples=int(os.environ.get("REGISTERWATCH_FUZZ_EXAMPLES", "30")),
    derandomize=True,
    database=None,
    **_COMMON,
)
settings.register_profile("fuzz-long", max_examples=3000, **_COMMON)
PROFILE = os.environ.get(PROFILE_ENV, "ci")
if PROFILE not in ("ci", "long"):
    raise RuntimeError(f"{PROFILE_ENV} must be 'ci' or 'long', not {PROFILE!r}")
fuzz = settings.get_profile(f"fuzz-{PROFILE}")
"""Decorate each fuzz test with ``@fuzz`` (after ``@given``)."""

# Strings that broke things before, or could: control and direction characters, bad dates,
# huge numbers, markup, empty.
NASTY = [
    "",
    " ",
    "\x00",
    "\x1b[31m",
    "a\nb",
    "\r\n",
    "\u202e",
    "\ufeff",
    "\ud7ff",
    "0001-01-01",
    "9999-12-31",
    "9999-12-30",
    "2999-01-01",
    "2025-02-30",
    "2025-13-01",
    "2025-09-08T25:61:00",
    "2025-09-08T08:50:00+99:00",
    "1e309",
    "-1",
    "NaN",
    "null",
    "true",
    "<x>&amp;</x>",
    "{",
    "%s%n",
    "'; DROP TABLE pupils; --",
    "9" * 400,
]
hostile_text = st.one_of(st.sampled_from(NASTY), st.text(max_size=30))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    hostile_text,
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def deep(depth: int) -> Any:
    """A value nested ``depth`` lists deep."""
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


# Pupil data the properties look for in error text: names carry a marker no message has.
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=10).map(
    lambda s: "Qz" + s
)
dates = st.one_of(
    st.dates().map(lambda d: d.isoformat()),
    st.sampled_from(["2025-09-08", "2012-03-04", "0001-01-01", "9999-12-31", "2025-02-30", ""]),
    hostile_text,
)
datetimes = st.one_of(
    st.sampled_from(
        ["2025-09-08T08:50:00", "2025-09-08T13:40:00Z", "2025-09-08 08:50:00", "0001-01-01T00:00"]
    ),
    st.datetimes().map(lambda d: d.isoformat()),
    hostile_text,
)
upns = st.one_of(
    st.sampled_from(["E893400116001", "A123456789012", "E89340011600X"]),
    st.from_regex(r"[A-Z][0-9]{11}[0-9A-Z]", fullmatch=True),
    hostile_text,
)
ids = st.one_of(
    st.integers(min_value=-5, max_value=10**6),
    st.integers(min_value=1, max_value=99).map(str),
    hostile_text,
)
codes = st.one_of(
    st.sampled_from(["/", "\\", "L", "N", "I", "M", "#", "C1", "X", "??"]), hostile_text
)


def plausible(key: str) -> st.SearchStrategy[Any]:
    """A value that looks like what the key holds (to get deep into the mapping), or not."""
    low = key.lower()
    kind = pupil_key_kind(key)
    if kind == "name" or "name" in low:
        guess: st.SearchStrategy[Any] = names
    elif "upn" in low:
        guess = upns
    elif "datetime" in low or low.endswith("time") or "updated" in low:
        guess = datetimes
    elif "date" in low or low in ("dob", "birth", "day"):
        guess = dates
    elif low.endswith("id") or low.startswith("id") or low in ("href",):
        guess = ids
    elif "code" in low or "mark" in low:
        guess = codes
    else:
        guess = hostile_text
    return st.one_of(guess, guess, values)


def records(keys: Iterable[str], extra: Mapping[str, st.SearchStrategy[Any]] | None = None):
    """A record with any subset of ``keys``, each plausible or hostile."""
    optional = {key: plausible(key) for key in keys}
    optional.update(extra or {})
    return st.fixed_dictionaries({}, optional=optional)


def pupil_values(record: Any) -> set[str]:
    """The names, UPNs and dates of birth a record holds (what must never reach error text)."""
    found: set[str] = set()

    def walk(value: Any, key: object = None, depth: int = 0) -> None:
        if depth > 50:  # the deep-nesting tests hold no pupil data down there
            return
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(v, k, depth + 1)
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v, key, depth + 1)
        elif isinstance(value, str) and pupil_key_kind(key) in ("name", "dob", "other"):
            text = value.strip()
            # Only values distinctive enough that a message could not hold them by chance.
            if text.startswith("Qz") or (len(text) >= 10 and any(c.isdigit() for c in text)):
                found.add(text)

    walk(record)
    return found


def other_values(record: Any) -> set[str]:
    """Every text a record holds under a key that is not pupil data (ids, dates, codes): a
    generated pupil field can hold the same text by chance, and a message naming the id or
    the date it belongs to leaks nothing."""
    found: set[str] = set()

    def walk(value: Any, key: object = None, depth: int = 0) -> None:
        if depth > 50:
            return
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(v, k, depth + 1)
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v, key, depth + 1)
        elif pupil_key_kind(key) not in ("name", "dob", "other"):
            found.add(str(value).strip())

    walk(record)
    return found


def check_batch(
    batch: Batch[Any],
    inputs: list[Any],
    expected: int | None = None,
    *,
    allowed: frozenset[str] | set[str] = frozenset(),
) -> None:
    """Every record is mapped or quarantined with a named reason (``expected`` outcomes, by
    default one per input); no quarantine text holds a name, UPN or date of birth (``allowed``:
    values the caller put in references itself, such as the day synced)."""
    outcomes = len(batch.records) + len(batch.quarantined)
    assert outcomes == (len(inputs) if expected is None else expected), (outcomes, len(inputs))
    leaks = set().union(*(pupil_values(r) for r in inputs)) if inputs else set()
    leaks -= set(allowed)
    others = set(allowed).union(*(other_values(r) for r in inputs)) if inputs else set(allowed)
    leaks = {value for value in leaks if not any(value in other for other in others)}
    for entry in batch.quarantined:
        assert entry.reason and entry.reason.strip(), entry
        assert entry.resource, entry
        for text in (entry.reason, entry.field or "", entry.record_ref):
            for value in leaks:
                assert value not in text, f"pupil value {value!r} in quarantine text {text!r}"


def error_texts(exc: BaseException) -> list[str]:
    texts = [str(exc)]
    texts += [str(e) for e in getattr(exc, "errors", None) or []]
    return texts
