"""`ivr prompts build` as an operator runs it: the real TTS (pyttsx3 + espeak-ng + sox)."""

from __future__ import annotations

import array
import os
import subprocess
import sys
import wave
from pathlib import Path

from ivr.voice.prompts import PROMPTS


def ivr(*args: str, audio: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    environ.update(IVR_AUDIO_DIR=str(audio), **env)
    return subprocess.run(
        [sys.executable, "-m", "ivr", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def peak(path: Path) -> int:
    """Check the file is what Asterisk plays as `.wav` (8 kHz mono 16-bit); its loudest sample."""
    with wave.open(str(path), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        samples = array.array("h", wav.readframes(wav.getnframes()))
    assert len(samples) >= 8000 * 0.2, path
    if sys.byteorder == "big":
        samples.byteswap()
    return max(max(samples), -min(samples))


def test_build_renders_every_prompt_then_leaves_them_alone(tmp_path: Path) -> None:
    audio = tmp_path / "audio"
    audio.mkdir()
    first = ivr("prompts", "build", audio=audio)
    assert first.returncode == 0, first.stderr
    for language, texts in PROMPTS.items():
        files = sorted((audio / "prompts" / language).glob("*.wav"))
        assert [f.stem for f in files] == sorted(texts), language
        for file in files:
            assert peak(file) > 1000, f"{file} is silent"
            assert f"{language}/{file.stem}: rendered" in first.stdout
    assert "total: " in first.stdout

    menu = audio / "prompts" / "en" / "menu.wav"
    menu.write_bytes(b"damaged")
    again = ivr("prompts", "build", "--lang", "en", audio=audio)
    assert again.returncode == 0, again.stderr
    assert "en/menu: rendered" in again.stdout
    assert f"en: {len(PROMPTS['en'])} prompts, 1 rendered" in again.stdout
    assert "fr/" not in again.stdout
    peak(menu)


def test_missing_tts_is_one_clear_line_and_exit_code_4(tmp_path: Path) -> None:
    # sox is looked up on PATH; without it nothing can be rendered.
    result = ivr("prompts", "build", "--lang", "fr", audio=tmp_path, PATH=str(tmp_path / "no"))
    assert result.returncode == 4
    assert result.stderr.strip().splitlines() == [
        "ivr: error: the 'sox' program is missing; install sox (Debian/Ubuntu: apt install sox)"
    ]
    assert not list(tmp_path.glob("prompts/fr/*.wav"))
