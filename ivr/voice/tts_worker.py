"""The speech worker: one pyttsx3 engine serving render requests (`python -m
ivr.voice.tts_worker`).

pyttsx3 is not safe to drive from several threads and drops every `save_to_file` but the last
one queued before `runAndWait()`, so `ivr.voice.tts.Speaker` keeps exactly one of these
processes and sends it one request at a time.
A separate process also lets the server kill a hung render.

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
import threading
from pathlib import Path
from typing import IO, Any

#: Smallest file the espeak-ng driver can write for real speech: a 44-byte header plus samples.
_MIN_WAV_BYTES = 44 + 2


class _Renderer:
    """One pyttsx3 engine on the espeak-ng driver, driven so that every render is complete.

    Two traps in pyttsx3 2.99 with libespeak-ng's retrieval mode, which synthesizes on a thread
    of its own:

    - `runAndWait()` starts by calling the driver's `stop()`, which cancels whatever
      libespeak-ng is still doing. The rate set just before is such a job, and that cancel
      racing with the synthesis that follows gave files without speech (2 requests in 200).
      So the rate is applied and waited for (`Synchronize`) before the run.
    - Until its first run the engine counts as busy and defers every command into the run,
      and that run returns before the file is written (15 first requests in 20 found no file).
      After one empty run at start-up, commands act at once and `runAndWait()` returns only
      once the driver has written the file.
    """

    def __init__(self) -> None:
        # Imported here so that a missing pyttsx3 or libespeak-ng becomes a "ready: false" reply.
        import pyttsx3
        from pyttsx3.drivers import _espeak

        self._engine: Any = pyttsx3.init("espeak")
        self._espeak: Any = _espeak
        self.voices: frozenset[str] = frozenset(v.id for v in self._engine.getProperty("voices"))
        self._errors: list[BaseException] = []
        self._finished = threading.Event()
        # pyttsx3 reports a failing command (a voice espeak-ng refuses, for example) only
        # through this callback and then carries on with the old setting.
        self._engine.connect("error", self._on_error)
        self._engine.connect("finished-utterance", self._on_finished)
        self._espeak.Synchronize()  # the driver's constructor queued its default rate and volume
        self._engine.runAndWait()  # nothing to say: this only leaves the initial busy state

    def _on_error(self, name: object = None, exception: BaseException | None = None) -> None:
        self._errors.append(exception or RuntimeError("unknown pyttsx3 error"))

    def _on_finished(self, name: object = None, completed: bool = False) -> None:
        # Called on libespeak-ng's thread once the driver has written and closed the file.
        if completed:
            self._finished.set()

    def render(self, text: str, voice: str, rate: int, out: Path) -> None:
        """Write `text` spoken by `voice` at `rate` words per minute to `out`; raise on failure."""
        if voice not in self.voices:
            raise ValueError(f"unknown voice {voice!r}")
        if self._engine.isBusy():
            # Commands would be deferred into the run, where the cancel race lives.
            raise RuntimeError("the pyttsx3 engine is busy between renders")
        if not os.access(out.parent, os.W_OK | os.X_OK):
            # The driver would fail inside its callback, unseen, and never end the run.
            raise ValueError(f"cannot write to directory {out.parent}")
        self._errors.clear()
        self._finished.clear()
        out.unlink(missing_ok=True)
        self._engine.setProperty("voice", voice)
        self._engine.setProperty("rate", rate)
        self._espeak.Synchronize()
        if self._errors:
            raise RuntimeError("; ".join(str(exc) for exc in self._errors))
        # Exactly one save per run: pyttsx3 keeps only the last save queued before runAndWait().
        self._engine.save_to_file(text, str(out))
        self._engine.runAndWait()
        self._espeak.Synchronize()  # let libespeak-ng's thread finish before the next request
        if self._errors:
            raise RuntimeError("; ".join(str(exc) for exc in self._errors))
        # An exception in the driver's callback is only printed to stderr. (One raised while
        # writing, as on a full disk, even leaves runAndWait() looping: the parent's timeout ends
        # that, with the stderr lines in its message.)
        if not self._finished.is_set():
            raise RuntimeError(f"espeak-ng finished without writing {out} (see stderr)")
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
