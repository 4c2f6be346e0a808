"""A small hand-built school for the LA notification returns, and the scan that feeds them.

Test modules import the builders (``from test_export_la_fixtures import ...``); the one test here
pins the scenario itself: the LAR rules find exactly the breaches described below, so the golden
files downstream are built from real findings with the evidence the rules really write.

Elmbrook Academy (fictional, LA 881), 2025/26, scanned on Friday 21 November 2025 (registers
complete to Thursday 20 November). Thursday 13 November is an unexpected closure: Y4 for everyone,
a day that neither counts nor breaks a run of absence.

- 1001 Maja Wood, LAR001 reached: I every session 15 Sept - 3 Oct (15 school days); two parents
  lived with, a grandmother not.
- 1002 Samuel Price, LAR001 heading there: I 8-12 Sept and 15 Sept AM (5.5 days), then from
  14 Nov (a 5-day spell, ongoing): 10.5 days; no contacts, no sex recorded.
- 1003 Ella Hart, LAR002: G 3-7 Nov, O 10-17 Nov (Y4 on 13 Nov): 10 school days, codes G and O;
  the mother she lives with has no phone recorded.
- 1004 Noah Price, LAR002 and LAR003: N AM / O PM from 6 Nov (Y4 on 13 Nov), still absent:
  10 school days, cause not known; no address; his UPN fails its check letter.
- 1005 Oluwatobi Okafor, LAR004 (error): starting day 12 Nov; preferred names; a boarder; father
  lived with, mother not.
- 1006 Kai Stone, LAR004 (warning): starting day 18 Nov; no DOB, sex, UPN or contacts; NC year
  "Y9" is not one; his address is a town and postcode only.
- 1007 Isla Green, LAR005: left 7 Nov, ground 9(1)(a), new school named, no future address.
- 1008 Leo Marsh, LAR005: left 14 Nov, ground recorded as free text; a future address abroad;
  his father's address not held.
- 1009 Ruby Shaw, no finding: 15 school days of I, and her sickness return is recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from registerwatch.calendar import SchoolCalendar
from registerwatch.config import SchoolSettings, parse_config
from registerwatch.exports.registry import ExportRequest
from registerwatch.schema import (
    Address,
    Calendar,
    Contact,
    Finding,
    Mark,
    Notification,
    NotificationKind,
    Pupil,
    Session,
    Term,
)
from registerwatch.store import Store
from registerwatch.upn import make_upn
from registerwatch.validators import RuleSettings, ScanContext, run_rules
from registerwatch.validators.returns import get_rules as lar_rules

SCHOOL_ID = "elmbrook"
AS_OF = date(2025, 11, 21)
GENERATED_AT = datetime(2025, 11, 21, 7, 30, tzinfo=UTC)
SCANNED_AT = datetime(2025, 11, 21, 6, 0, tzinfo=UTC)
GOLDEN = Path(__file__).with_name("golden")
Y4_DAY = date(2025, 11, 13)

CALENDAR = Calendar(
    school_id=SCHOOL_ID,
    terms=[
        Term(start=date(2025, 9, 3), end=date(2025, 10, 24)),
        Term(start=date(2025, 11, 3), end=date(2025, 12, 19)),
    ],
    closures=[
        {
            "date": Y4_DAY,
            "session": "both",
            "kind": "unexpected",  # type: ignore[list-item]
            "reason": "Power cut",
        }
    ],
)

AM, PM = Session.AM, Session.PM


def school_settings(
    school_id: str = SCHOOL_ID,
    *,
    urn: str = "140001",
    laestab: str = "8814001",
    name: str = "Elmbrook Academy",
    calendar: Calendar = CALENDAR,
) -> SchoolSettings:
    table = {
        "id": school_id,
        "urn": urn,
        "laestab": laestab,
        "name": name,
        "la_code": laestab[:3],
        "phase": "secondary",
        "mis": {
            "vendor": "go4schools",
            "base_url": "http://127.0.0.1:9/customer/v1",
            "api_key_env": f"{school_id.upper()}_G4S_KEY",
        },
        "calendar": {
            "terms": [{"start": t.start, "end": t.end} for t in calendar.terms],
            "closures": [
                {"date": c.date, "session": c.session, "kind": c.kind.value, "reason": c.reason}
                for c in calendar.closures
            ],
        },
    }
    settings = parse_config({"store": {"url": "sqlite://"}, "schools": [table]})
    return settings.schools[0]


def _home(*lines: str, town: str | None = "Chelmsford", postcode: str | None = None) -> Address:
    return Address(lines=list(lines), town=town, postcode=postcode)


def _upn(serial: int) -> str:
    return make_upn("881", "4001", 2019, serial)


def _bad_check_letter(upn: str) -> str:
    """The same UPN with another check letter (UPN001 territory)."""
    return ("B" if upn[0] != "B" else "C") + upn[1:]


def pupils() -> list[Pupil]:
    wood = _home("Flat 2", "51 Beeches Gardens", postcode="CM1 1NB")
    price = _home("9 Mill Lane", postcode="CM2 6AB")
    hart = _home("14 Orchard Way", town="Writtle", postcode="CM1 3QT")
    okafor = _home("3 Chapel Row", town="Great Baddow", postcode="CM2 7PL")
    green = _home("27 Station Road", postcode="CM1 2JJ")
    marsh = _home("8 Rectory Close", town="Broomfield", postcode="CM1 7AX")

    def pupil(n: int, forename: str, surname: str, **fields: Any) -> Pupil:
        base: dict[str, Any] = {
            "id": f"{SCHOOL_ID}:{n}",
            "school_id": SCHOOL_ID,
            "mis_id": str(n),
            "upn": _upn(n - 1000),
            "legal_forename": forename,
            "legal_surname": surname,
            "sex": "F",
            "dob": date(2012, 5, 1),
            "nc_year": "8",
            "reg_group": "8E",
            "starting_day": date(2024, 9, 4),
        }
        return Pupil(**(base | fields))

    return [
        pupil(
            1001,
            "Maja",
            "Wood",
            middle_names="Alexandra",
            address=wood,
            contacts=[
                Contact(
                    name="Ama Wood",
                    relationship="Mother",
                    address=wood,
                    phone="07700 900570",
                    lives_with=True,
                    priority=1,
                ),
                Contact(
                    name="Matthew Wood",
                    relationship="Father",
                    address=wood,
                    phone="07700 900957",
                    lives_with=True,
                    priority=2,
                ),
                Contact(
                    name="Grace Wood",
                    relationship="Grandmother",
                    address=_home("2 Elm Close", postcode="CM1 4RR"),
                    phone="01632 960001",
                    lives_with=False,
                    priority=3,
                ),
            ],
        ),
        pupil(
            1002,
            "Samuel",
            "Price",
            preferred_forename="Sam",
            sex=None,
            address=price,
            dob=date(2013, 1, 20),
            nc_year="7",
        ),
        pupil(
            1003,
            "Ella",
            "Hart",
            address=hart,
            nc_year="9",
            dob=date(2011, 2, 3),
            contacts=[
                Contact(
                    name="Rosa Hart",
                    relationship="Mother",
                    address=hart,
                    phone=None,
                    lives_with=True,
                    priority=1,
                ),
                Contact(
                    name="Tom Hart",
                    relationship="Father",
                    address=_home("40 Quay Street", town="Maldon", postcode="CM9 5AA"),
                    phone="07700 900311",
                    lives_with=False,
                    priority=2,
                ),
            ],
        ),
        pupil(
            1004,
            "Noah",
            "Price",
            sex="M",
            upn=_bad_check_letter(_upn(4)),
            address=None,
            contacts=[
                Contact(
                    name="Jo Carter",
                    relationship="Foster carer",
                    address=None,
                    phone="07700 900404",
                    lives_with=True,
                    priority=1,
                ),
                Contact(
                    name="Sam Patel",
                    relationship="Local authority social worker",
                    phone="01632 960404",
                    lives_with=False,
                    priority=2,
                ),
            ],
        ),
        pupil(
            1005,
            "Oluwatobi",
            "Okafor",
            sex="M",
            preferred_forename="Tobi",
            preferred_surname="Okafor-Smith",
            nc_year="7",
            dob=date(2014, 6, 9),
            starting_day=date(2025, 11, 12),
            boarder=True,
            address=okafor,
            contacts=[
                Contact(
                    name="Chidi Okafor",
                    relationship="Father",
                    address=okafor,
                    phone="07700 900505",
                    lives_with=True,
                    priority=1,
                ),
                Contact(
                    name="Helen Smith",
                    relationship="Mother",
                    address=_home("61 Baker Street", town="London", postcode="NW1 6XE"),
                    phone="07700 900506",
                    lives_with=False,
                    priority=2,
                ),
            ],
        ),
        pupil(
            1006,
            "Kai",
            "Stone",
            sex=None,
            dob=None,
            upn=None,
            nc_year="Y9",
            starting_day=date(2025, 11, 18),
            address=Address(lines=[], town="Writtle", postcode="CM1 3AA"),
        ),
        pupil(
            1007,
            "Isla",
            "Green",
            leaving_date=date(2025, 11, 7),
            deletion_ground="9(1)(a)",
            new_school="Moulsham Park School",
            address=green,
            contacts=[
                Contact(
                    name="Nina Green",
                    relationship="Mother",
                    address=green,
                    phone="07700 900707",
                    lives_with=True,
                    priority=1,
                )
            ],
        ),
        pupil(
            1008,
            "Leo",
            "Marsh",
            sex="M",
            nc_year="9",
            dob=date(2011, 4, 4),
            leaving_date=date(2025, 11, 14),
            deletion_ground="Moved abroad",
            future_address=Address(lines=["12 Rue de la Paix"], town="Paris"),
            address=marsh,
            contacts=[
                Contact(
                    name="Owen Marsh",
                    relationship="Father",
                    address=None,
                    phone="07700 900808",
                    lives_with=True,
                    priority=1,
                )
            ],
        ),
        pupil(1009, "Ruby", "Shaw", address=_home("5 Lime Walk", postcode="CM1 1AA")),
    ]


def school_days(start: date, end: date) -> list[date]:
    return SchoolCalendar(CALENDAR).school_days(start, end)


def _marks(pupil_id: str, days: Iterable[date], am: str, pm: str) -> list[Mark]:
    return [
        Mark(pupil_id=pupil_id, date=day, session=session, code=code, vendor_code=code)
        for day in days
        for session, code in ((AM, am), (PM, pm))
    ]


def marks() -> list[Mark]:
    out: list[Mark] = []

    def add(n: int, start: date, end: date, am: str, pm: str | None = None) -> None:
        pid = f"{SCHOOL_ID}:{n}"
        for day in school_days(start, end):
            if day == Y4_DAY:
                out.extend(_marks(pid, [day], "Y4", "Y4"))
            else:
                out.extend(_marks(pid, [day], am, pm or am))

    add(1001, date(2025, 9, 15), date(2025, 10, 3), "I")
    add(1001, date(2025, 10, 6), date(2025, 10, 6), "/", "\\")
    add(1002, date(2025, 9, 8), date(2025, 9, 12), "I")
    out.append(Mark(pupil_id=f"{SCHOOL_ID}:1002", date=date(2025, 9, 15), session=AM, code="I"))
    add(1002, date(2025, 11, 13), date(2025, 11, 20), "I")
    add(1003, date(2025, 11, 3), date(2025, 11, 7), "G")
    add(1003, date(2025, 11, 10), date(2025, 11, 17), "O")
    add(1003, date(2025, 11, 18), date(2025, 11, 20), "/", "\\")
    add(1004, date(2025, 11, 6), date(2025, 11, 20), "N", "O")
    add(1009, date(2025, 9, 22), date(2025, 10, 10), "I")
    return out


def notifications() -> list[Notification]:
    """The one return already made (Ruby Shaw's sickness return) and the cause the school
    entered for Ella Hart's absence."""
    return [
        Notification(
            kind=NotificationKind.SICKNESS,
            school_id=SCHOOL_ID,
            pupil_id=f"{SCHOOL_ID}:1009",
            episode_start=date(2025, 9, 22),
            made_at=datetime(2025, 10, 13, 15, 0, tzinfo=UTC),
            channel="email",
            reference="SICK-1009",
        ),
        # not a return: the cause of Ella Hart's absence as the school entered it
        Notification(
            kind=NotificationKind.ABSENCE_CAUSE,
            school_id=SCHOOL_ID,
            pupil_id=f"{SCHOOL_ID}:1003",
            episode_start=date(2025, 11, 3),
            made_at=datetime(2025, 11, 18, 9, 0, tzinfo=UTC),
            channel="entered by the school",
            reference="Family holiday abroad; leave refused",
        ),
    ]


# -- the store and the scan ---------------------------------------------------------------------


def load(
    store: Store,
    *,
    school: SchoolSettings | None = None,
    calendar: Calendar = CALENDAR,
    records: tuple[Sequence[Pupil], Sequence[Mark], Sequence[Notification]] | None = None,
) -> None:
    """Put a school's records in the store, as sync would."""
    school = school or school_settings()
    the_pupils, the_marks, the_notifications = records or (pupils(), marks(), notifications())
    store.upsert_school(school.to_school(), at=SCANNED_AT)
    store.upsert_calendar(calendar, at=SCANNED_AT)
    store.upsert_pupils(the_pupils, at=SCANNED_AT)
    store.upsert_marks(the_marks, school.id, at=SCANNED_AT)
    store.add_notifications(the_notifications, at=SCANNED_AT)


def scan(store: Store, school_id: str, as_of: date, *, at: datetime = SCANNED_AT) -> list[Finding]:
    """Run the LAR rules over what the store holds and persist the outcome as the nightly scan
    does: findings seen are saved (open), open LAR findings not seen any more are resolved."""
    calendar = store.calendar(school_id)
    assert calendar is not None
    # Elmbrook marks O for "reason unknown", so O counts towards the CME referral (LAR003);
    # by default only N does (rule-corrections.md §1)
    ctx = ScanContext.build(
        calendar=calendar,
        as_of=as_of,
        school_id=school_id,
        pupils=store.pupils(school_id),
        marks=store.marks(school_id),
        notifications=store.notifications(school_id),
        settings=RuleSettings(cme_codes=frozenset({"N", "O"})),
    )
    findings = run_rules(ctx, [rule() for rule in lar_rules()])
    store.save_findings(findings, at=at)
    seen = {f.fingerprint for f in findings}
    gone = [
        stored.finding.model_copy(update={"resolved_at": at})
        for fingerprint, stored in store.load_findings(school_id, status="open").items()
        if stored.finding.rule.startswith("LAR") and fingerprint not in seen
    ]
    store.save_findings(gone, at=at)
    return findings


def request_for(
    store: Store,
    school: SchoolSettings | None = None,
    *,
    as_of: date = AS_OF,
    generated_at: datetime = GENERATED_AT,
) -> ExportRequest:
    return ExportRequest(
        school=school or school_settings(), store=store, as_of=as_of, generated_at=generated_at
    )


@dataclass(frozen=True)
class Expected:
    rule: str
    pupil: int
    first: tuple[date, Session] | None
    last: tuple[date, Session] | None


EXPECTED = [
    Expected("LAR001", 1001, (date(2025, 9, 15), AM), (date(2025, 10, 3), PM)),
    Expected("LAR001", 1002, (date(2025, 9, 8), AM), (date(2025, 11, 20), PM)),
    Expected("LAR002", 1003, (date(2025, 11, 3), AM), (date(2025, 11, 17), PM)),
    Expected("LAR002", 1004, (date(2025, 11, 6), AM), (date(2025, 11, 20), PM)),
    Expected("LAR003", 1004, (date(2025, 11, 6), AM), (date(2025, 11, 20), PM)),
    Expected("LAR004", 1005, None, None),
    Expected("LAR004", 1006, None, None),
    Expected("LAR005", 1007, None, None),
    Expected("LAR005", 1008, None, None),
]


def golden_path(name: str) -> Path:
    return GOLDEN / name


# -- the scenario itself ------------------------------------------------------------------------


def test_export_la_scenario_finds_exactly_the_described_breaches(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'store.db'}") as store:
        load(store)
        findings = scan(store, SCHOOL_ID, AS_OF)
    got = sorted(
        (
            f.rule,
            f.pupil_id,
            (f.first_session.date, f.first_session.session) if f.first_session else None,
            (f.last_session.date, f.last_session.session) if f.last_session else None,
        )
        for f in findings
    )
    want = sorted((e.rule, f"{SCHOOL_ID}:{e.pupil}", e.first, e.last) for e in EXPECTED)
    assert got == want
    by_key = {(f.rule, f.pupil_id): f for f in findings}
    heading = by_key[("LAR001", f"{SCHOOL_ID}:1002")]
    assert heading.evidence["illness_days"] == 10.5
    assert heading.evidence["spell_start"] == "2025-11-14"
    assert "reached_on" not in heading.evidence
    assert by_key[("LAR001", f"{SCHOOL_ID}:1001")].evidence["reached_on"] == "2025-10-03"
    assert by_key[("LAR002", f"{SCHOOL_ID}:1003")].evidence["school_days"] == 10
    assert by_key[("LAR003", f"{SCHOOL_ID}:1004")].evidence["threshold_day"] == "2025-11-20"
