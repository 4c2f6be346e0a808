"""A return's data items, each either a value or an explicit reason why there is none.

The law asks each return for certain items (a pupil's full name, address, parents...). When the
store holds no value for one, the return says so instead of leaving it out: the item becomes a
:class:`Missing` with a status, rendered in XML as an empty, nil element
(``<DOB xsi:nil="true" status="not-held"/>``) and in CSV as ``[not-held]``. Statuses:

- ``not-held``: the store has no value (the MIS did not give one, or the schema has none).
- ``invalid``: the store has a value that is not a valid one for the item (a UPN failing its
  check letter, an NC year that is not one); the value is withheld so the artefact still
  validates, and the matching rule (UPN001...) or the MIS record says what to fix.
- ``not-known``: the school does not know it; used for the cause of absence, which the law asks
  for only "if known".

Items that are optional by nature (middle names, preferred names, a parent's relationship) are
simply absent when the pupil has none: the schema cannot tell "none" from "not recorded" there,
and neither is a statutory item.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from registerwatch.schema import Address, Contact, Pupil
from registerwatch.upn import check_upn, normalise_upn


@dataclass(frozen=True)
class Missing:
    status: str

    def __str__(self) -> str:
        return f"[{self.status}]"


NOT_HELD: Final = Missing("not-held")
INVALID: Final = Missing("invalid")
NOT_KNOWN: Final = Missing("not-known")

Item = str | Missing

# National Curriculum years as the census spells them: N1, N2, R, 1-14.
_NC_YEAR = re.compile(r"^(N1|N2|R|[1-9]|1[0-4])$")


def text(value: str | None) -> Item:
    """Free text: the value, or not-held when empty."""
    if value is None or not value.strip():
        return NOT_HELD
    return value.strip()


def optional(value: str | None) -> str | None:
    return value.strip() if value is not None and value.strip() else None


def upn(value: str | None) -> Item:
    if value is None or not value.strip():
        return NOT_HELD
    return normalise_upn(value) if check_upn(value).valid else INVALID


def sex(value: str | None) -> Item:
    return value if value in ("M", "F", "U") else NOT_HELD


def nc_year(value: str | None) -> Item:
    if value is None or not value.strip():
        return NOT_HELD
    normalised = value.strip().upper()
    return normalised if _NC_YEAR.match(normalised) else INVALID


@dataclass(frozen=True)
class AddressItem:
    lines: tuple[str, ...]
    town: str | None
    postcode: str | None

    def __str__(self) -> str:
        return ", ".join([*self.lines, *(p for p in (self.town, self.postcode) if p)])


def address(value: Address | None) -> AddressItem | Missing:
    """An address with at least one part, or not-held (none, or every part empty)."""
    if value is None:
        return NOT_HELD
    lines = tuple(line.strip() for line in value.lines if line and line.strip())
    town, postcode = optional(value.town), optional(value.postcode)
    if not lines and town is None and postcode is None:
        return NOT_HELD
    return AddressItem(lines=lines, town=town, postcode=postcode)


@dataclass(frozen=True)
class PupilItems:
    """The identity and home of a pupil, as every LA return gives them."""

    upn: Item
    legal_surname: Item
    legal_forename: Item
    middle_names: str | None
    preferred_surname: str | None
    preferred_forename: str | None
    sex: Item
    dob: Item
    nc_year: Item
    address: AddressItem | Missing


def pupil_items(pupil: Pupil | None) -> PupilItems:
    """Every item not-held when the pupil is not in the store (the finding still names them)."""
    if pupil is None:
        return PupilItems(
            upn=NOT_HELD,
            legal_surname=NOT_HELD,
            legal_forename=NOT_HELD,
            middle_names=None,
            preferred_surname=None,
            preferred_forename=None,
            sex=NOT_HELD,
            dob=NOT_HELD,
            nc_year=NOT_HELD,
            address=NOT_HELD,
        )
    return PupilItems(
        upn=upn(pupil.upn),
        legal_surname=text(pupil.legal_surname),
        legal_forename=text(pupil.legal_forename),
        middle_names=optional(pupil.middle_names),
        preferred_surname=optional(pupil.preferred_surname),
        preferred_forename=optional(pupil.preferred_forename),
        sex=sex(pupil.sex),
        dob=pupil.dob.isoformat() if pupil.dob is not None else NOT_HELD,
        nc_year=nc_year(pupil.nc_year),
        address=address(pupil.address),
    )


@dataclass(frozen=True)
class ParentItems:
    name: Item
    relationship: str | None
    address: AddressItem | Missing
    phone: Item
    lives_with: bool


def _contact_order(contact: Contact) -> tuple[int, str]:
    return (contact.priority, contact.name)


def parent_items(pupil: Pupil | None, *, lived_with_only: bool) -> list[ParentItems] | Missing:
    """The pupil's parents (the schema's contacts) by priority then name; with
    ``lived_with_only`` only those the pupil normally lives with (reg 13(4)(c)). Not-held when
    there are none (no contacts, or none marked as lived with)."""
    if pupil is None:
        return NOT_HELD
    contacts = [
        c for c in sorted(pupil.contacts, key=_contact_order) if c.lives_with or not lived_with_only
    ]
    if not contacts:
        return NOT_HELD
    return [
        ParentItems(
            name=text(c.name),
            relationship=optional(c.relationship),
            address=address(c.address),
            phone=text(c.phone),
            lives_with=c.lives_with,
        )
        for c in contacts
    ]
