"""The Redis connection every part of the service uses, and the one place that builds it.

Two ways to reach Redis (docs/ivr.env.example, "Redis"):

- one server, `IVR_REDIS_URL` (the default, one site);
- through Redis Sentinel, `IVR_REDIS_SENTINELS=host:port,...` and `IVR_REDIS_SENTINEL_MASTER`:
  the client asks the Sentinels where the primary is each time it (re)connects, and follows it
  through a failover. The command in flight at a failover fails (the old primary is gone, or
  answers READONLY once demoted): the client retries it with backoff, reconnecting — so asking
  the Sentinels again — for `FAILOVER_SECONDS`. Every write of the campaign
  engine is a Lua script safe to repeat (`ivr.campaign.scripts`), so a retried command never
  counts twice.

Replication is asynchronous: a write the primary acknowledged can be lost when it dies before a
replica has it: `ivr.replication` waits for a replica after the writes that must survive.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import (
    MasterNotFoundError,
    Sentinel,
    SentinelConnectionPool,
    SentinelManagedConnection,
)
from redis.backoff import EqualJitterBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ivr.config import Config
from ivr.redact import safe_url
from ivr.redisconfig import sentinels_text

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Connections one process opens at most. A worker keeps hundreds of calls in flight, each
#: writing its result; with a plain pool they would fail with "Too many connections" at the
#: pool's limit. A blocking pool makes them wait their turn instead (a few milliseconds).
MAX_CONNECTIONS = 64

#: Errors after which a command is sent again to the primary the Sentinels name.
FAILOVER_ERRORS = (RedisConnectionError, RedisTimeoutError, ReadOnlyError)
#: Backoff between two tries of a command through Sentinel: 50 ms doubling to 1 s, jittered.
BACKOFF_BASE, BACKOFF_CAP = 0.05, 1.0
#: Seconds one command through Sentinel is tried for: enough for Sentinel to notice a dead
#: primary (its down-after-milliseconds, 5 s in the README) and promote a replica (7.7 s from
#: a SIGKILL to the next write, bench/failover.py), short enough for a command line to give up
#: on a Redis that is not there. The dialer retries its own writes for ever on top
#: (`ivr.retry`).
FAILOVER_SECONDS = 20.0
#: Seconds a read may take before the connection counts as dead (a powered-off host sends no
#: reset); blocking reads of the project (XREAD, pub/sub) block for 1 s at most.
SOCKET_TIMEOUT = 5.0
SENTINEL_TIMEOUT = 1.0


class DeadlineRetry(Retry):
    """redis-py's retry, bounded by time (`seconds` from the first try) instead of a count."""

    def __init__(self, seconds: float) -> None:
        backoff = EqualJitterBackoff(base=BACKOFF_BASE, cap=BACKOFF_CAP)
        super().__init__(backoff, retries=1_000_000, supported_errors=FAILOVER_ERRORS)
        self.seconds = seconds

    async def call_with_retry(
        self,
        do: Callable[[], Awaitable[T]],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        self._backoff.reset()  # type: ignore[no-untyped-call]
        started, failures = time.monotonic(), 0
        while True:
            try:
                return await do()
            except self._supported_errors as error:
                if is_retryable and not is_retryable(error):
                    raise
                failures += 1
                await (fail(error, failures) if with_failure_count else fail(error))
                if time.monotonic() - started >= self.seconds:
                    raise
                await asyncio.sleep(self._backoff.compute(failures))  # backoff


class QuietSentinel(Sentinel):
    """Sentinel whose "no primary" error is one line (redis-py's lists each Sentinel's repr)."""

    async def discover_master(self, service_name: str) -> tuple[str, int]:
        try:
            return cast(tuple[str, int], await super().discover_master(service_name))
        except MasterNotFoundError:
            where = ",".join(
                "{host}:{port}".format(**node.connection_pool.connection_kwargs)
                for node in self.sentinels
            )
            raise MasterNotFoundError(
                f"no Sentinel of {where} names a primary {service_name!r} (unreachable, a "
                "failover under way, or IVR_REDIS_SENTINEL_MASTER not the name they monitor)"
            ) from None


class FollowingConnection(SentinelManagedConnection):
    """A connection that asks the Sentinels where the primary is before every connect.

    redis-py's own asks only when the pool hands out a new connection: a command retried on
    a broken connection reconnects to the address it had, the dead primary (redis-py 8.1,
    `Connection.send_packed_command` -> `connect_check_health`), until its retries run out.
    Reconnecting is not retried on its own here either: the command's retry does it, so the
    two are not nested (tries times tries) and FAILOVER_SECONDS bounds the whole.
    """

    async def _connect(self) -> None:
        if self.connection_pool.is_master:
            self.host, self.port = await self.connection_pool.get_master_address()
        await super()._connect()  # type: ignore[no-untyped-call]

    async def connect_check_health(
        self, check_health: bool = True, retry_socket_connect: bool = True
    ) -> None:
        await super().connect_check_health(check_health=check_health, retry_socket_connect=False)


class BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """Sentinel's pool (connect where the Sentinels say) that waits for a free connection
    at MAX_CONNECTIONS instead of failing, as `connect` does for one server.

    Once the Sentinels name another primary, every connection still open to another address
    is closed, those waiting on a read too (redis-py closes the idle ones only): after a link
    cut, a command waiting on the old primary would otherwise wait out SOCKET_TIMEOUT, and
    each idle connection taken later would too, one after the other (seen in the two-site
    tests: 16 s more before the surviving site placed calls again). Their commands fail at
    once and are retried, on the new primary.
    """

    async def get_master_address(self) -> tuple[str, int]:
        address = cast(tuple[str, int], await super().get_master_address())  # type: ignore[no-untyped-call]
        if self.is_master:
            open_elsewhere = [
                conn
                for conn in (*self._available_connections, *self._in_use_connections)
                if conn.is_connected
                and (getattr(conn, "host", None), getattr(conn, "port", None)) != tuple(address)
            ]
            if open_elsewhere:
                await asyncio.gather(
                    *(conn.disconnect() for conn in open_elsewhere), return_exceptions=True
                )
        return address


class SentinelClient(Redis):
    """A client of the primary that also closes its connections to the Sentinels."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        closing = close_connection_pool or (
            close_connection_pool is None and self.auto_close_connection_pool
        )
        await super().aclose(close_connection_pool)
        pool = self.connection_pool
        if closing and isinstance(pool, SentinelConnectionPool):
            for node in pool.sentinel_manager.sentinels:
                await node.aclose()


def connect(url: str) -> Redis:
    """A client for one server at `url` (IVR_REDIS_URL) returning str, over a blocking pool."""
    pool = BlockingConnectionPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=None, decode_responses=True
    )
    # from_pool: the client owns the pool, so aclose() closes its connections too.
    return Redis.from_pool(pool)


def connect_sentinel(
    sentinels: tuple[tuple[str, int], ...], master: str, url: str = "redis://"
) -> Redis:
    """A client of the primary named `master` by `sentinels`, following it through failovers.

    `url` gives the database, user and password of the data servers (not their address).
    """
    options: dict[str, Any] = {
        k: v for k, v in parse_url(url).items() if k in ("db", "username", "password")
    }
    sentinel = QuietSentinel(  # type: ignore[no-untyped-call]
        list(sentinels),
        # One try per Sentinel: redis-py's default (3 retries, backoff to 10 s) made a Sentinel
        # out of reach (a site cut off) cost about 10 s to every connect that asked it first.
        sentinel_kwargs={
            "socket_timeout": SENTINEL_TIMEOUT,
            "socket_connect_timeout": SENTINEL_TIMEOUT,
            "retry": Retry(NoBackoff(), 0),
        },
    )
    retry = DeadlineRetry(FAILOVER_SECONDS)
    client: Redis = sentinel.master_for(
        master,
        redis_class=SentinelClient,
        connection_pool_class=BlockingSentinelPool,
        connection_class=FollowingConnection,
        max_connections=MAX_CONNECTIONS,
        timeout=None,
        decode_responses=True,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=SENTINEL_TIMEOUT,
        retry=retry,
        retry_on_error=list(FAILOVER_ERRORS),
        **options,
    )
    return client


def client_for(config: Config) -> Redis:
    """The Redis client of `config`: through Sentinel when IVR_REDIS_SENTINELS is set."""
    if config.redis_sentinels:
        return connect_sentinel(
            config.redis_sentinels, config.redis_sentinel_master, config.redis_url
        )
    return connect(config.redis_url)


def describe(config: Config) -> str:
    """Where `config` says Redis is, secrets masked, for messages."""
    if config.redis_sentinels:
        where = sentinels_text(config.redis_sentinels)
        return f"Sentinel master {config.redis_sentinel_master!r} via {where}"
    return safe_url(config.redis_url)


def follows_sentinel(redis: Redis) -> bool:
    return isinstance(redis.connection_pool, SentinelConnectionPool)


async def sentinel_state(redis: Redis) -> dict[str, Any] | None:
    """What the Sentinels say of the primary (None for a client of one server). They are asked
    at once, each for SENTINEL_TIMEOUT at most: a site cut off must not make this slow."""
    pool = redis.connection_pool
    if not isinstance(pool, SentinelConnectionPool):
        return None
    manager: Sentinel = pool.sentinel_manager
    seen = await asyncio.gather(
        *(sentinel_view(node, pool.service_name) for node in manager.sentinels)
    )
    return {"master": pool.service_name, "sentinels": list(seen)}


async def sentinel_view(node: Redis, master: str) -> dict[str, Any]:
    """One Sentinel's view of `master`: primary, replicas, Sentinels, down; or an error."""
    kwargs = node.connection_pool.connection_kwargs
    entry: dict[str, Any] = {"sentinel": f"{kwargs.get('host')}:{kwargs.get('port')}"}
    try:
        async with asyncio.timeout(SENTINEL_TIMEOUT):
            state = cast(dict[str, Any], await node.sentinel_master(master))
        entry.update(
            primary=f"{state['ip']}:{state['port']}",
            replicas=int(state.get("num-slaves", 0)),
            sentinels=int(state.get("num-other-sentinels", 0)) + 1,
            down=bool(state.get("is_sdown") or state.get("is_odown")),
        )
    except TimeoutError:
        entry["error"] = f"no answer within {SENTINEL_TIMEOUT:g} s"
    except Exception as exc:  # noqa: BLE001 - one Sentinel down is a fact to report
        entry["error"] = str(exc) or type(exc).__name__
    return entry
