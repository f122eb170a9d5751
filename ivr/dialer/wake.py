"""The messages of a Redis pub/sub channel, for as long as the worker runs, whatever Redis does.

Through Sentinel, a subscription whose primary is cut off (no reset: a link down) can be left
on a connection where redis-py's `get_message(timeout=...)` returns None at once, again and
again, without ever awaiting: a loop around it then holds the event loop for good — no call
placed, no outcome written — and piles up timers until memory runs out (seen in the two-site
tests, `tests/dialer/test_two_sites.py`). Here an answer that came back at once without a
message is counted; after a few in a row the subscription is dropped and made again (asking
the Sentinels where the primary is), after a pause that lets the rest of the worker run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

#: Seconds a wait for a message lasts when none comes.
WAIT = 1.0
#: Answers without a message, each back in less than a tenth of WAIT, that make a subscription
#: count as broken (a subscribe confirmation is one such answer: a few are normal).
INSTANT_LIMIT = 20
#: Seconds before subscribing again after a failure.
PAUSE = 1.0


class BrokenSubscription(RedisError):
    """get_message answers at once with nothing, again and again."""


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def messages(redis: Redis, channel: str, stop: asyncio.Event) -> AsyncIterator[str]:
    """The data of each message published on `channel`, until `stop` is set."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        pubsub = redis.pubsub()
        try:
            await pubsub.subscribe(channel)
            instant = 0
            while not stop.is_set():
                asked = loop.time()
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=WAIT)
                if message is not None:
                    instant = 0
                    yield str(message["data"])
                    continue
                if loop.time() - asked >= WAIT / 10:
                    instant = 0
                    continue
                instant += 1
                if instant >= INSTANT_LIMIT:
                    raise BrokenSubscription(f"{instant} empty answers at once in a row")
                await asyncio.sleep(WAIT / 10)  # backoff: let the event loop run the rest
        except RedisError as exc:
            log.warning("wake channel %s lost: %s; subscribing again", channel, exc)
            await _pause(stop, PAUSE)
        finally:
            with contextlib.suppress(RedisError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
