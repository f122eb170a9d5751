"""A worker's heartbeat in Redis (`ivr.health.heartbeat` defines it): written at start, every
period, and at once when the AMI link goes down or comes back, so that `ivr health --worker`
turns CRITICAL the moment Asterisk goes away, not a period later; removed at a clean stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ivr import keys
from ivr.errors import AmiError
from ivr.health.heartbeat import Heartbeat
from ivr.pbx.ami import AmiLink

log = logging.getLogger(__name__)


async def beat(redis: Redis, name: str, heartbeat: Heartbeat) -> None:
    """Publish one heartbeat; a Redis outage only logs (the next one will tell)."""
    try:
        await redis.hset(keys.workers_key, name, heartbeat.to_json())
    except RedisError as exc:
        log.warning("worker %s: heartbeat not written, Redis unavailable: %s", name, exc)


async def remove(redis: Redis, name: str) -> None:
    """A clean stop: the worker is gone on purpose, not silent."""
    with contextlib.suppress(RedisError):
        await redis.hdel(keys.workers_key, name)


async def pause(stop: asyncio.Event, link: AmiLink, period: float) -> None:
    """Wait `period` seconds, or less if `stop` is set or the AMI link goes down or up."""
    changed = link.wait_down() if link.is_up else link.wait_up()
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(changed)]
    try:
        await asyncio.wait(waiters, timeout=period, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        for waiter in waiters:
            with contextlib.suppress(asyncio.CancelledError, AmiError):
                await waiter
