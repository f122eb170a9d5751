"""The phone lines through the sandbox Asterisk: real calls, real DTMF, a scripted caller."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from ivr import audit, campaigns, speech
from ivr.agi import AgiServer
from ivr.ami import AmiLink
from ivr.campaigns import CampaignSpec
from ivr.config import Config
from ivr.constants import campaign_key
from ivr.lines import Lines
from ivr.redisserver import RedisServer
from ivr.roster import RosterStore
from ivr.scenarios import load_scenarios
from ivr.scheduler import Scheduler
from ivr.tts import Speaker

from .campaigntools import person
from .phonerobot import RobotHub

PIN = "246810"
DIRECTOR = "0611223344"


@dataclass
class Phone:
    hub: RobotHub
    lines: Lines
    db: Redis
    config: Config

    async def roster(self) -> None:
        people = [person(f"n{i}", "nurse", f"1{i}11") for i in range(4)]
        people += [person(f"d{i}", "doctor", f"2{i}") for i in range(2)]
        people.append(person("4242", "nurse", "0677889900", tags=frozenset({"crisis_cell"})))
        await RosterStore(self.db).replace(people)

    async def audit(self, action: str) -> list[dict[str, Any]]:
        return [e for e in await audit.entries(self.db) if e["action"] == action]


@pytest.fixture
async def phone(
    sandbox_config: Config, redis_server: RedisServer, db: Redis, ami: AmiLink
) -> AsyncIterator[Phone]:
    config = dataclasses.replace(sandbox_config, redis_url=redis_server.url, pin_lockout=120)
    speaker = Speaker(config.audio_dir, rate=config.tts_rate, timeout=config.tts_timeout)
    hub = RobotHub(ami, "")
    lines = Lines(config, db, speaker, load_scenarios(), observer=hub.observe)
    server = AgiServer({**lines.handlers(), "robot": hub.robot_flow}, port=0)
    port = await server.start()
    hub.agi_url = f"agi://127.0.0.1:{port}"
    # The dialplan reaches the lines through this global: point it at this test's server.
    await ami.action({"Action": "Setvar", "Variable": "IVR_AGI_URL", "Value": hub.agi_url})
    try:
        yield Phone(hub, lines, db, config)
    finally:
        await ami.action(
            {"Action": "Setvar", "Variable": "IVR_AGI_URL", "Value": "agi://127.0.0.1:14573"}
        )
        await server.close()
        await speaker.close()


async def test_trigger_with_the_right_pin_starts_the_scenario_as_a_drill(phone: Phone) -> None:
    await phone.roster()
    await phone.lines.pins.set("d0", PIN)
    async with phone.hub.call("trigger", DIRECTOR) as robot:
        await robot.until("pin")
        await robot.press(f"{PIN}#")
        await robot.until("scenario")
        await robot.press("9")
        await robot.until("scenario")
        await robot.press("1")
        await robot.until("record_offer")
        await robot.press("2")
        await robot.until("confirm")
        await robot.press("1")
        await robot.until("launched")
        await robot.finished()
    [cid] = await campaigns.active(phone.db)
    meta = await campaigns.get_meta(phone.db, cid)
    assert meta["name"] == "plan blanc - afflux massif"
    assert meta["drill"] == "1"
    report = await campaigns.report(phone.db, cid)
    assert report["total"] == 7
    assert speech.staff_to_call(7, "fr") in robot.said
    assert speech.launched(cid, "fr") in robot.said
    [started] = await phone.audit("campaign.start")
    assert started["who"] == "phone:d0" and started["target"] == cid
    assert started["details"]["caller"] == DIRECTOR and started["details"]["drill"] is True


async def test_three_wrong_pins_lock_the_caller_out_and_are_audited(phone: Phone) -> None:
    await phone.roster()
    await phone.lines.pins.set("d0", PIN)
    async with phone.hub.call("trigger", DIRECTOR) as robot:
        for wrong in ("111111#", "2468100#", "9#"):
            await robot.until("pin")
            await robot.press(wrong)
        await robot.finished()
    assert robot.seen.count("pin") == 3
    assert len(await phone.audit("pin.wrong")) == 3
    [locked] = await phone.audit("pin.lockout")
    assert locked["who"] == f"phone:{DIRECTOR}"
    assert await phone.lines.pins.locked_for(DIRECTOR) > 60
    # Locked out: even the right PIN is not asked for, and nothing starts.
    async with phone.hub.call("trigger", DIRECTOR) as robot:
        await robot.finished()
    assert "pin" not in robot.seen
    assert await campaigns.active(phone.db) == []
    # Another caller is not locked out.
    async with phone.hub.call("trigger", "0600000001") as robot:
        await robot.until("pin")
        await robot.hang_up()


async def test_recorded_message_is_the_campaigns_message(phone: Phone) -> None:
    await phone.roster()
    await phone.lines.pins.set("d0", PIN)
    async with phone.hub.call("trigger", DIRECTOR) as robot:
        await robot.until("pin")
        await robot.press(f"{PIN}#")
        await robot.until("scenario")
        await robot.press("2")
        await robot.until("record_offer")
        await robot.press("1")
        await robot.until("record")
        await robot.play("tt-monkeys")
        await robot.press("#")
        await robot.until("review")
        await robot.press("1")  # listen
        await robot.until("review")
        await robot.press("3")  # accept
        await robot.until("confirm")
        await robot.press("1")
        await robot.until("launched")
        await robot.finished()
    [cid] = await campaigns.active(phone.db)
    spec = json.loads((await campaigns.get_meta(phone.db, cid))["spec"])
    assert spec["recordings"]["fr"] == spec["recordings"]["en"]
    recorded = phone.config.audio_dir / spec["recordings"]["fr"]
    played = _sandbox_sound_seconds(phone.config, "tt-monkeys")
    with wave.open(str(recorded)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        seconds = wav.getnframes() / wav.getframerate()
    # The recording is what the caller played, give or take the beep and the '#'.
    assert played - 1.0 <= seconds <= played + 2.0, (seconds, played)
    assert not list((phone.config.audio_dir / "incoming").glob("*.wav")), "temp files left"


async def test_hanging_up_or_bad_keys_start_nothing(phone: Phone) -> None:
    await phone.roster()
    await phone.lines.pins.set("d0", PIN)
    # '#' alone, then garbage at the scenario menu until it gives up.
    async with phone.hub.call("trigger", DIRECTOR) as robot:
        await robot.until("pin")
        await robot.press("#")
        await robot.until("pin")
        await robot.press(f"{'7' * 40}#")  # far too long: one wrong PIN, not several
        await robot.until("pin")
        await robot.press(f"{PIN}#")
        for _ in range(3):
            await robot.until("scenario")
            await robot.press("7")
        await robot.finished()
    assert len(await phone.audit("pin.wrong")) == 1
    assert await phone.lines.pins.locked_for(DIRECTOR) == 0
    # Hanging up at the last confirmation.
    async with phone.hub.call("trigger", DIRECTOR) as robot:
        await robot.until("pin")
        await robot.press(f"{PIN}#")
        await robot.until("scenario")
        await robot.press("1")
        await robot.until("record_offer")
        await robot.press("2")
        await robot.until("confirm")
        await robot.hang_up()
    await robot.finished()
    # Answering "2" (cancel) at the confirmation.
    async with phone.hub.call("trigger", DIRECTOR) as robot:
        await robot.until("pin")
        await robot.press(f"{PIN}#")
        await robot.until("scenario")
        await robot.press("3")
        await robot.until("record_offer")
        await robot.press("2")
        await robot.until("confirm")
        await robot.press("2")
        await robot.finished()
    assert await phone.db.zcard("ivr:campaigns") == 0
    assert await phone.audit("campaign.start") == []


async def _campaign_with_answers(phone: Phone, quotas: dict[str, int]) -> str:
    """A campaign over the test roster where n0 said yes, n1 no, d0 was not reached."""
    people = await RosterStore(phone.db).load()
    spec = CampaignSpec(messages={"fr": "Alerte test."}, quotas=quotas, attempts=1, amd=False)
    cid = await campaigns.create(phone.db, spec, people)
    scheduler = Scheduler(phone.db)
    wanted = {"n0": "available", "n1": "unavailable", "d0": "no_answer"}
    done: set[str] = set()
    while len(done) < len(wanted):
        now = int(time.time() * 1000)
        claim = await scheduler.claim(cid, now, lease_ms=60_000, worker="w", asterisk="a")
        assert claim is not None
        outcome = wanted.get(claim.pid)
        if outcome is None:
            await scheduler.requeue(cid, claim.pid, claim.attempt, now + 3_600_000)
            continue
        await scheduler.finish(
            cid, claim.pid, claim.attempt, outcome, now, worker="w", number="x", detail="t"
        )
        await scheduler.release(cid, claim.pid, claim.attempt, "w")
        done.add(claim.pid)
    return cid


async def test_report_line_speaks_the_real_counts_and_stops_the_campaign(phone: Phone) -> None:
    await phone.roster()
    await phone.lines.pins.set("d0", PIN)
    cid = await _campaign_with_answers(phone, {"nurse": 3})
    before = time.time()
    async with phone.hub.call("report", DIRECTOR) as robot:
        await robot.until("pin")
        await robot.press(f"{PIN}#")
        await robot.until("report")
        after = time.time()
        report = await campaigns.report(phone.db, cid)
        expected = {
            speech.summary(report, "fr", now=t, role_labels={}) for t in (before, after + 1)
        }
        assert expected & set(robot.said), (robot.said, expected)
        await robot.press("2")
        await robot.until("stop_confirm")
        await robot.press("1")
        await robot.finished()
    assert (await campaigns.get_meta(phone.db, cid))["status"] == "stopped"
    [stopped] = await phone.audit("campaign.stop")
    assert stopped["who"] == "phone:d0" and stopped["target"] == cid


async def test_report_line_raises_a_quota_and_joins_the_crisis_cell(
    phone: Phone, ami: AmiLink
) -> None:
    await phone.roster()
    await phone.lines.pins.set("d0", PIN)
    cid = await _campaign_with_answers(phone, {"nurse": 3})
    joined = asyncio.Event()

    def on_event(message: Any) -> None:
        if message.get("Event") == "ConfbridgeJoin" and message.get("Conference") == "ivr-crisis":
            joined.set()

    ami.on_event(on_event)
    async with phone.hub.call("report", DIRECTOR) as robot:
        await robot.until("pin")
        await robot.press(f"{PIN}#")
        await robot.until("report")
        await robot.press("3")
        await robot.until("quota")
        await robot.press("5#")
        await robot.until("report")
        assert await phone.db.hget(campaign_key(cid, "quota"), "nurse") == "5"
        assert speech.quota_now("nurse", 5, "fr") in robot.said
        await robot.press("4")
        await asyncio.wait_for(joined.wait(), 20)
    [quota] = await phone.audit("campaign.quota")
    assert quota["details"] == {"role": "nurse", "quota": 5, "old": 3}
    assert await phone.audit("conference.join")


async def test_callback_answer_counts_once_in_the_same_campaign(phone: Phone) -> None:
    await phone.roster()
    cid = await _campaign_with_answers(phone, {})
    # d0 was not reached; they call back from their number.
    async with phone.hub.call("callback", "20") as robot:
        await robot.until("answer")
        await robot.press("1")
        await robot.until("eta")
        await robot.press("25#")
        await robot.finished()
    report = await campaigns.report(phone.db, cid)
    assert report["no_answer"] == 0 and report["available"] == 2
    state = json.loads(await phone.db.hget(campaign_key(cid, "state"), "d0"))
    assert state["o"] == "available" and state["eta"] == 25 and state["cb"] == 1
    # Calling back again changes nothing.
    async with phone.hub.call("callback", "20") as robot:
        await robot.until("already")
        await robot.finished()
    assert "answer" not in robot.seen
    assert (await campaigns.report(phone.db, cid))["available"] == 2
    # Unknown number: the staff number finds them (the crisis-cell nurse, still queued).
    async with phone.hub.call("callback", "0600000009") as robot:
        await robot.until("staff")
        await robot.press("4242#")
        await robot.until("answer")
        await robot.press("2")
        await robot.finished()
    state = json.loads(await phone.db.hget(campaign_key(cid, "state"), "4242"))
    assert state["o"] == "unavailable" and state["s"] == "d"


def _sandbox_sound_seconds(config: Config, name: str) -> float:
    root = config.audio_dir.parents[3]  # <root>/var/lib/ivr/sounds
    path = Path(root, "usr/share/asterisk/sounds/en_US_f_Allison", f"{name}.gsm")
    return path.stat().st_size / 1650  # GSM: 33 bytes per 20 ms


async def test_crisis_cell_staff_are_bridged_into_the_room_after_pressing_1(
    sandbox_config: Config, redis_server: RedisServer, db: Redis, ami: AmiLink
) -> None:
    from ivr.alert import Alerter
    from ivr.dialer import DialerWorker, WorkerSettings

    from .campaigntools import wait_events

    joined = asyncio.Event()
    channels: list[str] = []

    def on_event(message: Any) -> None:
        if message.get("Event") == "ConfbridgeJoin" and message.get("Conference") == "ivr-crisis":
            channels.append(message["Channel"])
            joined.set()

    ami.on_event(on_event)
    people = [person("c1", "director", "1011", tags=frozenset({"crisis_cell"}))]
    spec = CampaignSpec(messages={"fr": "Cellule de crise."}, amd=False, ask_eta=False)
    cid = await campaigns.create(db, spec, people)
    config = dataclasses.replace(sandbox_config, redis_url=redis_server.url)
    stop = asyncio.Event()
    async with Alerter(config) as alerter:
        worker = DialerWorker(alerter, db, WorkerSettings("crisis", capacity=2))
        task = asyncio.create_task(worker.run(stop))
        try:
            await wait_events(db, cid, "final", 1)
            await asyncio.wait_for(joined.wait(), 30)
            # In the room until the sim phone gives up: hang up to end the test now.
            await ami.action({"Action": "Hangup", "Channel": channels[0]})
        finally:
            stop.set()
            await task
    assert (await campaigns.report(db, cid))["available"] == 1


async def test_silence_at_every_menu_ends_the_call_politely(phone: Phone) -> None:
    await phone.roster()
    await phone.lines.pins.set("d0", PIN)
    phone.lines.key_wait = phone.lines.digits_wait = 1.0
    # No PIN at all: asked three times, then goodbye; no wrong PIN counted.
    async with phone.hub.call("trigger", DIRECTOR) as robot:
        await robot.finished()
    assert robot.seen == ["pin", "pin", "pin"]
    assert await phone.audit("pin.wrong") == []
    # Silence at the confirmation.
    async with phone.hub.call("trigger", DIRECTOR) as robot:
        await robot.until("pin")
        await robot.press(f"{PIN}#")
        await robot.until("scenario")
        await robot.press("1")
        await robot.until("record_offer")
        await robot.press("2")
        await robot.finished()
    assert robot.seen[-3:] == ["confirm"] * 3
    # The report line with nothing running, and the callback line for a stranger.
    async with phone.hub.call("report", DIRECTOR) as robot:
        await robot.until("pin")
        await robot.press(f"{PIN}#")
        await robot.finished()
    assert robot.seen == ["pin", "idle", "idle", "idle"]
    async with phone.hub.call("callback", "0600000009") as robot:
        await robot.finished()
    assert robot.seen == [], "no campaign: nothing to ask"
    assert await phone.db.zcard("ivr:campaigns") == 0
