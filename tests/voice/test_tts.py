"""Speech rendering with the real pyttsx3 + espeak-ng + sox: no mocks."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import wave
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

import ivr.voice.tts
from ivr.config import LANGUAGES
from ivr.errors import TtsError
from ivr.voice.prompts import PROMPTS, build_prompts
from ivr.voice.tts import VOICES, Speaker
from ivr.voice.wav import check_wav, wav_duration

MakeSpeaker = Callable[..., Speaker]


@pytest.fixture
async def make_speaker(tmp_path: Path) -> AsyncIterator[MakeSpeaker]:
    """Build Speakers on `tmp_path/sounds` (unless told otherwise) and close them all after."""
    speakers: list[Speaker] = []

    def make(**kwargs: Any) -> Speaker:
        kwargs.setdefault("audio_dir", tmp_path / "sounds")
        speaker = Speaker(**kwargs)
        speakers.append(speaker)
        return speaker

    yield make
    for speaker in speakers:
        await speaker.close()


@pytest.fixture
def speaker(make_speaker: MakeSpeaker) -> Speaker:
    return make_speaker()


def assert_asterisk_wav(path: Path) -> float:
    with wave.open(str(path), "rb") as wav:
        assert wav.getframerate() == 8000
        assert wav.getnchannels() == 1
        assert wav.getsampwidth() == 2
        assert wav.getcomptype() == "NONE"
    return check_wav(path)


def worker_pid(speaker: Speaker) -> int | None:
    proc = speaker._proc
    return None if proc is None else proc.pid


def test_every_configured_language_has_a_voice_and_prompts() -> None:
    assert set(VOICES) == set(LANGUAGES) == set(PROMPTS)
    assert PROMPTS["fr"].keys() == PROMPTS["en"].keys()


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("fr", "Plan blanc déclenché. Merci de rappeler le standard."),
        ("en", "White plan activated. Please call the switchboard back."),
    ],
)
async def test_render_gives_an_asterisk_wav(speaker: Speaker, language: str, text: str) -> None:
    path = await speaker.render(text, language)
    assert path.parent == speaker.cache_dir
    assert path.suffix == ".wav" and len(path.stem) == 32
    duration = assert_asterisk_wav(path)
    # Eight words at 150 words per minute, plus pauses.
    assert 2.0 < duration < 8.0
    assert wav_duration(path) == duration


async def test_same_text_is_served_from_the_cache(
    speaker: Speaker, make_speaker: MakeSpeaker
) -> None:
    first = await speaker.render("Bonjour.", "fr")
    mtime = first.stat().st_mtime_ns
    second = await speaker.render("Bonjour.", "fr")
    assert second == first
    assert (speaker.misses, speaker.hits) == (1, 1)
    assert first.stat().st_mtime_ns == mtime

    # The cache is on disk: a new process (a new Speaker) reuses it without starting a worker.
    again = make_speaker()
    assert await again.render("Bonjour.", "fr") == first
    assert (again.misses, again.hits) == (0, 1)
    assert worker_pid(again) is None


async def test_voice_and_rate_are_part_of_the_cache_key(make_speaker: MakeSpeaker) -> None:
    normal, fast = make_speaker(rate=150), make_speaker(rate=200)
    text = "Un, deux, trois, quatre, cinq, six."
    slow_fr = await normal.render(text, "fr")
    slow_en = await normal.render(text, "en")
    fast_fr = await fast.render(text, "fr")
    assert len({slow_fr, slow_en, fast_fr}) == 3
    assert wav_duration(fast_fr) < 0.9 * wav_duration(slow_fr)


async def test_concurrent_renders_each_get_their_own_file(speaker: Speaker) -> None:
    # pyttsx3 silently drops all but the last save queued per run: only serialization
    # gives four files, each holding its own text.
    texts = [
        "Un.",
        "Un, deux, trois.",
        "Un, deux, trois, quatre, cinq, six.",
        "Un, deux, trois, quatre, cinq, six, sept, huit, neuf, dix, onze, douze.",
    ]
    paths = await asyncio.gather(*(speaker.render(text, "fr") for text in texts))
    assert len(set(paths)) == 4
    assert paths == [speaker.cache_path(text, "fr") for text in texts]
    durations = [assert_asterisk_wav(path) for path in paths]
    assert durations == sorted(durations), "a file holds another request's text"
    assert (speaker.misses, speaker.hits) == (4, 0)


async def test_concurrent_renders_of_one_text_render_once(speaker: Speaker) -> None:
    paths = await asyncio.gather(*(speaker.render("Au revoir.", "fr") for _ in range(3)))
    assert len(set(paths)) == 1
    assert (speaker.misses, speaker.hits) == (1, 2)


async def test_no_temporary_file_is_left_behind(speaker: Speaker) -> None:
    good = await speaker.render("Bonjour.", "fr")
    with pytest.raises(TtsError, match="only 0.0"):
        await speaker.render(".", "fr")  # espeak-ng says nothing
    with pytest.raises(TtsError, match="silent"):
        await speaker.render("...", "fr")  # espeak-ng pauses and says nothing
    assert list(speaker.cache_dir.iterdir()) == [good]


async def test_timeout_kills_the_worker_and_the_next_render_restarts_it(
    make_speaker: MakeSpeaker,
) -> None:
    hasty = make_speaker(timeout=0.001)
    with pytest.raises(TtsError, match="longer than 0.001 s"):
        await hasty.render("Bonjour.", "fr")
    assert worker_pid(hasty) is None
    assert not hasty.cache_path("Bonjour.", "fr").exists()

    speaker = make_speaker()
    assert_asterisk_wav(await speaker.render("Bonjour.", "fr"))
    first_pid = worker_pid(speaker)

    # A timeout in the middle of a request, with the worker up and busy.
    speaker.timeout = 0.001
    with pytest.raises(TtsError, match="killed"):
        await speaker.render("Une autre phrase.", "fr")
    assert worker_pid(speaker) is None
    speaker.timeout = 30.0
    assert_asterisk_wav(await speaker.render("Une autre phrase.", "fr"))
    assert worker_pid(speaker) not in (None, first_pid)


async def test_a_worker_that_died_is_restarted(speaker: Speaker) -> None:
    await speaker.render("Bonjour.", "fr")
    proc = speaker._proc
    assert proc is not None
    os.kill(proc.pid, signal.SIGKILL)
    await proc.wait()
    assert_asterisk_wav(await speaker.render("Bonsoir.", "fr"))
    assert worker_pid(speaker) not in (None, proc.pid)


async def test_a_worker_dying_mid_render_is_reported_and_replaced(speaker: Speaker) -> None:
    await speaker.render("Bonjour.", "fr")
    proc = speaker._proc
    assert proc is not None
    # About five minutes of speech: espeak-ng needs well over a second for it.
    render = asyncio.create_task(speaker.render("Ceci est un long message. " * 190, "fr"))
    await asyncio.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    with pytest.raises(TtsError, match="died while rendering.*SIGKILL"):
        await render
    assert list(speaker.cache_dir.glob(".*")) == []
    assert_asterisk_wav(await speaker.render("Bonsoir.", "fr"))


@pytest.mark.parametrize(
    ("text", "language", "match"),
    [
        ("", "fr", "empty"),
        (" \n\t", "fr", "empty"),
        ("a" * 5001, "fr", "too long"),
        ("Bonjour\0", "fr", "NUL"),
        ("Hallo", "de", "unknown language"),
    ],
)
async def test_bad_requests_are_refused(
    speaker: Speaker, text: str, language: str, match: str
) -> None:
    with pytest.raises(TtsError, match=match):
        await speaker.render(text, language)
    assert speaker.misses == 0
    assert worker_pid(speaker) is None


async def test_missing_sox_is_explained(speaker: Speaker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ivr.voice.tts, "SOX", "sox-is-not-installed")
    with pytest.raises(TtsError, match="install sox"):
        await speaker.render("Bonjour.", "fr")
    # Neither the 22 kHz intermediate nor a partial file is left behind.
    assert list(speaker.cache_dir.iterdir()) == []


async def test_build_prompts_installs_every_prompt(speaker: Speaker) -> None:
    for language in ("fr", "en"):
        directory = await build_prompts(speaker, language)
        assert directory == speaker.audio_dir / "prompts" / language
        assert sorted(p.name for p in directory.iterdir()) == sorted(
            f"{name}.wav" for name in PROMPTS[language]
        )
        for name in PROMPTS[language]:
            assert_asterisk_wav(directory / f"{name}.wav")
    assert speaker.misses == 2 * len(PROMPTS["fr"])

    # Re-running leaves unchanged prompts alone and repairs a changed one.
    menu = speaker.audio_dir / "prompts" / "fr" / "menu.wav"
    drill = speaker.audio_dir / "prompts" / "fr" / "drill.wav"
    drill_mtime = drill.stat().st_mtime_ns
    menu.write_bytes(b"damaged")
    await build_prompts(speaker, "fr")
    assert drill.stat().st_mtime_ns == drill_mtime
    assert menu.read_bytes() == speaker.cache_path(PROMPTS["fr"]["menu"], "fr").read_bytes()


async def test_build_prompts_refuses_an_unknown_language(speaker: Speaker) -> None:
    with pytest.raises(TtsError, match="no prompts"):
        await build_prompts(speaker, "de")


def test_wav_duration_refuses_a_file_that_is_not_a_wav(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    path.write_bytes(b"not a wav file")
    with pytest.raises(TtsError, match="not a readable WAV"):
        wav_duration(path)


def test_worker_protocol(tmp_path: Path) -> None:
    def request(text: str, voice: str = VOICES["fr"], rate: int = 150, out: str = "") -> str:
        out = out or str(tmp_path / f"{len(requests)}.wav")
        return json.dumps({"text": text, "voice": voice, "rate": rate, "out": out}) + "\n"

    requests: list[str] = []
    # First request of a fresh worker, and a long one: pyttsx3 used to return before writing.
    requests.append(request(PROMPTS["fr"]["menu"]))
    requests.append(request("Hello.", voice="xx/nope"))
    requests.append(request("Bonjour.", out=str(tmp_path / "missing" / "x.wav")))
    requests.append(request("Un deux trois quatre cinq six sept huit.", rate=300))
    requests.append(request("Un deux trois quatre cinq six sept huit.", rate=100))
    result = subprocess.run(
        [sys.executable, "-m", "ivr.voice.tts_worker"],
        input="".join(requests),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    replies = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(replies) == 1 + len(requests)
    assert replies[0]["ready"] is True
    assert {VOICES["fr"], VOICES["en"]} <= set(replies[0]["voices"])
    assert replies[1] == {"ok": True}
    assert replies[2]["ok"] is False and "unknown voice" in replies[2]["error"]
    assert replies[3]["ok"] is False and "cannot write" in replies[3]["error"]
    assert replies[4] == replies[5] == {"ok": True}
    # pyttsx3's own chatter went to stderr.
    assert "Audio saved to" in result.stderr

    with wave.open(str(tmp_path / "0.wav"), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (22050, 1, 2)
        assert wav.getnframes() / wav.getframerate() > 6.0
    fast, slow = (tmp_path / "3.wav", tmp_path / "4.wav")
    with wave.open(str(fast), "rb") as f, wave.open(str(slow), "rb") as s:
        assert s.getnframes() > 2 * f.getnframes()


async def test_import_audio_converts_a_recording(speaker: Speaker, tmp_path: Path) -> None:
    # A "recording" as a phone or a laptop makes it: 44.1 kHz stereo.
    spoken = await speaker.render("Message enregistré par le directeur.", "fr")
    recording = tmp_path / "director.wav"
    await asyncio.to_thread(
        subprocess.run, ["sox", str(spoken), "-r", "44100", "-c", "2", str(recording)], check=True
    )
    imported = await speaker.import_audio(recording)
    assert imported.parent == speaker.audio_dir / "recordings"
    assert abs(assert_asterisk_wav(imported) - wav_duration(spoken)) < 0.05, "same length"
    assert await speaker.import_audio(recording) == imported, "same content, same file"

    silence = tmp_path / "silence.wav"
    await asyncio.to_thread(
        subprocess.run, ["sox", "-n", "-r", "8000", str(silence), "trim", "0", "2"], check=True
    )
    with pytest.raises(TtsError):
        await speaker.import_audio(silence)
    with pytest.raises(TtsError, match="cannot read"):
        await speaker.import_audio(tmp_path / "missing.wav")
