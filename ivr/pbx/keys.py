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
from typing import Any

from ivr.pbx.ami import AmiLink

#: Keys a caller can press.
KEYS = frozenset("0123456789*#ABCD")


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
        link.on_event(self._on_event)

    def open(self, uniqueid: str) -> KeyStream:
        """The keys of channel `uniqueid` from now on; `close()` it when the call is over."""
        stream = self.streams[uniqueid] = KeyStream(self, uniqueid)
        return stream

    def _on_event(self, message: Any) -> None:
        if message.get("Event") != "DTMFEnd" or message.get("Direction") != "Received":
            return
        stream = self.streams.get(str(message.get("Uniqueid", "")))
        digit = str(message.get("Digit", "")).upper()
        if stream is not None and digit in KEYS:
            stream.put(digit)
