"""Stored rows read back as models without validation (``schema.construct.trusted_constructor``):
the same models validation would build, and model_construct whenever that cannot be shown."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from registerwatch.schema import (
    Amendment,
    AmendmentSource,
    Finding,
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
