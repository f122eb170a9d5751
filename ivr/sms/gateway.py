"""An SMS gateway as the sender sees it: a way to send one SMS, its ports and its rate.

A GSM gateway sends about one SMS per 10 s on each SIM port; an operator's SMSC allows some per
second. `Gateway.slot()` keeps to that: at most `ports` messages at once, and at most
`ports * rate` per second, evenly spaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol


class Sender(Protocol):
    """What carries one SMS: `ivr.pbx.messages.SipMessages`, or another transport."""

    @property
    def is_up(self) -> bool: ...

    async def wait_up(self, timeout: float) -> None: ...

    async def send(self, number: str, text: str) -> str | None:
        """Send `text`; the gateway's message id when it gives one (for delivery receipts).
        SmsRefused: refused, not retried; AmiNotConnected or SmsNotSent: nothing left;
        another AmiError or SmsLinkLost: sent or not, nobody knows."""
        ...


class Slot:
    """One turn to send; `refund()` gives it back when there was nothing to send."""

    def __init__(self, pacer: Gateway, start: float) -> None:
        self._gateway = pacer
        self._start = start

    def refund(self) -> None:
        gateway = self._gateway
        if gateway._next == self._start + gateway.spacing:
            gateway._next = self._start


@dataclass
class Gateway:
    """A sender with its rate limit (`rate` SMS per second on each of `ports` ports)."""

    name: str
    sender: Sender
    ports: int = 1
    rate: float = 0.1
    _next: float = field(default=0.0, init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)
    _ports: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self._ports = asyncio.Semaphore(self.ports)

    @property
    def spacing(self) -> float:
        """Seconds between two messages at the allowed rate."""
        return 1 / (self.ports * self.rate)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[Slot]:
        """A free port, at the gateway's pace (the wait is a rate limit, not a delay)."""
        async with self._ports:
            async with self._lock:
                now = time.monotonic()
                if self._next > now:
                    await asyncio.sleep(self._next - now)
                # The next slot counts from when this one was really given: a sleep that
                # overran (a loaded machine) must not let the next message go early.
                start = time.monotonic()
                self._next = start + self.spacing
            yield Slot(self, start)
