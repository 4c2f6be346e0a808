"""Render the la-deletion return: pure and deterministic (no clock, stable order).

reg 13(4) items (VERIFIED) and their elements:

- (a) full name: ``Pupil/LegalSurname``, ``LegalForename``, ``MiddleNames``
- (b) address: ``Pupil/Address``
- (c) full name and address of any parent the pupil normally lives with:
  ``ParentsLivedWith/Parent/Name``, ``Address``
- (d) at least one emergency telephone number per such parent: ``.../Parent/EmergencyPhone``
- (e) the reg 8(3) information, if any: ``FutureArrangements/FutureAddress``, ``NewSchool``
- the ground of deletion under reg 9 (INFERRED item, §1.6): ``Deletion/Ground``,
  ``GroundDescription``
- the leaving date (the record's episode) and the starting day: ``Deletion/LeavingDate``,
  ``StartingDay``

The rest of reg 8(3) (INFERRED list, §1.5: the date the future address applies from, the parent
the pupil will live with there, the new school's start date) is not in the schema: left out and
listed in reference.NOT_IN_SCHEMA.

``Ground`` is the reg 9 ground as ``9(1)(a)``..``9(1)(o)`` or ``9(3)(x)``, normalised from what
the MIS recorded (``Reg 9(1)(A)`` -> ``9(1)(a)``); a recorded value that names no ground is
``invalid`` and given as recorded in ``GroundDescription`` so the LA still reads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from registerwatch.deletion_grounds import ground_title, parse_deletion_ground
from registerwatch.errors import ExportValidationError
from registerwatch.exports.base import RenderedReturn, sub
from registerwatch.exports.la_common import xml
from registerwatch.exports.la_common.inputs import RegisterEvent, ReturnHeader
from registerwatch.exports.la_common.items import (
    INVALID,
    NOT_HELD,
    Item,
    address,
    optional,
    parent_items,
    pupil_items,
    text,
)

KIND: Final = "la-deletion"
ROOT: Final = "LADeletionReturn"
COLUMNS: Final = (
    "pupil_ref",
    "episode",
    *xml.PUPIL_COLUMNS,
    "leaving_date",
    "starting_day",
    "ground",
    "ground_description",
    "future_address",
    "new_school",
    "parents_lived_with",
)


def ground_items(recorded: str | None) -> tuple[Item, Item]:
    """(Ground, GroundDescription) for what the MIS recorded."""
    value = optional(recorded)
    if value is None:
        return NOT_HELD, NOT_HELD
    ground = parse_deletion_ground(value)
    if ground is None:
        return INVALID, value
    title = ground_title(ground)
    return ground, title if title is not None else NOT_HELD


def check_dates(header: ReturnHeader, deletions: Sequence[RegisterEvent]) -> None:
    """XSD 1.0 cannot compare two elements: a leaving date before the starting day is refused
    before anything is rendered (the store's Pupil model refuses it too, but the leaving date
    here is the finding's, which may predate an edit of the starting day)."""
    problems = [
        f"record (pupil {d.pupil_id}, episode {d.key.episode}): leaving date "
        f"{d.day.isoformat()} is before the starting day {d.pupil.starting_day.isoformat()}"
        for d in deletions
        if d.pupil is not None and d.pupil.starting_day is not None and d.day < d.pupil.starting_day
    ]
    if problems:
        raise ExportValidationError(
            f"{KIND} for school {header.school_id!r}: dates are inconsistent; nothing was rendered",
            errors=problems,
        )


def render(header: ReturnHeader, deletions: Sequence[RegisterEvent]) -> RenderedReturn:
    check_dates(header, deletions)
    ordered = sorted(deletions, key=lambda e: (e.key.pupil_id or "", e.key.episode or ""))
    root = xml.new_root(ROOT, header, len(ordered))
    records = xml.records_of(root)
    rows: list[Sequence[object]] = []
    for deletion in ordered:
        pupil = deletion.pupil
        record = sub(records, "Record")
        xml.record_key(record, deletion.key)
        who = pupil_items(pupil)
        xml.pupil(record, who)
        lived_with = parent_items(pupil, lived_with_only=True)
        xml.parents(record, "ParentsLivedWith", lived_with, with_lives_with=False)
        future = sub(record, "FutureArrangements")
        future_address = address(pupil.future_address if pupil else None)
        new_school = text(pupil.new_school if pupil else None)
        xml.address(future, "FutureAddress", future_address)
        xml.item(future, "NewSchool", new_school)
        block = sub(record, "Deletion")
        # the leaving date the finding is about (the key), not a later edit of the pupil
        sub(block, "LeavingDate", deletion.day)
        starting: Item = (
            pupil.starting_day.isoformat()
            if pupil is not None and pupil.starting_day is not None
            else NOT_HELD
        )
        xml.item(block, "StartingDay", starting)
        recorded = pupil.deletion_ground if pupil is not None else None
        if recorded is None:  # the finding's evidence keeps what the MIS had when it was raised
            evidence_ground = deletion.facts.get("deletion_ground")
            recorded = evidence_ground if isinstance(evidence_ground, str) else None
        ground, description = ground_items(recorded)
        xml.item(block, "Ground", ground)
        xml.item(block, "GroundDescription", description)
        rows.append(
            [
                deletion.key.pupil_id,
                deletion.key.episode,
                *xml.pupil_cells(who),
                deletion.day.isoformat(),
                str(starting),
                str(ground),
                str(description),
                str(future_address),
                str(new_school),
                xml.parents_cell(lived_with, with_lives_with=False),
            ]
        )
    return xml.finish(
        root, header, keys=[d.key for d in ordered], csv_header=COLUMNS, csv_rows=rows
    )
