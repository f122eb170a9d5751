"""What a call of a campaign plays as its message: one builder for the alert calls (the dialer)
and the callback line, so both say exactly the same thing.

No speech engine here: the caller passes `speak`, which renders a text in a language and
returns the file Asterisk plays (`ivr.voice` does that).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ivr.campaign.spec import CampaignSpec
from ivr.config import Config

#: Renders `text` in `language`; returns the audio as Asterisk plays it (no extension).
Speak = Callable[[str, str], Awaitable[str]]


async def campaign_message(
    spec: CampaignSpec, language: str, config: Config, speak: Speak, prompts: str
) -> str | None:
    """What a call of the campaign plays as its message in `language`: the recording of that
    language, else its text spoken by `speak(text, language)`; a drill puts "this is an
    exercise" (from the `prompts` directory) before and after. None: the campaign has no
    message in that language."""
    text = spec.messages.get(language, "")
    if language in spec.recordings:
        recording = config.audio_dir / spec.recordings[language]
        message = config.asterisk_path(recording.with_suffix(""))
    elif text.strip():
        message = await speak(text, language)
    else:
        return None
    if spec.drill:
        message = f"{prompts}/drill&{message}&{prompts}/drill"
    return message


def message_languages(spec: CampaignSpec) -> list[str]:
    """The languages `spec` may have a message in (texts and recordings)."""
    return sorted({*spec.messages, *spec.recordings})
