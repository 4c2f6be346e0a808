"""The one stream base class: a resource's name, keys and replication key, one ``to_schema``
per record, and the one quarantine policy.

The quarantine policy, the same for every vendor (``docs/sync.md`` promises it): a record that
will not map (``to_schema`` raises ``InvalidRecord``, or the schema model refuses it) becomes a
:class:`Quarantined` entry naming the school, the resource, the record's reference, the field
and the reason, with the raw record as the MIS sent it, and the run goes on. Nothing is logged
per record (a page of a million junk records must not write a million lines): sync logs one
aggregated line per resource, field and kind of reason (``sync.records_quarantined``).

Records whose key repeats within one page are remembered with their raw text
(``Batch.remember``), so the duplicate policy (``duplicates.py``) can quarantine both versions
of a conflict as the MIS sent them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterable, Mapping
from datetime import date
from typing import Any, ClassVar, Generic, TypeVar

import structlog
from pydantic import BaseModel, ValidationError

from registerwatch.adapters.base.contract import Batch, Quarantined
from registerwatch.adapters.base.duplicates import record_key
from registerwatch.adapters.base.mapping import refuse_implausible
from registerwatch.errors import InvalidRecord

log = structlog.get_logger("registerwatch.adapters")

T = TypeVar("T")

# Enough of a record to see what was wrong with it; a few records are far larger (a pupil with
# every contact) and the store keeps every quarantined record.
RAW_LIMIT = 2000


def raw_text(record: Any) -> str:
    """The record as the MIS sent it, as text for the quarantine table (never for logs)."""
    try:
        return json.dumps(record, default=str, sort_keys=True)[:RAW_LIMIT]
    except (TypeError, ValueError):
        pass
    except RecursionError:  # found by tests/fuzz: a record nested deeper than Python recurses
        return "(record nested too deeply to keep)"
    try:
        return repr(record)[:RAW_LIMIT]
    except RecursionError:
        return "(record nested too deeply to keep)"


def remember_duplicate(batch: Batch[T], mapped: T, record: Any, ref: str) -> None:
    """Keep ``record``'s raw text for ``mapped`` (once): its key repeats in this pull."""
    if batch.ref_of(mapped) is None:
        batch.remember(mapped, raw_text(record), ref)


def validation_error(
    exc: ValidationError, *, resource: str, record_ref: str, fields: Mapping[str, str]
) -> InvalidRecord:
    """A pydantic error as InvalidRecord naming the vendor's field, not the schema's."""
    first = exc.errors()[0]
    schema_field = ".".join(str(p) for p in first.get("loc", ())) or None
    return InvalidRecord(
        str(first.get("msg", "invalid value")),
        resource=resource,
        record_ref=record_ref,
        field=fields.get(schema_field or "", schema_field),
    )


def quarantine(
    error: InvalidRecord, record: Any, *, vendor: str, school: str, resource: str, record_ref: str
) -> Quarantined:
    """The quarantine entry for a record that would not map (see the module docstring)."""
    # Not logged here: sync aggregates (see the module docstring). ``vendor`` is kept in the
    # signature for callers that quarantine outside a stream.
    del vendor
    return Quarantined.from_error(
        error, raw_text(record), school=school, resource=resource, record_ref=record_ref
    )


class Stream(Generic[T]):
    """A resource: its name (the ``resource`` of quarantine entries), keys, replication key,
    and the schema-field -> vendor-field names a validation error reports."""

    vendor: ClassVar[str] = "mis"
    name: ClassVar[str]
    keys: ClassVar[tuple[str, ...]] = ()
    # The property a date window filters on; None: sync re-pulls a trailing window and diffs.
    replication_key: ClassVar[str | None] = None
    fields: ClassVar[Mapping[str, str]] = {}
    school_id: str = ""

    def to_schema(self, record: Mapping[str, Any], ref: str) -> T:  # pragma: no cover
        raise NotImplementedError

    def record_ref(self, record: Any, position: str) -> str:
        """A reference to the record (its vendor id, never a name), else its position."""
        if isinstance(record, Mapping):
            values = [str(record[k]) for k in self.keys if record.get(k) not in (None, "")]
            if values:
                return f"{self.name} {'/'.join(values)}"
        return f"{self.name} at {position}"

    def safe_ref(self, record: Any, position: str) -> str:
        """``record_ref``, or the position when the record's id is nested too deeply to print
        (found by tests/fuzz)."""
        try:
            return self.record_ref(record, position)
        except RecursionError:
            return f"{self.name} at {position}"

    def map_or_quarantine(
        self, batch: Batch[T], record: Any, ref: str, *, today: date | None
    ) -> T | None:
        """``map_one``, or None after quarantining the record in ``batch``: how every stream
        maps one record (the fast paths of a vendor's stream fall back to it)."""
        try:
            return self.map_one(record, ref, today=today)
        except InvalidRecord as exc:
            batch.quarantined.append(self.quarantine(exc, record, ref))
            return None

    def map_records(
        self, records: Iterable[Any], keep: Callable[[Mapping[str, Any]], bool] | None = None
    ) -> Batch[T]:
        """Map records in feed order; a record that will not map is quarantined."""
        return self.map_positioned(
            ((f"item {n}", r) for n, r in enumerate(records, start=1)), keep=keep
        )

    def map_positioned(
        self,
        pairs: Iterable[tuple[str, Any]],
        keep: Callable[[Mapping[str, Any]], bool] | None = None,
    ) -> Batch[T]:
        """Map ``(position, record)`` pairs; ``keep`` drops records that are no record of
        this resource (not quarantined: nothing is wrong with them)."""
        batch: Batch[T] = Batch()
        # key -> the first mapped record with it, its raw record and reference (this call only)
        first: dict[Hashable, tuple[T, Any, str]] = {}
        today = date.today()  # the plausible-dates window, asked once per pull, not per record
        for position, record in pairs:
            if keep is not None and isinstance(record, Mapping) and not keep(record):
                continue
            ref = self.safe_ref(record, position)
            mapped = self.map_or_quarantine(batch, record, ref, today=today)
            if mapped is None:
                continue
            batch.records.append(mapped)
            key = record_key(mapped)
            if key is None:
                continue
            earlier = first.setdefault(key, (mapped, record, ref))
            if earlier[0] is not mapped:
                remember_duplicate(batch, *earlier)
                remember_duplicate(batch, mapped, record, ref)
        return batch

    def map_one(self, record: Any, ref: str, *, today: date | None = None) -> T:
        """``to_schema`` for one record, with every refusal as InvalidRecord (``today``: the
        end of the plausible-dates window, see ``refuse_implausible``)."""
        if type(record) is not dict and not isinstance(record, Mapping):
            raise InvalidRecord("record is not a JSON object", resource=self.name, record_ref=ref)
        try:
            mapped = self.to_schema(record, ref)
        except ValidationError as exc:
            raise validation_error(
                exc, resource=self.name, record_ref=ref, fields=self.fields
            ) from None
        except RecursionError:
            raise InvalidRecord(
                "record nested too deeply", resource=self.name, record_ref=ref
            ) from None
        if isinstance(mapped, BaseModel):
            refuse_implausible(mapped, resource=self.name, record_ref=ref, today=today)
        return mapped

    def quarantine(self, error: InvalidRecord, record: Any, ref: str) -> Quarantined:
        return quarantine(
            error,
            record,
            vendor=self.vendor,
            school=self.school_id,
            resource=self.name,
            record_ref=ref,
        )
