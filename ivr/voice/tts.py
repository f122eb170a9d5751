"""Offline text-to-speech: text in, a WAV file Asterisk can play out.

`Speaker.render()` sends text to one long-lived `ivr.voice.tts_worker` process (pyttsx3 on
espeak-ng), converts its 22050 Hz output with sox to 8000 Hz mono 16-bit PCM, the format
Asterisk plays as `.wav` without transcoding, and caches the result under `audio_dir/tts/`
keyed on what was said, by which voice, at which rate. Files appear under their final name only
when complete and checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import hashlib
import json
import logging
import signal
import sys
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import Any

from ivr import limits
from ivr.errors import TtsError
from ivr.voice.wav import (
    SAMPLE_RATE,
    audio_dir,
    check_not_silent,
    check_wav,
    is_good_wav,
    publish,
    temp_name,
)

_log = logging.getLogger(__name__)

#: espeak-ng voice id (as pyttsx3 2.99 names it) for each service language.
VOICES: dict[str, str] = {
    "fr": "roa/fr",  # French (France)
    "en": "gmw/en",  # English (Great Britain)
}
#: prctl() option: the signal a process gets when its parent dies.
PR_SET_PDEATHSIG = 1
#: Longest text accepted: about five minutes of speech at 150 words per minute.
MAX_TEXT_CHARS = limits.MESSAGE_CHARS
SOX = "sox"
#: The module run as the speech worker process.
WORKER_MODULE = "ivr.voice.tts_worker"
#: Seconds `close()` waits for the worker to exit at end of input before killing it.
_CLOSE_GRACE = 5.0


class _WorkerGone(Exception):
    """The worker closed its output or its input: it died or is dying."""


class Speaker:
    """Renders text to cached, Asterisk-ready WAV files, one render at a time.

    One worker process is started on first use and kept; a render that takes longer than
    `timeout` seconds, or a worker that dies, gets the worker killed (it is restarted by the
    next render) and a TtsError. Call `close()` (or use `async with`) to stop the worker.
    """

    def __init__(self, audio_dir: Path, rate: int = 150, timeout: float = 30.0) -> None:
        # Absolute: the worker writes to the paths it is given, and Asterisk needs full paths.
        self.audio_dir = audio_dir.absolute()
        #: Speech rate in words per minute.
        self.rate = rate
        #: Seconds allowed for each stage of a render (worker start and speech, then sox).
        self.timeout = timeout
        #: Renders answered from the cache.
        self.hits = 0
        #: Renders that had to synthesize.
        self.misses = 0
        self._lock = asyncio.Lock()
        self._proc: asyncio.subprocess.Process | None = None
        self._stderr_task: asyncio.Task[None] | None = None
        self._stderr_tail: deque[str] = deque(maxlen=20)

    @property
    def cache_dir(self) -> Path:
        """Where rendered files live: `audio_dir/tts`."""
        return self.audio_dir / "tts"

    def cache_path(self, text: str, language: str) -> Path:
        """The file `render(text, language)` returns, whether or not it exists yet."""
        key = json.dumps([text, _voice(language), self.rate], ensure_ascii=False)
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
        return self.cache_dir / f"{digest}.wav"

    async def render(self, text: str, language: str) -> Path:
        """Return an 8 kHz mono 16-bit WAV of `text` spoken in `language` ("fr" or "en")."""
        _check_text(text)
        path = self.cache_path(text, language)
        if is_good_wav(path):
            self.hits += 1
            return path
        async with self._lock:
            # Another render of the same text may have finished while this one waited.
            if is_good_wav(path):
                self.hits += 1
                return path
            self.misses += 1
            audio_dir(path.parent)
            raw, converted = temp_name(path, "22k"), temp_name(path, "8k")
            try:
                await self._synthesize(text, _voice(language), raw)
                await self._convert(raw, converted)
                check_wav(converted)
                check_not_silent(converted)
                publish(converted, path)
            finally:
                raw.unlink(missing_ok=True)
                converted.unlink(missing_ok=True)
        return path

    async def close(self) -> None:
        """Stop the worker, letting a render in progress finish first (for as long as a
        render may take: then it is killed under it)."""
        try:
            async with asyncio.timeout(2 * self.timeout):
                await self._lock.acquire()
        except TimeoutError:
            _log.warning("a speech render still runs %g s after close(): killed", 2 * self.timeout)
            await self._stop_worker(kill=True)
            return
        try:
            await self._stop_worker(kill=False)
        finally:
            self._lock.release()

    async def __aenter__(self) -> Speaker:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _synthesize(self, text: str, voice: str, out: Path) -> None:
        request = {"text": text, "voice": voice, "rate": self.rate, "out": str(out)}
        try:
            async with asyncio.timeout(self.timeout):
                proc = await self._ensure_worker()
                reply = await self._exchange(proc, request)
        except TimeoutError:
            detail = await self._stop_worker(kill=True)
            _log.warning("speech worker stopped after %g s (%s)", self.timeout, detail)
            raise TtsError(
                f"speech rendering took longer than {self.timeout:g} s; the speech worker "
                f"was killed and will restart on the next render ({detail})",
                timeout=self.timeout,
            ) from None
        except _WorkerGone:
            # Already dead or dying: reap it rather than kill it, or Popen.kill()'s own poll
            # can race asyncio's child watcher and lose the real exit status.
            detail = await self._stop_worker(kill=False)
            _log.warning("speech worker died (%s)", detail)
            raise TtsError(f"the speech worker died while rendering ({detail})") from None
        except BaseException:
            # Cancelled or failed mid-request: the worker may still answer this request later,
            # and that answer would be taken for the answer to the next one.
            await self._stop_worker(kill=True)
            raise
        if reply.get("ok") is not True:
            raise TtsError(f"speech rendering failed: {reply.get('error', reply)}", voice=voice)

    async def _ensure_worker(self) -> asyncio.subprocess.Process:
        if self._proc is not None and self._proc.returncode is None:
            return self._proc
        await self._stop_worker(kill=True)  # reap a worker that died between renders
        self._stderr_tail.clear()
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                WORKER_MODULE,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            raise TtsError(f"cannot start the speech worker: {exc}") from exc
        self._proc = proc
        assert proc.stderr is not None
        self._stderr_task = asyncio.create_task(self._drain_stderr(proc.stderr))
        hello = await self._read_message(proc)
        if hello.get("ready") is not True:
            raise TtsError(f"the speech worker could not start: {hello.get('error', hello)}")
        _log.info("speech worker started (pid %d)", proc.pid)
        return proc

    async def _exchange(
        self, proc: asyncio.subprocess.Process, request: dict[str, Any]
    ) -> dict[str, Any]:
        assert proc.stdin is not None
        try:
            proc.stdin.write(json.dumps(request).encode("utf-8") + b"\n")
            await proc.stdin.drain()
        except ConnectionError as exc:
            raise _WorkerGone from exc
        return await self._read_message(proc)

    async def _read_message(self, proc: asyncio.subprocess.Process) -> dict[str, Any]:
        assert proc.stdout is not None
        line = await proc.stdout.readline()
        if not line:
            raise _WorkerGone
        try:
            message = json.loads(line)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            raise TtsError(f"the speech worker sent an unexpected line: {line[:200]!r}")
        return message

    async def _drain_stderr(self, stream: asyncio.StreamReader) -> None:
        # Read everything the worker prints, or the pipe fills and the worker blocks; keep the
        # last lines to explain a crash. "Audio saved to ..." comes with every render.
        while True:
            try:
                line = await stream.readline()
            except ValueError:  # a line over the reader's limit: drop it
                continue
            if not line:
                return
            text = line.decode("utf-8", "replace").rstrip()
            _log.debug("speech worker: %s", text)
            if text and not text.startswith("Audio saved to "):
                self._stderr_tail.append(text)

    async def _stop_worker(self, kill: bool) -> str:
        """Stop and reap the worker if there is one; describe how it ended."""
        proc, self._proc = self._proc, None
        task, self._stderr_task = self._stderr_task, None
        if proc is None:
            return "it had not started yet"
        if proc.stdin is not None:
            proc.stdin.close()  # end of input: a healthy worker exits on its own
        if kill and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        try:
            await asyncio.wait_for(proc.wait(), _CLOSE_GRACE)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            try:
                # asyncio's wait() also waits for the pipes to close: bounded, should a
                # grandchild hold one open.
                await asyncio.wait_for(proc.wait(), _CLOSE_GRACE)
            except TimeoutError:
                _log.warning("speech worker (pid %d) killed, its pipes still open", proc.pid)
        if task is not None:
            # Should a grandchild hold stderr open, wait_for cancels the task on timeout.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(task, _CLOSE_GRACE)
        code = proc.returncode
        if code is not None and code < 0:
            detail = f"ended by {signal.Signals(-code).name}"
        else:
            detail = f"exit code {code}"
        if self._stderr_tail:
            detail += ": " + " | ".join(self._stderr_tail)
        return detail

    async def import_audio(self, source: Path) -> Path:
        """A recorded message (any format sox reads) as an 8 kHz WAV under `recordings/`.

        Named by a hash of its content, so importing the same recording twice is free; checked
        like a rendered file (format, length, not silence).
        """
        try:
            data = await asyncio.to_thread(source.read_bytes)
        except OSError as exc:
            raise TtsError(f"cannot read {source}: {exc.strerror}") from exc
        digest = hashlib.sha256(data).hexdigest()[:32]
        target = self.audio_dir / "recordings" / f"{digest}.wav"
        if is_good_wav(target):
            return target
        audio_dir(target.parent)
        temp = temp_name(target, "import")
        try:
            await self._convert(source, temp)
            check_wav(temp)
            check_not_silent(temp)
            publish(temp, target)
        finally:
            temp.unlink(missing_ok=True)
        return target

    async def _convert(self, src: Path, dst: Path) -> None:
        # `rate -v`: very-high-quality resampling; -G: lower the gain if resampling would clip;
        # -R: same input, same bytes (sox otherwise seeds its dither randomly).
        args = [SOX, "-R", "-G", str(src), "-t", "wav", "-c", "1", "-b", "16", "-e"]
        args += ["signed-integer", str(dst), "rate", "-v", str(SAMPLE_RATE)]
        try:
            proc = await asyncio.create_subprocess_exec(
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError:
            raise TtsError(
                f"the {SOX!r} program is missing; install sox (Debian/Ubuntu: apt install sox)"
            ) from None
        try:
            async with asyncio.timeout(self.timeout):
                _, stderr = await proc.communicate()
        except BaseException as exc:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            if isinstance(exc, TimeoutError):
                raise TtsError(f"sox took longer than {self.timeout:g} s") from None
            raise
        if proc.returncode != 0:
            message = stderr.decode("utf-8", "replace").strip()
            raise TtsError(f"sox failed (exit code {proc.returncode}): {message}")


def _voice(language: str) -> str:
    try:
        return VOICES[language]
    except KeyError:
        raise TtsError(
            f"unknown language {language!r}; expected one of {', '.join(VOICES)}",
            language=language,
        ) from None


def _check_text(text: str) -> None:
    if not text.strip():
        raise TtsError("nothing to say: the text is empty")
    if len(text) > MAX_TEXT_CHARS:
        raise TtsError(
            f"text too long: {len(text)} characters (at most {MAX_TEXT_CHARS})",
            length=len(text),
        )
    if "\0" in text:
        # espeak-ng gets a C string and would silently stop speaking at the NUL.
        raise TtsError("the text contains a NUL character")


def _die_with_parent() -> None:
    """In the speech worker, before it starts: a parent killed outright (SIGKILL) takes it
    along, instead of leaving it behind (Linux's PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
