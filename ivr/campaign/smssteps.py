"""The SMS steps of a delivery plan (`ivr.campaign.plan`) in the campaign queue: claimed once
ever, ended once, their delivery receipts counted once. `SmsSteps` is the base class of
`ivr.campaign.scheduler.Scheduler`, which holds these methods beside the voice ones; the Lua is
`ivr.campaign.smsscripts`.

Through Redis Sentinel a claim and an end count only once a replica has them
(`ivr.replication.Replication`): a failover then cannot hand the same step out a second time. A
claim sent again with its token (its answer lost at a failover, the client retries) returns the
same step instead of taking another.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from ivr.campaign import smsscripts
from ivr.keys import (
    campaign_key,
    sms_claims_part,
    sms_due_part,
    sms_jobs_part,
    sms_receipts_part,
    sms_sending_part,
)
from ivr.replication import Replication
from ivr.staff.roster import Person

#: Tiers of the voice queue (`ivr.campaign.scheduler.TIERS`): an SMS step's end may queue a call.
_TIERS = ("due:0", "due:1")


@dataclass(frozen=True)
class SmsClaim:
    """One SMS step a sender must send (at most once: see `SmsSteps.sms_claim`)."""

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


def _keys(cid: str, *parts: str) -> list[str]:
    return [campaign_key(cid)] + [campaign_key(cid, p) for p in parts]


class SmsSteps:
    """The SMS scripts bound to one Redis connection."""

    def __init__(self, redis: Redis, replication: Replication) -> None:
        self.redis = redis
        self.replication = replication
        self._sms_claim = redis.register_script(smsscripts.SMS_CLAIM)
        self._sms_done = redis.register_script(smsscripts.SMS_DONE)

    async def sms_claim(
        self, cid: str, now_ms: int, *, lease_ms: int, worker: str, token: str = ""
    ) -> SmsClaim | None:
        """The next SMS step due in campaign `cid`, handed out once ever (see `SMS_CLAIM`).
        Sent again with the same `token`, it returns the same step."""
        keys = _keys(
            cid, "state", "people", sms_due_part, sms_sending_part, sms_jobs_part, "counts",
            "quota", "events", sms_claims_part,
        )  # fmt: skip
        args: list[str | int] = [now_ms, lease_ms, worker, token]
        got, usable = await self.replication.claimed(
            lambda client: self._sms_claim(keys=keys, args=args, client=client)
        )
        if not got:
            return None
        job, pid, step, person, index, uid = got
        if not usable:
            # Perhaps a stale primary (a site cut off, `Replication.may_claim`): send nothing;
            # the step stays with its lease on this copy, which the site's return drops.
            return None
        return SmsClaim(
            cid, str(job), str(pid), int(step), Person.from_json(person, str(pid)), int(index),
            str(uid),
        )  # fmt: skip

    async def sms_done(
        self, cid: str, job: str, result: str, now_ms: int, *, number: str, detail: str
    ) -> list[str]:
        """Record how SMS step `job` ended (sent, failed, skipped, unknown), once; move its
        person on in their plan."""
        keys = _keys(
            cid, "state", "people", *_TIERS, sms_due_part, sms_sending_part, sms_jobs_part,
            "counts", "events",
        )  # fmt: skip
        args: list[str | int] = [job, result, now_ms, number, detail]
        got = await self.replication.acknowledged(
            lambda client: self._sms_done(keys=keys, args=args, client=client)
        )
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
