"""The campaign queue in Redis: atomic claims with a lease, idempotent results, retries.

Every step a person goes through is one Lua script, so several dialer workers (in one process
or many, on one Asterisk or several) share a campaign without ever calling one person twice:

- `claim`: take the next due person (on-call tier first, then by due time), or mark them
  `cancelled` if their role's quota is met; record the attempt number and a lease.
- `finish`: record an attempt's outcome once (a replay of the same attempt is ignored), then
  decide: final answer, next phone number now, next round after the retry delay, or final
  failure with escalation to the person's backup.
- `requeue`: put back an attempt that provably never reached Asterisk, without counting it.
- `release`: the call is over (after its outcome, the arrival time may still be keyed):
  drop its lease. A campaign's calls in flight are its leases.
- `reclaim`: hand the attempts of a dead worker (lease expired) to a live one, which follows
  them through Asterisk's journal instead of calling again.
- `orphans`: the attempts of an Asterisk no worker dials through any more (a site lost): once
  their lease expired longer ago than any call can last, a worker elsewhere ends them as lost
  (`failed`), and the person's next number or round is called from a live site.

- `sms_claim`, `sms_done`...: the SMS steps of a person's delivery plan (`ivr.campaign.smssteps`).

Per-person state is `ivr.campaign.state.PersonState`; the scripts are `ivr.campaign.scripts`
(`ivr.campaign.upkeepscripts` for `reclaim` and `orphans`, `ivr.campaign.smsscripts`).

Through Redis Sentinel (`ivr.db`), a claim, a result, an answer and an arrival time count only
once a replica has them (`Replication`), as do an SMS step's claim and end: a failover then loses
none of them, and the client's retries of these scripts are safe, each being idempotent (`claim`
and `sms_claim` through their token).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from ivr.campaign import scripts, upkeepscripts
from ivr.campaign.smssteps import SmsSteps
from ivr.keys import campaign_key, sms_due_part
from ivr.replication import replication_of
from ivr.staff.roster import Person

#: Tiers of the due queue, claimed in this order.
TIERS = ("due:0", "due:1")


@dataclass(frozen=True)
class Claim:
    """One attempt a worker must place."""

    campaign: str
    pid: str
    attempt: int
    number: str
    person: Person
    index: int
    #: The campaign's unique token (campaign ids restart at 1 in a new Redis).
    uid: str

    @property
    def attempt_id(self) -> str:
        """Deterministic, so that a restarted worker finds the same call in Asterisk."""
        return attempt_id(self.uid, self.index, self.attempt)


def attempt_id(uid: str, index: int, attempt: int) -> str:
    return f"ivr-{uid}-{index}-{attempt}"


class Scheduler(SmsSteps):
    """The Lua scripts bound to one Redis connection (those of SMS steps: `SmsSteps`)."""

    def __init__(self, redis: Redis) -> None:
        super().__init__(redis, replication_of(redis))
        self._claim = redis.register_script(scripts.CLAIM)
        self._finish = redis.register_script(scripts.FINISH)
        self._answer = redis.register_script(scripts.ANSWER)
        self._requeue = redis.register_script(scripts.REQUEUE)
        self._reclaim = redis.register_script(upkeepscripts.RECLAIM)
        self._orphans = redis.register_script(upkeepscripts.ORPHANS)
        self._eta = redis.register_script(scripts.ETA)
        self._release = redis.register_script(scripts.RELEASE)

    @staticmethod
    def keys(cid: str, *parts: str) -> list[str]:
        return [campaign_key(cid)] + [campaign_key(cid, p) for p in parts]

    async def claim(
        self,
        cid: str,
        now_ms: int,
        *,
        lease_ms: int,
        worker: str,
        asterisk: str,
        token: str = "",
    ) -> Claim | None:
        """The next due person, or None. Sent again with the same `token` (a retry whose
        answer was lost), it returns the same claim instead of taking another person."""
        keys = self.keys(
            cid, "state", "people", *TIERS, "leases", "counts", "quota", "events", "claims",
            sms_due_part,
        )  # fmt: skip
        args: list[str | int] = [now_ms, lease_ms, worker, asterisk, token]
        got, usable = await self.replication.claimed(
            lambda client: self._claim(keys=keys, args=args, client=client)
        )
        if not got:
            return None
        pid, attempt, number, person, index, uid = got
        pid = str(pid)
        if not usable:
            # No replica took the claim and most Sentinels do not name this primary: a site
            # cut off, writing to a stale primary the others replaced. Do not call: the other
            # site may claim the same person. Put the person back (harmless on a stale copy).
            await self.requeue(cid, pid, int(attempt), now_ms)
            return None
        return Claim(
            cid, pid, int(attempt), str(number), Person.from_json(person, pid), int(index), str(uid)
        )

    async def finish(self, *args: Any, **kwargs: Any) -> list[str]:
        """`finish_replicated`, without saying whether a replica has the result."""
        return (await self.finish_replicated(*args, **kwargs))[0]

    async def finish_replicated(
        self,
        cid: str,
        pid: str,
        attempt: int,
        outcome: str,
        now_ms: int,
        *,
        worker: str,
        number: str,
        detail: str,
    ) -> tuple[list[str], bool]:
        """Record an attempt's outcome (once; a replay is `stale`), then what comes next; and
        whether a replica has it (`Replication.replicated`)."""
        keys = self.keys(
            cid, "state", "people", *TIERS, "leases", "counts", "quota", "events", "reserve",
            sms_due_part,
        )  # fmt: skip
        args: list[str | int] = [pid, attempt, outcome, now_ms, worker, number, detail]
        got, safe = await self.replication.replicated(
            lambda client: self._finish(keys=keys, args=args, client=client)
        )
        return [str(x) for x in got], safe

    async def answer(
        self, cid: str, pid: str, outcome: str, now_ms: int, number: str, channel: str = "callback"
    ) -> list[str]:
        """Record an answer given on the callback line or by SMS (`channel`; see `ANSWER`)."""
        keys = self.keys(cid, "state", "people", *TIERS, "leases", "counts", "quota", "events")
        args: list[str | int] = [pid, outcome, now_ms, number, channel]
        got = await self.replication.acknowledged(
            lambda client: self._answer(keys=keys, args=args, client=client)
        )
        return [str(x) for x in got]

    async def requeue(self, cid: str, pid: str, attempt: int, now_ms: int) -> bool:
        keys = self.keys(cid, "state", "people", *TIERS, "leases", "counts", "events")
        return bool(await self._requeue(keys=keys, args=[pid, attempt, now_ms]))

    async def reclaim(
        self, cid: str, now_ms: int, *, lease_ms: int, worker: str, asterisk: str, own: bool
    ) -> list[tuple[str, int, int]]:
        """Attempts on this Asterisk whose lease expired (their worker died) and, with `own`,
        those this worker name held in a previous life (a restart: no need to wait)."""
        keys = [campaign_key(cid, "state"), campaign_key(cid, "leases")]
        args: list[str | int] = [now_ms, lease_ms, worker, asterisk, "1" if own else "0"]
        got = await self._reclaim(keys=keys, args=args)
        return [(str(got[i]), int(got[i + 1]), int(got[i + 2])) for i in range(0, len(got), 3)]

    async def orphans(
        self,
        cid: str,
        now_ms: int,
        *,
        lease_ms: int,
        worker: str,
        asterisk: str,
        orphan_after_ms: int,
        live: list[str],
    ) -> list[tuple[str, int, int, str]]:
        """Attempts on an Asterisk none of the `live` ones (no worker dials through it any
        more) whose lease expired over `orphan_after_ms` ago: (pid, attempt, phone, Asterisk),
        now held by `worker`, to be ended as lost and called again from here."""
        keys = [campaign_key(cid, "state"), campaign_key(cid, "leases")]
        args: list[str | int] = [now_ms, lease_ms, worker, asterisk, orphan_after_ms, *live]
        got = await self._orphans(keys=keys, args=args)
        return [
            (str(got[i]), int(got[i + 1]), int(got[i + 2]), str(got[i + 3]))
            for i in range(0, len(got), 4)
        ]

    async def release(self, cid: str, pid: str, attempt: int, worker: str) -> bool:
        """The attempt's call is over (its outcome was recorded before): drop its lease."""
        keys = [campaign_key(cid, "state"), campaign_key(cid, "leases")]
        return bool(await self._release(keys=keys, args=[pid, attempt, worker]))

    async def renew(self, cid: str, pids: list[str], until_ms: int) -> None:
        if pids:
            await self.redis.zadd(
                campaign_key(cid, "leases"), dict.fromkeys(pids, until_ms), xx=True
            )

    async def record_eta(self, cid: str, pid: str, minutes: int, now_ms: int, role: str) -> bool:
        keys = [
            campaign_key(cid, "state"),
            campaign_key(cid, "counts"),
            campaign_key(cid, "events"),
        ]
        args: list[str | int] = [pid, minutes, now_ms, role]
        return bool(
            await self.replication.acknowledged(
                lambda client: self._eta(keys=keys, args=args, client=client)
            )
        )
