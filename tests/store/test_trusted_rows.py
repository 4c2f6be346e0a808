"""Stored rows read back as models without validation (``schema.construct.trusted_constructor``):
the same models validation would build, and model_construct whenever that cannot be shown."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from registerwatch.schema import (
    Address,
    Amendment,
    AmendmentSource,
    Contact,
    Finding,
    Pupil,
    Register,
    Session,
    SessionRef,
    Severity,
)
from registerwatch.schema.construct import trusted_constructor
from registerwatch.store import Store

SCHOOL = "wenlock"
MON = date(2025, 1, 6)
T1 = datetime(2025, 1, 6, 19, 0, tzinfo=UTC)
LONDON = ZoneInfo("Europe/London")


def test_registers_and_amendments_read_back_as_validated_models(store: Store):
    register = Register(
        school_id=SCHOOL,
        group="8L",
        date=MON,
        session="PM",
        opened_at=datetime(2025, 1, 6, 13, 5, tzinfo=LONDON),
        taken_by="JH",
    )
    amendment = Amendment(
        pupil_id="wenlock:1",
        date=MON,
        session="AM",
        original_code="N",
        amended_code="I",
        amended_at=datetime(2025, 1, 7, 9, 0, tzinfo=LONDON),
        source=AmendmentSource.OBSERVED,
    )
    store.upsert_registers([register], at=T1)
    store.insert_amendments([amendment], SCHOOL, at=T1)

    (stored_register,) = store.registers(SCHOOL)
    (stored_amendment,) = store.amendments(SCHOOL)

    for stored, original in ((stored_register, register), (stored_amendment, amendment)):
        revalidated = type(original).model_validate(stored.model_dump())
        assert stored == original == revalidated
        assert stored.model_dump() == revalidated.model_dump()
        assert stored.model_fields_set == set(type(original).model_fields)
    assert stored_register.session is Session.PM
    assert stored_amendment.session is Session.AM
    assert stored_amendment.source is AmendmentSource.OBSERVED
    assert stored_register.opened_at is not None and stored_register.opened_at.tzinfo is UTC


class Tagged(BaseModel):
    name: str
    tag: str = "plain"


def test_a_probe_that_does_not_name_every_field_falls_back_to_model_construct():
    build = trusted_constructor(Tagged, {"name": "probe"})

    built = build({"name": "x"})

    assert built == Tagged.model_construct(name="x")
    assert built.tag == "plain"  # the default model_construct fills in
    assert built.model_fields_set == {"name"}


def test_a_probe_naming_every_field_builds_what_model_construct_builds():
    build = trusted_constructor(Tagged, {"name": "probe", "tag": "t"})

    built = build({"name": "x", "tag": "y"})

    assert built == Tagged.model_construct(name="x", tag="y")
    assert built.model_fields_set == {"name", "tag"}
    assert built.model_dump() == {"name": "x", "tag": "y"}


def test_stored_findings_read_back_as_validated_models(store: Store):
    finding = Finding(
        rule="ATT001",
        severity=Severity.WARNING,
        school_id=SCHOOL,
        pupil_id="wenlock:1",
        first_session=SessionRef(date=MON, session="AM"),
        last_session=SessionRef(date=MON, session="PM"),
        due=date(2025, 1, 16),
        message="ten sessions missed",
        evidence={"codes": ["N", "O"], "sessions": 10},
        fingerprint="sha256:one",
    )
    notice = Finding(
        rule="REG001", severity="info", school_id=SCHOOL, message="not exposed", fingerprint="n"
    )
    store.save_findings([finding, notice], at=T1)

    loaded = store.load_findings(SCHOOL)

    for original in (finding, notice):
        stored = loaded[original.fingerprint].finding
        expected = original.model_copy(update={"first_seen": T1, "last_seen": T1})
        assert stored == expected == Finding.model_validate(stored.model_dump())
        assert stored.model_dump_json() == expected.model_dump_json()
    stored = loaded["sha256:one"].finding
    assert stored.severity is Severity.WARNING
    assert stored.first_session is not None and stored.first_session.session is Session.AM
    assert stored.last_session is not None and stored.last_session.session is Session.PM
    assert loaded["n"].finding.first_session is None


def test_pupils_read_back_as_validated_models_with_a_digest_of_their_row(store: Store):
    home = Address(lines=["21 Writtle Road", "Flat 2"], town="Springfield", postcode="CM1 4RN")
    full = Pupil(
        id=f"{SCHOOL}:1",
        school_id=SCHOOL,
        mis_id="1",
        upn="H881200818134",
        legal_forename="Ada",
        legal_surname="Clarke",
        dob=date(2013, 9, 16),
        sex="F",
        nc_year="7",
        reg_group="7A",
        starting_day=date(2025, 9, 3),
        leaving_date=date(2026, 2, 1),
        future_address=Address(lines=["1 New Street"], town="Elsewhere"),
        address=home,
        contacts=[
            Contact(name="Carol Clarke", relationship="Mother", address=home, lives_with=True),
            Contact(name="Dan Clarke", phone="07700 900308", priority=2),
        ],
        fsm=True,
        boarder=True,
    )
    bare = Pupil(id=f"{SCHOOL}:2", school_id=SCHOOL, mis_id="2")
    store.upsert_pupils([full, bare], at=T1)

    read = store.pupils_digested(SCHOOL)

    assert [pupil for pupil, _ in read] == [full, bare] == store.pupils(SCHOOL)
    for stored, original in zip((p for p, _ in read), (full, bare), strict=True):
        assert stored.model_dump() == Pupil.model_validate(stored.model_dump()).model_dump()
        assert stored.model_dump_json() == original.model_dump_json()
        assert stored.model_fields_set == set(Pupil.model_fields)
    assert read[0][0].contacts[0].address == home
    assert read[1][0].address is None and read[1][0].contacts == []
    digests = [digest for _, digest in read]
    # written again unchanged: the same digests; one field changed: that pupil's only
    store.upsert_pupils([full, bare], at=datetime(2025, 1, 7, 19, 0, tzinfo=UTC))
    assert [digest for _, digest in store.pupils_digested(SCHOOL)] == digests
    moved = full.model_copy(update={"contacts": [full.contacts[1]]})
    store.upsert_pupils([moved], at=T1)
    after = [digest for _, digest in store.pupils_digested(SCHOOL)]
    assert after[0] != digests[0] and after[1] == digests[1]
