"""The people of a synthetic school: pupils (names, birthdays, UPNs, addresses, contacts) and staff.

Everything is drawn from the ``random.Random`` passed in, so one seed gives one school. Phone
numbers are from Ofcom's ranges reserved for drama (07700 900000-900999, 01632 960000-960999),
so no generated number can reach a real person.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import NamedTuple

from registerwatch.schema import Address, Contact, Pupil
from registerwatch.simulator.generate_names import (
    FORENAMES_F,
    FORENAMES_M,
    INWARD_LETTERS,
    MIDDLE_NAMES,
    PREFERRED_FORENAMES,
    STREET_SUFFIXES,
    STREETS,
    SURNAMES,
    TITLES_F,
    TITLES_M,
    TOWNS,
)
from registerwatch.upn import make_temporary_upn, make_upn

# Real LA numbers (GIAS): Essex 881 is the school's; Southend 882 and Thurrock 883 issue the
# UPNs of pupils who moved in from next door.
HOME_LA = "881"
NEIGHBOUR_LAS = ("882", "883")

PHASE_YEARS = {
    "primary": ("R", "1", "2", "3", "4", "5", "6"),
    # An 11-18 school: sixth-formers are past compulsory school age, which is where X belongs.
    "secondary": ("7", "8", "9", "10", "11", "12", "13"),
}
# Relative cohort sizes: the sixth form is much smaller than the main school.
YEAR_WEIGHT = {"12": 0.35, "13": 0.3}
GROUP_SIZE = {"primary": 30, "secondary": 28}


def year_number(nc_year: str) -> int:
    return 0 if nc_year == "R" else int(nc_year)


def birth_window(nc_year: str, school_year: int) -> tuple[date, date]:
    """Birthdays of a National Curriculum year: 1 September to 31 August (Reception in 2025/26:
    born 2020-09-01..2021-08-31)."""
    first = school_year - 5 - year_number(nc_year)
    return date(first, 9, 1), date(first + 1, 8, 31)


class Entry(NamedTuple):
    """A planned register entry that differs from plain presence (see generate_marks)."""

    code: str
    minutes_late: int | None = None
    recorded_at: datetime | None = None  # None: when the register was saved
    recorded_by: str | None = None  # None: whoever took the register
    comment: str | None = None


@dataclass
class StaffMember:
    name: str
    position: str


@dataclass
class PupilDraft:
    """A pupil while the school is being built; ``to_pupil`` turns it into the schema model."""

    mis_id: str
    id: str
    nc_year: str
    reg_group: str
    dob: date
    sex: str
    legal_forename: str
    legal_surname: str
    middle_names: str | None
    preferred_forename: str | None
    upn: str
    former_upn: str | None
    address: Address
    contacts: list[Contact]
    starting_day: date
    leaving_date: date | None = None
    deletion_ground: str | None = None
    new_school: str | None = None
    future_address: Address | None = None
    ehcp: bool = False
    sen_support: bool = False
    fsm: bool = False
    looked_after: bool = False
    has_social_worker: bool = False
    # the breach the pupil carries (None: a clean pupil)
    role: str | None = None
    # session index (see generate_marks.SessionGrid) -> the entry, where it is not plain presence
    entries: dict[int, Entry] = field(default_factory=dict)


class UpnIssuer:
    """Issues unique permanent UPNs: one serial counter per (LA, establishment, issue year)."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._next: dict[tuple[str, str, int], int] = {}

    def issue(self, la: str, estab: str, year: int) -> str:
        key = (la, estab, year % 100)
        serial = self._next.get(key)
        if serial is None:
            serial = self._rng.randrange(1, 300)
        if serial > 999:
            raise ValueError(f"more than 999 UPNs for {key}")
        self._next[key] = serial + 1
        return make_upn(la, estab, year, serial)


class People:
    """Names, addresses, contacts and staff, all drawn from one seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._phones = rng.sample(range(1000), 1000)
        self._landlines = rng.sample(range(1000), 1000)

    def mobile(self) -> str:
        n = self._phones.pop() if self._phones else self.rng.randrange(1000)
        return f"07700 900{n:03d}"

    def landline(self) -> str:
        n = self._landlines.pop() if self._landlines else self.rng.randrange(1000)
        return f"01632 960{n:03d}"

    def address(self) -> Address:
        rng = self.rng
        town, districts = rng.choice(TOWNS)
        street = f"{rng.choice(STREETS)} {rng.choice(STREET_SUFFIXES)}"
        lines = [f"{rng.randrange(1, 180)} {street}"]
        if rng.random() < 0.12:
            lines.insert(0, f"Flat {rng.randrange(1, 24)}")
        postcode = (
            f"{rng.choice(districts)} {rng.randrange(1, 10)}"
            f"{rng.choice(INWARD_LETTERS)}{rng.choice(INWARD_LETTERS)}"
        )
        return Address(lines=lines, town=town, postcode=postcode)

    def forename(self, sex: str) -> str:
        return self.rng.choice(FORENAMES_F if sex == "F" else FORENAMES_M)

    def staff(self, count: int, position: str) -> list[StaffMember]:
        rng = self.rng
        out: list[StaffMember] = []
        seen: set[str] = set()
        while len(out) < count:
            sex = rng.choice("FM")
            title = rng.choice(TITLES_F if sex == "F" else TITLES_M)
            name = f"{title} {self.forename(sex)[0]}. {rng.choice(SURNAMES)}"
            if name not in seen:
                seen.add(name)
                out.append(StaffMember(name=name, position=position))
        return out

    def contacts(self, surname: str, home: Address, looked_after: bool) -> list[Contact]:
        """One or two parents or carers; reg 8 asks which one the pupil normally lives with."""
        rng = self.rng
        if looked_after:
            carer_surname = rng.choice(SURNAMES)
            return [
                Contact(
                    name=f"{self.forename(rng.choice('FM'))} {carer_surname}",
                    relationship="Foster carer",
                    address=home,
                    phone=self.mobile(),
                    lives_with=True,
                    priority=1,
                ),
                Contact(
                    name=f"{self.forename(rng.choice('FM'))} {rng.choice(SURNAMES)}",
                    relationship="Local authority social worker",
                    phone=self.landline(),
                    lives_with=False,
                    priority=2,
                ),
            ]
        first = rng.choice(("Mother", "Mother", "Mother", "Father", "Grandmother"))
        first_sex = "M" if first == "Father" else "F"
        contacts = [
            Contact(
                name=f"{self.forename(first_sex)} {surname}",
                relationship=first,
                address=home,
                phone=self.mobile(),
                lives_with=True,
                priority=1,
            )
        ]
        if rng.random() < 0.75:
            second = "Father" if first != "Father" else "Mother"
            if rng.random() < 0.1:
                second = "Stepfather" if second == "Father" else "Stepmother"
            separated = rng.random() < 0.3
            other_surname = rng.choice(SURNAMES) if separated and rng.random() < 0.5 else surname
            contacts.append(
                Contact(
                    name=f"{self.forename('M' if second in ('Father', 'Stepfather') else 'F')} "
                    f"{other_surname}",
                    relationship=second,
                    address=self.address() if separated else home,
                    phone=self.mobile(),
                    lives_with=not separated,
                    priority=2,
                )
            )
        return contacts


def random_dob(rng: random.Random, nc_year: str, school_year: int) -> date:
    first, last = birth_window(nc_year, school_year)
    return first + timedelta(days=rng.randrange((last - first).days + 1))


def mis_ids(rng: random.Random, vendor: str | None, count: int) -> list[str]:
    """Record ids shaped like each MIS's, in no particular order (MIS ids do not follow forms)."""
    numbers = rng.sample(range(1, count * 3 + 100), count)
    if vendor == "arbor":
        return [str(4000 + n) for n in numbers]
    if vendor == "isams":
        return [f"{880000 + n * 7}" for n in numbers]
    if vendor == "go4schools":
        return [f"{2_100_000 + n}" for n in numbers]
    return [f"P{n:05d}" for n in numbers]


GROUP_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I: it reads as 1 on a register printout
MOVER_SHARE = 0.08  # joined after their year's normal start, in an earlier school year
FORMER_UPN_SHARE = 0.02


def _apportion(total: int, weights: list[float]) -> list[int]:
    """Split ``total`` by ``weights`` (largest remainder), so the sizes add up exactly."""
    raw = [total * w / sum(weights) for w in weights]
    sizes = [int(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda k: (sizes[k] - raw[k], k))
    for k in order[: total - sum(sizes)]:
        sizes[k] += 1
    return sizes


def build_roster(
    rng: random.Random,
    people: People,
    *,
    phase: str,
    year: int,
    count: int,
    school_id: str,
    vendor: str | None,
    la: str,
    estab: str,
    first_day: date,
    entry_day: Callable[[int], date],
) -> tuple[list[PupilDraft], dict[str, StaffMember]]:
    """Every pupil record (before leavers, admissions and breaches are chosen), and one form
    tutor per registration group.

    ``entry_day(y)`` is the first day of the school year starting in ``y``: the starting day of
    a pupil who joined the school's most junior year then.
    """
    years = PHASE_YEARS[phase]
    sizes = _apportion(count, [YEAR_WEIGHT.get(y, 1.0) for y in years])
    ids = mis_ids(rng, vendor, count)
    issuer = UpnIssuer(rng)
    junior = year_number(years[0])
    # Secondary pupils got their UPNs at their primary schools (in Reception).
    feeders = [f"{n}" for n in rng.sample(range(2000, 3000), 6)]
    elsewhere = [(rng.choice(NEIGHBOUR_LAS), f"{n}") for n in rng.sample(range(2000, 3000), 4)]
    tutors: dict[str, StaffMember] = {}
    drafts: list[PupilDraft] = []
    position = "Class teacher" if phase == "primary" else "Form tutor"
    for nc_year, size in zip(years, sizes, strict=True):
        n_groups = max(1, -(-size // GROUP_SIZE[phase]))
        names = [f"{nc_year}{GROUP_LETTERS[k]}" for k in range(n_groups)]
        for name, tutor in zip(names, people.staff(n_groups, position), strict=True):
            tutors[name] = tutor
        reception_year = year - year_number(nc_year)  # the autumn the pupil's UPN was issued
        joined_year = year - (year_number(nc_year) - junior)
        for k in range(size):
            index = len(drafts)
            sex = rng.choice("FM")
            forename = people.forename(sex)
            surname = rng.choice(SURNAMES)
            mover = joined_year < year and rng.random() < MOVER_SHARE
            if mover:
                upn_la, upn_estab = rng.choice(elsewhere)
                earliest = entry_day(joined_year) + timedelta(days=30)
                latest = date(year, 7, 15)
                starting = earliest + timedelta(days=rng.randrange((latest - earliest).days))
                while starting.weekday() > 4:
                    starting += timedelta(days=1)
            else:
                upn_la, upn_estab = (
                    (la, estab) if phase == "primary" else (HOME_LA, rng.choice(feeders))
                )
                starting = first_day if joined_year == year else entry_day(joined_year)
            former = None
            if rng.random() < FORMER_UPN_SHARE:
                other_la, other_estab = rng.choice(elsewhere)
                former = make_temporary_upn(
                    other_la, other_estab, reception_year, rng.randrange(100)
                )
            ehcp = rng.random() < 0.03
            looked_after = rng.random() < 0.01
            home = people.address()
            preferred = PREFERRED_FORENAMES.get(forename) if rng.random() < 0.5 else None
            drafts.append(
                PupilDraft(
                    mis_id=ids[index],
                    id=f"{school_id}:{ids[index]}",
                    nc_year=nc_year,
                    reg_group=names[k % n_groups],
                    dob=random_dob(rng, nc_year, year),
                    sex=sex,
                    legal_forename=forename,
                    legal_surname=surname,
                    middle_names=rng.choice(MIDDLE_NAMES) if rng.random() < 0.3 else None,
                    preferred_forename=preferred,
                    upn=issuer.issue(upn_la, upn_estab, reception_year),
                    former_upn=former,
                    address=home,
                    contacts=people.contacts(surname, home, looked_after),
                    starting_day=starting,
                    ehcp=ehcp,
                    sen_support=not ehcp and rng.random() < 0.12,
                    fsm=rng.random() < 0.2,
                    looked_after=looked_after,
                    has_social_worker=looked_after or rng.random() < 0.03,
                )
            )
    return drafts, tutors


def to_pupil(draft: PupilDraft, school_id: str) -> Pupil:
    return Pupil(
        id=draft.id,
        school_id=school_id,
        mis_id=draft.mis_id,
        upn=draft.upn,
        former_upn=draft.former_upn,
        legal_forename=draft.legal_forename,
        legal_surname=draft.legal_surname,
        middle_names=draft.middle_names,
        preferred_forename=draft.preferred_forename,
        dob=draft.dob,
        sex=draft.sex,
        nc_year=draft.nc_year,
        reg_group=draft.reg_group,
        starting_day=draft.starting_day,
        leaving_date=draft.leaving_date,
        deletion_ground=draft.deletion_ground,
        future_address=draft.future_address,
        new_school=draft.new_school,
        address=draft.address,
        contacts=draft.contacts,
        ehcp=draft.ehcp,
        sen_support=draft.sen_support,
        fsm=draft.fsm,
        looked_after=draft.looked_after,
        has_social_worker=draft.has_social_worker,
    )
