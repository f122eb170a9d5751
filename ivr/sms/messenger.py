"""The SMS sender: the campaigns' SMS steps, through a gateway, at its rate.

Each of the gateway's ports takes its turn (`Gateway.slot`), then claims the next SMS step due
in a running campaign (`Scheduler.sms_claim`: handed out once ever) and sends it at once, so a
sender that dies holds at most one step per port, and that step is never sent twice: when its
lease expires it is recorded `unknown` and its person's plan goes on. A step the link could not
even send (the AMI link down) goes back to the queue; a gateway's refusal is `failed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid

from redis.asyncio import Redis

from ivr import keys, logs
from ivr.campaign import store
from ivr.campaign.scheduler import Scheduler
from ivr.campaign.smssteps import SmsClaim
from ivr.campaign.spec import CampaignSpec
from ivr.errors import AmiError, AmiNotConnected, SmsLinkLost, SmsNotSent, SmsRefused
from ivr.keys import campaign_key, sms_due_part, sms_jobs_part, sms_sending_part
from ivr.retry import retrying
from ivr.sms import texts
from ivr.sms.gateway import Gateway

log = logging.getLogger(__name__)

#: Seconds at most between two looks at the queues when nothing is due.
IDLE = 0.5
#: Days a delivery receipt may take to come back.
RECEIPT_DAYS = 3
#: Seconds a claimed SMS step may take to be sent before it counts as lost (`unknown`).
LEASE = 60.0


class Messenger:
    """Sends SMS steps through `gateway` until `run`'s stop is set."""

    def __init__(self, redis: Redis, gateway: Gateway, *, name: str, lease: float = LEASE) -> None:
        self.redis = redis
        self.gateway = gateway
        self.name = name
        self.lease = lease
        self.scheduler = Scheduler(redis)
        self._specs: dict[str, CampaignSpec] = {}
        #: SMS handed to the gateway (tests and the benchmark read it).
        self.sent = 0

    async def run(self, stop: asyncio.Event) -> None:
        with logs.log_fields(worker=self.name):
            tasks = [
                asyncio.create_task(self._port(stop, n), name=f"sms-port-{n}")
                for n in range(self.gateway.ports)
            ]
            tasks.append(asyncio.create_task(self._upkeep(stop), name="sms-upkeep"))
            try:
                await asyncio.gather(*tasks)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _port(self, stop: asyncio.Event, port: int) -> None:
        while not stop.is_set():
            if not self.gateway.sender.is_up:
                with contextlib.suppress(AmiError, TimeoutError):
                    await self.gateway.sender.wait_up(1.0)
                continue
            async with self.gateway.slot() as slot:
                # Each port claims as its own sender: its token then names its own claim.
                job = await self._claim(f"{self.name}/{port}")
                if job is not None:
                    await self._send(job)
                    continue
                slot.refund()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), IDLE)

    async def _claim(self, sender: str) -> SmsClaim | None:
        if not await self.scheduler.replication.may_claim():
            return None  # perhaps a stale primary (ivr.db): no new SMS from here
        now = _now_ms()
        for cid in await retrying(store.active, self.redis):
            job: SmsClaim | None = await retrying(
                self.scheduler.sms_claim,
                cid, now, lease_ms=int(self.lease * 1000), worker=sender,
                # Retried with the same token: a claim whose answer was lost comes back.
                token=uuid.uuid4().hex,
            )  # fmt: skip
            if job is not None:
                return job
        return None

    async def _send(self, job: SmsClaim) -> None:
        number = job.person.sms_number()
        if number is None:
            await self._done(job, "skipped", "", "no SMS number")
            return
        try:
            text = texts.alert(await self._spec(job.campaign), job.person.language)
            gateway_id = await self.gateway.sender.send(number, text)
        except SmsRefused as exc:
            await self._done(job, "failed", number, str(exc))
            return
        except (AmiNotConnected, SmsNotSent):
            # Nothing left: the step goes back to the queue, for this or another sender.
            await retrying(self._give_back, job)
            return
        except (AmiError, SmsLinkLost) as exc:
            await self._done(job, "unknown", number, str(exc))
            return
        self.sent += 1
        if gateway_id:
            await retrying(
                self.redis.set, keys.sms_message_prefix + gateway_id,
                f"{job.campaign} {job.job}", ex=RECEIPT_DAYS * 86400,
            )  # fmt: skip
        detail = f"{self.gateway.name} {job.message_id}" + (f" {gateway_id}" if gateway_id else "")
        await self._done(job, "sent", number, detail)

    async def _done(self, job: SmsClaim, result: str, number: str, detail: str) -> None:
        await retrying(
            self.scheduler.sms_done,
            job.campaign, job.job, result, _now_ms(), number=number, detail=detail,
        )  # fmt: skip
        log.info("campaign %s: SMS to %s %s (%s)", job.campaign, job.pid, result, detail)

    async def _give_back(self, job: SmsClaim) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(campaign_key(job.campaign, sms_jobs_part), job.job)
        pipe.zrem(campaign_key(job.campaign, sms_sending_part), job.job)
        pipe.zadd(campaign_key(job.campaign, sms_due_part), {job.job: _now_ms()})
        await pipe.execute()

    async def _spec(self, cid: str) -> CampaignSpec:
        if cid not in self._specs:
            self._specs[cid] = await retrying(store.get_spec, self.redis, cid)
        return self._specs[cid]

    async def _upkeep(self, stop: asyncio.Event) -> None:
        """Steps whose sender died while sending: `unknown`, their people's plans go on."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.5, self.lease / 3))
            now = _now_ms()
            for cid in await retrying(store.active, self.redis):
                for job in await retrying(self.scheduler.sms_expired, cid, now):
                    await retrying(
                        self.scheduler.sms_done,
                        cid, job, "unknown", now, number="", detail="sender lost while sending",
                    )  # fmt: skip
                    log.warning("campaign %s: SMS step %s lost with its sender", cid, job)


def _now_ms() -> int:
    return int(time.time() * 1000)
