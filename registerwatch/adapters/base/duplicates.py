"""The one duplicate policy, for every vendor and CTF: what to do when a pull holds the same key
more than once (sync applies it to each pull's pupils and marks before writing anything).

- **Exact duplicates** (same key, same content) are the MIS repeating itself: one is kept, the
  rest dropped and counted (one aggregated warning per resource).
- **History the MIS orders itself**: versions of a mark with different ``recorded_at`` are a
  register entry and its later correction (iSAMS repeats superseded rows, MIS-I-3511); the
  MIS's own timestamps say which is current, so the latest stands. Nothing is guessed.
- **Conflicting duplicates** (same key, different content, and nothing in the MIS says which is
  current): every version is quarantined with its raw record and the named reason
  ``conflicting-duplicate``, and none is written, so the value already in the store stands
  until the MIS agrees with itself. Resolving them by feed order would write whichever the MIS
  happened to list last into a legal register (and flip it back the next night: permanent
  ledger entries for changes nobody made).

A key is a pupil's store id, or a mark's pupil, date and session. Quarantine references name
the MIS's own record reference where the stream kept one, else the key with the pupil's MIS id
(never a UPN, a name or a date of birth).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

from pydantic import BaseModel

from registerwatch.adapters.base.contract import Batch, Quarantined
from registerwatch.schema import Mark, Pupil

T = TypeVar("T")

CONFLICT_REASON = "conflicting-duplicate"
# Fields that differ between two copies of the same entry without changing what it says.
IGNORED_FIELDS = frozenset({"source_ref"})


def record_key(record: Any) -> Hashable | None:
    """The key two versions of the same record share (None: the record has no such key)."""
    if isinstance(record, Mark):
        return mark_key(record)
    if isinstance(record, Pupil):
        return record.id
    return None


def mark_key(mark: Mark) -> tuple[str, date, str]:
    """A mark's pupil, date and session. ``_value_`` is what the enum's ``value`` property
    returns, without the property's cost (over a microsecond, paid for every mark of a pull,
    several times)."""
    return (mark.pupil_id, mark.date, mark.session._value_)


def content_of(record: BaseModel) -> dict[str, Any]:
    return record.model_dump(mode="json", exclude=set(IGNORED_FIELDS))


def differing_fields(versions: Sequence[BaseModel]) -> list[str]:
    contents = [content_of(v) for v in versions]
    names = sorted({name for c in contents for name in c})
    return [n for n in names if len({json.dumps(c.get(n), sort_keys=True) for c in contents}) > 1]


@dataclass
class Settled:
    """What the duplicate policy did to one resource of one pull."""

    exact_dropped: int = 0
    exact_examples: list[str] = field(default_factory=list)
    superseded: int = 0
    conflicting_keys: int = 0
    quarantined: list[Quarantined] = field(default_factory=list)


def settle_duplicates(batch: Batch[T], *, resource: str, school: str) -> Settled:
    """Apply the policy (module docstring) to ``batch`` in place; return what was done."""
    settled = Settled()
    groups: dict[Hashable, list[T]] = {}
    order: list[Hashable | None] = []
    for record in batch.records:
        key = record_key(record)
        if key is None:
            order.append(None)
            continue
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(record)
    if all(len(versions) == 1 for versions in groups.values()):
        return settled
    kept: dict[Hashable, T | None] = {}
    for key, versions in groups.items():
        if len(versions) == 1:
            kept[key] = versions[0]
            continue
        current = _current_versions(versions, settled)
        unique = _distinct(current)
        settled.exact_dropped += len(current) - len(unique)
        if len(unique) == 1:
            kept[key] = unique[0]
            if len(current) > 1 and len(settled.exact_examples) < EXAMPLES:
                settled.exact_examples.append(_ref(batch, unique[0], resource))
            continue
        kept[key] = None
        settled.conflicting_keys += 1
        settled.quarantined.extend(_conflict_entries(batch, unique, resource, school))
    records: list[T] = []
    keyless = iter(r for r in batch.records if record_key(r) is None)
    for key in order:
        if key is None:
            records.append(next(keyless))
        elif (chosen := kept[key]) is not None:
            records.append(chosen)
    batch.records = records
    batch.quarantined.extend(settled.quarantined)
    return settled


# At most this many record references are named as examples in a log line.
EXAMPLES = 3


def _current_versions(versions: list[T], settled: Settled) -> list[T]:
    """The versions the MIS itself says are current: those with the latest ``recorded_at``
    (all of them when none has one)."""
    stamps = [getattr(v, "recorded_at", None) for v in versions]
    known = [s for s in stamps if s is not None]
    if not known:
        return versions
    latest = max(known)
    current = [v for v, s in zip(versions, stamps, strict=True) if s == latest]
    settled.superseded += len(versions) - len(current)
    return current


def _distinct(versions: list[T]) -> list[T]:
    seen: dict[str, T] = {}
    for version in versions:
        assert isinstance(version, BaseModel)
        seen.setdefault(json.dumps(content_of(version), sort_keys=True), version)
    return list(seen.values())


def _conflict_entries(
    batch: Batch[T], versions: list[T], resource: str, school: str
) -> list[Quarantined]:
    models = [v for v in versions if isinstance(v, BaseModel)]
    fields = differing_fields(models)
    what = "pupil" if isinstance(models[0], Pupil) else "mark for this pupil, date and session"
    reason = (
        f"{CONFLICT_REASON}: the MIS sent {len(versions)} versions of this {what} that "
        f"disagree on {', '.join(fields)}; none was stored (the stored value stands) until "
        "the MIS agrees with itself"
    )
    entries = []
    for number, version in enumerate(models, start=1):
        raw = batch.raw_of(version)
        entries.append(
            Quarantined(
                resource=resource,
                record_ref=f"{_ref(batch, version, resource)} (version {number} of {len(models)})",
                field=",".join(fields) or None,
                reason=reason,
                raw=raw if raw is not None else f"as mapped: {version.model_dump_json()}",
                school=school,
            )
        )
    return entries


def _ref(batch: Batch[Any], record: Any, resource: str) -> str:
    """The stream's own reference for the record, else one built from its key."""
    held = batch.ref_of(record)
    if held is not None:
        return held
    if isinstance(record, Pupil):
        return f"{resource} {_pupil_part(record.id)}"
    if isinstance(record, Mark):
        return (
            f"{resource} {_pupil_part(record.pupil_id)}/{record.date.isoformat()}/"
            f"{record.session.value}"
        )
    return resource


def _pupil_part(pupil_id: str) -> str:
    """The pupil's MIS id; a key made of a UPN (CTF schools key pupils by UPN) is shown as a
    digest, since references reach logs."""
    mis_id = pupil_id.split(":", 1)[-1]
    if mis_id.isdigit():
        return mis_id
    return "id-" + hashlib.sha256(mis_id.encode()).hexdigest()[:12]
