"""How many SMS a text takes: GSM 03.38 when every character is in its alphabet (160
characters, 153 per part of a long message; `^{}[]~|\\€` count twice), UCS-2 otherwise (70, 67
per part; an emoji counts twice). French accents such as é, è, à, ù are GSM; ç, ê, â, î, ô, û
are not, and turn the whole text into UCS-2."""

from __future__ import annotations

import math
from typing import Literal

_GSM = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENSION = set("^{}\\[~]|€\f")


def segments(text: str) -> tuple[Literal["gsm", "ucs2"], int]:
    """(encoding, number of SMS) for `text`."""
    if all(ch in _GSM or ch in _GSM_EXTENSION for ch in text):
        septets = sum(2 if ch in _GSM_EXTENSION else 1 for ch in text)
        return "gsm", 1 if septets <= 160 else math.ceil(septets / 153)
    units = len(text.encode("utf-16-le")) // 2
    return "ucs2", 1 if units <= 70 else math.ceil(units / 67)
