"""WAV files as Asterisk plays them: 8 kHz mono 16-bit PCM, checked whole and not silent, and
written under their final name only when complete.
"""

from __future__ import annotations

import array
import os
import secrets
import sys
import wave
from pathlib import Path

from ivr.errors import TtsError

#: Asterisk's `wav` format: signed linear, 8000 Hz, mono, 16-bit.
SAMPLE_RATE = 8000
#: Shorter output means espeak-ng said nothing useful (punctuation only, for example).
MIN_DURATION = 0.2
#: Peak sample value below which a file counts as silence (about -50 dBFS).
SILENCE_PEAK = 100


def wav_duration(path: Path) -> float:
    """Seconds of audio in the WAV file at `path`; raise TtsError if it is not a readable WAV."""
    rate, _, _, frames = _wav_format(path)
    return frames / rate


def _wav_format(path: Path) -> tuple[int, int, int, int]:
    """(frame rate, channels, bytes per sample, frames) from the header of a WAV file."""
    try:
        with wave.open(str(path), "rb") as wav:
            rate, channels = wav.getframerate(), wav.getnchannels()
            width, frames = wav.getsampwidth(), wav.getnframes()
    except (OSError, EOFError, wave.Error) as exc:
        raise TtsError(f"{path} is not a readable WAV file: {exc}", path=str(path)) from exc
    if rate <= 0:
        raise TtsError(f"{path} is not a readable WAV file: frame rate 0", path=str(path))
    return rate, channels, width, frames


def check_wav(path: Path) -> float:
    """Check that `path` is a complete 8 kHz mono 16-bit WAV of at least MIN_DURATION seconds.

    Return its duration; raise TtsError naming what is wrong.
    """
    rate, channels, width, frames = _wav_format(path)
    if (rate, channels, width) != (SAMPLE_RATE, 1, 2):
        raise TtsError(
            f"{path}: expected {SAMPLE_RATE} Hz mono 16-bit, "
            f"got {rate} Hz, {channels} channel(s), {8 * width}-bit",
            path=str(path),
        )
    # The header is written before the samples: a file cut short (disk full, power loss)
    # still announces the full length, so compare with the bytes actually there.
    if path.stat().st_size < 44 + frames * width:
        raise TtsError(f"{path}: file is shorter than its header says", path=str(path))
    duration = frames / rate
    if duration < MIN_DURATION:
        raise TtsError(
            f"{path}: only {duration:.3f} s of audio (at least {MIN_DURATION} s expected)",
            path=str(path),
        )
    return duration


def check_not_silent(path: Path) -> None:
    # Punctuation alone ("...") gives a valid file of pure silence: a call would say nothing.
    with wave.open(str(path), "rb") as wav:
        samples = array.array("h", wav.readframes(wav.getnframes()))
    if sys.byteorder == "big":
        samples.byteswap()  # WAV is little-endian
    if not samples or max(max(samples), -min(samples)) < SILENCE_PEAK:
        raise TtsError(f"{path}: the rendered audio is silent", path=str(path))


def is_good_wav(path: Path) -> bool:
    try:
        check_wav(path)
    except TtsError:
        return False
    return True


def temp_name(final: Path, tag: str) -> Path:
    # Same directory, so os.replace() is atomic; a leading dot keeps it out of globs, and
    # the file is created by its writer with the usual umask (mkstemp would make it 0600,
    # unreadable by the asterisk user once renamed).
    return final.with_name(f".{final.stem}.{secrets.token_hex(6)}.{tag}.wav")


def fsync(path: Path) -> None:
    # A crash right after os.replace() must not leave an empty file under the final name.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: Audio files hold people's voices (the director's recordings) and the alert's words: readable
#: by the service and by Asterisk's group (give the audio directory that group, and its setgid
#: bit so new files inherit it), by no one else.
FILE_MODE = 0o640
DIR_MODE = 0o750


def audio_dir(path: Path) -> Path:
    """Create `path` (and its parents) closed to others, if it does not exist yet."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    return path


def publish(temp: Path, final: Path) -> None:
    """Move a complete, checked file under its final name, readable by the owner and group
    only, and on disk before its name is."""
    os.chmod(temp, FILE_MODE)
    fsync(temp)
    os.replace(temp, final)
