"""What ended campaigns leave in Asterisk's database (quota flags, kept journal entries), removed
by the workers of that Asterisk (README, "Two sites").

Each round of a worker's upkeep forgets the campaigns it dialled that are over; and at its first
round, then every SWEEP_SECONDS, it sweeps the whole AstDB: anything of a campaign that is over,
even one that ended while no worker was up. A campaign is forgotten only once no call of it is
in flight anywhere (its leases are empty): a call still up needs its journal entry should the
AMI link fail. A uid Redis does not know is left alone: it may be another Redis's (a second
installation, or a test, on the same Asterisk).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from typing import cast

from redis.asyncio import Redis

from ivr import keys
from ivr.errors import AmiError
from ivr.keys import campaign_key
from ivr.pbx.astdb import AstDb

#: Seconds between two sweeps of the whole AstDB by one worker.
SWEEP_SECONDS = 600.0


class Tidier:
    """One worker's tidying of its Asterisk."""

    def __init__(self, redis: Redis, astdb: AstDb) -> None:
        self.redis = redis
        self.astdb = astdb
        self._swept_at: float | None = None

    async def round(self, busy: set[str], loaded: Mapping[str, str]) -> list[str]:
        """One upkeep round: `loaded` maps the campaigns this worker dialled to their uid,
        `busy` those it has calls of in flight. The campaigns of `loaded` it forgot."""
        over = [cid for cid in loaded if cid not in busy and await self._over(cid)]
        forgotten: list[str] = []
        if over:
            with contextlib.suppress(AmiError):
                await self.astdb.forget_campaigns({loaded[cid] for cid in over})
                forgotten = over
        now = time.monotonic()
        if self._swept_at is None or now - self._swept_at >= SWEEP_SECONDS:
            with contextlib.suppress(AmiError):
                await self.sweep()
                self._swept_at = now
        return forgotten

    async def sweep(self) -> set[str]:
        """Forget every campaign AstDB holds something of that is over; their uids."""
        # AstDB first, Redis then: a campaign created in between has nothing here yet.
        found = await self.astdb.campaigns()
        gone = found & await self._over_uids() if found else set()
        if gone:
            await self.astdb.forget_campaigns(gone)
        return gone

    async def _over(self, cid: str) -> bool:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hget(campaign_key(cid), "status")
        pipe.zcard(campaign_key(cid, "leases"))
        status, in_flight = await pipe.execute()
        return status != "running" and not in_flight

    async def _over_uids(self) -> set[str]:
        """The uids of the campaigns Redis knows that are over, with no call in flight."""
        cids = cast(list[str], await self.redis.zrange(keys.campaigns_key, 0, -1))
        pipe = self.redis.pipeline(transaction=False)
        for cid in cids:
            pipe.hmget(campaign_key(cid), ["uid", "status"])
            pipe.zcard(campaign_key(cid, "leases"))
        replies = await pipe.execute()
        over = set()
        for (uid, status), in_flight in zip(replies[::2], replies[1::2], strict=True):
            if uid and status != "running" and not in_flight:
                over.add(uid)
        return over
