"""The speech worker: one pyttsx3 engine serving render requests (`python -m ivr.tts_worker`).

pyttsx3 is not safe to drive from several threads and drops every `save_to_file` but the last
one queued before `runAndWait()`, so `ivr.tts.Speaker` keeps exactly one of these processes and
sends it one request at a time. A separate process also lets the server kill a hung render.

Protocol, one JSON object per line:

- at start the worker writes `{"ready": true, "voices": [...]}` (or `{"ready": false, "error": ...}`
  and exits 1 when the engine cannot start);
- then for each request `{"text": str, "voice": str, "rate": int, "out": str}` on stdin it writes
  a 22050 Hz mono 16-bit WAV to `out` and answers `{"ok": true}` or `{"ok": false, "error": str}`.

It exits 0 at end of input. Replies go to a private copy of the original stdout: pyttsx3 prints
"Audio saved to ..." and libespeak-ng may write to fd 1 too, so fd 1 is pointed at stderr.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import IO, Any

#: Smallest file the espeak-ng driver can write for real speech: a 44-byte header plus samples.
_MIN_WAV_BYTES = 44 + 2


class _Renderer:
    """One pyttsx3 engine on the espeak-ng driver, with its errors captured."""

    def __init__(self) -> None:
        import pyttsx3

        self._engine: Any = pyttsx3.init("espeak")
        self.voices: frozenset[str] = frozenset(v.id for v in self._engine.getProperty("voices"))
        self._errors: list[BaseException] = []
        # pyttsx3 reports a failing queued command (a voice espeak-ng refuses, for example) only
        # through this callback and then carries on with the old setting.
        self._engine.connect("error", self._on_error)

    def _on_error(self, name: object = None, exception: BaseException | None = None) -> None:
        self._errors.append(exception or RuntimeError("unknown pyttsx3 error"))

    def render(self, text: str, voice: str, rate: int, out: Path) -> None:
        """Write `text` spoken by `voice` at `rate` words per minute to `out`; raise on failure."""
        if voice not in self.voices:
            raise ValueError(f"unknown voice {voice!r}")
        self._errors.clear()
        out.unlink(missing_ok=True)
        self._engine.setProperty("voice", voice)
        self._engine.setProperty("rate", rate)
        # Exactly one save per run: pyttsx3 keeps only the last save queued before runAndWait().
        self._engine.save_to_file(text, str(out))
        self._engine.runAndWait()
        if self._errors:
            raise RuntimeError("; ".join(str(exc) for exc in self._errors))
        # The driver writes the file from a ctypes callback, where an exception is only printed.
        if not out.is_file() or out.stat().st_size < _MIN_WAV_BYTES:
            raise RuntimeError(f"espeak-ng wrote no audio to {out}")


def _parse(line: bytes) -> tuple[str, str, int, Path]:
    request = json.loads(line)
    if not isinstance(request, dict):
        raise ValueError("request must be a JSON object")
    text, voice, rate, out = (request.get(k) for k in ("text", "voice", "rate", "out"))
    if not isinstance(text, str) or not text.strip():
        raise ValueError("'text' must be a non-empty string")
    if not isinstance(voice, str):
        raise ValueError("'voice' must be a string")
    if not isinstance(rate, int) or isinstance(rate, bool) or not 20 <= rate <= 1000:
        raise ValueError("'rate' must be a whole number of words per minute (20-1000)")
    if not isinstance(out, str) or not os.path.isabs(out):
        raise ValueError("'out' must be an absolute path")
    return text, voice, rate, Path(out)


def _reply(channel: IO[str], message: dict[str, Any]) -> None:
    channel.write(json.dumps(message) + "\n")
    channel.flush()


def main() -> int:
    """Serve render requests from stdin until end of input."""
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    try:
        renderer = _Renderer()
    except Exception as exc:
        _reply(channel, {"ready": False, "error": f"{type(exc).__name__}: {exc}"})
        return 1
    _reply(channel, {"ready": True, "voices": sorted(renderer.voices)})
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        try:
            renderer.render(*_parse(line))
        except Exception as exc:
            _reply(channel, {"ok": False, "error": f"{type(exc).__name__}: {exc}"})
        else:
            _reply(channel, {"ok": True})
    return 0


if __name__ == "__main__":
    sys.exit(main())
