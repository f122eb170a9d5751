"""Every key a caller of the phone lines presses, in order, whatever the line was doing.

res_agi reads and throws away the channel's frames while no AGI command runs: a key pressed in
the milliseconds between two commands, or while the service renders a sentence or waits for
Redis, never reaches an AGI command. But Asterisk's core announces every key it reads from a
channel as an AMI `DTMFEnd` event (Direction Received), whoever reads the frame, AGI's idle loop
included. So the lines take their keys from those events, one ordered buffer per call, and use
AGI only to play audio. (The other way, menus as dialplan applications, would keep the keys but
move the flows, which need the service's data at each step, out of the service.)

When the AMI link is down, no event comes: the lines fall back to the keys AGI's own commands
return (`KeyStream.live` tells which), as before this module existed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from typing import Any

from ivr.pbx.ami import AmiLink

#: Keys a caller can press.
KEYS = frozenset("0123456789*#ABCD")
#: Keys of channels no flow has opened yet are kept this many seconds: a key can come before
#: the call's AGI session (pressed the instant the line answers), and its event before AGI's
#: environment reaches the server. Alert calls' keys pass here too, and age out.
EARLY_KEEP = 10.0
#: Seconds within which a second event of the same digit and duration is the same key.
ECHO_WINDOW = 0.07
#: Channels whose early keys are kept at most (the oldest go first), and keys per channel.
EARLY_CHANNELS = 512
EARLY_KEYS = 64


class KeyStream:
    """The keys of one channel, oldest first."""

    def __init__(self, events: KeyEvents, uniqueid: str) -> None:
        self._events = events
        self.uniqueid = uniqueid
        self._queue: asyncio.Queue[str] = asyncio.Queue()

    @property
    def live(self) -> bool:
        """True while keys reach the stream (the AMI link is up)."""
        return self._events.link.is_up

    def pending(self) -> bool:
        """Keys were pressed that no menu has read yet (typed ahead)."""
        return not self._queue.empty()

    def put(self, key: str) -> None:
        self._queue.put_nowait(key)

    async def next(self, timeout: float) -> str | None:
        """The next key, waiting up to `timeout` seconds; None if none came."""
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(self._queue.get(), max(0.0, timeout))
        return None

    def take(self) -> str | None:
        """The next key if one is there, without waiting."""
        with contextlib.suppress(asyncio.QueueEmpty):
            return self._queue.get_nowait()
        return None

    def clear(self) -> None:
        """Forget the keys pressed so far (those that ended a recording, say)."""
        while self.take() is not None:
            pass

    def close(self) -> None:
        self._events.streams.pop(self.uniqueid, None)


class KeyEvents:
    """Routes the DTMF events of one AMI link to the streams of the calls that want them."""

    def __init__(self, link: AmiLink) -> None:
        self.link = link
        self.streams: dict[str, KeyStream] = {}
        #: Uniqueid -> (time of its first key, its keys) for channels not opened yet.
        self._early: OrderedDict[str, tuple[float, list[str]]] = OrderedDict()
        #: Uniqueid -> (digit, duration, time) of its last key event, the newest channels last.
        self._last: OrderedDict[str, tuple[str, str, float]] = OrderedDict()
        link.on_event(self._on_event)

    def open(self, uniqueid: str) -> KeyStream:
        """The keys of channel `uniqueid`, those pressed in the last EARLY_KEEP seconds first;
        `close()` it when the call is over."""
        stream = self.streams[uniqueid] = KeyStream(self, uniqueid)
        self._prune()
        _, early = self._early.pop(uniqueid, (0.0, []))
        for key in early:
            stream.put(key)
        return stream

    def _echo(self, uniqueid: str, digit: str, duration: str) -> bool:
        """True for the second event of one key. Asterisk announces a key when it reads it, and
        a key whose begin came too soon after the last key's end (its 45 ms minimum gap) is put
        back in the channel's queue and read, and announced, again 5-45 ms later, with the same
        digit and duration (in-band tones at a fast typist's pace do it on most keys). A person
        cannot press a key twice that fast: the second press lasts 40 ms at the least, after a
        45 ms gap."""
        now = time.monotonic()
        last = self._last.pop(uniqueid, None)
        self._last[uniqueid] = (digit, duration, now)
        while len(self._last) > EARLY_CHANNELS:
            self._last.popitem(last=False)
        return last is not None and last[:2] == (digit, duration) and now - last[2] < ECHO_WINDOW

    def _prune(self) -> None:
        too_old = time.monotonic() - EARLY_KEEP
        while self._early and (
            len(self._early) > EARLY_CHANNELS or next(iter(self._early.values()))[0] < too_old
        ):
            self._early.popitem(last=False)

    def _on_event(self, message: Any) -> None:
        if message.get("Event") != "DTMFEnd" or message.get("Direction") != "Received":
            return
        uniqueid = str(message.get("Uniqueid", ""))
        digit = str(message.get("Digit", "")).upper()
        if digit not in KEYS or self._echo(uniqueid, digit, str(message.get("DurationMs", ""))):
            return
        stream = self.streams.get(uniqueid)
        if stream is not None:
            stream.put(digit)
            return
        early = self._early.setdefault(uniqueid, (time.monotonic(), []))[1]
        if len(early) < EARLY_KEYS:
            early.append(digit)
        self._prune()
