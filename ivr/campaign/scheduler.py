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

Per-person state is `ivr.campaign.state.PersonState`; the scripts are `ivr.campaign.scripts`.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from ivr.campaign import scripts, smsscripts
from ivr.keys import (
    campaign_key,
    sms_due_part,
    sms_jobs_part,
    sms_receipts_part,
    sms_sending_part,
)
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


@dataclass(frozen=True)
class SmsClaim:
    """One SMS step a sender must send (at most once: see `Scheduler.sms_claim`)."""

    campaign: str
    #: `<pid>:<step>`, the step's key in the campaign's SMS queues.
    job: str
    pid: str
    step: int
    person: Person
    index: int
    uid: str

    @property
    def message_id(self) -> str:
        """Deterministic, like attempt ids: `ivr-<uid>-<index>-s<step>`."""
        return f"ivr-{self.uid}-{self.index}-s{self.step}"


class Scheduler:
    """The Lua scripts bound to one Redis connection."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._claim = redis.register_script(scripts.CLAIM)
        self._finish = redis.register_script(scripts.FINISH)
        self._answer = redis.register_script(scripts.ANSWER)
        self._requeue = redis.register_script(scripts.REQUEUE)
        self._reclaim = redis.register_script(scripts.RECLAIM)
        self._eta = redis.register_script(scripts.ETA)
        self._release = redis.register_script(scripts.RELEASE)
        self._sms_claim = redis.register_script(smsscripts.SMS_CLAIM)
        self._sms_done = redis.register_script(smsscripts.SMS_DONE)

    @staticmethod
    def keys(cid: str, *parts: str) -> list[str]:
        return [campaign_key(cid)] + [campaign_key(cid, p) for p in parts]

    async def claim(
        self, cid: str, now_ms: int, *, lease_ms: int, worker: str, asterisk: str
    ) -> Claim | None:
        keys = self.keys(
            cid, "state", "people", *TIERS, "leases", "counts", "quota", "events", sms_due_part
        )
        got = await self._claim(keys=keys, args=[now_ms, lease_ms, worker, asterisk])
        if not got:
            return None
        pid, attempt, number, person, index, uid = got
        pid = str(pid)
        return Claim(
            cid, pid, int(attempt), str(number), Person.from_json(person, pid), int(index), str(uid)
        )

    async def finish(
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
    ) -> list[str]:
        keys = self.keys(
            cid, "state", "people", *TIERS, "leases", "counts", "quota", "events", "reserve",
            sms_due_part,
        )  # fmt: skip
        got = await self._finish(
            keys=keys, args=[pid, attempt, outcome, now_ms, worker, number, detail]
        )
        return [str(x) for x in got]

    async def answer(
        self, cid: str, pid: str, outcome: str, now_ms: int, number: str, channel: str = "callback"
    ) -> list[str]:
        """Record an answer given on the callback line or by SMS (`channel`; see `ANSWER`)."""
        keys = self.keys(cid, "state", "people", *TIERS, "leases", "counts", "quota", "events")
        got = await self._answer(keys=keys, args=[pid, outcome, now_ms, number, channel])
        return [str(x) for x in got]

    async def sms_claim(
        self, cid: str, now_ms: int, *, lease_ms: int, worker: str
    ) -> SmsClaim | None:
        """The next SMS step due in campaign `cid`, handed out once ever (see `SMS_CLAIM`)."""
        keys = self.keys(
            cid, "state", "people", sms_due_part, sms_sending_part, sms_jobs_part, "counts",
            "quota", "events",
        )  # fmt: skip
        got = await self._sms_claim(keys=keys, args=[now_ms, lease_ms, worker])
        if not got:
            return None
        job, pid, step, person, index, uid = got
        return SmsClaim(
            cid, str(job), str(pid), int(step), Person.from_json(person, str(pid)), int(index),
            str(uid),
        )  # fmt: skip

    async def sms_done(
        self, cid: str, job: str, result: str, now_ms: int, *, number: str, detail: str
    ) -> list[str]:
        """Record how SMS step `job` ended (sent, failed, skipped, unknown), once; move its
        person on in their plan."""
        keys = self.keys(
            cid, "state", "people", *TIERS, sms_due_part, sms_sending_part, sms_jobs_part,
            "counts", "events",
        )  # fmt: skip
        got = await self._sms_done(keys=keys, args=[job, result, now_ms, number, detail])
        return [str(x) for x in got]

    async def sms_receipt(self, cid: str, job: str, status: str, now_ms: int) -> bool:
        """Count the first delivery receipt of SMS step `job` (`delivered` or another status
        the SMSC gave); a repeated receipt is ignored (False)."""
        if not await self.redis.hsetnx(campaign_key(cid, sms_receipts_part), job, status):
            return False
        result = "delivered" if status == "delivered" else "undelivered"
        pid, _, step = job.rpartition(":")
        pipe = self.redis.pipeline(transaction=True)
        pipe.hincrby(campaign_key(cid, "counts"), f"sms:{result}", 1)
        pipe.xadd(
            campaign_key(cid, "events"),
            {"type": "sms_receipt", "pid": pid, "step": step, "status": status, "t": now_ms},
        )
        await pipe.execute()
        return True

    async def sms_expired(self, cid: str, now_ms: int) -> list[str]:
        """SMS steps whose sender died while sending (lease expired)."""
        got = await self.redis.zrangebyscore(campaign_key(cid, sms_sending_part), "-inf", now_ms)
        return [str(job) for job in got]

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
        return bool(await self._eta(keys=keys, args=[pid, minutes, now_ms, role]))
