"""PINs: hashed, unique, checked in constant work, a lockout after three wrong ones."""

from __future__ import annotations

import time

import pytest
from redis.asyncio import Redis

from ivr import keys
from ivr.access import audit
from ivr.access.pins import PinError, PinStore, generate_pin


async def test_pins_are_stored_hashed_and_found_by_the_pin(db: Redis) -> None:
    store = PinStore(db)
    await store.set("d1", "246810")
    await store.set("d2", "135791")
    assert (await store.check("246810", "0600000000", line="trigger")).person == "d1"
    assert (await store.check("135791", "0600000000", line="trigger")).person == "d2"
    stored = await db.hgetall(keys.pins_key)
    assert sorted(stored.values()) == ["d1", "d2"]
    assert not any("246810" in k or "135791" in k for k in stored), "PINs must not be stored"
    assert await store.holders() == ["d1", "d2"]
    # A new PIN replaces the old one; a taken PIN is refused; bad PINs are refused.
    await store.set("d1", "999111")
    assert (await store.check("246810", "0600000000", line="trigger")).person is None
    assert (await store.check("999111", "0600000000", line="trigger")).person == "d1"
    with pytest.raises(PinError, match="taken"):
        await store.set("d3", "135791")
    for bad in ("123", "12a456", "1234567890123", ""):
        with pytest.raises(PinError, match="4 to 12 digits"):
            await store.set("d3", bad)
    assert await store.remove("d2") and not await store.remove("d2")
    assert (await store.check("135791", "0600000000", line="trigger")).person is None


async def test_three_wrong_pins_lock_that_caller_only(db: Redis) -> None:
    store = PinStore(db, lockout=60)
    await store.set("d1", "246810")
    caller = "+33 6 11 22 33 44"
    first = await store.check("000000", caller, line="trigger")
    assert (first.person, first.failures, first.locked_for) == (None, 1, 0)
    # A right PIN in between resets the count.
    assert (await store.check("246810", caller, line="trigger")).person == "d1"
    for n in (1, 2):
        assert (await store.check("111111", caller, line="report")).failures == n
    third = await store.check("x" * 40, caller, line="report")
    assert third.locked_for == 60 and third.person is None
    assert 55 <= await store.locked_for(caller) <= 60
    # Locked: the right PIN does not open; another caller is free.
    assert (await store.check("246810", caller, line="report")).person is None
    assert (await store.check("246810", "", line="report")).person == "d1"
    actions = [e["action"] for e in await audit.entries(db)]
    assert actions.count("pin.wrong") == 4 and actions.count("pin.lockout") == 1
    lockout = next(e for e in await audit.entries(db) if e["action"] == "pin.lockout")
    assert lockout["who"] == "phone:+33611223344" and lockout["target"] == "report"


async def test_a_check_costs_the_same_whether_the_pin_exists(db: Redis) -> None:
    store = PinStore(db)
    await store.set("d1", "246810")

    # Both paths run one scrypt: the absent PIN must not answer much faster (it could tell
    # an attacker which PINs exist). Best of 5 each, to ride out a noisy machine.
    def best(times: list[float]) -> float:
        return min(times)

    present, absent = [], []
    for _ in range(5):
        t = time.perf_counter()
        await store.check("246810", "0600000001", line="trigger")
        present.append(time.perf_counter() - t)
        t = time.perf_counter()
        await store.check("13579", "0600000002", line="trigger")
        absent.append(time.perf_counter() - t)
        await db.delete(keys.pin_fail_prefix + "0600000002")
    assert best(absent) > 0.5 * best(present)


def test_generated_pins_are_six_random_digits() -> None:
    pins = {generate_pin() for _ in range(50)}
    assert all(len(p) == 6 and p.isdigit() for p in pins)
    assert len(pins) > 45


async def test_wrong_pins_from_many_callers_slow_every_wrong_answer(db: Redis) -> None:
    """Forged caller ids: three guesses per number, from many numbers. Nobody is locked out
    for it, but past FLOOD_FAILURES every wrong answer waits, and it is audited once."""
    from ivr.access.pins import FLOOD_DELAY, FLOOD_FAILURES

    store = PinStore(db, lockout=60)
    await store.set("d1", "246810")
    checks = [
        await store.check(f"{n:06d}", f"06000{n // 2:05d}", line="trigger")
        for n in range(FLOOD_FAILURES + 3)
    ]
    assert all(c.slow_down == 0 for c in checks[:FLOOD_FAILURES])
    assert all(c.slow_down == FLOOD_DELAY for c in checks[FLOOD_FAILURES:])
    assert not any(c.locked_for for c in checks), "two per caller: none locked out"
    # The director still gets in, at once.
    right = await store.check("246810", "0611223344", line="trigger")
    assert right.person == "d1" and right.slow_down == 0
    flood = [e for e in await audit.entries(db, limit=1000) if e["action"] == "pin.flood"]
    assert len(flood) == 1 and flood[0]["details"]["failures"] == FLOOD_FAILURES + 1
