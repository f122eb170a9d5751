"""Unit tests of the key buffer (ivr.pbx.keys): pure logic, events given by hand. The lines'
tests (tests/lines) prove it with real SIP phones."""

from __future__ import annotations

from typing import Any

import pytest

from ivr.pbx import keys as keys_module
from ivr.pbx.keys import KeyEvents


class _Link:
    """The two things KeyEvents uses of an AmiLink."""

    def __init__(self) -> None:
        self.is_up = True
        self.handlers: list[Any] = []

    def on_event(self, handler: Any) -> None:
        self.handlers.append(handler)

    def emit(
        self, uniqueid: str, digit: str, direction: str = "Received", duration: str = "100"
    ) -> None:
        event = {"Event": "DTMFEnd", "Uniqueid": uniqueid, "Digit": digit}
        for handler in self.handlers:
            handler({**event, "Direction": direction, "DurationMs": duration})


def _events() -> tuple[_Link, KeyEvents]:
    link = _Link()
    return link, KeyEvents(link)  # type: ignore[arg-type]


async def test_keys_come_in_order_per_channel_and_only_received_ones() -> None:
    link, events = _events()
    a, b = events.open("a"), events.open("b")
    for digit in "12#":
        link.emit("a", digit)
    link.emit("b", "9")
    link.emit("a", "5", direction="Sent")  # a key Asterisk sends: not the caller's
    assert [await a.next(0.1) for _ in range(4)] == ["1", "2", "#", None]
    assert b.take() == "9" and b.take() is None


async def test_a_key_announced_twice_counts_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Asterisk re-announces a deferred key 5-45 ms later (same digit, same duration)."""
    link, events = _events()
    now = [1000.0]
    monkeypatch.setattr(keys_module.time, "monotonic", lambda: now[0])
    stream = events.open("a")
    for digit, duration, step in [
        ("6", "89", 0.0),
        ("6", "89", 0.02),  # the echo
        ("6", "89", 0.15),  # pressed again: a person's pace
        ("8", "89", 0.02),  # another digit right after: counts
        ("8", "102", 0.01),  # same digit, another duration: another key
    ]:
        now[0] += step
        link.emit("a", digit, duration=duration)
    assert [stream.take() for _ in range(5)] == ["6", "6", "8", "8", None]


async def test_keys_before_the_flow_opens_the_channel_are_kept() -> None:
    link, events = _events()
    link.emit("early", "4")
    link.emit("early", "2")
    stream = events.open("early")
    assert stream.pending()
    assert [stream.take(), stream.take(), stream.take()] == ["4", "2", None]


async def test_early_keys_age_out_and_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    link, events = _events()
    now = [1000.0]
    monkeypatch.setattr(keys_module.time, "monotonic", lambda: now[0])
    link.emit("old", "1")
    now[0] += keys_module.EARLY_KEEP + 1
    link.emit("new", "2")
    assert events.open("old").take() is None
    for _ in range(keys_module.EARLY_KEYS + 10):
        link.emit("many", "3")
    for i in range(keys_module.EARLY_CHANNELS + 5):
        link.emit(f"c{i}", "1")
    assert len(events._early) == keys_module.EARLY_CHANNELS
    assert events.open("c4").take() is None  # the oldest went first
    assert events.open(f"c{keys_module.EARLY_CHANNELS + 4}").take() == "1"


async def test_a_closed_stream_gets_no_more_keys_and_clear_forgets() -> None:
    link, events = _events()
    stream = events.open("x")
    link.emit("x", "1")
    stream.clear()
    assert not stream.pending()
    stream.close()
    link.emit("x", "2")
    assert stream.take() is None
    assert stream.live
    link.is_up = False
    assert not stream.live
