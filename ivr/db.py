"""The Redis connection every part of the service uses."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

#: Connections one process opens at most. A worker keeps hundreds of calls in flight, each
#: writing its result; with a plain pool they would fail with "Too many connections" at the
#: pool's limit. A blocking pool makes them wait their turn instead (a few milliseconds).
MAX_CONNECTIONS = 64


def connect(url: str) -> Redis:
    """A client for `url` (IVR_REDIS_URL) returning str, over a blocking pool."""
    pool = BlockingConnectionPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=None, decode_responses=True
    )
    # from_pool: the client owns the pool, so aclose() closes its connections too.
    return Redis.from_pool(pool)


P = ParamSpec("P")
T = TypeVar("T")


async def retrying(fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
    """Call a Redis operation until it succeeds: an outcome must never be dropped.

    Eight lines rather than tenacity: the policy is one (forever, doubling to 2 s, each retry
    logged) and the campaign's crash safety rests on it, so it stays in sight here.
    """
    delay = 0.1
    while True:
        try:
            return await fn(*args, **kwargs)
        except (RedisError, OSError) as exc:
            log.warning("Redis unavailable (%s); retrying in %.1f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
