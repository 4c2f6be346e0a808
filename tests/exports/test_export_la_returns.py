"""The five LA notification returns: values, determinism, the empty case, files 0600, and the
Notification round trip that closes the LAR findings. Their golden files and XSD cases are run by
the template over every return, tests/exports/test_export_returns.py.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from lxml import etree
from structlog.testing import capture_logs
from test_export_la_fixtures import (
    AS_OF,
    GENERATED_AT,
    SCHOOL_ID,
    load,
    marks,
    notifications,
    pupils,
    request_for,
    scan,
    school_settings,
)

from registerwatch.deletion_grounds import parse_deletion_ground
from registerwatch.errors import ExportValidationError
from registerwatch.exports.base import (
    RenderedReturn,
    ReturnRecordKey,
    validate,
    write_return,
)
from registerwatch.exports.la_common import (
    NOTIFICATION_KIND,
    RULE_FOR_RETURN,
    notification_for,
)
from registerwatch.exports.la_common.inputs import AbsenceEpisode, ReturnHeader
from registerwatch.exports.registry import LA_RETURNS, RETURN_MODULES, builder
from registerwatch.schema import NotificationKind, Pupil, Session, SessionRef
from registerwatch.simulator.generate import generate_school
from registerwatch.store import Store
from registerwatch.validators.returns import get_rules as lar_rules

KINDS = ("la-sickness", "la-continuous-absence", "la-cme", "la-new-pupil", "la-deletion")
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """The Elmbrook scenario, loaded and scanned once (read-only for the tests that use it)."""
    path = tmp_path_factory.mktemp("la") / "store.db"
    with Store.open(f"sqlite:///{path}") as opened:
        load(opened)
        scan(opened, SCHOOL_ID, AS_OF)
        yield opened


def build_one(store: Store, kind: str, **request: object) -> RenderedReturn:
    returns = builder(kind)(request_for(store, **request))  # type: ignore[arg-type]
    assert len(returns) == 1
    return returns[0]


def records(rendered: RenderedReturn) -> dict[str, etree._Element]:
    """The rendered Records by PupilRef."""
    root = etree.fromstring(rendered.xml)
    return {r.findtext("RecordKey/PupilRef"): r for r in root.iterfind("Records/Record")}


def status(element: etree._Element | None) -> tuple[str | None, str | None]:
    assert element is not None
    return element.get(XSI_NIL), element.get("status")


# -- the public mapping ---------------------------------------------------------------------------


def test_export_la_kinds_map_to_notifications_rules_and_packages() -> None:
    assert NOTIFICATION_KIND == {
        "la-sickness": "sickness",
        "la-continuous-absence": "continuous_absence",
        "la-cme": "cme",
        "la-new-pupil": "new_pupil",
        "la-deletion": "deletion",
    }
    assert {NotificationKind(v) for v in NOTIFICATION_KIND.values()} == {
        NotificationKind.SICKNESS,
        NotificationKind.CONTINUOUS_ABSENCE,
        NotificationKind.CME,
        NotificationKind.NEW_PUPIL,
        NotificationKind.DELETION,
    }
    assert RULE_FOR_RETURN == {
        "la-sickness": "LAR001",
        "la-continuous-absence": "LAR002",
        "la-cme": "LAR003",
        "la-new-pupil": "LAR004",
        "la-deletion": "LAR005",
    }
    # LAR006 judges the ground a deletion return states; it has no return of its own
    assert {rule.code for rule in lar_rules()} - {"LAR006"} == set(RULE_FOR_RETURN.values())
    assert set(LA_RETURNS) == set(KINDS) == set(NOTIFICATION_KIND)
    for kind in KINDS:
        assert RETURN_MODULES[kind] == f"registerwatch.exports.{kind.replace('-', '_')}"
        assert callable(builder(kind))


def test_export_la_notification_for_carries_the_episode_date() -> None:
    made = datetime(2025, 11, 21, 9, 0, tzinfo=UTC)
    n = notification_for(
        "la-continuous-absence",
        SCHOOL_ID,
        ReturnRecordKey("elmbrook:1003", "2025-11-03"),
        made_at=made,
        channel="LA portal",
        reference="CA-1003",
    )
    assert (
        n.kind,
        n.school_id,
        n.pupil_id,
        n.episode_start,
        n.made_at,
        n.channel,
        n.reference,
    ) == (
        NotificationKind.CONTINUOUS_ABSENCE,
        SCHOOL_ID,
        "elmbrook:1003",
        date(2025, 11, 3),
        made,
        "LA portal",
        "CA-1003",
    )
    with pytest.raises(KeyError):
        notification_for(
            "dfe-daily", SCHOOL_ID, ReturnRecordKey("p", "2025-11-03"), made_at=made, channel="x"
        )
    with pytest.raises(ValueError, match="no pupil or no episode"):
        notification_for(
            "la-cme", SCHOOL_ID, ReturnRecordKey(None, "2025-11-03"), made_at=made, channel="x"
        )


# -- values ---------------------------------------------------------------------------------------

EXPECTED_KEYS = {
    "la-sickness": [("elmbrook:1001", "2025-09-15"), ("elmbrook:1002", "2025-09-08")],
    "la-continuous-absence": [("elmbrook:1003", "2025-11-03"), ("elmbrook:1004", "2025-11-06")],
    "la-cme": [("elmbrook:1004", "2025-11-06")],
    "la-new-pupil": [("elmbrook:1005", "2025-11-12"), ("elmbrook:1006", "2025-11-18")],
    "la-deletion": [("elmbrook:1007", "2025-11-07"), ("elmbrook:1008", "2025-11-14")],
}


@pytest.mark.parametrize("kind", KINDS)
def test_export_la_one_record_per_open_finding_keyed_by_episode(store: Store, kind: str) -> None:
    rendered = build_one(store, kind)
    want = [ReturnRecordKey(p, e) for p, e in EXPECTED_KEYS[kind]]
    assert rendered.records == want
    root = etree.fromstring(rendered.xml)
    assert [
        (r.findtext("RecordKey/PupilRef"), r.findtext("RecordKey/Episode"))
        for r in root.iterfind("Records/Record")
    ] == EXPECTED_KEYS[kind]
    assert root.findtext("Header/RecordCount") == str(len(want))
    assert root.findtext("Header/ReturnKind") == kind
    assert root.findtext("Header/GeneratedAt") == "2025-11-21T07:30:00+00:00"
    assert [root.findtext(f"Header/School/{t}") for t in ("LA", "Estab", "URN", "Name")] == [
        "881",
        "4001",
        "140001",
        "Elmbrook Academy",
    ]
    assert [row[:2] for row in rendered.csv_rows] == [list(k) for k in EXPECTED_KEYS[kind]]


def test_export_la_sickness_values(store: Store) -> None:
    recs = records(build_one(store, "la-sickness"))
    wood = recs["elmbrook:1001"]
    assert wood.findtext("Pupil/LegalSurname") == "Wood"
    assert wood.findtext("Pupil/MiddleNames") == "Alexandra"
    assert [p.findtext("Name") for p in wood.iterfind("ParentsLivedWith/Parent")] == [
        "Ama Wood",
        "Matthew Wood",
    ]  # the grandmother does not live with her
    assert wood.find("Episode/Start").get("session") == "AM"  # type: ignore[union-attr]
    assert wood.findtext("Episode/Start") == "2025-09-15"
    assert wood.findtext("Episode/End") == "2025-10-03"
    assert wood.findtext("Episode/Ongoing") == "N"  # present on 6 October
    assert wood.findtext("Episode/IllnessDays") == "15"
    assert wood.findtext("Episode/ThresholdReached/ReachedOn") == "2025-10-03"
    assert [(c.get("code"), c.text) for c in wood.iterfind("Episode/Sessions/Count")] == [
        ("I", "30")
    ]
    assert wood.findtext("Episode/Cause") == "Illness (not medical or dental appointment)"

    price = recs["elmbrook:1002"]
    assert price.findtext("Episode/IllnessDays") == "10.5"
    assert price.find("Episode/ThresholdReached") is None
    assert price.findtext("Episode/ThresholdExpected/SpellStart") == "2025-11-14"
    assert price.findtext("Episode/ThresholdExpected/SpellDays") == "5"
    assert price.findtext("Episode/Ongoing") == "Y"
    # I only: the cumulative episode spans two months of other codes and days without marks
    assert [(c.get("code"), c.text) for c in price.iterfind("Episode/Sessions/Count")] == [
        ("I", "21")
    ]
    assert status(price.find("Pupil/Sex")) == ("true", "not-held")
    assert status(price.find("ParentsLivedWith")) == ("true", "not-held")
    assert price.findtext("Pupil/PreferredForename") == "Sam"


def test_export_la_continuous_absence_and_cme_values(store: Store) -> None:
    ca = records(build_one(store, "la-continuous-absence"))
    hart = ca["elmbrook:1003"]
    assert hart.findtext("Episode/SchoolDays") == "10"
    assert hart.findtext("Episode/ThresholdDay") == "2025-11-17"
    # the unexpected closure (Y4) sits inside the run: shown, neither counted nor breaking it
    assert [(c.get("code"), c.text) for c in hart.iterfind("Episode/Sessions/Count")] == [
        ("Y4", "2"),
        ("G", "10"),
        ("O", "10"),
    ]
    assert hart.findtext("Episode/Cause") == "Unauthorised: holiday not granted by the school"
    mother = hart.find("ParentsLivedWith/Parent")
    assert mother is not None and mother.findtext("Name") == "Rosa Hart"
    assert status(mother.find("EmergencyPhone")) == ("true", "not-held")
    assert len(hart.findall("ParentsLivedWith/Parent")) == 1  # the father lives elsewhere

    cme = records(build_one(store, "la-cme"))
    noah = cme["elmbrook:1004"]
    assert ca["elmbrook:1004"].findtext("Episode/Start") == noah.findtext("Episode/Start")
    assert status(noah.find("Episode/Cause")) == ("true", "not-known")
    assert status(noah.find("Pupil/UPN")) == ("true", "invalid")
    assert status(noah.find("Pupil/Address")) == ("true", "not-held")
    assert noah.findtext("Episode/Ongoing") == "Y"
    assert noah.findtext("Episode/ThresholdDay") == "2025-11-20"
    carer = noah.find("ParentsLivedWith/Parent")
    assert carer is not None and carer.findtext("Relationship") == "Foster carer"
    assert status(carer.find("Address")) == ("true", "not-held")
    assert carer.findtext("EmergencyPhone") == "07700 900404"


def test_export_la_new_pupil_values(store: Store) -> None:
    recs = records(build_one(store, "la-new-pupil"))
    tobi = recs["elmbrook:1005"]
    assert [
        tobi.findtext(f"Pupil/{t}")
        for t in (
            "LegalSurname",
            "LegalForename",
            "PreferredSurname",
            "PreferredForename",
            "Sex",
            "DOB",
        )
    ] == ["Okafor", "Oluwatobi", "Okafor-Smith", "Tobi", "M", "2014-06-09"]
    assert tobi.findtext("Admission/StartingDay") == "2025-11-12"
    assert tobi.findtext("Admission/Boarder") == "Y"
    assert [
        (p.findtext("Name"), p.findtext("LivesWith"), p.findtext("EmergencyPhone"))
        for p in tobi.iterfind("Parents/Parent")
    ] == [("Chidi Okafor", "Y", "07700 900505"), ("Helen Smith", "N", "07700 900506")]
    assert tobi.find("LastSchool") is None  # not in the schema: left out (documented)

    kai = recs["elmbrook:1006"]
    for tag, why in (
        ("UPN", "not-held"),
        ("Sex", "not-held"),
        ("DOB", "not-held"),
        ("NCYear", "invalid"),
    ):
        assert status(kai.find(f"Pupil/{tag}")) == ("true", why), tag
    assert status(kai.find("Parents")) == ("true", "not-held")
    kai_address = kai.find("Pupil/Address")
    assert kai_address is not None
    assert [c.tag for c in kai_address] == ["Town", "Postcode"]
    assert kai.findtext("Admission/Boarder") == "N"


def test_export_la_deletion_values(store: Store) -> None:
    recs = records(build_one(store, "la-deletion"))
    isla = recs["elmbrook:1007"]
    assert isla.findtext("Deletion/LeavingDate") == "2025-11-07"
    assert isla.findtext("Deletion/StartingDay") == "2024-09-04"
    assert isla.findtext("Deletion/Ground") == "9(1)(a)"
    assert isla.findtext("Deletion/GroundDescription") == "Registered at another school"
    assert isla.findtext("FutureArrangements/NewSchool") == "Moulsham Park School"
    assert status(isla.find("FutureArrangements/FutureAddress")) == ("true", "not-held")
    assert isla.findtext("ParentsLivedWith/Parent/EmergencyPhone") == "07700 900707"

    leo = recs["elmbrook:1008"]
    assert status(leo.find("Deletion/Ground")) == ("true", "invalid")
    assert leo.findtext("Deletion/GroundDescription") == "Moved abroad"  # as recorded
    future = leo.find("FutureArrangements/FutureAddress")
    assert future is not None
    assert [(c.tag, c.text) for c in future] == [("Line", "12 Rue de la Paix"), ("Town", "Paris")]
    assert status(leo.find("FutureArrangements/NewSchool")) == ("true", "not-held")
    assert status(leo.find("ParentsLivedWith/Parent/Address")) == ("true", "not-held")


@pytest.mark.parametrize(
    ("recorded", "ground"),
    [
        ("9(1)(a)", "9(1)(a)"),
        ("Reg 9(1)(O)", "9(1)(o)"),
        ("regulation 9 (1) (g)", "9(1)(g)"),
        ("9(3)(b)", "9(3)(b)"),
        ("9(1)(p)", None),
        ("9(2)(a)", None),
        ("Moved abroad", None),
        ("", None),
        (None, None),
    ],
)
def test_export_la_deletion_ground_is_normalised(recorded: str | None, ground: str | None) -> None:
    assert parse_deletion_ground(recorded) == ground


def test_export_la_pupil_missing_from_the_store_still_gets_a_record(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'store.db'}") as store:
        load(store)
        scan(store, SCHOOL_ID, AS_OF)
        everyone = {p.id: p for p in store.pupils(SCHOOL_ID)}
        # the pupil row goes (a store edited by hand); the open finding stays
        with store.transaction() as conn:
            conn.exec_driver_sql("DELETE FROM pupils WHERE id = 'elmbrook:1007'")
        assert "elmbrook:1007" in everyone
        rendered = build_one(store, "la-deletion")
    validate(rendered)
    isla = records(rendered)["elmbrook:1007"]
    for path in (
        "Pupil/UPN",
        "Pupil/LegalSurname",
        "Pupil/LegalForename",
        "Pupil/DOB",
        "Pupil/Address",
        "ParentsLivedWith",
        "Deletion/StartingDay",
        "FutureArrangements/NewSchool",
    ):
        assert status(isla.find(path)) == ("true", "not-held"), path
    # from the finding's evidence: what the MIS held when the finding was raised
    assert isla.findtext("Deletion/LeavingDate") == "2025-11-07"
    assert isla.findtext("Deletion/Ground") == "9(1)(a)"


# -- determinism, the clock, the empty case, files ------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_export_la_same_input_same_bytes(store: Store, tmp_path: Path, kind: str) -> None:
    first = build_one(store, kind)
    assert build_one(store, kind).xml == first.xml
    # the same school loaded in another order, scanned at another time of day
    with Store.open(f"sqlite:///{tmp_path / 'other.db'}") as other:
        load(other, records=(list(reversed(pupils())), list(reversed(marks())), notifications()))
        scan(other, SCHOOL_ID, AS_OF, at=datetime(2025, 11, 21, 23, 59, tzinfo=UTC))
        again = build_one(other, kind)
    assert (again.xml, again.csv_bytes(), again.records) == (
        first.xml,
        first.csv_bytes(),
        first.records,
    )


@pytest.mark.parametrize("kind", KINDS)
def test_export_la_clock_comes_only_from_the_request(store: Store, kind: str) -> None:
    london = timezone(timedelta(hours=1))
    same_instant = build_one(store, kind, generated_at=GENERATED_AT.astimezone(london))
    assert same_instant.xml == build_one(store, kind).xml
    later = build_one(store, kind, generated_at=GENERATED_AT + timedelta(days=1))
    assert b"<GeneratedAt>2025-11-22T07:30:00+00:00</GeneratedAt>" in later.xml
    with pytest.raises(ExportValidationError, match="has no timezone"):
        build_one(store, kind, generated_at=datetime(2025, 11, 21, 7, 30))


@pytest.mark.parametrize("kind", KINDS)
def test_export_la_no_open_findings_no_return(tmp_path: Path, kind: str) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'store.db'}") as store:
        load(store)  # records, but no scan: no findings at all
        assert builder(kind)(request_for(store)) == []


@pytest.mark.parametrize("kind", KINDS)
def test_export_la_written_files_are_private(store: Store, tmp_path: Path, kind: str) -> None:
    rendered = build_one(store, kind)
    written = write_return(rendered, tmp_path / "out")
    for path in (written.xml_path, written.csv_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert written.xml_path.read_bytes() == rendered.xml
    assert written.csv_path.read_bytes() == rendered.csv_bytes()
    assert written.xml_path.name == f"{kind}_{SCHOOL_ID}_2025-11-21.xml"
    assert written.records == len(EXPECTED_KEYS[kind])


@pytest.mark.parametrize("kind", KINDS)
def test_export_la_logs_carry_no_pupil_data(store: Store, kind: str) -> None:
    with capture_logs() as events:
        rendered = build_one(store, kind)
    assert [e["event"] for e in events] == ["export.rendered"]
    assert events[0] == {
        "event": "export.rendered",
        "log_level": "info",
        "kind": kind,
        "school_id": SCHOOL_ID,
        "records": rendered.record_count,
        "sha256": rendered.sha256,
    }


# -- what XSD 1.0 cannot say, checked in Python before rendering ----------------------------------


def header_for(kind: str) -> ReturnHeader:
    return ReturnHeader(
        kind=kind,
        school_id=SCHOOL_ID,
        school_name="Elmbrook Academy",
        la_code="881",
        estab="4001",
        urn="140001",
        as_of=AS_OF,
        generated_at=GENERATED_AT,
    )


def test_export_la_episode_ending_before_it_starts_is_refused() -> None:
    from registerwatch.exports.la_continuous_absence.render import render

    header = header_for("la-continuous-absence")
    backwards = AbsenceEpisode(
        pupil_id="elmbrook:1003",
        pupil=None,
        start=SessionRef(date=date(2025, 11, 17), session=Session.PM),
        end=SessionRef(date=date(2025, 11, 17), session=Session.AM),
        session_counts=(("G", 1),),
        ongoing=False,
        facts={"school_days": 10, "threshold_day": "2025-11-17"},
        fingerprint="f",
    )
    with pytest.raises(ExportValidationError) as caught:
        render(header, [backwards])
    assert caught.value.errors == [
        (
            "record (pupil elmbrook:1003, episode 2025-11-17): episode ends 2025-11-17 AM before "
            "it starts 2025-11-17 PM"
        )
    ]


def test_export_la_leaving_date_before_starting_day_is_refused() -> None:
    from registerwatch.exports.la_common.inputs import RegisterEvent
    from registerwatch.exports.la_deletion.render import render

    header = header_for("la-deletion")
    pupil = Pupil(id="elmbrook:1", school_id=SCHOOL_ID, mis_id="1", starting_day=date(2025, 11, 10))
    with pytest.raises(ExportValidationError) as caught:
        render(
            header,
            [
                RegisterEvent(
                    pupil_id=pupil.id, pupil=pupil, day=date(2025, 11, 7), facts={}, fingerprint="f"
                )
            ],
        )
    assert caught.value.errors == [
        (
            "record (pupil elmbrook:1, episode 2025-11-07): leaving date 2025-11-07 is before the "
            "starting day 2025-11-10"
        )
    ]


# -- the round trip: return made -> Notification recorded -> finding closes -----------------------


def _round_trip(store: Store, school_id: str, as_of: date, request_school: object) -> None:
    findings = scan(store, school_id, as_of)
    # the rules a return closes (LAR006 judges a deletion's ground: no return closes it)
    returns_rules = set(RULE_FOR_RETURN.values())
    open_lar = {f.fingerprint: f for f in findings if f.rule in returns_rules}
    assert {f.rule for f in open_lar.values()} == {"LAR001", "LAR002", "LAR003", "LAR004", "LAR005"}
    request = request_for(store, request_school, as_of=as_of)  # type: ignore[arg-type]
    made_at = datetime.combine(as_of, datetime.min.time(), tzinfo=UTC) + timedelta(hours=9)
    answered: dict[str, int] = {}
    for kind in KINDS:
        returns = builder(kind)(request)
        assert len(returns) == 1
        validate(returns[0])
        answered[kind] = returns[0].record_count
        # what the outbox records for each record once the return is submitted
        store.add_notifications(
            [
                notification_for(kind, school_id, key, made_at=made_at, channel="LA portal")
                for key in returns[0].records
            ]
        )
    assert sum(answered.values()) == len(open_lar)

    again = scan(store, school_id, as_of, at=made_at)
    assert not [f for f in again if f.fingerprint in open_lar]
    assert not [f for f in again if f.rule in returns_rules]
    still_open = store.load_findings(school_id, status="open")
    assert not [f for f in still_open if f in open_lar]
    for kind in KINDS:
        assert builder(kind)(request) == []


def test_export_la_notifications_close_the_findings_elmbrook(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'store.db'}") as store:
        load(store)
        _round_trip(store, SCHOOL_ID, AS_OF, school_settings())


def test_export_la_notifications_close_the_findings_simulated_school(tmp_path: Path) -> None:
    school = generate_school(seed=1, pupils=150)
    assert school.as_of is not None
    settings = school_settings(
        school.school.id,
        urn=school.school.urn or "",
        laestab=school.school.laestab or "",
        name=school.school.name,
        calendar=school.calendar,
    )
    with Store.open(f"sqlite:///{tmp_path / 'store.db'}") as store:
        load(
            store,
            school=settings,
            calendar=school.calendar,
            records=(school.pupils, school.marks, school.notifications),
        )
        _round_trip(store, school.school.id, school.as_of, settings)


# -- docs ------------------------------------------------------------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "returns"


@pytest.mark.parametrize("kind", KINDS)
def test_export_la_doc_example_is_taken_from_the_golden_file(kind: str) -> None:
    from test_export_la_fixtures import golden_path

    page = (DOCS / f"{kind}.md").read_text(encoding="utf-8")
    assert f"schemas/{kind}-1.xsd" in page
    example = page.split("```xml\n", 1)[1].split("```", 1)[0]
    assert example.strip()
    assert example in golden_path(f"{kind}-1.xml").read_text(encoding="utf-8")
