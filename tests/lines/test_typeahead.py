"""A director who types ahead: every key of a path pressed at a fixed rhythm from the moment
the line answers, waiting for no prompt, while the service is slow on purpose (each speech
render held back, each Redis reply late). Every key must count, in order: the flow goes
through each step once, with no "invalid" and no menu asked twice, and does what was asked.

Over real SIP (SIPp), in each of RFC 4733, SIP INFO and in-band, at 150 ms and 350 ms between
keys. Before the keys came from AMI events (ivr.pbx.keys), a key pressed between two AGI
commands was lost and these tests failed on most runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from ivr.campaign import store
from ivr.campaign.scenarios import load_scenarios
from ivr.config import Config
from ivr.db import connect
from ivr.pbx.ami import AmiLink
from ivr.sandbox.redisserver import RedisServer
from ivr.staff.roster import RosterStore
from ivr.voice.tts import Speaker
from tests.lines.linephone import PIN, Phone, serve_lines
from tests.phonerobot import On
from tests.sipp import DtmfMode, Hangup, Keys
from tests.tcpproxy import TcpProxy

pytestmark = pytest.mark.integration

#: What "slow" means here: each speech render held back (an uncached sentence takes 50-300 ms),
#: and each Redis reply late.
RENDER_DELAY = 0.3
REDIS_DELAY = 0.05
#: Calls per transport and rhythm.
CALLS = 2


class SlowSpeaker(Speaker):
    """The real speech engine, each render held back as an uncached sentence would be (once
    `slow`: the fixed prompts and menus are rendered at start-up, as `ivr worker` does)."""

    slow = False

    async def render(self, text: str, language: str) -> Path:
        if self.slow:
            await asyncio.sleep(RENDER_DELAY)
        return await super().render(text, language)


@pytest.fixture
async def slow_phone(
    sandbox_config: Config, redis_server: RedisServer, db: Redis, ami: AmiLink
) -> AsyncIterator[Phone]:
    """The lines with a slow speech engine, reaching Redis through a proxy that delays every
    reply (`db`, the test's own client, goes straight)."""
    proxy = TcpProxy("127.0.0.1", redis_server.port)
    await proxy.start()
    proxy.delay = REDIS_DELAY
    slow_db = connect(f"redis://127.0.0.1:{proxy.port}/0")
    try:
        async with serve_lines(
            sandbox_config, redis_server.url, slow_db, ami, speaker_class=SlowSpeaker
        ) as served:
            served.db = db
            await served.lines.warm_up(("fr",))
            speaker = served.lines.context.speaker
            assert isinstance(speaker, SlowSpeaker)
            speaker.slow = True
            yield served
    finally:
        await slow_db.aclose()
        await proxy.close()


RHYTHMS = [150, 350]
MODES: list[DtmfMode] = ["rfc4733", "info", "inband"]


@pytest.mark.parametrize("every_ms", RHYTHMS)
@pytest.mark.parametrize("mode", MODES)
async def test_trigger_typed_ahead_starts_the_right_campaign(
    slow_phone: Phone, mode: DtmfMode, every_ms: int
) -> None:
    phone = slow_phone
    await phone.roster()
    await phone.lines.context.pins.set("d0", PIN)
    # PIN, 9 (drill), 1 (scenario 1), 1 (launch).
    keys = f"{PIN}#911"
    for n in range(CALLS):
        caller = f"061122334{n}"
        script = [Keys(keys, every_ms=every_ms), On("launched", Hangup())]
        async with phone.hub.call("trigger", caller, script, dtmf=mode) as robot:
            pass
        await robot.finished()
        assert robot.seen == ["pin", "scenario", "scenario", "confirm", "launched"]
    active = await store.active(phone.db)
    assert len(active) == CALLS
    for cid in active:
        meta = await store.get_meta(phone.db, cid)
        assert (meta["name"], meta["drill"]) == ("plan blanc - afflux massif", "1")


@pytest.mark.parametrize("every_ms", RHYTHMS)
@pytest.mark.parametrize("mode", MODES)
async def test_report_typed_ahead_stops_the_campaign(
    slow_phone: Phone, mode: DtmfMode, every_ms: int
) -> None:
    phone = slow_phone
    await phone.roster()
    await phone.lines.context.pins.set("d0", PIN)
    scenario = load_scenarios()[0]
    people = await RosterStore(phone.db).load()
    for n in range(CALLS):
        cid = await store.create(phone.db, scenario.campaign(drill=True, recordings={}), people)
        # PIN, 2 (stop), 1 (yes, stop it).
        script = [Keys(f"{PIN}#21", every_ms=every_ms)]  # then the line hangs up
        async with phone.hub.call("report", f"061122334{n}", script, dtmf=mode) as robot:
            pass
        await robot.finished()
        assert robot.seen == ["pin", "report", "stop_confirm"]
        assert (await store.get_meta(phone.db, cid))["status"] == "stopped"
