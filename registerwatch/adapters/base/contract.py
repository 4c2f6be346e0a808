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
from datetime import date
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
    """What one fetch produced: mapped records, and the ones set aside with their reasons."""

    records: list[T] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    requests: int = 0

    def extend(self, other: Batch[T]) -> None:
        self.records.extend(other.records)
        self.quarantined.extend(other.quarantined)
        self.requests += other.requests


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

    def close(self) -> None: ...
