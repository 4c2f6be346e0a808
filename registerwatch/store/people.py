"""Schools, their calendars as the MIS sync last wrote them, and pupils."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from registerwatch.schema import Address, Calendar, Contact, Pupil, School
from registerwatch.schema.construct import trusted_constructor
from registerwatch.store import tables as t
from registerwatch.store.base import StoreBase, upsert

_PUPIL_FIELDS = tuple(Pupil.model_fields)
_PUPIL_JSON_FIELDS = ("address", "future_address", "contacts")
_PUPIL_PLAIN_FIELDS = tuple(name for name in _PUPIL_FIELDS if name not in _PUPIL_JSON_FIELDS)

# Pupils as stored rows become models without validation, as registers do (store.registers):
# sync validated them on the way in, and a nightly scan reads every pupil of the school.
_PROBE_ADDRESS = {"lines": ["1 High Street"], "town": "Springfield", "postcode": "CM1 4RN"}
_stored_address = trusted_constructor(Address, _PROBE_ADDRESS)
_stored_contact = trusted_constructor(
    Contact,
    {
        "name": "A Parent",
        "relationship": "Mother",
        "address": Address(**_PROBE_ADDRESS),
        "phone": "07700 900000",
        "lives_with": True,
        "priority": 1,
    },
)
_stored_pupil = trusted_constructor(
    Pupil,
    {
        "id": "probe:1",
        "school_id": "probe",
        "mis_id": "1",
        "upn": "A123456789012",
        "former_upn": None,
        "legal_forename": "A",
        "legal_surname": "B",
        "middle_names": None,
        "preferred_forename": None,
        "preferred_surname": None,
        "dob": date(2014, 1, 1),
        "sex": "F",
        "nc_year": "7",
        "reg_group": "7A",
        "starting_day": date(2025, 9, 3),
        "leaving_date": None,
        "deletion_ground": None,
        "future_address": None,
        "new_school": None,
        "address": Address(**_PROBE_ADDRESS),
        "contacts": [],
        "ehcp": False,
        "sen_support": False,
        "fsm": False,
        "looked_after": False,
        "has_social_worker": False,
        "boarder": False,
    },
)
_ADDRESS_KEYS = frozenset(Address.model_fields)
_CONTACT_KEYS = frozenset(Contact.model_fields)


def _address(data: Any) -> Address | None:
    if data is None:
        return None
    # a row written before a field was added (or by hand) is validated after all
    return _stored_address(data) if data.keys() == _ADDRESS_KEYS else Address.model_validate(data)


def _contact(data: Any) -> Contact:
    if data.keys() != _CONTACT_KEYS:
        return Contact.model_validate(data)
    return _stored_contact(data | {"address": _address(data["address"])})


def _stored_pupil_of(row: sa.Row[Any], *, details: bool = True) -> Pupil:
    """A pupil from its row: the plain columns, then the JSON ones as text (one decode).
    ``details`` False: without addresses and contacts, which no rule reads."""
    values = dict(zip(_PUPIL_PLAIN_FIELDS, row, strict=False))
    if not details:
        values.update(address=None, future_address=None, contacts=[])
        return _stored_pupil({name: values[name] for name in _PUPIL_FIELDS})
    texts = row[len(_PUPIL_PLAIN_FIELDS) :]
    address, future, contacts = json.loads("[" + ",".join(text or "null" for text in texts) + "]")
    values["address"] = _address(address)
    values["future_address"] = _address(future)
    values["contacts"] = [_contact(c) for c in contacts or ()]
    return _stored_pupil({name: values[name] for name in _PUPIL_FIELDS})


def row_digest(row: sa.Row[Any]) -> str:
    """A digest of a stored row (any change of any column changes it)."""
    return hashlib.sha256(repr(tuple(row)).encode("utf-8")).hexdigest()[:20]


def _school(row: sa.Row[Any]) -> School:
    data = dict(row._mapping)
    data.pop("updated_at")
    return School.model_validate(data)


class PeopleStore(StoreBase):
    # -- schools and calendars -----------------------------------------------------------------

    def upsert_school(
        self, school: School, *, at: datetime | None = None, conn: sa.Connection | None = None
    ) -> None:
        row = school.model_dump(mode="json") | {"updated_at": self._at(at)}
        with self._write(conn) as c:
            upsert(c, t.schools, [row], keys=["id"], update=[k for k in row if k != "id"])

    def school(self, school_id: str, *, conn: sa.Connection | None = None) -> School | None:
        with self._read(conn) as c:
            row = c.execute(sa.select(t.schools).where(t.schools.c.id == school_id)).first()
        return None if row is None else _school(row)

    def schools(self, *, conn: sa.Connection | None = None) -> list[School]:
        with self._read(conn) as c:
            rows = c.execute(sa.select(t.schools).order_by(t.schools.c.id)).all()
        return [_school(row) for row in rows]

    def upsert_calendar(
        self,
        calendar: Calendar,
        *,
        at: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> None:
        row = calendar.model_dump(mode="json") | {"updated_at": self._at(at)}
        with self._write(conn) as c:
            upsert(
                c,
                t.calendars,
                [row],
                keys=["school_id"],
                update=["terms", "closures", "register_times", "updated_at"],
            )

    def calendar(self, school_id: str, *, conn: sa.Connection | None = None) -> Calendar | None:
        with self._read(conn) as c:
            row = c.execute(
                sa.select(t.calendars).where(t.calendars.c.school_id == school_id)
            ).first()
        if row is None:
            return None
        data = dict(row._mapping)
        data.pop("updated_at")
        return Calendar.model_validate(data)

    # -- pupils --------------------------------------------------------------------------------

    def upsert_pupils(
        self,
        pupils: Iterable[Pupil],
        *,
        at: datetime | None = None,
        conn: sa.Connection | None = None,
    ) -> int:
        """Insert or update pupils by id; returns how many were written."""
        now = self._at(at)
        rows: dict[str, dict[str, Any]] = {}
        for pupil in pupils:
            row = pupil.model_dump(mode="python", exclude=set(_PUPIL_JSON_FIELDS))
            row |= pupil.model_dump(mode="json", include=set(_PUPIL_JSON_FIELDS))
            rows[pupil.id] = row | {"first_seen_at": now, "updated_at": now}
        update = [name for name in _PUPIL_FIELDS if name != "id"] + ["updated_at"]
        with self._write(conn) as c:
            upsert(c, t.pupils, list(rows.values()), keys=["id"], update=update)
        return len(rows)

    def pupils(self, school_id: str, *, conn: sa.Connection | None = None) -> list[Pupil]:
        return [pupil for pupil, _ in self.pupils_digested(school_id, conn=conn)]

    def pupils_digested(
        self, school_id: str, *, details: bool = True, conn: sa.Connection | None = None
    ) -> list[tuple[Pupil, str]]:
        """The school's pupils (by id), each with a digest of its stored row: what a nightly
        scan compares with the last scan's to find the pupils whose record changed.

        ``details`` False: the pupils without their addresses and contacts (the scan's read:
        no rule reads them, and parsing them was a tenth of a nightly scan's read). The digest
        still covers every column."""
        p = t.pupils
        columns = [
            *(p.c[name] for name in _PUPIL_PLAIN_FIELDS),
            # as text: one JSON decode per pupil here, and the digest of the text as stored
            *(sa.cast(p.c[name], sa.Text) for name in _PUPIL_JSON_FIELDS),
        ]
        query = sa.select(*columns).where(p.c.school_id == school_id).order_by(p.c.id)
        with self._read(conn) as c:
            rows = c.execute(query).all()
        return [(_stored_pupil_of(row, details=details), row_digest(row)) for row in rows]
