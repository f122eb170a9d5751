"""The texts of the SMS, in French and English (`ivr/prompts/sms/<language>.json`)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from ivr.campaign.spec import CampaignSpec

TEXTS_DIR = Path(__file__).resolve().parent.parent / "prompts" / "sms"


@cache
def texts(language: str) -> dict[str, str]:
    """The SMS texts of `language` (French for a language without its own)."""
    path = TEXTS_DIR / f"{language}.json"
    if not path.exists():
        path = TEXTS_DIR / "fr.json"
    loaded: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def alert(spec: CampaignSpec, language: str) -> str:
    """The SMS of an alert: the message in `language` (else French), how to answer, the
    callback number; "exercise" first in a drill."""
    t = texts(language)
    message = (spec.messages.get(language) or spec.messages.get("fr") or "").strip()
    if not message:
        message = t["alert_no_text"].format(name=spec.name)
    text = t["alert"].format(message=message)
    if spec.drill:
        text = t["drill"] + text
    if spec.callback_number:
        text += t["callback"].format(number=spec.callback_number)
    return text


def answer(language: str, outcome: str, minutes: int | None = None) -> str:
    """The acknowledgement of an answer given by SMS."""
    t = texts(language)
    if outcome == "available":
        return t["yes_eta"].format(minutes=minutes) if minutes is not None else t["yes"]
    return t["no"]


def already(language: str, outcome: str) -> str:
    """The reply to an answer sent when one was recorded already."""
    t = texts(language)
    return t["already"].format(answer=t.get(outcome, outcome))


def help_text(language: str) -> str:
    """The reply to a text that is no answer."""
    return texts(language)["help"]
