"""What the command modules share: the Redis client of a command, JSON printing, the type of
the subcommand registry."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from ivr.config import Config
from ivr.db import client_for, describe

#: Where each command module adds its subcommand (`register(commands)`).
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


@contextlib.asynccontextmanager
async def redis_for(config: Config) -> AsyncIterator[Redis]:
    """The Redis client of one command, closed when it is done."""
    db = client_for(config)
    try:
        yield db
    finally:
        await db.aclose()


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


#: Seconds a command waits for Redis to answer before it gives up (exit 6).
REDIS_WAIT = 5.0


async def require_redis(db: Redis, config: Config) -> None:
    """Fail at once, with exit 6, when Redis does not answer: a service must not start and
    then retry for ever in silence."""
    try:
        await asyncio.wait_for(db.ping(), REDIS_WAIT)
    except (RedisError, OSError, TimeoutError) as exc:
        raise RedisConnectionError(
            f"no answer within {REDIS_WAIT:g} s from {describe(config)}: {exc}"
        ) from None
