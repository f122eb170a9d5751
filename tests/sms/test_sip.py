"""SMS over SIP MESSAGE through the real sandbox Asterisk: SIPp as the gateway receiving them and
as the staff's phone replying, a real redis-server, the real dialer."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from ivr import keys
from ivr.campaign import report as reports
from ivr.campaign import store
from ivr.campaign.spec import CampaignSpec
from ivr.config import Config
from ivr.dialer.alerter import Alerter
from ivr.errors import SmsRefused
from ivr.keys import campaign_key
from ivr.pbx.ami import AmiLink
from ivr.pbx.messages import InboundMessage, SipMessages
from ivr.sms import service as sms
from ivr.sms.gateway import Gateway
from ivr.sms.inbox import Handled, SmsInbox
from tests import smsphone
from tests.campaigntools import events, person, states, wait_done, wait_events
from tests.dialer.test_campaigns import Workers
from tests.sipp import Sipp, sandbox_root

pytestmark = pytest.mark.integration


@pytest.fixture
def sipp(sandbox_config: Config) -> Sipp:
    return Sipp(sandbox_root())


class Replies:
    """The inbox on an AMI link: the IvrSms events from `senders` handled, results in order
    (tests running at once share the sandbox: each takes its own numbers' messages only)."""

    def __init__(self, link: AmiLink, inbox: SmsInbox, senders: set[str]) -> None:
        self.results: asyncio.Queue[Handled] = asyncio.Queue()
        self.tasks: set[asyncio.Task[None]] = set()

        async def handle(message: InboundMessage) -> None:
            await self.results.put(await inbox.handle(message))

        def inbound(message: InboundMessage) -> None:
            if message.sender[-9:] not in {n[-9:] for n in senders}:
                return
            task = asyncio.ensure_future(handle(message))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

        SipMessages(link, "").on_message(inbound)

    async def next(self) -> Handled:
        return await asyncio.wait_for(self.results.get(), 20)


async def test_default_plan_reaches_by_sms_whom_the_call_missed(
    alerter: Alerter, db: aioredis.Redis, sipp: Sipp, sandbox_config: Config
) -> None:
    """Voice, then SMS to whoever the call missed, then voice, with the SMS service a worker
    runs (`ivr.sms.service`): one person answers only by SMS (with minutes to arrival), one
    presses 1 at once and gets no SMS, one never answers and gets one SMS and two calls."""
    people = [
        person("sms", "nurse", "2000", sms="0633000001"),
        person("key", "nurse", "1070", sms="0633000002"),
        person("none", "nurse", "3000", sms="0633000003"),
    ]
    workers = Workers(alerter, db)
    stop = asyncio.Event()
    async with smsphone.receive(sipp, 2) as gateway:
        config = dataclasses.replace(
            sandbox_config, sms_sip_to=gateway.to_template, sms_sip_from="sip:0140000000@ivr",
            sms_sip_ports=2, sms_sip_rate=10,
        )  # fmt: skip
        async with sms.configured(config, alerter.link, db) as service:
            running = asyncio.create_task(service.run("w0", stop))
            workers.start(capacity=3)
            spec = CampaignSpec(
                messages={"fr": "Plan blanc, venez."}, ring_timeout=5, amd=False, retry_delay=0,
                callback_number="0140000000",
            )  # fmt: skip
            cid = await store.create(db, spec, people, sms=config.sms_ready)
            await wait_events(db, cid, "sms", 2)
            sent = await gateway.messages()
            # The nurse reads it and replies "oui 20": available, there in 20 minutes.
            async with smsphone.receive(sipp, 1) as phone:
                sip = service.gateways[0].sender
                assert isinstance(sip, SipMessages)
                sip.to_template = phone.to_template
                assert (await smsphone.send(sipp, "+33633000001", "Oui 20")).ok
                thanks = await phone.messages()
            report = await wait_done(db, cid)
            stop.set()
            await running
            await workers.close()
    assert sorted(m.to_user for m in sent) == ["0633000001", "0633000003"]
    assert all(m.body.startswith("Plan blanc, venez.\nRépondez 1") for m in sent)
    assert all("0140000000" in m.from_header for m in sent)
    assert thanks[0].body == "Merci, réponse enregistrée : disponible, sur place dans 20 min."
    st = await states(db, cid)
    assert (st["sms"]["o"], st["sms"]["sr"], st["sms"]["eta"]) == ("available", 1, 20)
    assert st["key"]["o"] == "available" and "sr" not in st["key"]
    assert st["none"]["o"] == "busy"
    assert (report["available"], report["busy"]) == (2, 1)
    called = [e["pid"] for e in await events(db, cid) if e["type"] == "attempt"]
    assert called.count("none") == 2, "voice again after the SMS"
    counts = await db.hgetall(campaign_key(cid, "counts"))
    assert (counts["sms:sent"], counts["sms:answered"]) == ("2", "1")


@pytest.fixture
async def campaign(db: aioredis.Redis) -> str:
    """A running campaign nobody calls (no worker): the replies alone."""
    people = [
        person("a", "nurse", "2000", sms="0611000001"),
        person("b", "nurse", "2001", "0622000002"),
        person("c", "doctor", "2002", language="en", sms="0611000003"),
    ]
    spec = CampaignSpec(messages={"fr": "x"}, quotas={"nurse": 1})
    return await store.create(db, spec, people, sms=True)


SENDERS = {"0611000001", "0622000002", "0699999999", "0611000003"}


@pytest.fixture
async def inbox(ami: AmiLink, db: aioredis.Redis, sipp: Sipp) -> AsyncIterator[Any]:
    async with smsphone.receive(sipp, 4) as phone:
        gw = Gateway("sip", SipMessages(ami, phone.to_template, "sip:ivr@test"), ports=1, rate=50)
        yield phone, Replies(ami, SmsInbox(db, gw, window_hours=1), SENDERS)


async def test_replies_count_once_with_the_quota_and_help(
    inbox: Any, db: aioredis.Redis, sipp: Sipp, campaign: str
) -> None:
    phone, replies = inbox
    cid = campaign
    got = []
    for sender, text in [
        ("0611000001", "1"),  # a: counts, meets the nurses' quota
        ("0611000001", "1"),  # a again: already recorded
        ("0622000002", "OUI"),  # b, by the mobile among their phones: the quota is met
        ("0699999999", "1"),  # nobody's number: audited, no reply
        ("0611000003", "peut-être"),  # c: help, in English
    ]:
        assert (await smsphone.send(sipp, sender, text)).ok
        got.append(await replies.next())
    assert [(h.status, h.pid) for h in got] == [
        ("answered", "a"), ("already", "a"), ("quota_met", "b"), ("unknown_sender", ""),
        ("help", "c"),
    ]  # fmt: skip
    sent = await phone.messages()
    assert [m.to_user for m in sent] == ["0611000001", "0611000001", "0622000002", "0611000003"]
    assert sent[1].body == "Votre réponse était déjà enregistrée : disponible."
    assert sent[3].body.startswith("Reply not understood.")
    report = await reports.report(db, cid)
    assert report["by_role"]["nurse"]["available"] == 1
    assert [e["w"] for e in await events(db, cid) if e["type"] == "attempt"] == ["sms"]
    audit = await db.xrange(keys.audit_key)
    assert [(e["action"], e["target"]) for _, e in audit] == [("sms.unknown_sender", "0699999999")]
    inbound = await db.xrange(keys.sms_inbox_key)
    assert [e["status"] for _, e in inbound] == [h.status for h in got]


async def test_two_workers_on_one_asterisk_handle_a_reply_once(
    ami: AmiLink, sandbox_config: Config, db: aioredis.Redis, sipp: Sipp, campaign: str
) -> None:
    c = sandbox_config
    other = AmiLink(c.ami_host, c.ami_port, c.ami_user, c.ami_secret)
    await other.start()
    try:
        one = Replies(ami, SmsInbox(db, None, window_hours=1), {"0644000001"})
        two = Replies(other, SmsInbox(db, None, window_hours=1), {"0644000001"})
        await db.hset(campaign_key(campaign, "numbers"), "644000001", "a")
        assert (await smsphone.send(sipp, "0644000001", "2")).ok
        statuses = sorted([(await one.next()).status, (await two.next()).status])
    finally:
        await other.close()
    assert statuses == ["answered", "duplicate"]
    assert len(await db.xrange(keys.sms_inbox_key)) == 1


async def test_gateway_rate_is_kept_and_used(ami: AmiLink, sipp: Sipp) -> None:
    """3 ports at 2 SMS/s each: 6 per second at most, and no slower than 95% of that. (Each
    send holds its port for Asterisk's answer: at 4/s, a loaded machine's 250 ms answers made
    the ports, not the pacing, the limit.)"""
    count = 18
    async with smsphone.receive(sipp, count) as phone:
        gw = Gateway("sip", SipMessages(ami, phone.to_template), ports=3, rate=2)
        starts: list[float] = []

        async def one(n: int) -> None:
            async with gw.slot():
                starts.append(time.monotonic())
                await gw.sender.send(f"06110000{n:02d}", f"message {n}")

        await asyncio.gather(*(one(n) for n in range(count)))
        received = await phone.messages()
    assert sorted(m.body for m in received) == sorted(f"message {n}" for n in range(count))
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert min(gaps) >= gw.spacing - 0.005, "never faster than the gateway allows"
    rate = (count - 1) / (starts[-1] - starts[0])
    assert 0.95 <= rate / (gw.ports * gw.rate) <= 1.0, rate


async def test_refused_numbers_and_endpoints(ami: AmiLink) -> None:
    with pytest.raises(SmsRefused, match="not allowed in a number"):
        await SipMessages(ami, "pjsip:ivr-test-trunk/sip:{number}@127.0.0.1:9").send("06&1", "x")
    with pytest.raises(SmsRefused, match="refused by Asterisk"):
        await SipMessages(ami, "pjsip:no-such-endpoint/sip:{number}@127.0.0.1:9").send("0611", "x")
