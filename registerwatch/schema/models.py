"""The common schema: every adapter maps its vendor's records to these models.

Identifiers are namespaced by school so several schools and MIS products can share one store.
Dates are ``date``; instants are timezone-aware ``datetime`` (UTC in the store).
"""

from __future__ import annotations

from datetime import date, datetime, time
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator


class Session(StrEnum):
    AM = "AM"
    PM = "PM"


SESSION_ORDER = {Session.AM: 0, Session.PM: 1}


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("must be timezone-aware (include an offset such as +00:00)")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Vendor(StrEnum):
    ARBOR = "arbor"
    ISAMS = "isams"
    GO4SCHOOLS = "go4schools"
    CTF = "ctf"


class School(Model):
    id: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    urn: str | None = Field(default=None, pattern=r"^\d{6}$")
    laestab: str | None = Field(default=None, pattern=r"^\d{7}$")
    name: str
    la_code: str | None = Field(default=None, pattern=r"^\d{3}$")
    phase: str | None = None
    vendor: Vendor | None = None


class Address(Model):
    lines: list[str] = Field(default_factory=list)
    town: str | None = None
    postcode: str | None = None


class Contact(Model):
    name: str
    relationship: str | None = None
    address: Address | None = None
    phone: str | None = None
    lives_with: bool = False
    priority: int = 1


class Pupil(Model):
    """One pupil on (or once on) the admission register."""

    id: str = Field(description="store key: '<school_id>:<mis_id>'")
    school_id: str
    mis_id: str
    upn: str | None = None
    former_upn: str | None = None
    legal_forename: str | None = None
    legal_surname: str | None = None
    middle_names: str | None = None
    preferred_forename: str | None = None
    preferred_surname: str | None = None
    dob: date | None = None
    sex: Literal["M", "F", "U"] | None = None
    nc_year: str | None = None
    reg_group: str | None = None
    starting_day: date | None = None
    leaving_date: date | None = None
    deletion_ground: str | None = None
    future_address: Address | None = None
    new_school: str | None = None
    address: Address | None = None
    contacts: list[Contact] = Field(default_factory=list)
    ehcp: bool = False
    sen_support: bool = False
    fsm: bool = False
    looked_after: bool = False
    has_social_worker: bool = False
    boarder: bool = False

    @field_validator("leaving_date")
    @classmethod
    def _leaving_after_start(cls, value: date | None, info: Any) -> date | None:
        start = info.data.get("starting_day")
        if value is not None and start is not None and value < start:
            raise ValueError(f"leaving_date {value} is before starting_day {start}")
        return value

    def on_roll(self, day: date) -> bool:
        if self.starting_day is not None and day < self.starting_day:
            return False
        return not (self.leaving_date is not None and day > self.leaving_date)


class Register(Model):
    """One register-taking event for a registration group and session."""

    school_id: str
    group: str
    date: date
    session: Session
    opened_at: AwareDatetime | None = None
    completed_at: AwareDatetime | None = None
    taken_by: str | None = None
    source_ref: str | None = None


class Mark(Model):
    """The register entry for one pupil and one session."""

    pupil_id: str
    date: date
    session: Session
    code: str = Field(min_length=1, max_length=2, description="national code, normalised")
    vendor_code: str | None = None
    minutes_late: int | None = Field(default=None, ge=0)
    comment: str | None = Field(default=None, description="never exported")
    recorded_at: AwareDatetime | None = None
    recorded_by: str | None = None
    source_ref: str | None = None

    @field_validator("code")
    @classmethod
    def _known_code(cls, value: str) -> str:
        from registerwatch.codes import is_known_code

        if not is_known_code(value):
            raise ValueError(f"{value!r} is not a national attendance code (2024 or legacy 2006)")
        return value


class AmendmentSource(StrEnum):
    MIS = "mis"
    OBSERVED = "observed"


class Amendment(Model):
    """A change to a register entry. Missing fields stay None: the validator judges them."""

    pupil_id: str
    date: date
    session: Session
    original_code: str | None = None
    amended_code: str | None = None
    reason: str | None = None
    amended_at: AwareDatetime | None = None
    amended_by_name: str | None = None
    amended_by_position: str | None = None
    source: AmendmentSource = AmendmentSource.MIS
    source_ref: str | None = None


class ClosureKind(StrEnum):
    PLANNED = "planned"  # recorded as '#'
    UNEXPECTED = "unexpected"  # recorded as 'Y4'


class Term(Model):
    start: date
    end: date

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, value: date, info: Any) -> date:
        start = info.data.get("start")
        if start is not None and value < start:
            raise ValueError(f"term end {value} is before its start {start}")
        return value


# National Curriculum years as the MIS gives them (nursery, reception, 1 to 14).
NC_YEAR_PATTERN = r"^(N1|N2|R|[1-9]|1[0-4])$"
NcYear = Annotated[str, Field(pattern=NC_YEAR_PATTERN)]


def _normalise_nc_years(value: list[str] | None) -> list[str] | None:
    return None if value is None else [v.strip().upper() for v in value]


class Closure(Model):
    """A closure of the whole school, or, with ``year_groups`` / ``groups``, of part of it
    (a staggered Reception start, an exam year): '#' covers planned whole or partial closures."""

    date: date
    session: Literal["AM", "PM", "both"] = "both"
    kind: ClosureKind = ClosureKind.PLANNED
    reason: str | None = None
    year_groups: list[NcYear] | None = None
    groups: list[str] | None = None

    _norm = field_validator("year_groups", mode="before")(
        classmethod(lambda cls, v: _normalise_nc_years(v))
    )

    @property
    def whole_school(self) -> bool:
        return not self.year_groups and not self.groups

    def covers(self, nc_year: str | None, reg_group: str | None) -> bool:
        """Whether a pupil of this NC year and registration group is inside the closure."""
        if self.whole_school:
            return True
        year = (nc_year or "").strip().upper()
        return bool(
            (self.year_groups and year in self.year_groups)
            or (self.groups and reg_group in self.groups)
        )


class GroupRegisterTimes(Model):
    """Register times of some year groups or registration groups, where they differ from the
    school's (Wenlock: PM registers at 12:45 for Years 3-4 and 13:30 for Years 5-6). A time
    left out is the school's."""

    year_groups: list[NcYear] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)
    am_open: time | None = None
    pm_open: time | None = None
    close_after_minutes: int | None = Field(default=None, ge=1, le=240)

    _norm = field_validator("year_groups", mode="before")(
        classmethod(lambda cls, v: _normalise_nc_years(v) or [])
    )

    @model_validator(mode="after")
    def _names_someone(self) -> GroupRegisterTimes:
        if not self.year_groups and not self.groups:
            raise ValueError("register times for groups need year_groups or groups")
        return self


class RegisterTimes(Model):
    """When each register opens; it closes ``close_after_minutes`` later (policy: 30 minutes).
    ``by_group`` holds the times of year groups or registration groups that differ; the first
    entry naming the group (then its year) wins."""

    am_open: time = time(8, 45)
    pm_open: time = time(13, 15)
    close_after_minutes: int = Field(default=30, ge=1, le=240)
    by_group: list[GroupRegisterTimes] = Field(default_factory=list)

    def for_group(self, nc_year: str | None, reg_group: str | None) -> tuple[time, time, int]:
        """(am_open, pm_open, close_after_minutes) for a group of that NC year."""
        year = (nc_year or "").strip().upper()
        match = next(
            (g for g in self.by_group if reg_group and reg_group in g.groups), None
        ) or next((g for g in self.by_group if year and year in g.year_groups), None)
        if match is None:
            return self.am_open, self.pm_open, self.close_after_minutes
        return (
            match.am_open or self.am_open,
            match.pm_open or self.pm_open,
            match.close_after_minutes or self.close_after_minutes,
        )


class Calendar(Model):
    school_id: str
    terms: list[Term]
    closures: list[Closure] = Field(default_factory=list)
    register_times: RegisterTimes = Field(default_factory=RegisterTimes)


class NotificationKind(StrEnum):
    SICKNESS = "sickness"
    CONTINUOUS_ABSENCE = "continuous_absence"
    CME = "cme"
    NEW_PUPIL = "new_pupil"
    DELETION = "deletion"
    DFE_DAILY = "dfe_daily"
    # not a return: the data manager's record that a pupil is expected to miss 15 school days
    # through illness (planned surgery), so LAR001 puts them in the next sickness return at once
    EXPECTED_SICKNESS = "expected_sickness"
    # not a return: the cause of an absence episode as the school knows it (2006 reg 12(1)(b):
    # "specifying the cause of absence if known"); the continuous absence return carries it.
    # The cause text is the record's `reference`; mark comments never reach a return.
    ABSENCE_CAUSE = "absence_cause"


class Notification(Model):
    """A return already made to the LA or the DfE."""

    kind: NotificationKind
    school_id: str
    pupil_id: str | None = None
    episode_start: date | None = None
    made_at: AwareDatetime
    channel: str
    reference: str | None = None


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


SEVERITY_RANK = {Severity.INFO: 1, Severity.WARNING: 2, Severity.ERROR: 3}


class SessionRef(Model):
    date: date
    session: Session


class Finding(Model):
    rule: str = Field(pattern=r"^[A-Z]{3}\d{3}$")
    severity: Severity
    school_id: str
    pupil_id: str | None = None
    first_session: SessionRef | None = None
    last_session: SessionRef | None = None
    due: date | None = None
    message: str
    evidence: dict[str, Any] = Field(default_factory=dict)
    fingerprint: str | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    resolved_at: datetime | None = None
