"""How a text travels as SMS: GSM 03.38 when every character is in its alphabet (160
characters, 153 per part of a long message; `^{}[]~|\\€` take two), UCS-2 otherwise (70, 67
per part; an emoji takes two). French é, è, à, ù are GSM; ç, ê, â, î, ô, û are not and turn
the whole text into UCS-2. A long message is cut into parts that carry a concatenation header
(UDH: reference, count, number), never inside a two-septet character or a surrogate pair.
"""

from __future__ import annotations

import secrets
from typing import Literal

#: GSM 03.38's default alphabet, in code order (0x1B is the escape to the extension table).
_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_CODE = {ch: code for code, ch in enumerate(_TABLE) if ch != "\x1b"}
_EXTENSION = {"\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F, "[": 0x3C, "~": 0x3D,
              "]": 0x3E, "|": 0x40, "€": 0x65}  # fmt: skip
_FROM_EXTENSION = {code: ch for ch, code in _EXTENSION.items()}
#: SMPP data_coding values.
GSM, UCS2 = 0, 8

Encoding = Literal["gsm", "ucs2"]


def _units(text: str) -> tuple[Encoding, list[bytes]]:
    """The text as indivisible units: one or two septets (GSM), one or two UTF-16 units."""
    if all(ch in _CODE or ch in _EXTENSION for ch in text):
        return "gsm", [
            bytes([0x1B, _EXTENSION[ch]]) if ch in _EXTENSION else bytes([_CODE[ch]]) for ch in text
        ]
    return "ucs2", [ch.encode("utf-16-be") for ch in text]


def _parts(units: list[bytes], single: int, part: int) -> list[bytes]:
    if sum(map(len, units)) <= single:
        return [b"".join(units)]
    parts, current = [], b""
    for unit in units:
        if len(current) + len(unit) > part:
            parts.append(current)
            current = b""
        current += unit
    return [*parts, current]


def split(text: str) -> tuple[Encoding, list[bytes]]:
    """(encoding, the payload of each SMS): GSM as one septet per byte, UCS-2 as UTF-16-BE."""
    kind, units = _units(text)
    if kind == "gsm":
        return kind, _parts(units, 160, 153)
    return kind, _parts(units, 140, 134)


def segments(text: str) -> tuple[Encoding, int]:
    """(encoding, number of SMS) for `text`."""
    kind, parts = split(text)
    return kind, len(parts)


def short_messages(text: str) -> tuple[int, list[bytes], bool]:
    """(data_coding, each part's short_message, whether the parts carry a UDH) for SMPP."""
    kind, parts = split(text)
    coding = GSM if kind == "gsm" else UCS2
    if len(parts) == 1:
        return coding, parts, False
    ref = secrets.randbelow(256)
    total = len(parts)
    return coding, [bytes([5, 0, 3, ref, total, n]) + p for n, p in enumerate(parts, 1)], True


def decode(data: bytes, coding: int) -> str:
    """A received short_message as text (GSM unpacked septets, UCS-2, else Latin-1)."""
    if coding == UCS2:
        return data.decode("utf-16-be", errors="replace")
    if coding == GSM:
        out, escape = [], False
        for byte in data:
            if escape:
                out.append(_FROM_EXTENSION.get(byte, " "))
                escape = False
            elif byte == 0x1B:
                escape = True
            else:
                out.append(_TABLE[byte & 0x7F])
        return "".join(out)
    return data.decode("latin-1")
