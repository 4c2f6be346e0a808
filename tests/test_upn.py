from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.gb import upn as stdnum_upn

from registerwatch import upn
from registerwatch.upn import (
    ALPHABET,
    UpnCheck,
    check_letter,
    check_upn,
    make_temporary_upn,
    make_upn,
)

digits = st.text(alphabet="0123456789", min_size=11, max_size=11)
last_char = st.sampled_from("0123456789" + ALPHABET)
bodies = st.builds(lambda d, c: d + c, digits, last_char)


@pytest.mark.parametrize(
    "value",
    [
        "B801200005001",  # python-stdnum doctest
        "H801200001001",  # MTC
        "R900400001001",  # MTC: LA 900 is not a real LA, but the check letter is right
        "A950000178301",  # CIN validator
        "H243278544154",  # CIN validator
    ],
)
def test_published_valid_upns(value: str) -> None:
    assert check_upn(value) == UpnCheck(upn=value, valid=True, reason=None, temporary=False)


def test_published_valid_temporary_upn() -> None:
    assert check_upn("G80120000101A") == UpnCheck(
        upn="G80120000101A", valid=True, reason=None, temporary=True
    )


@pytest.mark.parametrize(
    ("value", "given_letter", "expected_letter"),
    [
        ("A801200005001", "A", "B"),  # python-stdnum doctest
        ("Z801200001001", "Z", "H"),  # MTC
        ("R247962919251", "R", "Q"),  # CIN validator
        ("X428558133462", "X", "W"),  # CIN validator
    ],
)
def test_published_bad_check_letters(value: str, given_letter: str, expected_letter: str) -> None:
    result = check_upn(value)
    assert not result.valid
    assert result.reason == (
        f"check letter is {given_letter}, expected {expected_letter} (census rule 1510)"
    )


@pytest.mark.parametrize("value", [None, "", "   \t"])
def test_missing(value: str | None) -> None:
    result = check_upn(value)
    assert not result.valid
    assert result.reason == "UPN missing (census rule 1500)"
    assert result.upn == (value or "")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("B80120000500", "UPN must be 13 characters; 'B80120000500' has 12"),
        ("B8012000050011", "UPN must be 13 characters; 'B8012000050011' has 14"),
        (
            " B80120000500 ",
            "UPN must be 13 characters; ' B80120000500 ' has 12 (ignoring surrounding spaces)",
        ),
    ],
)
def test_wrong_length(value: str, reason: str) -> None:
    result = check_upn(value)
    assert (result.valid, result.reason) == (False, reason)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (
            "1801200005001",
            "character 1 is '1': it must be a check letter from ABCDEFGHJKLMNPQRTUVWXYZ "
            "(I, O and S are not used) (census rule 1510)",
        ),
        (
            "I801200005001",
            "character 1 is 'I': it must be a check letter from ABCDEFGHJKLMNPQRTUVWXYZ "
            "(I, O and S are not used) (census rule 1510)",
        ),
        (
            "B8X1200005001",
            "character 3 is 'X': characters 2-4 (the LA number) must be digits (census rule 1530)",
        ),
        (
            "X80120000A001",  # python-stdnum doctest: the middle must be numeric
            "character 10 is 'A': characters 5-12 must be digits (census rule 1540)",
        ),
        (
            "B80120000500A1",  # 14 characters: length is reported before characters
            "UPN must be 13 characters; 'B80120000500A1' has 14",
        ),
        (
            "B801200005 01",
            "character 11 is ' ': characters 5-12 must be digits (census rule 1540)",
        ),
        (
            "B80120000500S",
            "character 13 is 'S': it must be a digit or a letter from ABCDEFGHJKLMNPQRTUVWXYZ "
            "(I, O and S are not used) (census rule 1550)",
        ),
        (
            "B80120000500-",
            "character 13 is '-': it must be a digit or a letter from ABCDEFGHJKLMNPQRTUVWXYZ "
            "(I, O and S are not used) (census rule 1550)",
        ),
    ],
)
def test_character_failures_name_position_and_character(value: str, reason: str) -> None:
    result = check_upn(value)
    assert (result.valid, result.reason) == (False, reason)


def test_first_bad_character_is_reported() -> None:
    assert check_upn("O8X1200005001").reason.startswith("character 1 is 'O'")


@pytest.mark.parametrize("value", ["b801200005001", "  B801200005001\n", "\tg80120000101a "])
def test_lowercase_and_surrounding_whitespace_are_accepted_and_original_reported(
    value: str,
) -> None:
    result = check_upn(value)
    assert result.valid
    assert result.upn == value


def test_normalise_upn() -> None:
    assert upn.normalise_upn("  g80120000101a\n") == "G80120000101A"


def test_temporary_flag_set_on_invalid_temporary_upn() -> None:
    result = check_upn("A80120000101A")
    assert (result.valid, result.temporary) == (False, True)
    assert result.reason == "check letter is A, expected G (census rule 1510)"


def test_check_letter_of_published_bodies() -> None:
    assert check_letter("801200005001") == "B"
    assert check_letter("80120000101A") == "G"


def test_position_13_letters_a_to_k_share_check_letters_with_digits_0_to_9() -> None:
    for digit, letter in zip("0123456789", ALPHABET[:10], strict=True):
        assert check_letter("80120000101" + letter) == check_letter("80120000101" + digit)
    assert check_letter("80120000101L") != check_letter("80120000101" + "0")


@pytest.mark.parametrize("body", ["80120000500", "8012000050011", "8012000X5001", "80120000500I"])
def test_check_letter_rejects_malformed_body(body: str) -> None:
    with pytest.raises(ValueError, match="UPN body must be"):
        check_letter(body)


def test_temporary_letter_setting_switches_to_mtc_valuation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Computed in the reference (§6 conflict 1): W by alphabet index, G if letters count as 0.
    assert check_letter("80120000101B") == "W"
    monkeypatch.setattr(upn, "TEMPORARY_LETTER_VALUE", "zero")
    assert check_letter("80120000101B") == "G"
    assert check_upn("G80120000101B").valid
    assert not check_upn("W80120000101B").valid
    # The two methods agree on A, and on every permanent UPN.
    assert check_letter("80120000101A") == "G"
    assert check_letter("801200005001") == "B"


@given(bodies)
def test_property_only_the_computed_letter_passes(body: str) -> None:
    letter = check_letter(body)
    assert check_upn(letter + body).valid
    for other in ALPHABET.replace(letter, ""):
        result = check_upn(other + body)
        assert not result.valid
        assert result.reason == f"check letter is {other}, expected {letter} (census rule 1510)"


@given(bodies)
def test_property_agrees_with_python_stdnum(body: str) -> None:
    assert check_letter(body) == stdnum_upn.calc_check_digit(body)


@given(bodies, st.integers(min_value=0, max_value=11), st.data())
def test_property_any_single_substitution_in_body_is_caught(
    body: str, index: int, data: st.DataObject
) -> None:
    # 23 is prime and no weight or difference of values is a multiple of it, so a character
    # replaced by one of another value always changes the check letter. In position 13 the
    # letters A-K take the values 0-9, so "0" -> "A" (and so on) is the one change not caught.
    def value(c: str) -> int:
        return int(c) if c.isdigit() else ALPHABET.index(c)

    choices = "0123456789" if index < 11 else "0123456789" + ALPHABET
    others = [c for c in choices if value(c) != value(body[index])]
    replacement = data.draw(st.sampled_from(others))
    mutated = body[:index] + replacement + body[index + 1 :]
    assert not check_upn(check_letter(body) + mutated).valid


@given(st.one_of(st.none(), st.text(max_size=20)))
def test_property_never_raises_and_valid_means_well_formed(value: str | None) -> None:
    result = check_upn(value)
    assert result.valid == (result.reason is None)
    if result.valid:
        normalised = upn.normalise_upn(value or "")
        assert len(normalised) == 13
        assert normalised[0] == check_letter(normalised[1:])


def test_make_upn_reproduces_published_vector() -> None:
    # B801200005001 reads LA 801, establishment 2000, issue year 05, serial 001.
    assert make_upn("801", "2000", 5, 1) == "B801200005001"
    assert make_upn("801", "2000", 2005, 1) == "B801200005001"
    assert make_upn("801", "2000", 1, 1) == "H801200001001"
    assert make_upn("900", "4000", 1, 1) == "R900400001001"


def test_make_temporary_upn_reproduces_published_vector() -> None:
    assert make_temporary_upn("801", "2000", 1, 1, "A") == "G80120000101A"
    assert make_temporary_upn("801", "2000", 2001, 1) == "G80120000101A"


@given(
    st.text(alphabet="0123456789", min_size=3, max_size=3),
    st.text(alphabet="0123456789", min_size=4, max_size=4),
    st.integers(min_value=0, max_value=2099),
    st.integers(min_value=0, max_value=999),
    st.sampled_from(ALPHABET),
)
def test_property_made_upns_are_valid(
    la: str, estab: str, year: int, serial: int, letter: str
) -> None:
    permanent = check_upn(make_upn(la, estab, year, serial))
    temporary = check_upn(make_temporary_upn(la, estab, year, serial % 100, letter))
    assert (permanent.valid, permanent.temporary) == (True, False)
    assert (temporary.valid, temporary.temporary) == (True, True)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("80", "2000", 5, 1), "LA number must be 3 digits"),
        (("801", "20A0", 5, 1), "establishment number must be 4 digits"),
        (("801", "2000", -1, 1), "issue year must be"),
        (("801", "2000", 5, 1000), "serial must be 0-999"),
    ],
)
def test_make_upn_rejects_parts_that_do_not_fit(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_upn(*args)


@pytest.mark.parametrize(
    ("serial", "letter", "message"),
    [
        (100, "A", "temporary serial must be 0-99"),
        (1, "I", "letter must be one of"),
        (1, "AB", "letter must be one of"),
    ],
)
def test_make_temporary_upn_rejects_bad_parts(serial: int, letter: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_temporary_upn("801", "2000", 1, serial, letter)
