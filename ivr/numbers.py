"""Phone numbers: the one gate every number passes before it can reach a dial string."""

from __future__ import annotations

import re

from ivr.errors import InvalidNumberError

#: Visual separators HR exports put in numbers ("06 12 34 56 78", "06.12.34.56.78").
_SEPARATORS = re.compile(r"[ .\-()]")
#: What may remain: digits, a leading '+', and the keypad's '*' and '#'.
_VALID = re.compile(r"(?=.{1,32}$)\+?[0-9*#]+")
#: A whole dial string given as is (`ivr selftest` routes): TECH/resource, nothing that could
#: split an AMI header or a dialplan argument (spaces, line breaks, ',', ';', '&', braces).
DIAL_STRING = re.compile(r"[A-Za-z0-9]{2,20}/[A-Za-z0-9@:._/+*#=\-]{1,200}")
#: "+33 (0)6 12 ...": the trunk prefix in parentheses after a country code is not dialled.
_TRUNK_PREFIX = re.compile(r"^(\s*\+\d{1,3})\s*\(0\)")
#: Parentheses only as a pair around digits ("(0)6 12", "(01) 23"): "0612)" is a typo or worse.
_PARENTHESES = re.compile(r"[^()]*(?:\([\d\s]*\)[^()]*)*")
#: Characters that are not text: controls, and the format characters that reorder or hide
#: text on screen (U+202E right-to-left override, zero-width joiners, BOM...).
UNPRINTABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f"
    "\ufeff\ufff9-\ufffb]"
)


def normalize_number(raw: str) -> str:
    """Return the dialable form of `raw`, or raise InvalidNumberError saying why.

    Only digits, '*', '#' and one leading '+' survive; visual separators are removed. Anything
    else (dial-string metacharacters such as '&', ',', '/', '@', ';', '|', quotes, line breaks)
    is refused rather than stripped: a number that needed cleaning of that kind is not trusted.
    """
    if not isinstance(raw, str):
        raise InvalidNumberError(f"phone number must be text, got {type(raw).__name__}")
    if not _PARENTHESES.fullmatch(raw):
        raise InvalidNumberError(
            f"phone number {raw!r}: parentheses only in pairs around digits", number=raw
        )
    number = _SEPARATORS.sub("", _TRUNK_PREFIX.sub(r"\1", raw.strip(" ")))
    if not number:
        raise InvalidNumberError("phone number is empty", number=raw)
    if not _VALID.fullmatch(number):
        bad = sorted(
            {ch for ch in number if not (ch.isdigit() and ch.isascii()) and ch not in "+*#"}
        )
        if bad:
            shown = ", ".join(repr(ch) for ch in bad)
            raise InvalidNumberError(
                f"phone number {raw!r} holds characters not allowed in a number: {shown} "
                "(only 0-9, a leading +, * and #)",
                number=raw,
            )
        if len(number) > 32:
            raise InvalidNumberError(f"phone number {raw!r} is too long (32 at most)", number=raw)
        if number == "+":
            raise InvalidNumberError(f"phone number {raw!r} has no digits", number=raw)
        raise InvalidNumberError(f"phone number {raw!r}: '+' only at the start", number=raw)
    return number


def dial_string(template: str, number: str) -> str:
    """Put a validated number into the dial template (`PJSIP/{number}@trunk`)."""
    return template.replace("{number}", normalize_number(number))


def number_key(number: str) -> str:
    """How a caller id is matched to a roster number: the last 9 digits (a French number
    without its 0 or +33), so "+33 6 12 34 56 78" finds "0612345678".

    Not phonenumbers' national-number match: caller ids come as each trunk writes them
    (0611..., +33611..., 0033611..., 33611..., an outside-line digit in front) and rosters hold
    numbers without a country, so parsing needs a region the configuration does not have yet;
    a suffix matches all of these. It assumes national numbers of 9 digits or more (France).
    """
    return "".join(ch for ch in number if ch.isdigit())[-9:]


#: French mobile numbers (06, 07), nationally or with +33 / 0033: where an SMS can go.
_MOBILE = re.compile(r"(?:0|\+33|0033)[67][0-9]{8}")


def is_mobile(number: str) -> bool:
    """True for a French mobile number (`0612345678`, `+33612345678`): the default target of a
    person's SMS. A roster names any other number in its `sms` column."""
    return bool(_MOBILE.fullmatch(number))
