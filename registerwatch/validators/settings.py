"""Every setting where the law or guidance is ambiguous, with the default the reference supports.

One model, so that a school (or a corrected reading of the law) changes a number here and every
rule follows. Each field says how firm its default is (VERIFIED / SECONDARY / INFERRED) and where it
comes from.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from registerwatch.codes import is_known_code


def _known_codes(value: frozenset[str]) -> frozenset[str]:
    unknown = sorted(c for c in value if not is_known_code(c))
    if unknown:
        raise ValueError(f"not national attendance codes: {', '.join(unknown)}")
    return value


CodeSet = Annotated[frozenset[str], AfterValidator(_known_codes)]
Fraction = Annotated[float, Field(gt=0, le=1)]


class AttendanceTrigger(BaseModel):
    """One of the school's own attendance triggers (ATT007): attendance below ``below_percent``
    over ``window`` ("term": the configured term holding the last day of data, a half-term
    where the calendar lists half-terms; "year": the school year to date; "weeks": the last
    ``school_weeks`` school weeks)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    below_percent: float = Field(gt=0, le=100)
    window: Literal["term", "year", "weeks"] = "term"
    school_weeks: int | None = Field(default=None, ge=1)
    min_possible_sessions: int = Field(default=10, ge=1)

    @model_validator(mode="after")
    def _weeks_given(self) -> AttendanceTrigger:
        if (self.window == "weeks") != (self.school_weeks is not None):
            raise ValueError("school_weeks is given exactly when window is 'weeks'")
        return self


class RuleSettings(BaseModel):
    """Thresholds and readings of the law used by the rules (see each field for its source)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # -- registers --------------------------------------------------------------------------
    registers_checked_from: date | None = Field(
        default=None,
        description="First day REG001/REG002 look at (None: the first configured term day). "
        "Set it to the day sync started so earlier, never-synced sessions are not reported.",
    )
    register_close_minutes: int | None = Field(
        default=None,
        ge=1,
        le=240,
        description="Minutes a register may stay open (None: the calendar's close_after_minutes). "
        "SECONDARY: 30 minutes, the same for every session (Nottinghamshire; FFT Datalab).",
    )

    # -- marks ------------------------------------------------------------------------------
    n_code_deadline_school_days: int = Field(
        default=5,
        ge=1,
        description="School days after the session by which N must be replaced. SECONDARY: "
        "SI 2024/208 reg 10(7) says five *school* days; WTISA p.20's 'working days' is not used.",
    )
    y4_exempt_codes: CodeSet = Field(
        default=frozenset({"D", "K", "V", "P", "W", "B", "X", "Z"}),
        description="Codes that may stand beside Y4 on a session without making the Y4 partial "
        "(pupils attending elsewhere, not required to attend, or not on roll). INFERRED.",
    )

    register_retention_years: int = Field(
        default=6,
        ge=1,
        description="AMD003: register entries are kept for at least this many years from the "
        "date of the entry; removing an older one is lawful. SECONDARY: Ibstock, Wenlock 4.1 "
        "(2024 reg 7, paragraph not read); Montsaye's 3 years is the 2006 rule.",
    )

    # -- LA returns -------------------------------------------------------------------------
    returns_tracked_from: date | None = Field(
        default=None,
        description="LA returns are tracked for admissions, leavers and absence episodes on or "
        "after this day (None: 1 August of the first school year in the configured calendar), so "
        "a first scan does not report every admission in the pupil records' history.",
    )
    sickness_days: float = Field(
        default=15,
        gt=0,
        description="School days of illness (code I), consecutive or cumulative in the school "
        "year, that require a sickness return. SECONDARY: Hertfordshire; seed policies.",
    )
    sickness_warning_min_spell_days: int = Field(
        default=5,
        ge=1,
        description="An ongoing spell of at least this many consecutive school days of I is "
        "'reasonable grounds to believe' it will go on. INFERRED.",
    )
    sickness_warning_horizon_days: int = Field(
        default=5,
        ge=0,
        description="Warn when, at one illness day per school day, the year's total would reach "
        "sickness_days within this many more school days. INFERRED.",
    )
    continuous_absence_days: int = Field(
        default=10,
        ge=1,
        description="Consecutive school days of unauthorised absence that require an attendance "
        "(continuous absence) return. SECONDARY: Stockport; 2006 reg 12(1)(b) VERIFIED.",
    )
    continuous_absence_codes: CodeSet = Field(
        default=frozenset({"G", "N", "O", "U"}),
        description="Codes that make a day unauthorised for LAR002. SECONDARY: Stockport lists "
        "the codes statistically classified as unauthorised: G, N, O and/or U.",
    )
    cme_days: int = Field(
        default=10,
        ge=1,
        description="Consecutive school days with the reason unknown (N/O) before a children "
        "missing education referral. SECONDARY (seed policies).",
    )
    cme_codes: CodeSet = Field(
        default=frozenset({"N"}),
        description="Codes meaning the reason for absence is unknown (LAR003). N by default: O "
        "is also used when the reason given is not accepted (Wenlock 4.2, SECONDARY); add O "
        "only where the school marks O for 'reason unknown'.",
    )
    threshold_return_school_days: int = Field(
        default=1,
        ge=0,
        description="School days after the day a threshold is reached by which the CME "
        "referral (LAR003) is due, and the sickness and continuous absence returns where "
        "la_return_schedule is 'next_school_day'. INFERRED: no deadline was found (the 2006 regulations left the "
        "attendance return's interval to agreement with the LA); 1 = the next school day, since "
        "the school learns of the threshold at the end of the day it is reached.",
    )
    la_returns_csa_only: bool = Field(
        default=True,
        description="LAR001/LAR002/LAR003 only for pupils of compulsory school age (the attendance "
        "return covers CSA pupils: 2006 reg 12(1) VERIFIED; the sickness return too: Sevenoaks "
        "3.12 and App 4 quoting WTISA, Derbyshire, Lincolnshire, SECONDARY). A pupil without "
        "a date of birth is treated as of CSA.",
    )
    la_return_schedule: Literal["monthly", "termly", "dates", "next_school_day"] = Field(
        default="monthly",
        description="When the LA takes the sickness (LAR001) and continuous absence (LAR002) "
        "returns: 'monthly' = the last school day of each calendar month; 'termly' = the last "
        "school day of each configured term (Lincolnshire: one per each of the six terms); "
        "'dates' = the days in la_return_dates; 'next_school_day' = threshold_return_school_days "
        "after the threshold day. 2006 reg 12(1) VERIFIED: 'at such intervals as may be agreed' "
        "with the LA; at least monthly SECONDARY (Derbyshire, Hertfordshire); the default, "
        "the last school day of the month, INFERRED.",
    )
    la_return_dates: tuple[date, ...] = Field(
        default=(),
        description="The LA's return dates when la_return_schedule is 'dates' (its published "
        "calendar). A finding after the last date has no due date.",
    )
    sickness_return_per: Literal["per_episode", "per_year"] = Field(
        default="per_episode",
        description="LAR001: one sickness return per continuous period of sickness, so a "
        "second separate long spell after a return needs a new one ('per_episode'), or one per "
        "pupil per school year ('per_year'). SECONDARY: Hertfordshire, Derbyshire.",
    )
    continuous_absence_u_only: bool = Field(
        default=True,
        description="LAR002: a run of U only (the pupil was in school every day, arriving after "
        "the register closed) counts as continuous absence; the finding says so. SECONDARY: "
        "Stockport lists U among the codes; whether the LA wants such runs is its choice.",
    )
    irregular_absence_sessions: int = Field(
        default=20,
        ge=0,
        description="LAR002's irregular-attendance limb: a pupil with at least this many "
        "unauthorised sessions (continuous_absence_codes) in one return period that are not part "
        "of a continuous run fails to attend regularly and goes in the return (0: off). 2006 "
        "reg 12(1)(a) VERIFIED (the limb); Sevenoaks 7.3, Hertfordshire '10 or more days, either "
        "consecutively or irregularly' SECONDARY; the number INFERRED.",
    )
    new_pupil_days: int = Field(
        default=5,
        ge=0,
        description="*Days* (not school days) after entry in the admission register by which the "
        "new pupil return is due. VERIFIED: SI 2024/208 reg 13(1).",
    )
    most_junior_nc_year: str | None = Field(
        default=None,
        description="The school's most junior class for the reg 13(2) exemption (None: the "
        "lowest NC year among the school's pupils). INFERRED.",
    )
    la_requested_junior_returns: bool = Field(
        default=False,
        description="The LA has asked for new pupil returns for junior-class September starters "
        "too (reg 13(3), VERIFIED); the exemption then no longer applies.",
    )
    most_senior_nc_year: str | None = Field(
        default=None,
        description="The school's final year for the deletion-return exemption (None: the "
        "highest NC year among the school's pupils). INFERRED (reg 13(5) not read).",
    )

    # -- attendance thresholds --------------------------------------------------------------
    penalty_threshold_codes: CodeSet = Field(
        default=frozenset({"G", "O", "U"}),
        description="Unauthorised codes counted towards the penalty notice threshold. "
        "SECONDARY: WTISA as quoted by Wenlock 5.2 (and a Sefton school): 'G, O and/or U'. N is "
        "provisional (resolved within 5 school days) and reported separately.",
    )
    penalty_sessions: int = Field(default=10, ge=1, description="SECONDARY: National Framework.")
    penalty_school_weeks: int = Field(
        default=10, ge=1, description="SECONDARY: National Framework."
    )
    penalty_csa_only: bool = Field(
        default=True,
        description="Penalty notices concern parents of children of compulsory school age "
        "(MEMORY/INFERRED, not in the reference: the school attendance offence is about a child "
        "of compulsory school age); a pupil without a date of birth counts.",
    )
    absence_measures_csa_only: bool = Field(
        default=True,
        description="ATT002/ATT003 only for pupils of compulsory school age (5-15 at 31 August "
        "before the school year), as the national measure (DfE absence methodology, SECONDARY "
        "as summarised in the legal review). When false, other pupils' findings are labelled "
        "'school measure'. A pupil without a date of birth counts.",
    )
    persistent_absence: Fraction = Field(
        default=0.10, description="VERIFIED: DfE methodology, 10% or more of possible sessions."
    )
    severe_absence: Fraction = Field(
        default=0.50, description="SECONDARY: 50% or more of possible sessions."
    )
    absence_min_possible_sessions: int = Field(
        default=10,
        ge=1,
        description="ATT002/ATT003 judge a pupil only once they have this many possible sessions "
        "in the school year (one school week), so one missed session of a new starter is not "
        "'severe absence'. INFERRED (DfE statistics have no minimum).",
    )
    ehcp_recent_school_weeks: int = Field(
        default=4, ge=1, description="ATT004: the recent window, in school weeks. INFERRED."
    )
    ehcp_baseline_school_weeks: int | None = Field(
        default=None,
        ge=1,
        description="ATT004: the window before the recent one to compare with, in school weeks "
        "(None: the rest of the school year before it). INFERRED.",
    )
    ehcp_drop_points: float = Field(
        default=10.0,
        gt=0,
        le=100,
        description="ATT004: a fall of at least this many percentage points of attendance rate "
        "between the windows is 'falling attendance'. INFERRED.",
    )
    ehcp_min_baseline_sessions: int = Field(
        default=20,
        ge=1,
        description="ATT004: possible sessions the earlier window needs for a rate to compare "
        "with. INFERRED.",
    )
    ehcp_min_recent_sessions: int = Field(
        default=1, ge=1, description="ATT004: possible sessions the recent window needs. INFERRED."
    )
    social_worker_codes: CodeSet = Field(
        default=frozenset({"N", "O"}),
        description="ATT005: codes meaning unexplained absence (reason unknown). INFERRED from "
        "the code meanings.",
    )

    # -- issue 9 new rules: MRK006-MRK008, ATT006, ATT007, LAR006, REG004 ---------------------
    reduced_timetable_max_school_weeks: int = Field(
        default=6,
        ge=1,
        description="MRK008: a run of C2 longer than this many school weeks is reported as a "
        "part-time timetable to review. INFERRED: the seeds ask for a temporary, time-limited "
        "part-time timetable with regular review dates (Sevenoaks App 4) but name no length.",
    )
    suspension_provision_from_day: int = Field(
        default=6,
        ge=2,
        description="ATT006: the consecutive school day of one suspension or exclusion from "
        "which alternative provision must be arranged, so E is no longer the right code. "
        "VERIFIED in DfE's attendance technical guidance ('Authorised excluded': 'from the sixth "
        "consecutive day', DfE attendance technical guidance, absence reasons table); the "
        "regulations behind it were not read.",
    )
    deletion_absence_school_days: int = Field(
        default=20,
        ge=1,
        description="LAR006: continuous school days of unauthorised absence that ground 9(1)(i) "
        "needs. SECONDARY: reg 9(1)(i) short title (Torbay LA form); Local "
        "Government Lawyer.",
    )
    deletion_absence_codes: CodeSet = Field(
        default=frozenset({"G", "N", "O"}),
        description="LAR006: codes that count as a day of that absence (U is a pupil in school, "
        "late). SECONDARY (LA guidance).",
    )
    deletion_absence_grounds: frozenset[str] = Field(
        default=frozenset({"9(1)(i)"}),
        description="LAR006: reg 9 grounds meaning 20 continuous school days of unauthorised "
        "absence, in the form the deletion return writes them. SECONDARY.",
    )
    deletion_new_school_grounds: frozenset[str] = Field(
        default=frozenset({"9(1)(a)"}),
        description="LAR006: reg 9 grounds meaning the pupil is registered at another school, "
        "which need the new school recorded (reg 8(3); Sevenoaks 3.14). SECONDARY.",
    )
    attendance_triggers: tuple[AttendanceTrigger, ...] = Field(
        default=(),
        description="ATT007: the school's own attendance triggers (none by default: each "
        "school sets its own, e.g. below 90% over a half-term, Sevenoaks 3.11; below 95%, "
        "Wenlock 4.5; tiers, Micklefield 2.C). SECONDARY (seed policies).",
    )
    no_show_school_days: int = Field(
        default=3,
        ge=1,
        description="REG004: school days from the starting day on which a new pupil has only "
        "N or O (never arrived) before enquiries and a notice to the LA are due. INFERRED: the "
        "CME guidance as quoted by the seeds names no number.",
    )

    @model_validator(mode="after")
    def _severe_above_persistent(self) -> RuleSettings:
        if self.severe_absence < self.persistent_absence:
            raise ValueError("severe_absence must not be below persistent_absence")
        return self


DEFAULT_SETTINGS = RuleSettings()
