"""The fixed spoken prompts of the call flow, and their installation as sound files.

Dialplans play them as `<audio_dir>/prompts/<language>/<name>` (no extension: Asterisk picks
the `.wav`). The menu names the keys the dialplan accepts: 1 available, 2 not available,
star to hear the message again.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from ivr.errors import TtsError
from ivr.voice.tts import Speaker
from ivr.voice.wav import audio_dir, publish

#: Where the prompt texts live: one JSON file per language, prompt name -> text, so that
#: translators edit data, not code.
TEXTS_DIR = Path(__file__).resolve().parent.parent / "prompts"


def _load_texts() -> dict[str, dict[str, str]]:
    texts: dict[str, dict[str, str]] = {}
    for path in sorted(TEXTS_DIR.glob("*.json")):
        texts[path.stem] = json.loads(path.read_text(encoding="utf-8"))
    return texts


#: language -> prompt name -> text. Every language has every name.
PROMPTS: dict[str, dict[str, str]] = _load_texts()


def prompt_dir(audio_dir: Path, language: str) -> Path:
    """Where the prompts of `language` are installed: `audio_dir/prompts/<language>`."""
    return audio_dir / "prompts" / language


async def build_prompts(speaker: Speaker, language: str) -> Path:
    """Render every prompt of `language` and install it as `<dir>/<name>.wav`; return `<dir>`.

    A file is replaced only when its content changes, so re-running at every start-up
    leaves installed prompts (and their modification times) alone.
    """
    await install_prompts(speaker, language)
    return prompt_dir(speaker.audio_dir, language)


async def install_prompts(speaker: Speaker, language: str) -> dict[str, bool]:
    """`build_prompts()`, telling for each prompt name whether its file was (re)written."""
    try:
        texts = PROMPTS[language]
    except KeyError:
        raise TtsError(
            f"no prompts for language {language!r}; expected one of {', '.join(PROMPTS)}",
            language=language,
        ) from None
    target_dir = prompt_dir(speaker.audio_dir, language)
    audio_dir(target_dir)
    written: dict[str, bool] = {}
    for name, text in texts.items():
        rendered = await speaker.render(text, language)
        written[name] = _install(rendered, target_dir / f"{name}.wav")
    return written


def _install(source: Path, target: Path) -> bool:
    new = source.read_bytes()
    try:
        if target.read_bytes() == new:
            return False
    except FileNotFoundError:
        pass
    # Asterisk may open the prompt at any moment: it must see the old file or the new one,
    # never half of one. A copy, not a link, so the prompt survives a cache clean-up.
    temp = target.with_name(f".{target.stem}.{secrets.token_hex(6)}.tmp")
    try:
        temp.write_bytes(new)
        publish(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    return True
