"""What a deletion return cannot go without: reg 13(4)(c) the full name and address of any parent
the pupil normally lives with, and (d) at least one emergency telephone number for each (VERIFIED,
reference §1.6).

A return missing them is incomplete: the export refuses to queue the pupil's record and LAR005's
finding names what the MIS record lacks (legal review §3), so the school completes the record
instead of the LA receiving a return it must send back.
"""

from __future__ import annotations

from registerwatch.schema import Contact, Pupil


def _order(contact: Contact) -> tuple[int, str]:
    return (contact.priority, contact.name)


def missing_items(pupil: Pupil | None) -> list[str]:
    """The reg 13(4)(c)-(d) items the pupil's record lacks, in words (no names: these reach
    finding messages and logs). A pupil no longer in the store (the MIS dropped the record with
    the deletion) is not judged: the return still goes, built from the finding's evidence, with
    the items marked not held."""
    if pupil is None:
        return []
    lived_with = sorted((c for c in pupil.contacts if c.lives_with), key=_order)
    if not lived_with:
        return ["a parent the pupil normally lives with (reg 13(4)(c))"]
    missing = []
    for n, contact in enumerate(lived_with, start=1):
        who = contact.relationship or f"parent {n}"
        if not (contact.phone or "").strip():
            missing.append(
                f"an emergency telephone number for the parent lived with ({who}) (reg 13(4)(d))"
            )
    return missing
