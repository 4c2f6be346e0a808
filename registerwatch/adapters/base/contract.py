"""The adapter contract: what sync asks of every vendor, what a fetch returns, and the facts
each vendor declares once (auth, paging, capabilities, code aliases).

A vendor module declares one :class:`VendorFacts`; its adapter class reads its capability
flags from it, the contract test suite (``tests/adapters/contract``) checks the two agree, and
``docs/adapters/new-vendor.md`` walks through filling one in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time
from typing import Generic, Literal, Protocol, TypeVar

from registerwatch.errors import InvalidRecord
from registerwatch.schema import Amendment, Calendar, Mark, Pupil, Register

T = TypeVar("T")

Auth = Literal["basic", "oauth2-client-credentials", "api-key", "bearer-key", "file"]
Paging = Literal["page-number", "offset", "cursor", "link", "none"]


@dataclass(frozen=True)
class Capabilities:
    """What the MIS exposes, which decides which rules can be checked for its schools.

    ``amendments`` None: probed at run time (the resource is INFERRED for every vendor, so a
    school's MIS may or may not answer it).
    """

    registers: bool  # register-taking events with saved times: REG002 and REG003 need them
    amendments: bool | None  # amendment records (reason, amender): AMD002 needs them
    social_worker: bool  # the has-a-social-worker flag on pupils: ATT005 needs it
    calendar: bool  # the MIS's own term dates (compared with the config's by sync)


@dataclass(frozen=True)
class VendorFacts:
    """Everything vendor-wide, in one place per vendor (its ``client.py``)."""

    vendor: str
    auth: tuple[Auth, ...]
    paging: Paging
    capabilities: Capabilities
    # vendor spelling -> national code (``registerwatch.codes``); national codes pass through.
    code_aliases: Mapping[str, str] = field(default_factory=dict)
    # Names the secrets to check in an error message when no config-derived hint is given.
    credential_hint: str = "the MIS credentials"
    # How many of this vendor's schools sync fetches at the same time (None: no limit beyond
    # the pool). INFERRED for every REST vendor: none publishes a per-customer concurrency
    # limit, but iSAMS throttles per key and Arbor and GO 4 Schools answer bursts with 429s,
    # so two at a time keeps a trust's nightly run well clear of them.
    concurrency: int | None = 2
    # The MIS lists a session's repeated rows in the order they were written, so the last
    # listed of versions without a recorded time is the current one (iSAMS: MIS-I-3511). False:
    # such versions that disagree are a conflict, quarantined by sync (adapters/base/duplicates).
    repeats_in_write_order: bool = False
    # The credentials the vendor's API takes, by name; each tuple is one complete alternative
    # (the config requires one of them: ``config.credentials`` reads this).
    credentials: tuple[tuple[str, ...], ...] = ()
    # How to build the adapter: ``module:Class`` (imported only when a school uses the vendor),
    # whether it speaks HTTP (base URL, credentials, timeouts) or reads files (a path), and
    # constructor arguments taken from ``[sync]`` settings (argument -> setting name).
    adapter: str = ""
    transport: Literal["http", "file"] = "http"
    sync_options: Mapping[str, str] = field(default_factory=dict)
    # The time from which a registration counts as the afternoon session, for a vendor that
    # stamps registrations with a time but no session (iSAMS); the default of its [sync] setting.
    pm_cutoff: time | None = None


@dataclass(frozen=True)
class Quarantined:
    """A record that would not map: whose it is, where it came from, which field, why, and
    the raw record as the MIS sent it (kept in the store for the data officer, never logged).

    ``school`` and ``raw`` do not take part in equality: two entries for the same record,
    field and reason are the same finding.
    """

    resource: str
    record_ref: str
    field: str | None
    reason: str
    # dataclasses.field spelled out: the ``field`` attribute above shadows the bare name here.
    raw: str = dataclasses.field(default="", compare=False)
    school: str = dataclasses.field(default="", compare=False)

    @classmethod
    def from_error(
        cls,
        error: InvalidRecord,
        raw: str = "",
        *,
        school: str = "",
        resource: str = "",
        record_ref: str = "",
    ) -> Quarantined:
        return cls(
            resource=error.resource or resource,
            record_ref=error.record_ref or record_ref,
            field=error.field,
            reason=error.reason,
            raw=raw,
            school=school,
        )


@dataclass
class Batch(Generic[T]):
    """What one fetch produced: mapped records, and the ones set aside with their reasons.

    ``sources`` remembers, for some mapped records, the record as the MIS sent it and the
    stream's reference to it (see :meth:`remember`): sync quarantines both versions of a
    conflicting duplicate with the MIS's own text, not only with what registerwatch made of it.
    Streams remember only records whose key repeats within a page, so a big pull does not
    hold every raw record twice.
    """

    records: list[T] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    requests: int = 0
    # Exact copies the adapter already dropped (``mapping.drop_repeats``): sync counts them in
    # its one duplicates warning with the ones it drops itself.
    exact_duplicates: int = 0
    # id(record) -> (record, raw text, reference). The record is held so its id cannot be
    # reused by another object while the batch lives, and checked with ``is`` on the way out.
    sources: dict[int, tuple[T, str, str]] = field(default_factory=dict, repr=False, compare=False)

    def extend(self, other: Batch[T]) -> None:
        self.records.extend(other.records)
        self.quarantined.extend(other.quarantined)
        self.requests += other.requests
        self.exact_duplicates += other.exact_duplicates
        self.sources.update(other.sources)

    def remember(self, record: T, raw: str, ref: str) -> None:
        self.sources[id(record)] = (record, raw, ref)

    def raw_of(self, record: T) -> str | None:
        """The MIS's text for ``record`` (None when the stream did not keep it)."""
        held = self.sources.get(id(record))
        return held[1] if held is not None and held[0] is record else None

    def ref_of(self, record: T) -> str | None:
        held = self.sources.get(id(record))
        return held[2] if held is not None and held[0] is record else None


class Adapter(Protocol):
    """What sync asks of every vendor adapter."""

    vendor: str
    school_id: str
    # Read-only members: an adapter may answer from a class constant, a property or its FACTS.

    @property
    def exposes_amendments(self) -> bool:
        """The MIS exposes amendment records (reason, amender): AMD002 can be checked for it."""
        ...

    @property
    def exposes_registers(self) -> bool:
        """The MIS exposes register events (opened / completed): REG002 and REG003 need them."""
        ...

    @property
    def exposes_social_worker(self) -> bool:
        """Pupils carry the has-a-social-worker flag: ATT005 needs it."""
        ...

    def pupils(self) -> Batch[Pupil]: ...

    def registers(self, start: date, end: date) -> Batch[Register]: ...

    def marks(self, start: date, end: date) -> Batch[Mark]: ...

    def amendments(self, start: date, end: date) -> Batch[Amendment]: ...

    def calendar(self) -> Calendar | None:
        """The MIS's own term dates (None when it keeps none). Sync compares them with the
        config's terms and warns on a mismatch; the config stays the source of truth."""
        ...

    def begin_sync(self, as_of: date) -> None:
        """Told before any pull: the day this sync runs to (its ``--as-of``). An adapter that
        picks something by date (GO 4 Schools: the academic year) uses it rather than the
        machine's clock; :class:`AdapterBase` remembers it as ``sync_day``."""
        ...

    def close(self) -> None: ...


class AdapterBase:
    """Defaults every adapter shares; vendors subclass it and override what they have.

    Not the contract itself (that is :class:`Adapter`, a Protocol, so a test's fake adapter
    need not inherit anything), only the sensible defaults for its optional parts.
    """

    # What a vendor adapter reads off its declared facts (set once per class, below).
    vendor: str
    exposes_registers: bool
    exposes_social_worker: bool
    # The day the current sync runs to; None outside a sync (then "today" is the best guess).
    sync_day: date | None = None

    def __init_subclass__(cls, **kwargs: object) -> None:
        """An adapter class that declares ``facts`` takes its vendor name and capabilities from
        them, so they are written once, in the vendor's ``FACTS``."""
        super().__init_subclass__(**kwargs)
        facts = cls.__dict__.get("facts")
        if isinstance(facts, VendorFacts):
            cls.vendor = facts.vendor
            cls.exposes_registers = facts.capabilities.registers
            cls.exposes_social_worker = facts.capabilities.social_worker

    def begin_sync(self, as_of: date) -> None:
        self.sync_day = as_of

    def close(self) -> None:
        """Nothing to release by default (HTTP adapters close their session)."""
