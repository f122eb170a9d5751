"""SMS replies: "1", "2", "1 20"... from a person of a running (or recently ended) campaign count
as their answer, exactly once, with the quota rules of a key press.

The sender's number finds the person (the campaign's number index: their phones and their SMS
number); the newest campaign they have not answered yet takes the answer (the callback line's
rule). A text that is no answer gets a short help reply; a number no campaign knows is written
to the audit log and gets no reply (a stranger learns nothing, and no reply loop with another
robot). Every inbound SMS is kept in `ivr:sms:inbox` with what became of it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis

from ivr import keys
from ivr.access import audit
from ivr.campaign import store
from ivr.campaign.scheduler import Scheduler
from ivr.campaign.state import PersonState
from ivr.errors import AmiError, SmsRefused
from ivr.keys import campaign_key
from ivr.pbx.messages import InboundMessage
from ivr.retry import retrying
from ivr.sms import replies, texts
from ivr.sms.gateway import Gateway

log = logging.getLogger(__name__)

#: Inbound SMS kept in `ivr:sms:inbox` (approximately).
MAX_INBOX = 100_000


@dataclass(frozen=True)
class Handled:
    """What became of one inbound SMS."""

    #: answered, already, quota_met, help, unknown_sender, duplicate (another worker has it)
    status: str
    campaign: str = ""
    pid: str = ""
    outcome: str = ""
    #: What was sent back ("" for none).
    reply: str = ""


class SmsInbox:
    """Turns inbound SMS into answers; replies through `gateway` (at its rate)."""

    def __init__(self, redis: Redis, gateway: Gateway | None, *, window_hours: int) -> None:
        self.redis = redis
        self.gateway = gateway
        self.window_hours = window_hours
        self.scheduler = Scheduler(redis)

    async def handle(self, message: InboundMessage) -> Handled:
        """Count `message` as an answer if it is one, reply, and keep a trace of it. Every
        worker on the Asterisk sees the message: the first to claim it handles it."""
        if message.message_id:
            key = keys.sms_seen_prefix + message.message_id
            if not await self.redis.set(key, "1", nx=True, ex=7 * 86400):
                return Handled("duplicate")
        found = await self._find(message.sender) if message.sender else None
        if found is None:
            handled = Handled("unknown_sender")
            await audit.record(
                self.redis, "sms", "sms.unknown_sender",
                target=message.sender or message.raw_sender[:80],
                details={"text": message.body[:160]},
            )  # fmt: skip
            log.warning("SMS from a number no campaign knows (%s): ignored", message.sender)
        else:
            handled = await self._answer(message, *found)
        await self._keep(message, handled)
        if handled.reply and self.gateway is not None:
            await self._reply(message.sender, handled.reply)
        return handled

    async def _find(self, number: str) -> tuple[str, str, str] | None:
        """(campaign, person, language): the newest campaign the person has not answered yet,
        else the newest that knows them."""
        hits: list[tuple[str, str, PersonState]] = []
        for cid in await retrying(store.recent, self.redis, self.window_hours):
            pid = await store.find_by_number(self.redis, cid, number)
            if pid is None:
                continue
            got = await store.get_person(self.redis, cid, pid)
            if got is not None:
                hits.append((cid, pid, got[1]))
        if not hits:
            return None
        cid, pid, _ = next((h for h in hits if not h[2].answered), hits[0])
        got = await store.get_person(self.redis, cid, pid)
        language = got[0].language if got is not None else "fr"
        return cid, pid, language

    async def _answer(self, message: InboundMessage, cid: str, pid: str, lang: str) -> Handled:
        reply = replies.parse(message.body)
        if reply is None:
            return Handled("help", cid, pid, reply=texts.help_text(lang))
        state = PersonState.decode(
            cast(str | None, await self.redis.hget(campaign_key(cid, "state"), pid))
        )
        if state.outcome is not None and state.answered:
            return Handled("already", cid, pid, state.outcome.value,
                           texts.already(lang, state.outcome.value))  # fmt: skip
        got = await retrying(
            self.scheduler.answer, cid, pid, reply.outcome.value, _now_ms(), message.sender, "sms"
        )
        if got[0] == "quota_full":
            return Handled("quota_met", cid, pid, reply=texts.texts(lang)["quota_met"])
        if got[0] == "already":
            return Handled("already", cid, pid, got[1], texts.already(lang, got[1]))
        if got[0] == "quota_met":
            await self.redis.publish(keys.wake_channel, f"quota {cid} {got[1]}")
        if reply.minutes is not None:
            role = await self._role(cid, pid)
            await self.scheduler.record_eta(cid, pid, reply.minutes, _now_ms(), role)
        log.info("campaign %s: %s answered %s by SMS", cid, pid, reply.outcome.value)
        return Handled(
            "answered", cid, pid, reply.outcome.value,
            texts.answer(lang, reply.outcome.value, reply.minutes),
        )  # fmt: skip

    async def _role(self, cid: str, pid: str) -> str:
        got = await store.get_person(self.redis, cid, pid)
        return got[0].role if got is not None else ""

    async def _keep(self, message: InboundMessage, handled: Handled) -> None:
        fields: dict[str, Any] = {
            "from": message.sender or message.raw_sender[:80],
            "text": message.body[:480],
            "status": handled.status,
            "campaign": handled.campaign,
            "pid": handled.pid,
            "t": _now_ms(),
        }
        await self.redis.xadd(
            keys.sms_inbox_key, cast(Any, fields), maxlen=MAX_INBOX, approximate=True
        )

    async def _reply(self, number: str, text: str) -> None:
        assert self.gateway is not None
        try:
            async with self.gateway.slot():
                await self.gateway.sender.send(number, text)
        except (SmsRefused, AmiError) as exc:
            log.warning("SMS reply to %s not sent: %s", number, exc)


def _now_ms() -> int:
    return int(time.time() * 1000)
