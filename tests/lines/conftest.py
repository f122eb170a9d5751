from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from ivr.config import Config
from ivr.pbx.ami import AmiLink
from ivr.sandbox.redisserver import RedisServer
from tests.lines.linephone import Phone, serve_lines


@pytest.fixture
async def phone(
    sandbox_config: Config, redis_server: RedisServer, db: Redis, ami: AmiLink
) -> AsyncIterator[Phone]:
    """The lines on the test's own Redis and audio directory, and the robots that call them."""
    async with serve_lines(sandbox_config, redis_server.url, db, ami) as served:
        yield served
