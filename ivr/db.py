"""The Redis connection every part of the service uses."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

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
