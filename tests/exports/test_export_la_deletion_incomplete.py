"""la-deletion: a record without a parent the pupil lives with, or without an emergency phone
for one, is refused (not queued) and LAR005's finding names what is missing (legal review §3)."""

from __future__ import annotations

from pathlib import Path

from lxml import etree
from test_export_la_fixtures import AS_OF, GENERATED_AT, SCHOOL_ID, load, request_for, scan

from registerwatch.exports.la_deletion import missing_items
from registerwatch.exports.registry import builder
from registerwatch.schema import Contact, Pupil
from registerwatch.store import Store

ISLA, LEO = f"{SCHOOL_ID}:1007", f"{SCHOOL_ID}:1008"


def _edit(store: Store, pupil_id: str, contacts: list[Contact]) -> None:
    pupil = next(p for p in store.pupils(SCHOOL_ID) if p.id == pupil_id)
    store.upsert_pupils([pupil.model_copy(update={"contacts": contacts})], at=GENERATED_AT)


def _refs(store: Store) -> list[str]:
    returns = builder("la-deletion")(request_for(store))  # type: ignore[arg-type]
    return sorted(
        r.findtext("RecordKey/PupilRef")
        for rendered in returns
        for r in etree.fromstring(rendered.xml).iterfind("Records/Record")
    )


def test_missing_items_in_words() -> None:
    base = Pupil(id="s:1", school_id="s", mis_id="1")
    assert missing_items(None) == []
    assert missing_items(base) == ["a parent the pupil normally lives with (reg 13(4)(c))"]
    not_lived = [Contact(name="A Parent", phone="01234", lives_with=False)]
    assert missing_items(base.model_copy(update={"contacts": not_lived})) == [
        "a parent the pupil normally lives with (reg 13(4)(c))"
    ]
    two = [
        Contact(name="A Parent", relationship="Mother", phone=" ", lives_with=True),
        Contact(name="B Parent", phone="01234", lives_with=True, priority=2),
        Contact(name="C Parent", lives_with=True, priority=3),
    ]
    assert missing_items(base.model_copy(update={"contacts": two})) == [
        "an emergency telephone number for the parent lived with (Mother) (reg 13(4)(d))",
        "an emergency telephone number for the parent lived with (parent 3) (reg 13(4)(d))",
    ]


def test_an_incomplete_deletion_record_is_refused_and_its_finding_says_why(
    tmp_path: Path,
) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'store.db'}") as store:
        load(store)
        scan(store, SCHOOL_ID, AS_OF)
        assert _refs(store) == [ISLA, LEO]

        _edit(store, ISLA, [])
        _edit(store, LEO, [Contact(name="L Marsh", relationship="Father", lives_with=True)])
        found = {f.pupil_id: f for f in scan(store, SCHOOL_ID, AS_OF) if f.rule == "LAR005"}

        assert builder("la-deletion")(request_for(store)) == []  # type: ignore[arg-type]
        assert found[ISLA].message.endswith(
            "it cannot be queued until the MIS record has a parent the pupil normally lives "
            "with (reg 13(4)(c))"
        )
        assert found[LEO].evidence["missing"] == [
            "an emergency telephone number for the parent lived with (Father) (reg 13(4)(d))"
        ]
        # completing one record lets that one go
        _edit(store, LEO, [Contact(name="L Marsh", phone="07700 900123", lives_with=True)])
        scan(store, SCHOOL_ID, AS_OF)
        assert _refs(store) == [LEO]
