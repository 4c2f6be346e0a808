"""Sync's side of the quarantine: the duplicate policy applied to each pull, and warnings
aggregated so repeated problems are one log line each, not one per record.

A night that meets a million junk records must leave a readable log: each resource's
quarantined records are grouped by field and kind of reason (the reason with any quoted value
taken out, which also keeps values out of the log) and logged once per group with a count and
a few example record references.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from registerwatch.adapters.base import Batch, Quarantined
from registerwatch.adapters.base.duplicates import EXAMPLES, settle_duplicates
from registerwatch.logging import get_logger

log = get_logger("registerwatch.sync")

# Resources the duplicate policy runs over (the keyed ones: see adapters/base/duplicates.py).
KEYED_RESOURCES = ("pupils", "marks")
# More kinds of reason than this in one resource are folded into one "other reasons" line.
MAX_GROUPS = 20

_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def reason_kind(reason: str) -> str:
    """The reason without the values it quotes (``unknown attendance code 'QQ'`` and ``... 'ZZ'``
    are one kind)."""
    return _QUOTED.sub("<value>", reason)


def settle(batch: Batch[Any], *, school: str, vendor: str, resource: str) -> list[str]:
    """Apply the duplicate policy to one fetched resource; return warnings for the run summary.

    Exact duplicates are logged (one line, counted); conflicts become quarantine entries in
    ``batch`` (logged with the rest by :func:`log_quarantined`) and a summary warning.
    """
    if resource not in KEYED_RESOURCES:
        return []
    settled = settle_duplicates(batch, resource=resource, school=school)
    copies = settled.exact_dropped + batch.exact_duplicates
    if copies:
        log.warning(
            "sync.duplicates_dropped",
            school=school,
            vendor=vendor,
            resource=resource,
            count=copies,
            examples=settled.exact_examples,
        )
    if settled.superseded:
        log.info(
            "sync.superseded_versions_dropped",
            school=school,
            vendor=vendor,
            resource=resource,
            count=settled.superseded,
        )
    if not settled.conflicting_keys:
        return []
    return [
        f"{resource}: {settled.conflicting_keys} records came in versions that disagree "
        f"({len(settled.quarantined)} versions quarantined, none stored; the stored values "
        "stand until the MIS agrees with itself)"
    ]


def log_quarantined(
    entries: Sequence[Quarantined], *, school: str, vendor: str, resource: str
) -> None:
    """One warning per (field, kind of reason) with a count and a few example references."""
    if not entries:
        return
    groups: dict[tuple[str | None, str], list[Quarantined]] = defaultdict(list)
    for entry in entries:
        groups[(entry.field, reason_kind(entry.reason))].append(entry)
    ranked = sorted(groups.items(), key=lambda item: -len(item[1]))
    for (field, kind), members in ranked[:MAX_GROUPS]:
        log.warning(
            "sync.records_quarantined",
            school=school,
            vendor=vendor,
            resource=entries[0].resource or resource,
            field=field,
            reason=kind,
            count=len(members),
            examples=[m.record_ref for m in members[:EXAMPLES]],
        )
    rest = ranked[MAX_GROUPS:]
    if rest:
        fields = Counter(field for (field, _), _members in rest)
        log.warning(
            "sync.records_quarantined",
            school=school,
            vendor=vendor,
            resource=resource,
            field=",".join(str(f) for f in sorted(fields, key=str)),
            reason=f"{len(rest)} other kinds of reason",
            count=sum(len(members) for _, members in rest),
            examples=[m.record_ref for _, members in rest[:EXAMPLES] for m in members[:1]],
        )
