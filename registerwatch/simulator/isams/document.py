"""A generated school as the iSAMS Batch ``<iSAMS>`` document: pupils, present codes,
RegistrationStatus rows (with the vendor's repeated rows), the amendment audit and terms.
``IsamsApp`` adds the HTTP face."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from lxml import etree

from registerwatch.calendar import LONDON, SchoolCalendar, school_year_of
from registerwatch.errors import CalendarError
from registerwatch.gcpause import collector_paused
from registerwatch.schema import Amendment, Mark, Pupil, Session
from registerwatch.simulator.common import iso_midnight, register_opens
from registerwatch.simulator.isams.protocol import (
    AUDIT,
    PRESENT_CODE_TABLE,
    PRESENT_CODES,
    PRESENT_ID,
    PUPILS,
    REGISTRATION_STATUS,
    TERMS,
    Corruption,
    child,
    local_naive,
    term_name,
    xml_text,
)
from registerwatch.simulator.server import VendorApp


@dataclass
class Row:
    """One RegistrationStatus row before it becomes XML."""

    id: int
    mis_id: str
    when: datetime
    registered: bool
    code: str | None = None
    minutes_late: int | None = None
    comment: str | None = None
    last_updated: datetime | None = None
    truth: tuple[str, date, Session] | None = None
    duplicated: bool = False
    fields: dict[str, str | None] = field(default_factory=dict)


_EMPTY_STATUSES = b"    <RegistrationStatuses/>\n"


def _text(texts: dict[Any, str | None], value: Any) -> str | None:
    """A register time's text (``datetime``), or an instant's as iSAMS writes it
    (``("instant", datetime | None)``), from ``texts`` when it was worked out before."""
    try:
        return texts[value]
    except KeyError:
        pass
    if isinstance(value, tuple):
        text = local_naive(value[1])
    else:
        text = value.isoformat(timespec="seconds")
    texts[value] = text
    return text


class IsamsData(VendorApp):
    """The school rendered as iSAMS records (no HTTP: ``IsamsApp`` serves them)."""

    # Repeat some RegistrationStatus rows as iSAMS does (IsamsApp's constructor can turn it off).
    duplicate_rows = True

    def prepare(self) -> None:
        self.corrupted: list[Corruption] = []
        self._pupil_order: list[str] = []
        self._isams_ids: dict[str, int] = {}
        self._row_ids: dict[tuple[Any, ...], int] = {}
        self._calendar: SchoolCalendar | None = None
        self._calendar_built = False
        # (start, end) -> (marks, pupils, day), (calendar, duplicate_rows), rendered rows
        self._rendered: dict[tuple[date, date], tuple[Any, Any, bytes]] = {}

    def _ordered_pupils(self) -> list[Pupil]:
        by_id = {p.id: p for p in self.school.pupils}
        self._pupil_order = [i for i in self._pupil_order if i in by_id]
        known = set(self._pupil_order)
        self._pupil_order += sorted(
            (i for i in by_id if i not in known), key=lambda i: by_id[i].mis_id
        )
        return [by_id[i] for i in self._pupil_order]

    # -- the <iSAMS> document ---------------------------------------------------------------

    def _document(
        self, methods: Iterable[str], ranges: Mapping[str, tuple[date, date]], *, corrupt: bool
    ) -> bytes:
        root = etree.Element("iSAMS")
        methods = set(methods)
        rows = b""
        if PUPILS in methods:
            self._pupil_manager(etree.SubElement(root, "PupilManager"), corrupt)
        if methods & {PRESENT_CODES, REGISTRATION_STATUS, AUDIT}:
            manager = etree.SubElement(root, "RegistrationManager")
            if PRESENT_CODES in methods:
                codes = etree.SubElement(manager, "PresentCodes")
                for ident, code, name in PRESENT_CODE_TABLE:
                    element = etree.SubElement(codes, "PresentCode", Id=str(ident))
                    child(element, "Code", code)
                    child(element, "Name", name)
            if REGISTRATION_STATUS in methods:
                etree.SubElement(manager, "RegistrationStatuses")
                rows = self._status_rows(*ranges[REGISTRATION_STATUS], corrupt=corrupt)
            if AUDIT in methods:
                self._audits(
                    etree.SubElement(manager, "RegistrationAudits"), *ranges[AUDIT], corrupt=corrupt
                )
        if TERMS in methods:
            self._terms(etree.SubElement(etree.SubElement(root, "SchoolManager"), "Terms"))
        document = etree.tostring(root, encoding="utf-8", pretty_print=True)
        if rows:
            # The rows are rendered as text (see _status_rows), in the place and the exact
            # form lxml gives the section's children.
            document = document.replace(
                _EMPTY_STATUSES,
                b"    <RegistrationStatuses>\n" + rows + b"    </RegistrationStatuses>\n",
                1,
            )
        return document

    def _today(self) -> date:
        return self.school.as_of or datetime.now(LONDON).date()

    def _isams_id(self, pupil: Pupil) -> int:
        return self._isams_ids.setdefault(pupil.id, 700 + len(self._isams_ids))

    def _pupil_manager(self, manager: etree._Element, corrupt: bool) -> None:
        current = etree.SubElement(manager, "CurrentPupils")
        today = self._today()
        on_roll = [
            p for p in self._ordered_pupils() if p.leaving_date is None or p.leaving_date >= today
        ]
        for index, pupil in enumerate(on_roll):
            element = etree.SubElement(
                current,
                "Pupil",
                Id=str(self._isams_id(pupil)),
                PersonGuid=str(uuid.uuid5(uuid.NAMESPACE_URL, f"isams:{pupil.id}")),
            )
            values: list[tuple[str, str | None]] = [
                ("UPN", pupil.upn),
                ("SchoolCode", self.school.school.id.upper()),
                ("SchoolId", pupil.mis_id),
                ("Forename", pupil.legal_forename),
                ("Surname", pupil.legal_surname),
                ("Middlename", pupil.middle_names),
                ("Preferredname", pupil.preferred_forename),
                (
                    "Fullname",
                    " ".join(
                        n
                        for n in (
                            pupil.preferred_forename or pupil.legal_forename,
                            pupil.legal_surname,
                        )
                        if n
                    )
                    or None,
                ),
                ("Gender", pupil.sex),
                ("DOB", iso_midnight(pupil.dob)),
                ("Form", pupil.reg_group),
                ("NCYear", pupil.nc_year),
                ("PupilType", "Boarder" if pupil.boarder else "Day"),
                ("EnrolmentDate", iso_midnight(pupil.starting_day)),
            ]
            if corrupt and index == 0:
                values = [
                    (
                        k,
                        f"{(pupil.dob or date(2012, 1, 1)).year}-02-31T00:00:00"
                        if k == "DOB"
                        else v,
                    )
                    for k, v in values
                ]
                self.corrupted.append(
                    Corruption("CurrentPupils", f"CurrentPupils {pupil.mis_id}", "DOB", pupil.id)
                )
            if corrupt and index == 1:
                values = [(k, v) for k, v in values if k != "SchoolId"]
                self.corrupted.append(
                    Corruption("CurrentPupils", "CurrentPupils (no SchoolId)", "SchoolId", pupil.id)
                )
            for tag, value in values:
                child(element, tag, value)

    def _session_time(self, day: date, session: Session) -> datetime:
        """When the session's register is taken, in local time (what RegistrationDateTime
        carries: no AM/PM flag)."""
        return register_opens(self.school.calendar, day, session)

    def _school_calendar(self) -> SchoolCalendar | None:
        if not self._calendar_built:
            self._calendar_built = True
            try:
                self._calendar = SchoolCalendar(self.school.calendar)
            except CalendarError:
                self._calendar = None  # no terms: no Registered = 0 rows can be placed
        return self._calendar

    def _row_id(self, *key: Any) -> int:
        return self._row_ids.setdefault(key, 55_001 + len(self._row_ids))

    def _status_rows(self, start: date, end: date, *, corrupt: bool) -> bytes:
        """The window's RegistrationStatus elements, as the document's bytes.

        Rendered once per window and reused while the school holds the same marks and pupils
        (compared element by element: marks and pupils are immutable, so the same objects or
        equal ones mean the same rows; a test that edits the lists in place is noticed), on the
        same day: a real MIS answers from indexed tables, not by rebuilding a year per request.
        Row ids are fixed at first sight (``_row_id``), so a reused rendering is what a fresh
        one would be. A corrupted answer (the MALFORMED fault) is never reused.
        """
        state = (list(self.school.marks), list(self.school.pupils), self._today())
        cached = None if corrupt else self._rendered.get((start, end))
        if (
            cached is not None
            and cached[0] == state
            and cached[1] == (self.school.calendar, self.duplicate_rows)
        ):
            return cached[2]
        with collector_paused():  # tens of thousands of rows alive at once, no cycles
            rows = "".join(self._statuses(start, end, corrupt=corrupt)).encode("utf-8")
        if not corrupt:
            if len(self._rendered) >= 16:  # a first sync asks for a dozen windows at most
                self._rendered.clear()
            self._rendered[(start, end)] = (
                state,
                (self.school.calendar, self.duplicate_rows),
                rows,
            )
        return rows

    def _statuses(self, start: date, end: date, *, corrupt: bool) -> Iterator[str]:
        pupils = {p.id: p for p in self.school.pupils}
        mis_of = {pid: p.mis_id for pid, p in pupils.items()}
        rows: list[Row] = []
        marked: set[tuple[str, date, Session]] = set()
        for mark in sorted(
            (m for m in self.school.marks if start <= m.date <= end),
            # The session itself (a str enum) orders as its value does, without the lookup.
            key=lambda m: (m.date, m.session, mis_of.get(m.pupil_id, "")),
        ):
            key = (mark.pupil_id, mark.date, mark.session)
            marked.add(key)
            rows.append(self._mark_row(mark, mis_of))
        # Pupils on roll on a school session with no mark: Registered = 0 ("missing mark").
        calendar = self._school_calendar()
        if calendar is not None:
            last = min(end, self._today())
            for day, session in calendar.school_sessions(start, last) if start <= last else []:
                for pupil in pupils.values():
                    if pupil.on_roll(day) and (pupil.id, day, session) not in marked:
                        rows.append(
                            Row(
                                id=self._row_id(pupil.id, day, session.value),
                                mis_id=pupil.mis_id,
                                when=self._session_time(day, session),
                                registered=False,
                            )
                        )
        rows.sort(key=lambda r: (r.when, r.mis_id))
        if self.duplicate_rows:
            rows = self._with_duplicates(rows)
        if corrupt:
            self._corrupt_rows(rows)
        texts: dict[Any, str | None] = {}  # a time or instant's text, once per distinct value
        for row in rows:
            yield self._status_xml(row, texts)

    def _mark_row(self, mark: Mark, mis_of: Mapping[str, str]) -> Row:
        return Row(
            id=self._row_id(mark.pupil_id, mark.date, mark.session.value),
            mis_id=mis_of.get(mark.pupil_id, mark.pupil_id.split(":", 1)[-1]),
            when=self._session_time(mark.date, mark.session),
            registered=True,
            code=mark.code,
            minutes_late=mark.minutes_late,
            comment=mark.comment,
            last_updated=mark.recorded_at,
            truth=(mark.pupil_id, mark.date, mark.session),
        )

    def _with_duplicates(self, rows: list[Row]) -> list[Row]:
        """iSAMS repeats rows for one pupil and period (ideas MIS-I-3511). Some marks get an
        older superseded row before them (an N later corrected; earlier LastUpdated), some an
        exact repeat after them: the adapter's de-duplication must pick the current one."""
        out: list[Row] = []
        registered = 0
        for row in rows:
            if not row.registered:
                out.append(row)
                continue
            registered += 1
            if registered % 7 == 3:
                assert row.truth is not None
                row.duplicated = True
                out.append(
                    Row(
                        id=self._row_id(*row.truth, "superseded"),
                        mis_id=row.mis_id,
                        when=row.when,
                        registered=True,
                        code="N" if row.code != "N" else "O",
                        last_updated=row.last_updated - timedelta(hours=1)
                        if row.last_updated
                        else None,
                        truth=row.truth,
                        duplicated=True,
                    )
                )
                out.append(row)
            elif registered % 11 == 5:
                assert row.truth is not None
                row.duplicated = True
                out.append(row)
                out.append(
                    Row(
                        id=self._row_id(*row.truth, "repeat"),
                        mis_id=row.mis_id,
                        when=row.when,
                        registered=True,
                        code=row.code,
                        minutes_late=row.minutes_late,
                        comment=row.comment,
                        last_updated=row.last_updated,
                        truth=row.truth,
                        duplicated=True,
                    )
                )
            else:
                out.append(row)
        return out

    def _corrupt_rows(self, rows: list[Row]) -> None:
        """A bad date, an unknown code and a missing PupilId, on marks that have no duplicate
        (so the truth for the rest is still exactly recoverable)."""
        plain = [r for r in rows if r.registered and not r.duplicated][:3]
        for row, field_name in zip(
            plain, ("RegistrationDateTime", "Code", "PupilId"), strict=False
        ):
            if field_name == "RegistrationDateTime":
                row.fields[field_name] = f"{row.when.year}-02-30T{row.when:%H:%M:%S}"
            elif field_name == "Code":
                row.fields.update(Code="QQ", PresentCode="0")
            else:
                row.fields[field_name] = None  # the element is left out
            self.corrupted.append(
                Corruption(
                    "RegistrationStatus", f"RegistrationStatus {row.id}", field_name, row.truth
                )
            )

    def _status_xml(self, row: Row, texts: dict[Any, str | None]) -> str:
        """One RegistrationStatus element as lxml's pretty print writes it at this depth."""
        present = PRESENT_ID.get(row.code or "", 0) if row.registered else 0
        values: dict[str, str | None] = {
            "PupilId": row.mis_id,
            "RegistrationDateTime": _text(texts, row.when),
            "Registered": "1" if row.registered else "0",
            "PresentCode": str(present),
            "Code": row.code if row.registered and not present else None,
            # INFERRED extras: present only when there is something to say.
            "MinutesLate": None if row.minutes_late is None else str(row.minutes_late),
            "Comment": row.comment,
            "LastUpdated": _text(texts, ("instant", row.last_updated)),
        }
        values.update(row.fields)
        children = [
            f"        <{tag}>{xml_text(value)}</{tag}>\n"
            for tag, value in values.items()
            if value is not None
        ]
        if not children:
            return f'      <RegistrationStatus Id="{row.id}"/>\n'
        return f'      <RegistrationStatus Id="{row.id}">\n{"".join(children)}      </RegistrationStatus>\n'

    def _audits(self, section: etree._Element, start: date, end: date, *, corrupt: bool) -> None:
        """INFERRED resource: the school's amendment records in iSAMS style."""
        mis_of = {p.id: p.mis_id for p in self.school.pupils}
        chosen = sorted(
            (a for a in self.school.amendments if start <= a.date <= end),
            key=lambda a: (
                a.date,
                a.session.value,
                mis_of.get(a.pupil_id, ""),
                a.amended_at or datetime.min.replace(tzinfo=LONDON),
            ),
        )
        for index, amendment in enumerate(chosen):
            ident = self._row_id(
                "audit",
                amendment.pupil_id,
                amendment.date,
                amendment.session.value,
                amendment.amended_at,
                amendment.amended_code,
            )
            element = etree.SubElement(section, "RegistrationAudit", Id=str(ident))
            values = self._audit_values(amendment, mis_of)
            if corrupt and index == 0:
                values["AmendedCode"] = "QQ"
                self.corrupted.append(
                    Corruption(
                        "RegistrationAudit", f"RegistrationAudit {ident}", "AmendedCode", amendment
                    )
                )
            for tag, value in values.items():
                child(element, tag, value)

    def _audit_values(
        self, amendment: Amendment, mis_of: Mapping[str, str]
    ) -> dict[str, str | None]:
        return {
            "PupilId": mis_of.get(amendment.pupil_id, amendment.pupil_id.split(":", 1)[-1]),
            "RegistrationDateTime": self._session_time(amendment.date, amendment.session).isoformat(
                timespec="seconds"
            ),
            "OriginalCode": amendment.original_code,
            "AmendedCode": amendment.amended_code,
            "Reason": amendment.reason,
            "AmendedDateTime": local_naive(amendment.amended_at),
            "AmendedBy": amendment.amended_by_name,
            "AmendedByPosition": amendment.amended_by_position,
        }

    def _terms(self, terms: etree._Element) -> None:
        for index, term in enumerate(
            sorted(self.school.calendar.terms, key=lambda t: t.start), start=1
        ):
            element = etree.SubElement(terms, "Term", Id=str(index))
            child(element, "SchoolYear", str(school_year_of(term.start)))
            child(element, "Name", term_name(term.start))
            child(element, "StartDate", iso_midnight(term.start))
            child(element, "FinishDate", iso_midnight(term.end))
