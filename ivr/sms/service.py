"""SMS in a worker: the configured gateways (SIP MESSAGE through the worker's Asterisk, SMPP to
an SMSC), a sender of the campaigns' SMS steps on each, and the replies and delivery receipts
they bring back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from redis.asyncio import Redis

from ivr import keys
from ivr.campaign.scheduler import Scheduler
from ivr.config import Config
from ivr.pbx.ami import AmiLink
from ivr.pbx.messages import InboundMessage, SipMessages
from ivr.sms.gateway import Gateway
from ivr.sms.inbox import SmsInbox
from ivr.sms.messenger import Messenger
from ivr.sms.smpp import Receipt, SmppLink

log = logging.getLogger(__name__)

#: Looks (0.1 s apart) for the SMS a delivery receipt is about before it counts as unknown.
RECEIPT_WAIT_TRIES = 30


class SmsService:
    """The gateways of one worker and what comes back through them."""

    def __init__(self, redis: Redis, *, window_hours: int) -> None:
        self.redis = redis
        self.window_hours = window_hours
        self.gateways: list[Gateway] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    def add_sip(self, config: Config, link: AmiLink) -> Gateway:
        sender = SipMessages(link, config.sms_sip_to, config.sms_sip_from)
        gateway = Gateway("sip", sender, config.sms_sip_ports, config.sms_sip_rate)
        sender.on_message(lambda m: self._spawn(self._inbound(m, gateway)))
        self.gateways.append(gateway)
        return gateway

    def add_smpp(self, link: SmppLink, ports: int, rate: float) -> Gateway:
        gateway = Gateway("smpp", link, ports, rate)
        link.on_message = lambda m: self._spawn(self._inbound(m, gateway))
        link.on_receipt = lambda r: self._spawn(self._receipt(r))
        self.gateways.append(gateway)
        return gateway

    async def run(self, name: str, stop: asyncio.Event) -> None:
        """Send SMS steps through every gateway until `stop`."""
        await asyncio.gather(
            *(Messenger(self.redis, g, name=f"{name}-{g.name}").run(stop) for g in self.gateways)
        )
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _inbound(self, message: InboundMessage, gateway: Gateway) -> None:
        inbox = SmsInbox(self.redis, gateway, window_hours=self.window_hours)
        await inbox.handle(message)

    async def _receipt(self, receipt: Receipt) -> None:
        """Count a delivery receipt against the SMS step it is for (unknown ids: logged)."""
        key = keys.sms_message_prefix + receipt.message_id
        found = await self.redis.get(key)
        for _ in range(RECEIPT_WAIT_TRIES):
            if found is not None:
                break
            # An SMSC may send the receipt before the sender has written the id it just got
            # back (the same instant): give it that moment.
            await asyncio.sleep(0.1)
            found = await self.redis.get(key)
        if found is None:
            log.info("SMS receipt for an unknown message %s (%s)", receipt.message_id,
                     receipt.status)  # fmt: skip
            return
        cid, job = str(found).split(" ", 1)
        status = "delivered" if receipt.delivered else receipt.status.lower() or "undelivered"
        await Scheduler(self.redis).sms_receipt(cid, job, status, int(time.time() * 1000))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("SMS reply or receipt not handled", exc_info=t.exception())

        task.add_done_callback(done)


@contextlib.asynccontextmanager
async def configured(config: Config, link: AmiLink, redis: Redis) -> AsyncIterator[SmsService]:
    """The SMS service of the configuration, its SMPP link bound (and unbound after)."""
    service = SmsService(redis, window_hours=config.callback_window)
    smpp: SmppLink | None = None
    if config.sms_sip_to:
        service.add_sip(config, link)
    if config.sms_smpp_host:
        smpp = SmppLink(
            config.sms_smpp_host, config.sms_smpp_port, config.sms_smpp_system_id,
            config.sms_smpp_password, config.sms_smpp_source,
        )  # fmt: skip
        service.add_smpp(smpp, config.sms_smpp_ports, config.sms_smpp_rate)
        await smpp.start()
    try:
        yield service
    finally:
        if smpp is not None:
            await smpp.close()


async def run(config: Config, link: AmiLink, redis: Redis, name: str, stop: asyncio.Event) -> None:
    """Send SMS steps and take replies until `stop` (nothing when SMS is not configured)."""
    if not config.sms_ready:
        return
    async with configured(config, link, redis) as service:
        await service.run(name, stop)
