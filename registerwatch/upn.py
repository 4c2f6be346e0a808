"""DfE Unique Pupil Number (UPN) checks.

A UPN is 13 characters: a check letter, the 3-digit LA number of the issuing school, its 4-digit
DfE establishment number, a 2-digit issue year and a 3-digit serial. A temporary UPN has a 2-digit
serial followed by a letter. Sources are in the reference notes, section 6: the format from
python-stdnum (`stdnum.gb.upn`, citing the DfE UPN guidance), the check-letter algorithm from the
MTC SQL function and dfeqa, and the census/CBDS validation rule numbers quoted below.

LA numbers are deliberately not checked here (census rule 1530). python-stdnum checks them against
a private copy of the January 2011 LA list, so it would call a UPN with a correct check letter
invalid just because its LA is missing from that list (the MTC vector ``R900400001001``) or was
created after 2011. Rule 1530 needs the current GIAS list, which the product does not hold yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# The 23 letters the DfE uses; I, O and S are left out.
ALPHABET = "ABCDEFGHJKLMNPQRTUVWXYZ"

_DIGITS = "0123456789"
_LENGTH = 13

LetterValue = Literal["alphabet-index", "zero"]

# CONFLICT (sources disagree): how a letter in position 13 (a temporary
# UPN) counts towards the check letter.
#   "alphabet-index": its index in ALPHABET (A=0 ... Z=22). python-stdnum and dfeqa do this, and
#       the reference remembers (MEMORY, not yet checked) the DfE UPN guide using the same table.
#   "zero": every letter counts as 0. DfE's MTC `upn.service` does this.
# They agree only when the letter is A: body 80120000101B gives W by index and G by MTC.
# INFERRED: "alphabet-index" is right; confirm against the DfE UPN guide and change only this.
TEMPORARY_LETTER_VALUE: LetterValue = "alphabet-index"


@dataclass(frozen=True)
class UpnCheck:
    """The outcome of checking one UPN.

    ``upn`` is the value exactly as given ("" when it was missing); ``reason`` says why it is
    invalid, or is None when it is valid; ``temporary`` is True when position 13 is a letter.
    """

    upn: str
    valid: bool
    reason: str | None
    temporary: bool


def normalise_upn(upn: str) -> str:
    """The form the checks apply to: surrounding whitespace removed, upper-cased."""
    return upn.strip().upper()


def _value(char: str, letter_value: LetterValue) -> int:
    if char in _DIGITS:
        return int(char)
    return ALPHABET.index(char) if letter_value == "alphabet-index" else 0


def check_letter(body: str) -> str:
    """The check letter for ``body``, the 12 characters that follow it (UPN characters 2-13).

    Character n of the UPN is weighted n (2..13); the weighted sum mod 23 indexes ALPHABET
    (census rule 1510). A letter in position 13 counts as set by TEMPORARY_LETTER_VALUE; by
    alphabet index, A-K count the same as 0-9, so swapping one for the other goes undetected.
    Raises ValueError when ``body`` is not 11 digits then a digit or a letter
    from ALPHABET; use ``check_upn`` to check untrusted input.
    """
    if (
        len(body) != _LENGTH - 1
        or any(c not in _DIGITS for c in body[:-1])
        or body[-1] not in _DIGITS + ALPHABET
    ):
        raise ValueError(
            f"UPN body must be 11 digits then a digit or a letter from {ALPHABET}; got {body!r}"
        )
    letter_value = TEMPORARY_LETTER_VALUE  # read at call time so the one setting governs
    total = sum(weight * _value(c, letter_value) for weight, c in enumerate(body, start=2))
    return ALPHABET[total % 23]


def _character_problem(upn: str) -> str | None:
    """The first character out of place in a 13-character upper-cased UPN, or None."""
    for position, char in enumerate(upn, start=1):
        if position == 1 and char not in ALPHABET:
            return (
                f"character 1 is {char!r}: it must be a check letter from {ALPHABET} "
                "(I, O and S are not used) (census rule 1510)"
            )
        if 2 <= position <= 4 and char not in _DIGITS:
            return (
                f"character {position} is {char!r}: characters 2-4 (the LA number) must be digits "
                "(census rule 1530)"
            )
        if 5 <= position <= 12 and char not in _DIGITS:
            return (
                f"character {position} is {char!r}: characters 5-12 must be digits "
                "(census rule 1540)"
            )
        if position == 13 and char not in _DIGITS + ALPHABET:
            return (
                f"character 13 is {char!r}: it must be a digit or a letter from {ALPHABET} "
                "(I, O and S are not used) (census rule 1550)"
            )
    return None


def check_upn(upn: str | None) -> UpnCheck:
    """Check a UPN's presence, length, characters and check letter; never raises.

    Surrounding whitespace and letter case are ignored. The LA number is not checked against a
    list of LAs (see the module docstring).
    """
    original = "" if upn is None else upn
    value = normalise_upn(original)
    temporary = len(value) == _LENGTH and value[-1] in ALPHABET

    def invalid(reason: str) -> UpnCheck:
        return UpnCheck(upn=original, valid=False, reason=reason, temporary=temporary)

    if not value:
        return invalid("UPN missing (census rule 1500)")
    if len(value) != _LENGTH:
        trimmed = " (ignoring surrounding spaces)" if value != original.upper() else ""
        return invalid(f"UPN must be {_LENGTH} characters; {original!r} has {len(value)}{trimmed}")
    problem = _character_problem(value)
    if problem is not None:
        return invalid(problem)
    expected = check_letter(value[1:])
    if value[0] != expected:
        return invalid(f"check letter is {value[0]}, expected {expected} (census rule 1510)")
    return UpnCheck(upn=original, valid=True, reason=None, temporary=temporary)


def _digits(value: str, width: int, what: str) -> str:
    if len(value) != width or any(c not in _DIGITS for c in value):
        raise ValueError(f"{what} must be {width} digits; got {value!r}")
    return value


def _issue_year(year: int) -> str:
    # Either a calendar year (2012) or its last two digits (12): the UPN keeps only two.
    if not 0 <= year <= 9999:
        raise ValueError(f"issue year must be a calendar year or two digits; got {year}")
    return f"{year % 100:02d}"


def make_upn(la: str, estab: str, year: int, serial: int) -> str:
    """A permanent UPN with its check letter: LA number, establishment number, issue year, serial.

    ``year`` may be a calendar year (2012) or its last two digits (12); ``serial`` is 0-999.
    Raises ValueError when a part does not fit its field.
    """
    if not 0 <= serial <= 999:
        raise ValueError(f"serial must be 0-999; got {serial}")
    body = (
        _digits(la, 3, "LA number")
        + _digits(estab, 4, "establishment number")
        + _issue_year(year)
        + f"{serial:03d}"
    )
    return check_letter(body) + body


def make_temporary_upn(la: str, estab: str, year: int, serial: int, letter: str = "A") -> str:
    """A temporary UPN: as ``make_upn`` but a 2-digit serial (0-99) followed by ``letter``.

    The default letter A is the only one whose check letter is the same under both readings of
    TEMPORARY_LETTER_VALUE, so such UPNs are valid whichever way the conflict is settled.
    """
    if not 0 <= serial <= 99:
        raise ValueError(f"temporary serial must be 0-99; got {serial}")
    if len(letter) != 1 or letter not in ALPHABET:
        raise ValueError(f"temporary UPN letter must be one of {ALPHABET}; got {letter!r}")
    body = (
        _digits(la, 3, "LA number")
        + _digits(estab, 4, "establishment number")
        + _issue_year(year)
        + f"{serial:02d}"
        + letter
    )
    return check_letter(body) + body
