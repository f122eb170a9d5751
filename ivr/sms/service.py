"""SMS in a worker: the sender of the campaigns' SMS steps and the inbox of replies, on the
worker's own AMI link (SIP MESSAGE through its Asterisk)."""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis

from ivr.config import Config
from ivr.pbx.ami import AmiLink
from ivr.pbx.messages import InboundMessage, SipMessages
from ivr.sms.gateway import Gateway
from ivr.sms.inbox import SmsInbox
from ivr.sms.messenger import Messenger

log = logging.getLogger(__name__)


def sip_gateway(config: Config, link: AmiLink) -> Gateway:
    """The SIP MESSAGE gateway of the configuration (IVR_SMS_SIP_*)."""
    sender = SipMessages(link, config.sms_sip_to, config.sms_sip_from)
    return Gateway("sip", sender, config.sms_sip_ports, config.sms_sip_rate)


async def run(config: Config, link: AmiLink, redis: Redis, name: str, stop: asyncio.Event) -> None:
    """Send SMS steps and take replies until `stop` (nothing when SMS is not configured)."""
    if not config.sms_ready:
        return
    gateway = sip_gateway(config, link)
    inbox = SmsInbox(redis, gateway, window_hours=config.callback_window)
    tasks: set[asyncio.Task[object]] = set()

    def inbound(message: InboundMessage) -> None:
        task = asyncio.ensure_future(inbox.handle(message))
        tasks.add(task)
        task.add_done_callback(done)

    def done(task: asyncio.Task[object]) -> None:
        tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("SMS reply not handled", exc_info=task.exception())

    assert isinstance(gateway.sender, SipMessages)
    gateway.sender.on_message(inbound)
    await Messenger(redis, gateway, name=f"{name}-sms").run(stop)
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
