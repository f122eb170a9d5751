"""Redis writes that cannot be dropped (an outcome, an SMS step's end): retried until Redis is
back. The dialer, the lines and the SMS and mail senders all use it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from redis.exceptions import RedisError

log = logging.getLogger(__name__)

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
