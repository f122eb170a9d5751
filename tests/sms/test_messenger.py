"""The SMS sender against a real redis-server: each plan step sent at most once across a crash
and a restart, a link that drops before sending puts the step back. The transport here is a
recording double of `ivr.sms.gateway.Sender` (the SIP one is tested in test_sip.py)."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from ivr.campaign import store
from ivr.campaign.scheduler import Scheduler
from ivr.campaign.spec import CampaignSpec
from ivr.errors import AmiNotConnected, SmsRefused
from ivr.keys import campaign_key
from ivr.sms.gateway import Gateway
from ivr.sms.messenger import Messenger
from tests.campaigntools import events, person, wait_done


class Recorder:
    """Records every SMS; `hang` numbers never finish sending (the sender dies there),
    `drop` numbers fail once as if the AMI link were down, `refuse` ones are refused."""

    def __init__(self, hang: set[str] = frozenset(), drop: set[str] = frozenset(),
                 refuse: set[str] = frozenset()) -> None:  # fmt: skip
        self.sent: list[str] = []
        self.hang, self.drop, self.refuse = set(hang), set(drop), set(refuse)
        self.hanging = asyncio.Event()
        self.is_up = True

    async def wait_up(self, timeout: float) -> None:
        return None

    async def send(self, number: str, text: str) -> None:
        if number in self.hang:
            self.hanging.set()
            await asyncio.Event().wait()
        if number in self.drop:
            self.drop.discard(number)
            raise AmiNotConnected("AMI link down")
        if number in self.refuse:
            raise SmsRefused(f"SMS to {number} refused")
        self.sent.append(number)


async def missed_by_voice(db: aioredis.Redis, count: int) -> str:
    """A campaign (voice, sms) whose people all missed their call: their SMS steps are due."""
    people = [person(f"p{i}", "nurse", f"2{i:03d}", sms=f"06110000{i:02d}") for i in range(count)]
    spec = CampaignSpec(messages={"fr": "Plan blanc."}, plan=("voice", "sms"), retry_delay=0)
    cid = await store.create(db, spec, people, sms=True)
    s = Scheduler(db)
    for _ in people:
        c = await s.claim(cid, store.now_ms(), lease_ms=30_000, worker="w", asterisk="a")
        assert c is not None
        await s.finish(cid, c.pid, c.attempt, "no_answer", store.now_ms(), worker="w",
                       number=c.number, detail="")  # fmt: skip
        await s.release(cid, c.pid, c.attempt, "w")
    return cid


async def test_a_sender_dying_mid_send_is_not_replaced_by_a_second_sms(
    db: aioredis.Redis,
) -> None:
    cid = await missed_by_voice(db, 6)
    hung = Recorder(hang={"0611000000"})
    first = Messenger(db, Gateway("t", hung, ports=1, rate=1000), name="m1", lease=1.0)
    stop = asyncio.Event()
    task = asyncio.create_task(first.run(stop))
    await asyncio.wait_for(hung.hanging.wait(), 10)
    task.cancel()  # the worker is killed while its gateway sends
    await asyncio.gather(task, return_exceptions=True)
    # A restarted worker sends the rest, once each; the step lost with the first one is
    # `unknown` when its lease expires, never sent again.
    recorder = Recorder(drop={"0611000003"}, refuse={"0611000004"})
    second = Messenger(db, Gateway("t", recorder, ports=2, rate=1000), name="m2", lease=1.0)
    task = asyncio.create_task(second.run(stop))
    report = await wait_done(db, cid, timeout=30)
    stop.set()
    await task
    assert sorted(recorder.sent) == ["0611000001", "0611000002", "0611000003", "0611000005"]
    assert hung.sent == []
    results = {e["pid"]: e["result"] for e in await events(db, cid) if e["type"] == "sms"}
    assert results == {"p0": "unknown", "p1": "sent", "p2": "sent", "p3": "sent",
                       "p4": "failed", "p5": "sent"}  # fmt: skip
    counts = await db.hgetall(campaign_key(cid, "counts"))
    assert (counts["sms:sent"], counts["sms:unknown"], counts["sms:failed"]) == ("4", "1", "1")
    assert (report["no_answer"], report["pending"]) == (6, 0)
