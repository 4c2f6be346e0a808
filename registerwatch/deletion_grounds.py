"""The reg 9 grounds for deleting a pupil from the admission register, as data.

Shared by the rule that checks a deletion (LAR006) and the LA deletion return, so neither
imports the other. Each entry says how sure it is: SECONDARY (LA forms agree on it) or INFERRED
(a reading nobody publishes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from registerwatch.schema import Contact, Pupil

Status = Literal["verified", "secondary", "inferred"]


@dataclass(frozen=True)
class DeletionGround:
    ground: str  # as the return writes it: "9(1)(a)"
    title: str
    status: Status


#: SI 2024/208 reg 9(1), grounds (a)-(o) for a pupil of compulsory school age. SECONDARY: short
#: titles from the Torbay and Worcestershire LA forms.
REG9_1_GROUNDS: Final[tuple[DeletionGround, ...]] = tuple(
    DeletionGround(f"9(1)({letter})", title, "secondary")
    for letter, title in (
        ("a", "Registered at another school"),
        ("b", "Completed nursery education; not expected to attend again"),
        ("c", "Also registered elsewhere; not expected to attend again; other school consents"),
        ("d", "School attendance order amended to name another school"),
        ("e", "School attendance order revoked"),
        ("f", "Parent notified in writing: education otherwise than at school"),
        ("g", "No longer lives within a reasonable distance"),
        ("h", "Has not returned after a leave of absence"),
        ("i", "Continuously absent for 20 school days"),
        ("j", "Detained under a sentence of detention"),
        ("k", "Has died"),
        ("l", "Will be over compulsory school age; not continuing into the sixth form"),
        ("m", "Boarder at a maintained school or academy; boarding fees unpaid"),
        ("n", "Ceased to be a pupil at an independent or non-maintained special school"),
        ("o", "Permanently excluded"),
    )
)

#: Reg 9(3) (pupils not of compulsory school age): INFERRED. The sources say only that
#: para (3) covers other pupils; its sub-paragraphs are not known, so any letter is accepted in
#: the 9(3)(x) form and no title is given. The XSD pattern (DeletionGroundValue) says the same.
REG9_3_LETTERS: Final = "abcdefghijklmnopqrstuvwxyz"
REG9_3_STATUS: Final[Status] = "inferred"

_GROUND_TEXT = re.compile(
    r"^(?:reg(?:ulation)?\.?\s*)?9\s*\(\s*([13])\s*\)\s*\(\s*([a-z])\s*\)$", re.IGNORECASE
)


def parse_deletion_ground(text: str | None) -> str | None:
    """The reg 9 ground a recorded value names (``"Reg 9(1)(A)"`` -> ``"9(1)(a)"``), or None when
    it names none (free text, or a letter outside (a)-(o) under 9(1))."""
    if text is None:
        return None
    match = _GROUND_TEXT.match(text.strip())
    if match is None:
        return None
    paragraph, letter = match.group(1), match.group(2).lower()
    if paragraph == "1" and letter not in "abcdefghijklmno":
        return None
    return f"9({paragraph})({letter})"


def ground_title(ground: str) -> str | None:
    """The short title of a reg 9(1) ground; None for 9(3) grounds (not known, see above)."""
    for entry in REG9_1_GROUNDS:
        if entry.ground == ground:
            return entry.title
    return None


# -- what a deletion return cannot go without ------------------------------------------------
# Reg 13(4)(c): the full name and address of any parent the pupil normally lives with, and
# (d) at least one emergency telephone number for each (VERIFIED). A return missing them is
# incomplete: the export refuses to queue the pupil's record and LAR005's finding names what the
# MIS record lacks, so the school completes the record instead of the LA receiving a return it
# must send back.


def _by_priority(contact: Contact) -> tuple[int, str]:
    return (contact.priority, contact.name)


def missing_items(pupil: Pupil | None) -> list[str]:
    """The reg 13(4)(c)-(d) items the pupil's record lacks, in words (no names: these reach
    finding messages and logs). A pupil no longer in the store (the MIS dropped the record with
    the deletion) is not judged: the return still goes, built from the finding's evidence, with
    the items marked not held."""
    if pupil is None:
        return []
    lived_with = sorted((c for c in pupil.contacts if c.lives_with), key=_by_priority)
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
