"""Reading a CTF pupil: identity, details, address, contacts, SEN and FSM.

Record refs and quarantine reasons name a pupil by its position in the file, never by UPN or
name, and carry no pupil values, because both may be logged.
"""

from __future__ import annotations

from datetime import date

from lxml import etree
from pydantic import ValidationError

from registerwatch.adapters.base import Quarantined
from registerwatch.adapters.ctf.attendance import read_attendance
from registerwatch.adapters.ctf.document import (
    FALSE_VALUES,
    SEN_PROVISION_EHCP,
    SEN_PROVISION_SUPPORT,
    SEX_ELEMENTS,
    SEX_VALUES,
    TRUE_VALUES,
    CtfDocument,
    SexCode,
    child_text,
    children,
)
from registerwatch.errors import InvalidRecord
from registerwatch.schema import Address, Contact, Pupil
from registerwatch.upn import check_upn


def derive_mis_id(upn: str | None, application_reference: str | None) -> str | None:
    """The pupil's stable key within the school, or None when the file gives none.

    1. a UPN that passes the DfE check: the UPN, upper-cased (it is meant to last the pupil's
       whole school career);
    2. else ``appref:<ApplicationReference>``;
    3. else ``upn-unchecked:<UPN>`` for a UPN that fails the check: kept, not quarantined, so
       the invalid-upn rule (UPN001) can report it; a corrected UPN starts a new key.
    The prefixes keep the three kinds apart: a valid UPN never contains a colon.
    """
    if upn and check_upn(upn).valid:
        return upn.strip().upper()
    if application_reference:
        return f"appref:{application_reference}"
    if upn:
        return f"upn-unchecked:{upn.strip().upper()}"
    return None


def read_pupil(
    element: etree._Element,
    index: int,
    document: CtfDocument,
    *,
    school_id: str,
    target_laestab: str | None,
    as_of: date | None,
    seen: dict[str, int],
) -> None:
    record_ref = f"{document.name}#pupil[{index}]"
    upn = child_text(element, "UPN")
    mis_id = derive_mis_id(upn, child_text(element, "ApplicationReference"))
    if mis_id is None:
        reason = "has no UPN and no ApplicationReference, so it cannot be keyed"
        document.pupils.quarantined.append(Quarantined("pupils", record_ref, "UPN", reason))
        if element.find("Attendance") is not None:
            document.marks.quarantined.append(
                Quarantined(
                    "marks", record_ref, "UPN", f"pupil {reason}: its attendance was set aside"
                )
            )
        return
    if mis_id in seen:
        reason = (
            f"has the same UPN or ApplicationReference as pupil {seen[mis_id]} in this "
            "file (census rule 1520): set aside with its attendance; correct it in the MIS"
        )
        document.pupils.quarantined.append(Quarantined("pupils", record_ref, "UPN", reason))
        if element.find("Attendance") is not None:
            document.marks.quarantined.append(Quarantined("marks", record_ref, "UPN", reason))
        return
    seen[mis_id] = index
    pupil_id = f"{school_id}:{mis_id}"
    try:
        document.pupils.records.append(
            _pupil(element, upn, pupil_id, mis_id, school_id, record_ref, as_of)
        )
    except InvalidRecord as error:
        document.pupils.quarantined.append(Quarantined.from_error(error))
    # A pupil set aside for a bad detail still has a sound key, so its marks are kept: the
    # register is the legal record, and the pupil arrives once the MIS data is fixed.
    read_attendance(
        element.find("Attendance"),
        document,
        pupil_id=pupil_id,
        record_ref=record_ref,
        target_laestab=target_laestab,
    )


def _invalid(reason: str, record_ref: str, field_name: str) -> InvalidRecord:
    return InvalidRecord(reason, record_ref=record_ref, field=field_name, resource="pupils")


def _detail(element: etree._Element, *names: str) -> str | None:
    """A pupil item written directly under <Pupil> (CTF 25) or under <BasicDetails> (Follett)."""
    value = child_text(element, *names)
    return value if value is not None else child_text(element.find("BasicDetails"), *names)


def _pupil(
    element: etree._Element,
    upn: str | None,
    pupil_id: str,
    mis_id: str,
    school_id: str,
    record_ref: str,
    as_of: date | None,
) -> Pupil:
    address = _address(element.find("Address"))
    try:
        return Pupil(
            id=pupil_id,
            school_id=school_id,
            mis_id=mis_id,
            upn=upn,
            former_upn=_detail(element, "FormerUPN"),
            legal_forename=_detail(element, "Forename"),
            legal_surname=_detail(element, "Surname"),
            middle_names=_detail(element, "MiddleNames"),
            preferred_forename=_detail(element, "PreferredForename"),
            preferred_surname=_detail(element, "PreferredSurname"),
            dob=_date(_detail(element, "DOB"), record_ref, "DOB"),
            sex=_sex(element, record_ref),
            nc_year=_detail(element, "NCyearActual"),
            address=address,
            contacts=_contacts(element.find("Contacts"), address, record_ref),
            **_sen(element.find("SENhistory"), record_ref),
            fsm=_fsm(element.find("FSMhistory"), record_ref, as_of),
            looked_after=_flag(
                child_text(element.find("LookedAfter"), "InCare"), record_ref, "LookedAfter/InCare"
            ),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        # The message, never the input: the input may be a name or a date of birth.
        raise _invalid(
            first["msg"], record_ref, ".".join(str(p) for p in first["loc"]) or "Pupil"
        ) from None


def _date(value: str | None, record_ref: str, field_name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        # No value in the reason: a date of birth is personal data.
        raise _invalid("is not a date in yyyy-mm-dd form", record_ref, field_name) from None


def _flag(value: str | None, record_ref: str, field_name: str) -> bool:
    if value is None:
        return False
    lowered = value.lower()
    if lowered in TRUE_VALUES:
        return True
    if lowered in FALSE_VALUES:
        return False
    raise _invalid(f"{value!r} is not true or false", record_ref, field_name)


def _sex(element: etree._Element, record_ref: str) -> SexCode | None:
    written = {name: _detail(element, name) for name in SEX_ELEMENTS}
    values: set[SexCode] = set()
    for name, value in written.items():
        if value is None:
            continue
        mapped = SEX_VALUES.get(value.upper())
        if mapped is None:
            # No value in the reason: quarantine reasons may be logged.
            raise _invalid("is not one of M, F or U", record_ref, name)
        values.add(mapped)
    if len(values) > 1:
        raise _invalid(f"{' and '.join(SEX_ELEMENTS)} disagree", record_ref, SEX_ELEMENTS[0])
    return values.pop() if values else None


def _address(element: etree._Element | None) -> Address | None:
    """A BS7666 address (SAON, PAON, Street, Locality, Town, PostTown) or AddressLines1-5.

    INFERRED element names (CTF specification, from memory; the reference lists only
    ``Address``): check against CTF 25.
    """
    if element is None:
        return None
    lines: list[str] = []
    town: str | None = None
    bs7666 = element.find("BS7666Address")
    if bs7666 is not None:
        building = " ".join(
            p for p in (child_text(bs7666, "PAON"), child_text(bs7666, "Street")) if p
        )
        lines += [
            p for p in (child_text(bs7666, "SAON"), building, child_text(bs7666, "Locality")) if p
        ]
        post_town, place = child_text(bs7666, "PostTown"), child_text(bs7666, "Town")
        town = post_town or place
        if post_town and place and place != post_town:
            lines.append(place)
    address_lines = element.find("AddressLines")
    if address_lines is not None:
        lines += [
            line
            for i in range(1, 6)
            if (line := child_text(address_lines, f"AddressLine{i}")) is not None
        ]
    postcode = child_text(element, "PostCode")
    if not lines and town is None and postcode is None:
        return None
    return Address(lines=lines, town=town, postcode=postcode)


def _contacts(
    element: etree._Element | None, pupil_address: Address | None, record_ref: str
) -> list[Contact]:
    """``<Contacts><Contact>``: INFERRED children (Order, Title, Forename, Surname,
    Relationship, AddressAsPupil, Address, Phones/Phone/PhoneNo); see the module docs.

    ``lives_with`` is INFERRED from ``AddressAsPupil``: the CTF has no "lives with" item, and a
    contact at the pupil's address is the parent the pupil normally lives with for reg 8.
    """
    contacts: list[tuple[int, Contact]] = []
    for position, contact in enumerate(children(element, "Contact"), start=1):
        where = f"Contacts/Contact[{position}]"
        name = " ".join(
            p
            for p in (
                child_text(contact, "Title"),
                child_text(contact, "Forename"),
                child_text(contact, "Surname"),
            )
            if p
        )
        if not name:
            raise _invalid("contact has no name", record_ref, f"{where}/Surname")
        order_text = child_text(contact, "Order")
        if order_text is None:
            order = position
        elif order_text.isdigit():
            order = int(order_text)
        else:
            raise _invalid(f"{order_text!r} is not a whole number", record_ref, f"{where}/Order")
        at_pupil_address = _flag(
            child_text(contact, "AddressAsPupil"), record_ref, f"{where}/AddressAsPupil"
        )
        phones = [
            phone
            for p in children(contact, "Phones/Phone")
            if (phone := child_text(p, "PhoneNo")) is not None
        ]
        contacts.append(
            (
                order,
                Contact(
                    name=name,
                    relationship=child_text(contact, "Relationship"),
                    address=pupil_address
                    if at_pupil_address
                    else _address(contact.find("Address")),
                    phone=phones[0] if phones else None,
                    lives_with=at_pupil_address,
                    priority=order,
                ),
            )
        )
    return [c for _, c in sorted(contacts, key=lambda pair: pair[0])]


def _sen(element: etree._Element | None, record_ref: str) -> dict[str, bool]:
    """ehcp / sen_support from the SEN entry with the latest StartDate (the current one)."""
    latest: tuple[date, int, str] | None = None
    for position, sen in enumerate(children(element, "SEN"), start=1):
        provision = child_text(sen, "SENprovision")
        if provision is None:
            continue
        start = (
            _date(child_text(sen, "StartDate"), record_ref, f"SENhistory/SEN[{position}]/StartDate")
            or date.min
        )
        candidate = (start, position, provision.upper())
        if latest is None or candidate[:2] > latest[:2]:
            latest = candidate
    provision = latest[2] if latest else None
    return {
        "ehcp": provision in SEN_PROVISION_EHCP,
        "sen_support": provision in SEN_PROVISION_SUPPORT,
    }


def _fsm(element: etree._Element | None, record_ref: str, as_of: date | None) -> bool:
    """Eligible for free school meals on the file's date.

    INFERRED: an FSMinstance covers the file's DateTime (started on or before it, not ended
    before it); a file without a DateTime counts only open-ended instances.
    """
    for position, instance in enumerate(children(element, "FSMinstance"), start=1):
        where = f"FSMhistory/FSMinstance[{position}]"
        start = _date(child_text(instance, "FSMstartDate"), record_ref, f"{where}/FSMstartDate")
        end = _date(child_text(instance, "FSMendDate"), record_ref, f"{where}/FSMendDate")
        if as_of is None:
            if end is None:
                return True
            continue
        if (start is None or start <= as_of) and (end is None or end >= as_of):
            return True
    return False
