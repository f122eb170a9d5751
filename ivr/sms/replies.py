"""What an SMS reply says: "1"/"OUI"/"YES" (available, maybe with minutes to arrival, "1 20"),
"2"/"NON"/"NO" (not available), or nothing we understand."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from ivr.outcomes import Outcome

_YES = r"1|OUI|O|YES|Y|DISPO|DISPONIBLE|AVAILABLE"
_NO = r"2|NON|N|NO|PAS DISPO|PAS DISPONIBLE|INDISPONIBLE|NOT AVAILABLE|UNAVAILABLE"
_REPLY = re.compile(
    rf"(?P<word>{_YES}|{_NO})"
    r"(?:[ ,.:;/-]+(?P<minutes>[0-9]{1,3})[ ]*(?:MN|MIN|MINS|MINUTES?|M)?)?[ .!]*"
)
#: Minutes to arrival taken from a reply, at most (twelve hours).
MAX_MINUTES = 720


@dataclass(frozen=True)
class Reply:
    """An answer read from an SMS."""

    outcome: Outcome
    minutes: int | None = None


def parse(text: str) -> Reply | None:
    """The answer in `text`, or None: case, accents and spaces do not matter; minutes only
    with a yes."""
    folded = unicodedata.normalize("NFKD", text)
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch)).upper()
    folded = " ".join(folded.split())
    match = _REPLY.fullmatch(folded)
    if match is None:
        return None
    yes = re.fullmatch(_YES, match["word"]) is not None
    minutes = int(match["minutes"]) if match["minutes"] is not None else None
    if minutes is not None and (not yes or minutes > MAX_MINUTES):
        return None
    return Reply(Outcome.AVAILABLE if yes else Outcome.UNAVAILABLE, minutes)
