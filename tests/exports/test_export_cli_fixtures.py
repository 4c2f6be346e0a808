"""A small hand-built school for the marks-based return tests (dfe-daily, census, ctf, CLI).

Named ``test_export_cli_*`` so it sits inside the files this work may touch; it holds no tests,
only builders the test modules import (``from test_export_cli_fixtures import ...``).

Wenlock Primary (fictional), 2025/26: six pupils whose registers are written out below so every
count in the golden files can be checked by hand.

- 1001 Ava Ashdown: SEN support, FSM; illness, a medical appointment (with an MIS comment that
  must never be exported), C1, and two days of unauthorised holiday.
- 1002 Ben Brook: EHC plan, looked after; late (12 minutes), U (40 minutes), N, O, J1, C2.
- 1003 Cara Cole: joins on 15 September; K, V, R, illness.
- 1004 Dev Dale: leaves on 10 October; suspension (E) and Y1.
- 1005 Eve Eden: nursery (aged 3 at 31 August 2025); X every afternoon.
- 1006 Finn Ford: a boarder, so no attendance register (reg 10(1)) and in no return.

Calendar: the usual 2025/26 terms; a planned afternoon closure on Friday 24 October, an INSET
day on Friday 14 November and an unexpected closure (Y4 for everyone) on Thursday 20 November.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from support.config_writer import write_config as write_toml_config

from registerwatch.calendar import SchoolCalendar
from registerwatch.config import Settings, parse_config
from registerwatch.errors import ExportValidationError
from registerwatch.exports.base import RenderedReturn, validate
from registerwatch.exports.registry import ExportRequest
from registerwatch.schema import Mark, Pupil, Session
from registerwatch.store import Store

SCHOOL_ID = "wenlock"
GOLDEN = Path(__file__).with_name("golden")
UPDATE_GOLDEN_ENV = "REGISTERWATCH_UPDATE_GOLDEN"
GENERATED_AT = datetime(2026, 1, 5, 17, 30, tzinfo=UTC)
SECRET_COMMENT = "COMMENT-NEVER-EXPORTED: mum says dentist, see safeguarding note"

TERMS = [
    {"start": date(2025, 9, 3), "end": date(2025, 10, 24)},
    {"start": date(2025, 11, 3), "end": date(2025, 12, 19)},
    {"start": date(2026, 1, 5), "end": date(2026, 2, 13)},
    {"start": date(2026, 2, 23), "end": date(2026, 3, 27)},
    {"start": date(2026, 4, 13), "end": date(2026, 5, 22)},
    {"start": date(2026, 6, 1), "end": date(2026, 7, 22)},
]
CLOSURES = [
    {"date": date(2025, 10, 24), "session": "PM", "kind": "planned", "reason": "Early finish"},
    {"date": date(2025, 11, 14), "session": "both", "kind": "planned", "reason": "INSET day"},
    {
        "date": date(2025, 11, 20),
        "session": "both",
        "kind": "unexpected",
        "reason": "Heating failure",
    },
]
UNEXPECTED_CLOSURE = date(2025, 11, 20)


def school_table(
    school_id: str = SCHOOL_ID, urn: str = "123456", laestab: str = "8934001"
) -> dict[str, Any]:
    return {
        "id": school_id,
        "urn": urn,
        "laestab": laestab,
        "name": f"{school_id.title()} Primary School",
        "la_code": laestab[:3],
        "phase": "primary",
        "mis": {
            "vendor": "go4schools",
            "base_url": "http://127.0.0.1:9/customer/v1",
            "api_key_env": f"{school_id.upper()}_G4S_KEY",
        },
        "calendar": {"terms": TERMS, "closures": CLOSURES},
    }


def settings(store_url: str = "sqlite://", schools: list[dict[str, Any]] | None = None) -> Settings:
    return parse_config({"store": {"url": store_url}, "schools": schools or [school_table()]})


def calendar() -> SchoolCalendar:
    return SchoolCalendar(settings().school(SCHOOL_ID).to_calendar())


def pupil(
    n: int,
    forename: str,
    surname: str,
    upn: str | None,
    dob: date,
    sex: str,
    nc_year: str,
    school_id: str = SCHOOL_ID,
    **extra: Any,
) -> Pupil:
    return Pupil(
        id=f"{school_id}:{n}",
        school_id=school_id,
        mis_id=str(n),
        upn=upn,
        legal_forename=forename,
        legal_surname=surname,
        dob=dob,
        sex=sex,
        nc_year=nc_year,
        reg_group=f"{nc_year}W",
        starting_day=extra.pop("starting_day", date(2024, 9, 4)),
        **extra,
    )


def pupils(school_id: str = SCHOOL_ID) -> list[Pupil]:
    return [
        pupil(
            1001,
            "Ava",
            "Ashdown",
            "D893400125001",
            date(2017, 3, 14),
            "F",
            "4",
            school_id,
            sen_support=True,
            fsm=True,
        ),
        pupil(
            1002,
            "Ben",
            "Brook",
            "T893400125002",
            date(2016, 11, 2),
            "M",
            "4",
            school_id,
            ehcp=True,
            looked_after=True,
        ),
        pupil(
            1003,
            "Cara",
            "Cole",
            "G893400125003",
            date(2019, 6, 30),
            "F",
            "2",
            school_id,
            starting_day=date(2025, 9, 15),
        ),
        pupil(
            1004,
            "Dev",
            "Dale",
            "W893400125004",
            date(2018, 1, 20),
            "M",
            "2",
            school_id,
            leaving_date=date(2025, 10, 10),
        ),
        pupil(
            1005,
            "Eve",
            "Eden",
            "K893400125005",
            date(2021, 9, 1),
            "F",
            "N2",
            school_id,
            starting_day=date(2025, 9, 3),
        ),
        pupil(
            1006,
            "Finn",
            "Ford",
            "Z893400125006",
            date(2017, 5, 5),
            "M",
            "4",
            school_id,
            boarder=True,
        ),
    ]


AM, PM = Session.AM, Session.PM
# (mis id, date, session) -> (code, minutes late, comment); every other session is present.
EXCEPTIONS: dict[tuple[int, date, Session], tuple[str, int | None, str | None]] = {
    (1001, date(2025, 9, 10), AM): ("I", None, None),
    (1001, date(2025, 9, 10), PM): ("I", None, None),
    (1001, date(2025, 9, 24), AM): ("M", None, SECRET_COMMENT),
    (1001, date(2025, 10, 1), PM): ("C1", None, None),
    (1001, date(2025, 11, 24), AM): ("G", None, None),
    (1001, date(2025, 11, 24), PM): ("G", None, None),
    (1001, date(2025, 11, 25), AM): ("G", None, None),
    (1001, date(2025, 11, 25), PM): ("G", None, None),
    (1002, date(2025, 9, 8), AM): ("L", 12, None),
    (1002, date(2025, 9, 9), AM): ("U", 40, SECRET_COMMENT),
    (1002, date(2025, 9, 12), PM): ("N", None, None),
    (1002, date(2025, 10, 6), AM): ("O", None, None),
    (1002, date(2025, 11, 5), AM): ("J1", None, None),
    (1002, date(2025, 11, 7), PM): ("C2", None, None),
    (1002, date(2025, 11, 28), PM): ("C2", None, None),
    (1003, date(2025, 10, 2), AM): ("K", None, None),
    (1003, date(2025, 10, 2), PM): ("K", None, None),
    (1003, date(2025, 10, 16), PM): ("V", None, None),
    (1003, date(2025, 12, 8), AM): ("R", None, None),
    (1003, date(2025, 12, 18), AM): ("I", None, None),
    (1003, date(2025, 12, 18), PM): ("I", None, None),
    (1004, date(2025, 9, 18), AM): ("E", None, None),
    (1004, date(2025, 9, 18), PM): ("E", None, None),
    (1004, date(2025, 9, 30), AM): ("Y1", None, None),
}


def code_for(p: Pupil, day: date, session: Session) -> tuple[str, int | None, str | None]:
    if day == UNEXPECTED_CLOSURE:
        return ("Y4", None, None)
    found = EXCEPTIONS.get((int(p.mis_id), day, session))
    if found is not None:
        return found
    if p.mis_id == "1005" and session is PM:
        return ("X", None, None)  # a nursery pupil who attends mornings only
    return ("/" if session is AM else "\\", None, None)


def marks(
    pupil_list: Iterable[Pupil],
    start: date = date(2025, 9, 1),
    end: date = date(2025, 12, 31),
    *,
    skip: Iterable[tuple[str, date, Session]] = (),
) -> list[Mark]:
    """A mark for every school session each registered pupil was on roll for, except ``skip``
    (pupil id, date, session)."""
    cal = calendar()
    skipped = set(skip)
    out: list[Mark] = []
    for p in pupil_list:
        if p.boarder:
            continue
        for day, session in cal.school_sessions(start, end):
            if not p.on_roll(day) or (p.id, day, session) in skipped:
                continue
            code, late, comment = code_for(p, day, session)
            out.append(
                Mark(
                    pupil_id=p.id,
                    date=day,
                    session=session,
                    code=code,
                    vendor_code=code,
                    minutes_late=late,
                    comment=comment,
                    recorded_at=datetime.combine(day, datetime.min.time(), tzinfo=UTC)
                    + timedelta(hours=9 if session is AM else 13),
                )
            )
    return out


def open_store(
    path: Path,
    pupil_list: list[Pupil] | None = None,
    mark_list: list[Mark] | None = None,
    school_id: str = SCHOOL_ID,
) -> Store:
    store = Store.open(f"sqlite:///{path}")
    pupil_list = pupils(school_id) if pupil_list is None else pupil_list
    store.upsert_pupils(pupil_list)
    store.upsert_marks(marks(pupil_list) if mark_list is None else mark_list, school_id)
    return store


def make_request(
    store: Store,
    *,
    as_of: date,
    day: date | None = None,
    term: str | None = None,
    allow_incomplete: bool = False,
    options: dict[str, Any] | None = None,
    school_settings: Any = None,
) -> ExportRequest:
    return ExportRequest(
        school=school_settings or settings().school(SCHOOL_ID),
        store=store,
        as_of=as_of,
        generated_at=GENERATED_AT,
        day=day,
        term=term,
        allow_incomplete=allow_incomplete,
        options=options or {},
    )


def check_golden(name: str, data: bytes) -> None:
    """Compare ``data`` with ``golden/<name>`` byte for byte.

    To regenerate after an intended change: ``REGISTERWATCH_UPDATE_GOLDEN=1 .venv/bin/pytest
    tests/exports/test_export_returns.py``, then review the diff before committing.
    """
    path = GOLDEN / name
    if os.environ.get(UPDATE_GOLDEN_ENV) == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    assert path.is_file(), f"no golden file {path}; run with {UPDATE_GOLDEN_ENV}=1 to create it"
    expected = path.read_bytes()
    assert data == expected, (
        f"{name} differs from its golden file; if the change is intended, "
        f"rerun with {UPDATE_GOLDEN_ENV}=1 and review the diff"
    )


def write_config(path: Path, store_path: Path, schools: list[dict[str, Any]]) -> Path:
    """A TOML config for ``schools`` (tables as ``school_table`` builds them)."""
    return write_toml_config(path, f"sqlite:///{store_path}", schools)


# -- XSD negative cases: mutate a valid document ------------------------------------------------

Mutation = Callable[[etree._Element], None]


def mutated(rendered: RenderedReturn, change: Mutation) -> RenderedReturn:
    """A copy of ``rendered`` whose XML has had ``change`` applied (the CSV is untouched)."""
    root = etree.fromstring(rendered.xml)
    change(root)
    return dataclasses.replace(
        rendered, xml=etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    )


def set_text(path: str, value: str) -> Mutation:
    def change(root: etree._Element) -> None:
        found = root.find(path)
        assert found is not None, path
        found.text = value

    return change


def set_attribute(name: str, value: str) -> Mutation:
    def change(root: etree._Element) -> None:
        root.set(name, value)

    return change


def remove(path: str) -> Mutation:
    def change(root: etree._Element) -> None:
        found = root.find(path)
        assert found is not None, path
        found.getparent().remove(found)

    return change


def duplicate(path: str) -> Mutation:
    """Insert a copy of the element right after it."""

    def change(root: etree._Element) -> None:
        found = root.find(path)
        assert found is not None, path
        found.addnext(copy.deepcopy(found))

    return change


def add_after(path: str, tag: str, text: str | None = None) -> Mutation:
    def change(root: etree._Element) -> None:
        found = root.find(path)
        assert found is not None, path
        element = etree.Element(tag)
        element.text = text
        found.addnext(element)

    return change


def assert_rejected(rendered: RenderedReturn, change: Mutation, *expected: str) -> str:
    """The mutated document fails validation with a message naming every ``expected`` part."""
    validate(rendered)  # the unmutated document is valid: the mutation is what breaks it
    with pytest.raises(ExportValidationError) as raised:
        validate(mutated(rendered, change))
    message = str(raised.value)
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"
    assert "nothing was written" in message
    return message


def enumeration(schema_name: str, type_name: str) -> list[str]:
    """The enumeration values of a named simple type in a shipped XSD, in file order."""
    from importlib import resources

    source = resources.files("registerwatch.exports.schemas").joinpath(schema_name)
    tree = etree.parse(str(source))
    ns = {"xs": "http://www.w3.org/2001/XMLSchema"}
    return list(
        tree.xpath(f"//xs:simpleType[@name='{type_name}']//xs:enumeration/@value", namespaces=ns)
    )


def validate_file(schema_name: str, path: Path) -> None:
    from registerwatch.exports.base import load_schema

    load_schema(schema_name).assertValid(etree.parse(str(path)))
