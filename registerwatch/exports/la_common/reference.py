"""The legal facts the five LA notification returns rest on, as data: one table per fact.

Every entry says how sure we are: VERIFIED (read in the primary text: the regulations or DfE
guidance), SECONDARY (LA forms and vendor copies agree on it) or INFERRED (a reading nobody
publishes). Where a fact is INFERRED it lives here and only here, so that checking it against the
primary text changes one line. Paragraph numbers of SI 2024/208 are given only where the
sources quote them.
"""

from __future__ import annotations

from typing import Final

from registerwatch.codes import CODES_2024, lookup
from registerwatch.deletion_grounds import Status

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
#: keeps the 2006 reg 12(1) wording "specifying the cause of absence if known" (the 2006
#: text is VERIFIED, its survival in 2024 reg 13 is MEMORY/INFERRED). N ("circumstances not yet
#: established") and O ("none of the other rows applies") record that the cause is *not* known,
#: so an episode of N/O only (a CME referral, LAR003) says "not known".
#: Register comments hold causes too, but comments are never exported (they may hold
#: anything a teacher typed).
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


# -- reg 9 grounds for deletion: registerwatch.deletion_grounds (rules read them too) ----------


# -- what the law asks for that the common schema cannot hold -----------------------------------

#: Items a return should carry but the common schema (registerwatch.schema.Pupil) has no field
#: for. They are left out of the XML (no element) and listed in docs/returns; add a Pupil field
#: and a line in the renderer to carry one.
NOT_IN_SCHEMA: Final[dict[str, tuple[str, ...]]] = {
    "la-new-pupil": (
        # reg 8 (INFERRED list; 2006 reg 5 VERIFIED): name and address of the school last
        # attended
        "name (and address) of the school last attended",
    ),
    "la-deletion": (
        # reg 13(4)(e) -> reg 8(3) (INFERRED list)
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
