"""Informative mail beside voice and SMS: when a campaign starts, everyone it targets with a mail
address gets the alert by mail, once, through the hospital's mail server (aiosmtplib; STARTTLS
and authentication as configured). Never waited for: the mailer is its own task in the worker,
each mail has `IVR_SMTP_TIMEOUT` seconds, and a server that is down or slow only fails mails
(`mail:failed` in the campaign's counts), never a call or an SMS. No link, no tracking.

One mail per person ever: a worker takes a person's mail with HSETNX on the campaign's `mail`
hash before sending it, so several workers share a campaign without sending it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from email.message import EmailMessage

import aiosmtplib
from redis.asyncio import Redis

from ivr.campaign import store
from ivr.campaign.spec import CampaignSpec
from ivr.config import Config
from ivr.keys import campaign_key, mail_part
from ivr.retry import retrying
from ivr.sms import texts
from ivr.staff.roster import Person

log = logging.getLogger(__name__)

#: Seconds between two looks for new campaigns.
PERIOD = 2.0


def message(spec: CampaignSpec, person: Person, sender: str) -> EmailMessage:
    """The mail of `spec` for `person`, in their language: the message and the callback
    number, plain text."""
    t = texts.texts(person.language)
    text = (spec.messages.get(person.language) or spec.messages.get("fr") or "").strip()
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = person.email or ""
    drill = t["drill"] if spec.drill else ""
    mail["Subject"] = t["mail_subject"].format(drill=drill, name=spec.name)
    number = spec.callback_number or "-"
    mail.set_content(t["mail_body"].format(message=text or spec.name, number=number))
    return mail


class Mailer:
    """Sends each running campaign's mails once, until `run`'s stop is set."""

    def __init__(self, redis: Redis, config: Config, *, name: str) -> None:
        self.redis = redis
        self.config = config
        self.name = name
        #: Campaigns this worker has gone through.
        self._done: set[str] = set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for cid in await retrying(store.active, self.redis):
                if cid not in self._done and not stop.is_set():
                    await self._campaign(cid, stop)
                    self._done.add(cid)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PERIOD)

    async def _campaign(self, cid: str, stop: asyncio.Event) -> None:
        spec = await retrying(store.get_spec, self.redis, cid)
        async for pid, record in self.redis.hscan_iter(campaign_key(cid, "people")):
            if stop.is_set():
                return
            person = Person.from_json(record, pid)
            if not person.email:
                continue
            taken = await self.redis.hsetnx(
                campaign_key(cid, mail_part), pid, f"sending:{self.name}"
            )
            if not taken:
                continue
            result = await self._send(message(spec, person, self.config.smtp_from))
            pipe = self.redis.pipeline(transaction=True)
            pipe.hset(campaign_key(cid, mail_part), pid, result)
            pipe.hincrby(campaign_key(cid, "counts"), f"mail:{result}", 1)
            pipe.xadd(
                campaign_key(cid, "events"),
                {"type": "mail", "pid": pid, "result": result, "t": int(time.time() * 1000)},
            )
            await pipe.execute()

    async def _send(self, mail: EmailMessage) -> str:
        c = self.config
        try:
            await asyncio.wait_for(
                aiosmtplib.send(
                    mail, hostname=c.smtp_host, port=c.smtp_port,
                    username=c.smtp_user or None, password=c.smtp_password or None,
                    start_tls=c.smtp_starttls, timeout=c.smtp_timeout,
                ),
                c.smtp_timeout,
            )  # fmt: skip
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            log.warning("mail to %s not sent: %s", mail["To"], exc)
            return "failed"
        return "sent"


async def run(config: Config, redis: Redis, name: str, stop: asyncio.Event) -> None:
    """Send the campaigns' mails until `stop` (nothing when no mail server is configured)."""
    if config.smtp_host:
        await Mailer(redis, config, name=name).run(stop)
