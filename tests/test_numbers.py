"""Phone numbers: what reaches a dial string, and what is refused with a message naming why."""

from __future__ import annotations

import string

import pytest

from ivr.errors import InvalidNumberError
from ivr.numbers import dial_string, normalize_number

#: What normalize_number keeps (digits, '+', '*', '#') or strips as a visual separator.
ALLOWED = "0123456789+*# .-()"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0612345678", "0612345678"),
        ("+33612345678", "+33612345678"),
        ("06 12 34 56 78", "0612345678"),
        ("06.12.34.56.78", "0612345678"),
        ("06-12-34-56-78", "0612345678"),
        ("(0)6-12", "0612"),
        ("*21#", "*21#"),
        ("  0612  ", "0612"),
        ("1" * 31, "1" * 31),
        ("+" + "1" * 31, "+" + "1" * 31),
    ],
)
def test_accepted_forms(raw: str, expected: str) -> None:
    assert normalize_number(raw) == expected


# Parentheses are visual separators (see "(0)6-12" above): stripped, so never in a dial string.
METACHARACTERS = list("&,/@;|'\"\\${}`") + ["\n", "\r", "\t", "\0"]


@pytest.mark.parametrize("ch", METACHARACTERS, ids=repr)
def test_dial_string_metacharacters_refused_and_named(ch: str) -> None:
    raw = f"0612{ch}34"
    with pytest.raises(InvalidNumberError) as info:
        normalize_number(raw)
    assert repr(ch) in str(info.value)
    assert info.value.details["number"] == raw


@pytest.mark.parametrize("raw", ["0612abc", "O612345678", "06 12 x4"])
def test_letters_refused_and_named(raw: str) -> None:
    with pytest.raises(InvalidNumberError) as info:
        normalize_number(raw)
    for ch in raw:
        if ch.isalpha():
            assert repr(ch) in str(info.value)


@pytest.mark.parametrize("digit", ["٣", "０", "३"], ids=["arabic-indic", "fullwidth", "devanagari"])
def test_non_ascii_digits_refused_and_named(digit: str) -> None:
    with pytest.raises(InvalidNumberError) as info:
        normalize_number(f"0612{digit}4")
    assert repr(digit) in str(info.value)


@pytest.mark.parametrize("raw", ["", " ", "     ", "()", " .-. "])
def test_empty_refused(raw: str) -> None:
    with pytest.raises(InvalidNumberError, match="empty"):
        normalize_number(raw)


@pytest.mark.parametrize("raw", ["06+12", "++33612", "0612+"])
def test_plus_only_at_the_start(raw: str) -> None:
    with pytest.raises(InvalidNumberError, match=r"'\+' only at the start"):
        normalize_number(raw)


def test_plus_alone_has_no_digits() -> None:
    with pytest.raises(InvalidNumberError, match="no digits"):
        normalize_number("+")


def test_trunk_prefix_after_country_code_is_dropped() -> None:
    assert normalize_number("+33 (0)6 12 34 56 78") == "+33612345678"


@pytest.mark.parametrize("raw", ["1" * 33, "+" + "1" * 32, "06 " * 20])
def test_too_long_refused(raw: str) -> None:
    with pytest.raises(InvalidNumberError, match="too long"):
        normalize_number(raw)


def test_32_digits_accepted_as_documented() -> None:
    assert normalize_number("1" * 32) == "1" * 32


def test_non_text_refused() -> None:
    with pytest.raises(InvalidNumberError, match="must be text"):
        normalize_number(612345678)  # type: ignore[arg-type]


def test_every_other_printable_ascii_character_refused() -> None:
    refused = [ch for ch in string.printable if ch not in ALLOWED]
    assert len(refused) == len(string.printable) - len(ALLOWED)
    for ch in refused:
        with pytest.raises(InvalidNumberError) as info:
            normalize_number("0612" + ch + "34")
        assert repr(ch) in str(info.value), ch


def test_dial_string_puts_the_normalized_number() -> None:
    assert dial_string("PJSIP/{number}@trunk", "06 12") == "PJSIP/0612@trunk"
    assert dial_string("Local/{number}@phones", "(0)6-12") == "Local/0612@phones"


@pytest.mark.parametrize("raw", ["0612&PJSIP/999@evil", "06,12", "06@trunk", "06\n12", ""])
def test_dial_string_refuses_bad_numbers(raw: str) -> None:
    with pytest.raises(InvalidNumberError):
        dial_string("PJSIP/{number}@trunk", raw)
