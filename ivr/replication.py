"""Writes that must survive a failover, and the guard against a site cut off (split brain).

Redis replication is asynchronous: a write the primary acknowledged can be lost when it dies
before a replica has it. `Replication.replicated` runs a write then `WAIT 1 <timeout>` on the
same connection, so a claim, a key press or a final outcome counts only once a replica has it.
A primary no replica acknowledges may be a stale one, on a site cut off from the others:
`Replication.may_claim` then asks the Sentinels, all at once, whether most of them still name
it (README, "Two sites").
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.sentinel import SentinelConnectionPool

from ivr.db import BACKOFF_BASE, BACKOFF_CAP, FAILOVER_ERRORS, follows_sentinel, sentinel_view

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How long a write waits for a replica's acknowledgement before going on without it.
WAIT_TIMEOUT_MS = 1000
#: While no replica acknowledges, writes do not wait; every this many seconds, look again.
RECHECK_SECONDS = 5.0
#: While no replica acknowledges, how often a worker asks the Sentinels whether the primary it
#: writes to is still theirs before it claims anyone (`Replication.may_claim`).
CONFIRM_SECONDS = 2.0
#: How long a phone line asks the Sentinels again for a majority naming its primary before it
#: refuses a change the caller would be told is done (`primary_vouched`): a failover under way
#: settles within this, a site cut off from the others does not.
VOUCH_SECONDS = 10.0


_SHARED: weakref.WeakKeyDictionary[Redis, Replication] = weakref.WeakKeyDictionary()


def replication_of(redis: Redis) -> Replication:
    """The one `Replication` of a client: its warnings ("no replica acknowledged", "this site
    may be cut off") are said once per failover by a process, whoever writes (the dialer, the
    call-backs, the phone lines)."""
    shared = _SHARED.get(redis)
    if shared is None:
        shared = _SHARED[redis] = Replication(redis)
    return shared


class Replication:
    """Writes that must survive a failover: acknowledged once a replica has them.

    For a client of one server (no Sentinel) this is the write alone. Through Sentinel, the
    write and then `WAIT 1 WAIT_TIMEOUT_MS` run on one connection (WAIT counts the writes of
    its own connection). When no replica acknowledges in time, a warning is logged once and
    writes stop waiting (a lost replica must not slow every call by a second) until a replica
    is connected again, checked every RECHECK_SECONDS. A failure between the write and its
    WAIT runs both again: the writes given here must be safe to repeat.
    """

    def __init__(self, redis: Redis, *, wait: bool | None = None) -> None:
        self.redis = redis
        self.enabled = follows_sentinel(redis) if wait is None else wait
        self.degraded = False
        self._recheck_at = 0.0
        self._confirmed: tuple[float, bool] = (float("-inf"), True)
        self._asking = asyncio.Lock()
        #: Writes a replica acknowledged, and writes that went on without one.
        self.acked = 0
        self.unacked = 0

    async def acknowledged(self, write: Callable[[Redis], Awaitable[T]]) -> T:
        return (await self.replicated(write))[0]

    async def replicated(self, write: Callable[[Redis], Awaitable[T]]) -> tuple[T, bool]:
        """The write's result, and False when it went on without a replica's acknowledgement
        (always True for one server: there is nothing more to wait for)."""
        if not self.enabled:
            return await write(self.redis), True
        delay = BACKOFF_BASE
        while True:
            async with self.redis.client() as conn:
                result = await write(conn)
                if not await self._should_wait():
                    self.unacked += 1
                    return result, False
                try:
                    replicas = await _wait(conn, WAIT_TIMEOUT_MS)
                except FAILOVER_ERRORS as exc:
                    log.warning("Redis lost before a replica acknowledged a write (%s); again", exc)
                else:
                    return result, self._note(replicas)
            await asyncio.sleep(delay)  # backoff before writing again, not synchronisation
            delay = min(delay * 2, BACKOFF_CAP)

    async def claimed(self, write: Callable[[Redis], Awaitable[T]]) -> tuple[T, bool]:
        """A claim's write, and whether it may be acted on: a replica has it, or a majority of
        the Sentinels, asked after it was written, names the primary it went to. False: perhaps
        a stale primary (a site cut off): call or send nothing for it."""
        result, safe = await self.replicated(write)
        if safe or not result:
            return result, True
        return result, await self.may_claim(since=time.monotonic())

    async def may_claim(self, since: float | None = None) -> bool:
        """False while this process may be writing to a stale primary: no replica acknowledges
        its writes and a majority of the Sentinels does not name that primary (a site cut off
        with its old primary: the other site's Sentinels promoted a replica and call from it).
        A worker then claims nobody new and finishes only the calls it holds. Always True for
        one server or while a replica acknowledges.

        The Sentinels' answer is kept CONFIRM_SECONDS; with `since` (time.monotonic() when a
        claim no replica acknowledged was written), only an answer asked for after it counts.
        One question at a time: callers arriving meanwhile share its answer."""
        if not self.enabled or not self.degraded:
            self._confirmed = (float("-inf"), True)
            return True
        async with self._asking:
            checked, allowed = self._confirmed
            fresh_from = time.monotonic() - CONFIRM_SECONDS if since is None else since
            if checked >= fresh_from:
                return allowed
            started = time.monotonic()
            now_allowed = await majority_names_ours(self.redis)
            self._confirmed = (started, now_allowed)
        if now_allowed != allowed:
            if now_allowed:
                log.warning("Redis: the Sentinels name this primary again; claiming again")
            else:
                log.warning(
                    "Redis: no replica, and most Sentinels unreachable or naming another "
                    "primary: this site may be cut off; no new calls, only those in progress"
                )
        return now_allowed

    async def _should_wait(self) -> bool:
        if not self.degraded:
            return True
        if time.monotonic() < self._recheck_at:
            return False
        self._recheck_at = time.monotonic() + RECHECK_SECONDS
        try:
            info = await self.redis.info("replication")
        except FAILOVER_ERRORS:
            return False
        if online_replicas(info):
            self.degraded = False
            log.warning("Redis: a replica is connected again; writes wait for it again")
            return True
        return False

    def _note(self, replicas: int) -> bool:
        """Count a WAIT's answer; True when a replica acknowledged."""
        if replicas >= 1:
            self.acked += 1
            return True
        self.unacked += 1
        if self.degraded:
            return False  # writes already waiting when the first one gave up: said once
        self.degraded = True
        self._recheck_at = time.monotonic() + RECHECK_SECONDS
        log.warning(
            "Redis: no replica acknowledged a write within %d ms; going on without waiting "
            "(a failover now could lose the last answers from Redis; Asterisk's journal keeps "
            "them) until a replica is back",
            WAIT_TIMEOUT_MS,
        )
        return False


async def majority_names_ours(redis: Redis) -> bool:
    """Whether more than half of the configured Sentinels name the primary `redis` uses (and do
    not deem it down). All are asked at once; the answer comes as soon as it is decided, so
    a Sentinel out of reach (a site cut off or powered off) delays nothing once a majority
    has answered."""
    pool = redis.connection_pool
    if not isinstance(pool, SentinelConnectionPool):
        return True
    if pool.master_address is None:
        return False
    ours = "{}:{}".format(*pool.master_address)
    nodes = pool.sentinel_manager.sentinels
    need = len(nodes) // 2 + 1
    asked = [asyncio.ensure_future(sentinel_view(node, pool.service_name)) for node in nodes]
    agree = refuse = 0
    try:
        for answer in asyncio.as_completed(asked):
            view = await answer
            if view.get("primary") == ours and not view.get("down"):
                agree += 1
            else:
                refuse += 1
            if agree >= need or refuse > len(nodes) - need:
                break
    finally:
        for task in asked:
            task.cancel()
    return agree >= need


async def primary_vouched(redis: Redis, patience: float = VOUCH_SECONDS) -> bool:
    """Whether a majority of the Sentinels names the primary `redis` writes to (always True for
    one server), asked again with backoff for up to `patience` seconds.

    For the phone lines, before a change the caller is told is done (a campaign started, an
    answer counted, a campaign stopped): a site cut off from the others still reaches its own
    primary, a stale one once the others promoted a replica; what it writes there is dropped
    when the site is back (its Redis resyncs as a replica), and nobody would know."""
    if not follows_sentinel(redis):
        return True
    deadline = time.monotonic() + patience
    delay = BACKOFF_BASE
    while True:
        # A command first: the client follows a failover (and learns the new primary's
        # address) when it reconnects.
        await redis.ping()
        if await majority_names_ours(redis):
            return True
        if time.monotonic() + delay > deadline:
            return False
        await asyncio.sleep(delay)  # backoff before asking again, not synchronisation
        delay = min(delay * 2, BACKOFF_CAP)


def online_replicas(info: dict[str, Any]) -> int:
    """Replicas in sync in INFO replication (`connected_slaves` also counts those still
    loading a full copy, which acknowledge nothing yet)."""
    return sum(
        1
        for key, value in info.items()
        if key.startswith("slave") and isinstance(value, dict) and value.get("state") == "online"
    )


async def _wait(conn: Redis, timeout_ms: int) -> int:
    """WAIT on `conn`'s own connection, not retried: after a reconnect it would wait for
    nothing (the write was on the connection that broke)."""
    connection = conn.connection
    assert connection is not None, "a write ran on this single-connection client first"
    await connection.send_command("WAIT", 1, timeout_ms)
    return int(await connection.read_response())
