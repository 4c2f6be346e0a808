"""``[[schools]]``: a school's identity, its MIS (and the names of its secrets) and calendar."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import time
from typing import Any

from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)

from registerwatch.config.credentials import (
    CREDENTIAL_LABELS,
    VENDOR_CREDENTIALS,
    VENDOR_KEYS,
    check_key_used,
    credential_problems,
    read_credential,
)
from registerwatch.config.rules import RuleOverrides
from registerwatch.config.types import (
    ConfigPath,
    EnvVarName,
    LaCode,
    Laestab,
    NonEmptyStr,
    Phase,
    Problem,
    SchoolId,
    Section,
    Urn,
    check_http_url,
    raise_problems,
)
from registerwatch.schema.models import (
    Calendar,
    Closure,
    RegisterTimes,
    School,
    Term,
    Vendor,
)


class MisSettings(Section):
    """``[schools.mis]``: where the school's registers come from, and the names of its secrets."""

    vendor: Vendor
    base_url: str | None = Field(default=None, validate_default=True)
    path: ConfigPath | None = Field(default=None, validate_default=True)
    username_env: EnvVarName | None = None
    username_file: ConfigPath | None = None
    password_env: EnvVarName | None = None
    password_file: ConfigPath | None = None
    client_id_env: EnvVarName | None = None
    client_id_file: ConfigPath | None = None
    client_secret_env: EnvVarName | None = None
    client_secret_file: ConfigPath | None = None
    api_key_env: EnvVarName | None = None
    api_key_file: ConfigPath | None = None
    # Override [sync] timeout_seconds / deadline_seconds for this school's MIS.
    timeout_seconds: float | None = Field(default=None, gt=0, le=600)
    deadline_seconds: float | None = Field(default=None, gt=0, le=3600)
    # Override [sync] max_records_per_page for this school's MIS.
    max_records_per_page: int | None = Field(default=None, ge=100, le=1_000_000)

    # Set by the enclosing school so credential errors can name it.
    _school_id: str | None = PrivateAttr(default=None)

    @field_validator("base_url", "path")
    @classmethod
    def _source_for_vendor(cls, value: Any, info: ValidationInfo) -> Any:
        vendor = info.data.get("vendor")
        if vendor is None:
            return value
        is_ctf = vendor is Vendor.CTF
        if info.field_name == "base_url":
            if is_ctf and value is not None:
                raise ValueError("not used by 'ctf' (set path to the CTF file or folder)")
            if not is_ctf and value is None:
                raise ValueError(f"field required for vendor '{vendor.value}'")
            return None if value is None else check_http_url(value)
        if is_ctf and value is None:
            raise ValueError("field required for vendor 'ctf' (a CTF XML file or a folder of them)")
        if not is_ctf and value is not None:
            raise ValueError(f"not used by vendor '{vendor.value}' (only by 'ctf')")
        return value

    @field_validator(*(f"{c}_{h}" for c in CREDENTIAL_LABELS for h in ("env", "file")))
    @classmethod
    def _credential_for_vendor(cls, value: Any, info: ValidationInfo) -> Any:
        vendor = info.data.get("vendor")
        if vendor is not None:
            assert info.field_name is not None
            check_key_used(vendor.value, value, VENDOR_KEYS, info.field_name)
        return value

    @model_validator(mode="after")
    def _check_credentials(self) -> MisSettings:
        raise_problems(
            credential_problems(
                self, VENDOR_CREDENTIALS[self.vendor], f"vendor '{self.vendor.value}'"
            )
        )
        return self

    def credentials(self, environ: Mapping[str, str] | None = None) -> dict[str, SecretStr]:
        """Read the configured secrets now (``os.environ`` by default).

        Keys: ``username``/``password`` (arbor); ``client_id``/``client_secret`` and/or
        ``api_key`` (isams); ``api_key`` (go4schools); none for ctf. Raises CredentialError
        naming the school and the variable or file to set.
        """
        env = os.environ if environ is None else environ
        owner = f"school '{self._school_id}'" if self._school_id else "MIS"
        out: dict[str, SecretStr] = {}
        for mode in VENDOR_CREDENTIALS[self.vendor]:
            for cred in mode:
                env_name, file = getattr(self, f"{cred}_env"), getattr(self, f"{cred}_file")
                if env_name is None and file is None:
                    continue  # an alternative mode this school does not use (iSAMS)
                what = f"{self.vendor.value} {CREDENTIAL_LABELS[cred]}"
                out[cred] = read_credential(owner, what, env_name, file, env)
        return out


class CalendarSettings(Section):
    """``[schools.calendar]``: term dates, closures and register times."""

    terms: list[Term] = Field(min_length=1)
    closures: list[Closure] = Field(default_factory=list)
    register_times: RegisterTimes = Field(default_factory=RegisterTimes)

    @model_validator(mode="after")
    def _check_dates(self) -> CalendarSettings:
        problems: list[Problem] = []
        # Half-terms are the gaps between terms, so order and overlap matter: an overlap would
        # count a holiday as school days.
        for i in range(1, len(self.terms)):
            before, term = self.terms[i - 1], self.terms[i]
            if term.start <= before.end:
                problems.append(
                    (
                        (("terms", i, "start")),
                        f"{term.start} is not after terms[{i - 1}] ends ({before.end}); "
                        "terms must be in date order and must not overlap",
                    )
                )
        seen: list[tuple[int, Closure, set[str]]] = []
        for i, closure in enumerate(self.closures):
            day = closure.date
            if not any(t.start <= day <= t.end for t in self.terms):
                problems.append(
                    (
                        ("closures", i, "date"),
                        f"{day} is not inside any term (only term days can be closed)",
                    )
                )
            elif day.weekday() >= 5:
                problems.append(
                    (("closures", i, "date"), f"{day} is a {day.strftime('%A')}, not a school day")
                )
            sessions: set[str] = {"AM", "PM"} if closure.session == "both" else {closure.session}
            # Partial closures of different groups on one day are lawful (a staggered start);
            # closing the same pupils twice is a typo.
            clash = next(
                (
                    j
                    for j, other, other_sessions in seen
                    if other.date == day and other_sessions & sessions and _overlap(other, closure)
                ),
                None,
            )
            if clash is not None:
                problems.append(
                    (("closures", i), f"closes {day} again (already closed by closures[{clash}])")
                )
            seen.append((i, closure, sessions))
        times = self.register_times
        windows: list[tuple[tuple[str | int, ...], time, time, int]] = [
            (("register_times",), times.am_open, times.pm_open, times.close_after_minutes)
        ]
        for g, group in enumerate(times.by_group):
            windows.append(
                (
                    ("register_times", "by_group", g),
                    group.am_open or times.am_open,
                    group.pm_open or times.pm_open,
                    group.close_after_minutes or times.close_after_minutes,
                )
            )
        for loc, am_open, pm_open, minutes in windows:
            am_close = _add_minutes(am_open, minutes)
            if am_close is None or am_close > pm_open:
                closes = "after midnight" if am_close is None else f"{am_close:%H:%M}"
                problems.append(
                    (
                        (*loc, "pm_open"),
                        f"must be after the morning register closes "
                        f"(am_open + close_after_minutes = {closes})",
                    )
                )
        raise_problems(problems)
        return self

    def warnings(self) -> list[Problem]:
        """Lawful but doubtful settings, by key: a register window over 30 minutes."""
        out: list[Problem] = []
        times = self.register_times
        if times.close_after_minutes > MAX_REGISTER_WINDOW_MINUTES:
            out.append(
                (
                    ("register_times", "close_after_minutes"),
                    window_warning(times.close_after_minutes),
                )
            )
        for g, group in enumerate(times.by_group):
            minutes = group.close_after_minutes
            if minutes is not None and minutes > MAX_REGISTER_WINDOW_MINUTES:
                out.append(
                    (
                        ("register_times", "by_group", g, "close_after_minutes"),
                        window_warning(minutes),
                    )
                )
        return out


MAX_REGISTER_WINDOW_MINUTES = 30
"""Registers should close no later than 30 minutes after they open (WTISA as quoted by
Nottinghamshire, SECONDARY): a longer window is a config warning, not an error."""


def window_warning(minutes: int) -> str:
    return (
        f"a register window of {minutes} minutes is longer than the "
        f"{MAX_REGISTER_WINDOW_MINUTES} minutes the guidance allows (WTISA)"
    )


def _overlap(a: Closure, b: Closure) -> bool:
    """Whether two closures of one day can close the same pupils."""
    if a.whole_school or b.whole_school:
        return True
    return bool(set(a.year_groups or ()) & set(b.year_groups or ())) or bool(
        set(a.groups or ()) & set(b.groups or ())
    )


def _add_minutes(at: time, minutes: int) -> time | None:
    """``at`` plus ``minutes``, or None when that passes midnight."""
    total = at.hour * 60 + at.minute + minutes
    return None if total >= 24 * 60 else time(total // 60, total % 60)


class SchoolReportSettings(Section):
    """``[schools.report]``: what this school's part of the nightly report shows."""

    # Off by default: the report is forwarded and printed, so it carries pupils' MIS ids only
    # unless the school decides its readers need names (the page then says so in a banner).
    include_names: StrictBool = False  # "yes" or 1 is an error, not a guess


class SchoolSettings(Section):
    """One ``[[schools]]`` entry."""

    id: SchoolId
    urn: Urn
    laestab: Laestab
    name: NonEmptyStr
    la_code: LaCode
    phase: Phase
    mis: MisSettings
    calendar: CalendarSettings
    # this school's own rule settings, over its LA's and the global [rules]
    rules: RuleOverrides = Field(default_factory=RuleOverrides)
    report: SchoolReportSettings = Field(default_factory=SchoolReportSettings)

    @field_validator("la_code")
    @classmethod
    def _matches_laestab(cls, value: str, info: ValidationInfo) -> str:
        laestab = info.data.get("laestab")
        if laestab is not None and laestab[:3] != value:
            raise ValueError(
                f"does not match laestab, which starts {laestab[:3]} "
                "(a LAESTAB is the 3-digit LA code followed by the 4-digit establishment number)"
            )
        return value

    @model_validator(mode="after")
    def _name_mis_owner(self) -> SchoolSettings:
        self.mis._school_id = self.id
        return self

    def to_school(self) -> School:
        return School(
            id=self.id,
            urn=self.urn,
            laestab=self.laestab,
            name=self.name,
            la_code=self.la_code,
            phase=self.phase,
            vendor=self.mis.vendor,
        )

    def to_calendar(self) -> Calendar:
        return Calendar(
            school_id=self.id,
            terms=list(self.calendar.terms),
            closures=list(self.calendar.closures),
            register_times=self.calendar.register_times,
        )
