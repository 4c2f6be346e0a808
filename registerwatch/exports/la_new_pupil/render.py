"""Render the la-new-pupil return: pure and deterministic (no clock, stable order).

One ``<Record>`` per admission, with the admission register's reg 8 items (INFERRED list,) as the common schema holds them:

- full name, and other names used (preferred name): ``Pupil/LegalSurname``,
  ``LegalForename``, ``MiddleNames``, ``PreferredSurname``, ``PreferredForename``
- sex: ``Pupil/Sex``; day, month and year of birth: ``Pupil/DOB``
- the pupil's address (supplementary address information, 2024): ``Pupil/Address``
- names and addresses of each parent, which of them the pupil normally lives with, and at least
  one emergency telephone number: ``Parents/Parent/Name``, ``Address``, ``LivesWith``,
  ``EmergencyPhone`` (every contact the schema holds, by priority)
- starting day: ``Admission/StartingDay``; boarder or day pupil: ``Admission/Boarder``
- name of the school last attended: not in the schema, left out (reference.NOT_IN_SCHEMA)

UPN and NC year are not reg 8 items; they are given so that the LA can match the pupil.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from registerwatch.exports.base import RenderedReturn, sub, yes_no
from registerwatch.exports.la_common import xml
from registerwatch.exports.la_common.inputs import RegisterEvent, ReturnHeader
from registerwatch.exports.la_common.items import parent_items, pupil_items

KIND: Final = "la-new-pupil"
ROOT: Final = "LANewPupilReturn"
COLUMNS: Final = ("pupil_ref", "episode", *xml.PUPIL_COLUMNS, "starting_day", "boarder", "parents")


def render(header: ReturnHeader, admissions: Sequence[RegisterEvent]) -> RenderedReturn:
    ordered = sorted(admissions, key=lambda e: (e.key.pupil_id or "", e.key.episode or ""))
    root = xml.new_root(ROOT, header, len(ordered))
    records = xml.records_of(root)
    rows: list[Sequence[object]] = []
    for admission in ordered:
        record = sub(records, "Record")
        xml.record_key(record, admission.key)
        who = pupil_items(admission.pupil)
        xml.pupil(record, who)
        everyone = parent_items(admission.pupil, lived_with_only=False)
        xml.parents(record, "Parents", everyone, with_lives_with=True)
        block = sub(record, "Admission")
        # the starting day the finding is about (the key), not a later edit of the pupil
        sub(block, "StartingDay", admission.day)
        # boarder is a flag the schema always holds (default: day pupil)
        boarder = admission.pupil is not None and admission.pupil.boarder
        sub(block, "Boarder", yes_no(boarder))
        rows.append(
            [
                admission.key.pupil_id,
                admission.key.episode,
                *xml.pupil_cells(who),
                admission.day.isoformat(),
                yes_no(boarder),
                xml.parents_cell(everyone, with_lives_with=True),
            ]
        )
    return xml.finish(
        root, header, keys=[a.key for a in ordered], csv_header=COLUMNS, csv_rows=rows
    )
