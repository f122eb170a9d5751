"""The wake channel survives a subscription that answers at once with nothing (redis-py after a
primary was cut off, `ivr.dialer.wake`): it neither holds the event loop nor keeps that
subscription. A fake pub/sub stands in for redis-py's broken state, which a real Redis shows
only in the two-site tests (tests/dialer/test_two_sites.py runs the real thing)."""

from __future__ import annotations

import asyncio
from typing import Any

from ivr.dialer import wake


class InstantPubSub:
    """Answers every get_message at once with None; the last one made delivers one message."""

    made: list[InstantPubSub] = []

    def __init__(self, deliver: bool) -> None:
        self.deliver, self.closed, self.asked = deliver, False, 0
        InstantPubSub.made.append(self)

    async def subscribe(self, channel: str) -> None:
        self.channel = channel

    async def get_message(self, **_: Any) -> dict[str, str] | None:
        self.asked += 1
        if self.deliver and self.asked == 3:
            return {"data": "wake"}
        return None

    async def aclose(self) -> None:
        self.closed = True


class FakeRedis:
    def __init__(self) -> None:
        self.count = 0

    def pubsub(self) -> InstantPubSub:
        self.count += 1
        return InstantPubSub(deliver=self.count == 2)


async def test_a_subscription_answering_at_once_is_made_again_and_the_loop_keeps_running(
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr(wake, "PAUSE", 0.01)
    InstantPubSub.made.clear()
    stop = asyncio.Event()
    ticks = 0

    async def other_work() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    other = asyncio.create_task(other_work())
    got = []
    async for data in wake.messages(FakeRedis(), "ch", stop):  # type: ignore[arg-type]
        got.append(data)
        stop.set()
    await other
    first, second = InstantPubSub.made
    assert got == ["wake"]
    assert first.closed and first.asked == wake.INSTANT_LIMIT, "the broken one was dropped"
    assert ticks >= 10, "the rest of the worker ran meanwhile"
