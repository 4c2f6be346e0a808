"""Long lists for people: the same problem for many pupils said once with a count, the same
error said once with how often, and a long list cut to its first lines with the rest counted."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

_PUPIL_LINE = re.compile(r"^pupil (?P<pupil>\S+): (?P<rest>.+)$")
_NO_MARK = re.compile(r"^(?P<session>\d{4}-\d{2}-\d{2}(?: AM| PM)?) has no mark$")
# Errors that differ only in which outbox item they are about say the same thing.
_ITEM = re.compile(r"\bitem \d+\b")


def summarise_pupils(lines: Iterable[str], *, at_least: int = 3) -> list[str]:
    """Per-pupil lines with the same text after ``pupil ID:`` become one counted line, e.g.
    588 lines "pupil 1234: 2025-12-06 AM has no mark" become "588 pupils have no mark on
    2025-12-06 AM". Groups smaller than ``at_least`` and other lines are kept as they are."""
    items = list(lines)
    groups: dict[str, list[str]] = {}
    for line in items:
        m = _PUPIL_LINE.match(line)
        if m:
            groups.setdefault(m["rest"], []).append(m["pupil"])
    result: list[str] = []
    said: set[str] = set()
    for line in items:
        m = _PUPIL_LINE.match(line)
        if m is None or len(groups[m["rest"]]) < at_least:
            result.append(line)
            continue
        if m["rest"] in said:
            continue
        said.add(m["rest"])
        count = len(groups[m["rest"]])
        no_mark = _NO_MARK.match(m["rest"])
        if no_mark:
            result.append(f"{count} pupils have no mark on {no_mark['session']}")
        else:
            result.append(f"{count} pupils: {m['rest']}")
    return result


def collapse_repeats(lines: Iterable[str]) -> list[str]:
    """Each distinct line once, in first-seen order, with "(N times)" when it repeats; lines
    that differ only in an outbox item number count as the same."""
    items = list(lines)
    keys = [_ITEM.sub("item #", line) for line in items]
    counts = Counter(keys)
    result: list[str] = []
    said: set[str] = set()
    for line, key in zip(items, keys, strict=True):
        if key in said:
            continue
        said.add(key)
        n = counts[key]
        if n == 1:
            result.append(line)
        elif key != line:
            result.append(f"{line} (and {n - 1} more items like it)")
        else:
            result.append(f"{line} ({n} times)")
    return result


def truncate(lines: list[str], limit: int = 20) -> list[str]:
    if len(lines) <= limit:
        return lines
    return lines[:limit] + [f"... and {len(lines) - limit} more (--format json lists them all)"]


def for_people(lines: Iterable[str], limit: int = 20) -> list[str]:
    return truncate(collapse_repeats(summarise_pupils(lines)), limit)


def error_text(message: str, limit: int = 20) -> str:
    """An error whose detail lists problems one per line ("\\n  - ..."), summarised."""
    head, sep, rest = message.partition("\n  - ")
    if not sep:
        return message
    problems = rest.split("\n  - ")
    return head + "".join(f"\n  - {line}" for line in for_people(problems, limit))
