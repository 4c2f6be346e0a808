"""The legal facts the five LA notification returns rest on, as data: one table per fact.

Every entry says how sure we are, in the reference notes' terms
(../shared/reference/dfe-rules-formats.md): VERIFIED, SECONDARY or INFERRED. Where a fact is
INFERRED it lives here and only here, so that checking it against the primary text changes one
line. Section numbers (§) are those of the reference notes; paragraph numbers of SI 2024/208 are
given only where the notes quote them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from registerwatch.codes import CODES_2024, lookup

Status = Literal["verified", "secondary", "inferred"]

# -- what each return answers -------------------------------------------------------------------

#: return kind -> the LAR rule whose open findings the return answers
RULE_FOR_RETURN: Final[dict[str, str]] = {
    "la-sickness": "LAR001",
    "la-continuous-absence": "LAR002",
    "la-cme": "LAR003",
    "la-new-pupil": "LAR004",
    "la-deletion": "LAR005",
}

#: return kind -> the ``Notification.kind`` the outbox records when the return is made; the
#: LAR rule then finds the return and closes (registerwatch.schema.NotificationKind values)
NOTIFICATION_KIND: Final[dict[str, str]] = {
    "la-sickness": "sickness",
    "la-continuous-absence": "continuous_absence",
    "la-cme": "cme",
    "la-new-pupil": "new_pupil",
    "la-deletion": "deletion",
}

SCHEMA_VERSION: Final = "1"


def schema_name(kind: str) -> str:
    """``la-sickness`` -> ``la-sickness-1.xsd`` (the file in exports/schemas)."""
    return f"{kind}-{SCHEMA_VERSION}.xsd"


# -- cause of absence ---------------------------------------------------------------------------

#: Codes whose own meaning states the cause of an absence. INFERRED: the 2024 attendance return
#: keeps the 2006 reg 12(1) wording "specifying the cause of absence if known" (§1.7: the 2006
#: text is VERIFIED, its survival in 2024 reg 13 is MEMORY/INFERRED). N ("circumstances not yet
#: established") and O ("none of the other rows applies") record that the cause is *not* known,
#: so an episode of N/O only (a CME referral, LAR003) says "not known".
#: Register comments hold causes too, but DESIGN §2 says comments are never exported.
CAUSE_CODES: Final[tuple[str, ...]] = ("I", "G", "U")
CAUSE_STATUS: Final[Status] = "inferred"


def cause_of(codes: list[str] | tuple[str, ...] | set[str] | frozenset[str]) -> str | None:
    """The causes the codes of an episode state, in national-table order; None when none does.

    The text is the code table's own description (registerwatch.codes), so the return and the
    rest of the tool never disagree about what a code means.
    """
    present = set(codes)
    causes = [lookup(code).description for code in CAUSE_CODES if code in present]
    return "; ".join(causes) if causes else None


# -- reg 9 grounds for deletion -----------------------------------------------------------------


@dataclass(frozen=True)
class DeletionGround:
    ground: str  # as the return writes it: "9(1)(a)"
    title: str
    status: Status


#: SI 2024/208 reg 9(1), grounds (a)-(o) for a pupil of compulsory school age. SECONDARY: short
#: titles from the Torbay and Worcestershire LA forms (§1.6).
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

#: Reg 9(3) (pupils not of compulsory school age): INFERRED. The notes (§1.6) say only that
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


# -- what the law asks for that the common schema cannot hold -----------------------------------

#: Items a return should carry but the common schema (registerwatch.schema.Pupil) has no field
#: for. They are left out of the XML (no element) and listed in docs/returns; add a Pupil field
#: and a line in the renderer to carry one.
NOT_IN_SCHEMA: Final[dict[str, tuple[str, ...]]] = {
    "la-new-pupil": (
        # reg 8 (INFERRED list, §1.5; 2006 reg 5 VERIFIED): name and address of the school last
        # attended
        "name (and address) of the school last attended",
    ),
    "la-deletion": (
        # reg 13(4)(e) -> reg 8(3) (INFERRED list, §1.5/§1.6)
        "date from which the pupil will live at the future address",
        "the parent the pupil will live with at the future address",
        "date the pupil started or will start at the new school",
    ),
}

# -- attendance codes the XSDs accept -----------------------------------------------------------

#: The 2024 national code table (registerwatch.codes.CODES_2024), in table order: the
#: enumeration of the AttendanceCode type in la-common-1.xsd must list exactly these
#: (a test compares them).
CODES_2024_ORDER: Final[tuple[str, ...]] = tuple(c.code for c in CODES_2024)


def code_order(code: str) -> int:
    """Sort key: position in the national table (unknown or legacy codes last)."""
    try:
        return CODES_2024_ORDER.index(code)
    except ValueError:
        return len(CODES_2024_ORDER)
