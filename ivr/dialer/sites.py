"""Calls left on a lost site: the attempts of an Asterisk no worker dials through any more.

A worker adopts the calls of a dead worker on its own Asterisk (it can follow them there,
`DialerWorker._adopt`). An attempt on another Asterisk cannot be followed from here, and must
not be dialled again while that Asterisk might still deliver its key. The rule: once no worker
of that Asterisk has been heard of (its heartbeats silent, `ivr.health.heartbeat`) and the
attempt's lease expired more than `WorkerSettings.orphan_after` ago — longer than any call
lasts — the attempt is ended as `failed` ("lost with Asterisk X") and the person's next number
or round is called from a live site. A key pressed on the lost site before it went stays in its
Asterisk's journal; it is not brought back (the person is simply called again).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from ivr import logs
from ivr.campaign import store
from ivr.campaign.scheduler import Claim, Scheduler
from ivr.dialer.settings import WorkerSettings
from ivr.health.checks import heartbeats
from ivr.keys import campaign_key
from ivr.pbx.calls import CallResult
from ivr.retry import retrying

log = logging.getLogger(__name__)

#: How a worker records an outcome (`DialerWorker._finish`).
Finish = Callable[[Claim, str, str, str, CallResult | None], Awaitable[None]]


async def live_asterisks(redis: Redis) -> list[str]:
    """The Asterisks at least one worker dials through now (its heartbeat is not silent)."""
    beats = await heartbeats(redis)
    return sorted({beat.asterisk for beat in beats.values() if not beat.silent()})


async def end_lost_calls(
    redis: Redis, scheduler: Scheduler, settings: WorkerSettings, cid: str, finish: Finish
) -> None:
    """End the attempts of campaign `cid` left on a lost Asterisk (the rule above)."""
    if not await scheduler.replication.may_claim():
        return  # this site may be the one cut off: its copy of the campaign is stale
    now = int(time.time() * 1000)
    lost = await retrying(
        scheduler.orphans, cid, now,
        lease_ms=int(settings.lease * 1000), worker=settings.name, asterisk=settings.asterisk,
        orphan_after_ms=int(settings.orphan_after * 1000), live=await live_asterisks(redis),
    )  # fmt: skip
    uid = str(await redis.hget(campaign_key(cid), "uid")) if lost else ""
    for pid, attempt, phone_index, asterisk in lost:
        got = await store.get_person(redis, cid, pid)
        if got is None:
            continue
        person, state = got
        claim = Claim(cid, pid, attempt, person.phones[phone_index], person, state.index, uid)
        detail = f"lost with Asterisk {asterisk}: no worker dials through it any more"
        with logs.log_fields(campaign_id=cid, attempt_id=claim.attempt_id):
            log.warning("campaign %s: %s %s", cid, claim.attempt_id, detail)
            await finish(claim, "failed", claim.number, detail, None)
        await retrying(scheduler.release, cid, pid, attempt, settings.name)
