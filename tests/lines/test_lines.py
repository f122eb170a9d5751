"""The phone lines through the sandbox Asterisk: a real SIP phone (SIPp), real DTMF.

Each test calls a line with tests/phonerobot.py: SIPp dials `trigger`, `report` or `callback`
over SIP and presses its keys (RFC 4733, SIP INFO or in-band) when the line waits for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
import wave
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from ivr.access import audit
from ivr.campaign import report as reports
from ivr.campaign import store
from ivr.campaign.scheduler import Scheduler
from ivr.campaign.spec import CampaignSpec, Group
from ivr.config import Config
from ivr.dialer.alerter import Alerter
from ivr.dialer.worker import DialerWorker, WorkerSettings
from ivr.keys import campaign_key
from ivr.pbx.ami import AmiLink
from ivr.sandbox import asterisk as sandbox
from ivr.sandbox.redisserver import RedisServer
from ivr.staff.roster import RosterStore
from ivr.voice import speech
from tests.campaigntools import person, wait_done, wait_events
from tests.lines.linephone import DIRECTOR, PIN, Phone, launch
from tests.phonerobot import On
from tests.sipp import Audio, Cue, DtmfMode, Hangup, Keys, Sipp, Step, WaitBye, sandbox_root

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("mode", ["rfc4733", "info", "inband"])
async def test_trigger_with_the_right_pin_starts_the_scenario(phone: Phone, mode: DtmfMode) -> None:
    """The whole trigger flow, its keys sent each way a phone may send them."""
    await phone.roster()
    await phone.lines.context.pins.set("d0", PIN)
    script = launch("1", drill=True)
    if mode != "rfc4733":
        script.append(On("launched", Hangup()))  # one transport hears the number to the end
    async with phone.hub.call("trigger", DIRECTOR, script, dtmf=mode) as robot:
        await robot.until("launched")
    await robot.finished()
    [cid] = await store.active(phone.db)
    meta = await store.get_meta(phone.db, cid)
    assert meta["name"] == "plan blanc - afflux massif"
    assert meta["drill"] == "1"
    report = await reports.report(phone.db, cid)
    assert report["total"] == 7
    assert speech.launch_summary("afflux massif de victimes", 7, "fr", drill=True) in robot.said
    assert speech.launched(cid, "fr") in robot.said
    [started] = await phone.audit("campaign.start")
    assert started["who"] == "phone:d0" and started["target"] == cid
    assert started["details"]["caller"] == DIRECTOR and started["details"]["drill"] is True


async def test_three_wrong_pins_lock_the_caller_out_and_are_audited(phone: Phone) -> None:
    await phone.roster()
    await phone.lines.context.pins.set("d0", PIN)
    wrong = [On("pin", Keys(k)) for k in ("111111#", "2468100#", "9#")]
    async with phone.hub.call("trigger", DIRECTOR, wrong) as robot:
        pass
    await robot.finished()
    assert robot.seen.count("pin") == 3
    assert len(await phone.audit("pin.wrong")) == 3
    [locked] = await phone.audit("pin.lockout")
    assert locked["who"] == f"phone:{DIRECTOR}"
    assert await phone.lines.context.pins.locked_for(DIRECTOR) > 60
    # Locked out: even the right PIN is not asked for, and nothing starts.
    async with phone.hub.call("trigger", DIRECTOR) as robot:
        pass
    await robot.finished()
    assert "pin" not in robot.seen
    assert await store.active(phone.db) == []
    # Another caller is not locked out.
    async with phone.hub.call("trigger", "0600000001", [On("pin", Hangup())]) as robot:
        pass
    await robot.finished()


async def test_only_listed_callers_reach_the_pin_when_a_list_is_set(phone: Phone) -> None:
    await phone.lines.context.pins.set("d0", PIN)
    # Listed in international form; the network gives the national one.
    phone.lines.context.config = dataclasses.replace(
        phone.config, trigger_callers=("+33611223344",)
    )
    calls = [
        phone.hub.call("trigger", DIRECTOR, [On("pin", Hangup())]),
        phone.hub.call("trigger", "0600000001"),
        phone.hub.call("report", "0600000002"),
    ]
    async with contextlib.AsyncExitStack() as stack:
        listed, stranger, other_line = [await stack.enter_async_context(c) for c in calls]
    for robot in (listed, stranger, other_line):
        await robot.finished()
    assert listed.seen == ["pin"]
    assert stranger.seen == [] and other_line.seen == []
    refused = await phone.audit("line.refused")
    assert sorted((e["who"], e["target"]) for e in refused) == [
        ("phone:0600000001", "trigger"),
        ("phone:0600000002", "report"),
    ]


async def test_recorded_message_is_what_the_staff_hear(
    phone: Phone, sandbox_config: Config, redis_server: RedisServer
) -> None:
    """Own voice: record 3 s, listen, accept; the campaign's calls play that recording."""
    # Two nurses who answer at once and press 1 two seconds into the message.
    await RosterStore(phone.db).replace(
        [person("n0", "nurse", "1011"), person("n1", "nurse", "1011")]
    )
    await phone.lines.context.pins.set("d0", PIN)
    script = [
        On("pin", Keys(f"{PIN}#")),
        On("scenario", Keys("2")),
        On("confirm", Keys("2")),  # record my own message first
        On("record", Audio(3000), Keys("#")),
        On("review", Keys("1")),  # listen
        On("review", Keys("3")),  # accept
        On("confirm", Keys("1")),
        On("launched", Hangup()),
    ]
    async with phone.hub.call("trigger", DIRECTOR, script) as robot:
        pass
    await robot.finished()
    [cid] = await store.active(phone.db)
    spec = json.loads((await store.get_meta(phone.db, cid))["spec"])
    assert spec["recordings"]["fr"] == spec["recordings"]["en"]
    recorded = phone.config.audio_dir / spec["recordings"]["fr"]
    with wave.open(str(recorded)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        seconds = wav.getnframes() / wav.getframerate()
    # The 3 s the phone said, give or take the time the '#' takes to arrive.
    assert 2.6 <= seconds <= 3.8, seconds
    assert not phone.new_temp_files(), "temp files left"
    # The nurses' alert calls play that very file as the message.
    played: list[str] = []
    message = phone.config.asterisk_path(recorded.with_suffix(""))

    def on_event(event: Any) -> None:
        data = str(event.get("AppData", ""))
        if event.get("Application") == "Read" and data.startswith(f"IVR_KEY,{message}&"):
            played.append(str(event["Channel"]))

    c = sandbox_config
    # The dialplan event class too (Newexten: which application runs, with what).
    watch = AmiLink(c.ami_host, c.ami_port, c.ami_user, c.ami_secret, events="call,dialplan")
    watch.on_event(on_event)
    await watch.start()
    # The workers read recordings from the audio directory the line wrote them in.
    config = phone.config
    stop = asyncio.Event()
    async with Alerter(config) as alerter:
        worker = DialerWorker(alerter, phone.db, WorkerSettings("rec", capacity=10))
        task = asyncio.create_task(worker.run(stop))
        try:
            report = await wait_done(phone.db, cid, timeout=60)
        finally:
            stop.set()
            await task
            await watch.close()
    assert report["available"] == 2
    assert len(set(played)) == 2, played


async def test_hanging_up_or_bad_keys_start_nothing(phone: Phone) -> None:
    await phone.roster()
    await phone.lines.context.pins.set("d0", PIN)
    # '#' alone, a far too long PIN (one wrong PIN, not several), then garbage at the scenario
    # menu until it gives up.
    script = [
        On("pin", Keys("#")),
        On("pin", Keys(f"{'7' * 40}#", gap_ms=60)),
        On("pin", Keys(f"{PIN}#")),
        *[On("scenario", Keys("7")) for _ in range(3)],
    ]
    async with phone.hub.call("trigger", DIRECTOR, script) as robot:
        pass
    await robot.finished()
    assert robot.seen == ["pin", "pin", "pin", "scenario", "scenario", "scenario"]
    assert len(await phone.audit("pin.wrong")) == 1
    assert await phone.lines.context.pins.locked_for(DIRECTOR) == 0
    # Hanging up at the last confirmation.
    async with phone.hub.call("trigger", DIRECTOR, [*launch("1")[:-1], On("confirm", Hangup())]):
        pass
    # "2" at the confirmation (my own message first), then hanging up instead of speaking.
    async with phone.hub.call(
        "trigger", DIRECTOR, [*launch("3")[:-1], On("confirm", Keys("2")), On("record", Hangup())]
    ) as robot:
        pass
    await robot.finished()
    assert robot.seen[-2:] == ["confirm", "record"]
    assert await phone.db.zcard("ivr:campaigns") == 0
    assert await phone.audit("campaign.start") == []


RECORD_PATH = [
    On("pin", Keys(f"{PIN}#")),
    On("scenario", Keys("1")),
    On("confirm", Keys("2")),
    On("record", Audio(1500), Keys("#")),
    On("review", Keys("3")),
    On("confirm", Keys("1")),
]


async def test_hanging_up_at_any_step_of_the_trigger_line_leaves_nothing(phone: Phone) -> None:
    await phone.roster()
    await phone.lines.context.pins.set("d0", PIN)
    steps = [on.step for on in RECORD_PATH]
    # One caller hangs up at each step, all at once (each with a caller id of their own).
    calls = [
        phone.hub.call("trigger", f"060000001{n}", [*RECORD_PATH[:n], On(at, Hangup())])
        for n, at in enumerate(steps)
    ]
    async with contextlib.AsyncExitStack() as stack:
        robots = [await stack.enter_async_context(call) for call in calls]
    for robot, at in zip(robots, steps, strict=True):
        await robot.finished()
        assert robot.seen[-1] == at
    assert await phone.db.zcard("ivr:campaigns") == 0
    assert await phone.audit("campaign.start") == []
    assert not phone.new_temp_files(), "temp files left"


async def _campaign_with_answers(
    phone: Phone, quotas: dict[str, int], groups: tuple[Group, ...] = ()
) -> str:
    """A campaign over the test roster's nurses and doctors where n0 said yes, n1 no, d0 was
    not reached."""
    people = await RosterStore(phone.db).load()
    spec = CampaignSpec(messages={"fr": "Alerte test."}, quotas=quotas, attempts=1, amd=False,
                        roles=("nurse", "doctor"), groups=groups)  # fmt: skip
    cid = await store.create(phone.db, spec, people)
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
    await phone.lines.context.pins.set("d0", PIN)
    cid = await _campaign_with_answers(phone, {"nurse": 3})
    report = await reports.report(phone.db, cid)
    assert (report["available"], report["unavailable"], report["no_answer"]) == (1, 1, 1)
    before = time.time()
    script = [
        On("pin", Keys(f"{PIN}#")),
        On("report", Keys("2")),
        On("stop_confirm", Keys("1")),
    ]
    async with phone.hub.call("report", DIRECTOR, script, dtmf="info") as robot:
        pass
    await robot.finished()
    expected = {speech.summary(report, "fr", now=t, role_labels={}) for t in (before, time.time())}
    assert expected & set(robot.said), (robot.said, expected)
    # The counts as words, independently of speech.summary: 3 reached of 7, 1 nurse of 3.
    [said] = [s for s in robot.said if s.startswith(f"Campagne numéro {cid}")]
    assert (
        "3 personnes appelées sur 7. Une personne disponible. Une personne indisponible. "
        "Une personne injoignable." in said
    )
    assert "un disponible sur 3 demandés" in said
    assert (await store.get_meta(phone.db, cid))["status"] == "stopped"
    [stopped] = await phone.audit("campaign.stop")
    assert stopped["who"] == "phone:d0" and stopped["target"] == cid
    assert speech.stopped(cid, "fr") in robot.said


async def test_report_line_raises_a_quota_and_joins_the_crisis_cell(phone: Phone) -> None:
    await phone.roster()
    await phone.lines.context.pins.set("d0", PIN)
    cid = await _campaign_with_answers(phone, {"nurse": 3})
    joined: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_event(message: Any) -> None:
        room = message.get("Conference") == "ivr-crisis"
        if message.get("Event") == "ConfbridgeJoin" and room and not joined.done():
            joined.set_result(str(message["Channel"]))

    phone.ami.on_event(on_event)
    script = [
        On("pin", Keys(f"{PIN}#")),
        On("report", Keys("3")),
        On("quota", Keys("5#")),
        On("report", Keys("4")),
    ]
    async with phone.hub.call("report", DIRECTOR, script) as robot:
        channel = await asyncio.wait_for(joined, 30)
        assert channel == robot.channel
        # In the room until somebody hangs up: the director leaves.
        await phone.ami.action({"Action": "Hangup", "Channel": channel})
    await robot.finished()
    assert await phone.db.hget(campaign_key(cid, "quota"), "nurse") == "5"
    assert speech.quota_now("nurse", 5, "fr") in robot.said
    [quota] = await phone.audit("campaign.quota")
    assert quota["details"] == {"role": "nurse", "quota": 5, "old": 3}
    assert await phone.audit("conference.join")


async def test_report_line_extends_the_alert_to_the_next_group(phone: Phone) -> None:
    await phone.roster()
    roster = RosterStore(phone.db)
    await roster.replace([*await roster.load(), person("m0", "midwife", "1111")])
    await phone.lines.context.pins.set("d0", PIN)
    cid = await _campaign_with_answers(phone, {"nurse": 3}, (Group("sages-femmes", ("midwife",)),))
    assert (await reports.report(phone.db, cid))["total"] == 7
    script = [
        On("pin", Keys(f"{PIN}#")),
        On("report", Keys("3")),
        On("change", Keys("2")),  # 1 would raise the nurses' quota
        On("extend_confirm", Keys("1")),
        On("report", Keys("3")),  # no group left now: straight to the quota
        On("quota", Hangup()),
    ]
    async with phone.hub.call("report", DIRECTOR, script) as robot:
        pass
    await robot.finished()
    assert speech.staff_to_call(1, "fr") in robot.said
    assert speech.extended(1, "fr") in robot.said
    report = await reports.report(phone.db, cid)
    assert report["total"] == 8 and report["by_role"]["midwife"]["pending"] == 1
    [extended] = await phone.audit("campaign.extend")
    assert extended["who"] == "phone:d0"
    assert extended["details"] == {"group": "sages-femmes", "added": 1}
    assert robot.seen.count("change") == 1


async def test_callback_answer_counts_once_in_the_same_campaign(phone: Phone) -> None:
    await phone.roster()
    cid = await _campaign_with_answers(phone, {})
    # d0 was not reached; they call back from their number.
    answer = [On("answer", Keys("1")), On("eta", Keys("25#"))]
    async with phone.hub.call("callback", "20", answer, dtmf="info") as robot:
        pass
    await robot.finished()
    report = await reports.report(phone.db, cid)
    assert report["no_answer"] == 0 and report["available"] == 2
    state = json.loads(await phone.db.hget(campaign_key(cid, "state"), "d0"))
    assert state["o"] == "available" and state["eta"] == 25 and state["cb"] == 1
    # Calling back again changes nothing.
    async with phone.hub.call("callback", "20") as robot:
        pass
    await robot.finished()
    assert robot.seen == ["already"]
    assert (await reports.report(phone.db, cid))["available"] == 2
    # Unknown number: the staff number finds them (the crisis-cell nurse, still queued).
    by_staff_number = [On("staff", Keys("4242#")), On("answer", Keys("2"))]
    async with phone.hub.call("callback", "0600000009", by_staff_number) as robot:
        pass
    await robot.finished()
    state = json.loads(await phone.db.hget(campaign_key(cid, "state"), "4242"))
    assert state["o"] == "unavailable" and state["s"] == "d"


async def test_crisis_cell_staff_are_bridged_into_the_room_after_pressing_1(
    sandbox_config: Config, redis_server: RedisServer, db: Redis, ami: AmiLink
) -> None:
    joined = asyncio.Event()
    channels: list[str] = []

    def on_event(message: Any) -> None:
        if message.get("Event") == "ConfbridgeJoin" and message.get("Conference") == "ivr-crisis":
            channels.append(message["Channel"])
            joined.set()

    ami.on_event(on_event)
    people = [person("c1", "director", "1011", tags=frozenset({"crisis_cell"}))]
    spec = CampaignSpec(messages={"fr": "Cellule de crise."}, amd=False, ask_eta=False)
    cid = await store.create(db, spec, people)
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
    assert (await reports.report(db, cid))["available"] == 1


async def test_silence_at_every_menu_ends_the_call_politely(phone: Phone) -> None:
    await phone.roster()
    await phone.lines.context.pins.set("d0", PIN)
    phone.lines.key_wait = phone.lines.digits_wait = 1.0
    # Four callers at once (told apart by their caller ids): no PIN at all; silence at the
    # confirmation; the report line with nothing running; the callback line for a stranger.
    calls = [
        phone.hub.call("trigger", "0600000001"),
        phone.hub.call("trigger", "0600000002", launch("1")[:-1]),
        phone.hub.call("report", "0600000003", [On("pin", Keys(f"{PIN}#"))]),
        phone.hub.call("callback", "0600000009"),
    ]
    async with contextlib.AsyncExitStack() as stack:
        robots = [await stack.enter_async_context(call) for call in calls]
    for robot in robots:
        await robot.finished()
    no_pin, no_confirm, idle, stranger = robots
    # Asked three times, then goodbye; no wrong PIN counted.
    assert no_pin.seen == ["pin", "pin", "pin"]
    assert await phone.audit("pin.wrong") == []
    assert no_confirm.seen[-3:] == ["confirm"] * 3
    assert idle.seen == ["pin", "idle", "idle", "idle"]
    assert stranger.seen == [], "no campaign: nothing to ask"
    assert await phone.db.zcard("ivr:campaigns") == 0


#: The end-to-end director's caller id, used by no other test: its cues go to its call only.
E2E_CALLER = "0699887766"


async def test_ivr_worker_serves_the_lines_end_to_end(
    sandbox_config: Config, redis_server: RedisServer, db: Redis, tmp_path: Path
) -> None:
    """The product as deployed: `ivr roster import`, `ivr pin set`, then `ivr worker` serves the
    trigger line (FastAGI) and dials the staff of the campaign the director starts over SIP.

    No observer in another process: the phone is cued once, when Asterisk starts the first
    prompt that takes keys (AMI AGIExecStart of a STREAM FILE with every key as escape digit),
    and types every key of the path ahead from there."""
    sandbox_env = sandbox.env_file()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env.update(IVR_CONFIG=str(sandbox_env), IVR_REDIS_URL=redis_server.url)
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "matricule;nom;fonction;service;portable\n"
        "d0;Directrice;director;direction;0611223344\n"
        "n0;Infirmière 0;nurse;urgences;1011\n"
        "n1;Infirmière 1;nurse;urgences;1111\n",
        encoding="utf-8",
    )

    def ivr(*args: str, stdin: str = "") -> None:
        done = subprocess.run([sys.executable, "-m", "ivr", *args], env=env, input=stdin,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr

    await asyncio.to_thread(ivr, "roster", "import", str(roster))
    await asyncio.to_thread(ivr, "pin", "set", "d0", "--stdin", stdin=f"{PIN}\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        agi_port = s.getsockname()[1]
    env["IVR_AGI_PORT"] = str(agi_port)
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ivr", "worker", "--name", "lines-e2e", "--capacity", "4",
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    c = sandbox_config
    watch = AmiLink(c.ami_host, c.ami_port, c.ami_user, c.ami_secret, events="agi")
    cues: list[asyncio.Task[Any]] = []  # one cue only: the first prompt that takes keys

    def on_event(event: Any) -> None:
        command, channel = str(event.get("Command", "")), str(event.get("Channel", ""))
        # Only this test's call: other tests (run in parallel) call the same endpoint, and a cue
        # sent to their phones would make them press keys out of turn.
        if event.get("Event") != "AGIExecStart" or event.get("CallerIDNum") != E2E_CALLER:
            return
        if command.startswith("STREAM FILE") and command.endswith('"0123456789*#"') and not cues:
            action = {"Action": "SendText", "Channel": channel, "Message": "go"}
            task = asyncio.create_task(watch.action(action))
            cues.append(task)

    watch.on_event(on_event)
    await watch.start()
    try:
        assert worker.stderr is not None
        # The worker says so once it serves the lines and dials.
        ready = await asyncio.wait_for(worker.stderr.readline(), 60)
        assert b"worker lines-e2e" in ready, ready
        # One cue (the first prompt began), then every key typed ahead: a prompt may be several
        # STREAM FILEs, so cueing each key on "a prompt began" would race with the flow; the
        # line keeps keys typed ahead (tests/lines/test_typeahead.py).
        steps: list[Step] = [Cue(), Keys(f"{PIN}#11"), WaitBye()]
        sipp = Sipp(sandbox_root())
        headers = {"X-Ivr-Agi": f"agi://127.0.0.1:{agi_port}"}
        result = await sipp.call("trigger", steps, caller=E2E_CALLER, headers=headers, timeout=90)
        assert result.ok, result.explain()
        cid = await store.latest(db)
        assert cid is not None, "the director's call started a campaign"
        report = await wait_done(db, cid, timeout=90)
    finally:
        worker.terminate()
        await asyncio.wait_for(worker.wait(), 30)
        await watch.close()
    assert report["name"] == "plan blanc - afflux massif"
    assert (report["total"], report["available"]) == (2, 2), report
    [started] = [e for e in await audit.entries(db) if e["action"] == "campaign.start"]
    assert started["who"] == "phone:d0" and started["details"]["caller"] == E2E_CALLER


async def test_warm_up_renders_the_scenario_menus_before_any_call(phone: Phone) -> None:
    """What the director hears first is ready before the first call: no render mid-call."""
    await phone.lines.warm_up(("fr", "en"))
    speaker = phone.lines.context.speaker
    misses = speaker.misses
    for language in ("fr", "en"):
        choices = [(s.key, s.label(language)) for s in phone.lines.context.scenarios]
        for drill_key in ("9", None):
            await speaker.render(
                speech.scenario_menu(choices, language, drill_key=drill_key), language
            )
    assert speaker.misses == misses, "every menu was a cache hit"


async def test_a_scenarios_own_number_skips_the_menu(phone: Phone) -> None:
    """`trigger-2`: PIN, then the confirmation naming scenario 2; no scenario menu, no drill."""
    await phone.roster()
    await phone.lines.context.pins.set("d0", PIN)
    script = [On("pin", Keys(f"{PIN}#")), On("confirm", Keys("1"))]
    async with phone.hub.call("trigger-2", DIRECTOR, script) as robot:
        await robot.until("launched")
    await robot.finished()
    assert "scenario" not in robot.seen
    [cid] = await store.active(phone.db)
    meta = await store.get_meta(phone.db, cid)
    [scenario] = [s for s in phone.lines.context.scenarios if s.key == "2"]
    assert meta["name"] == scenario.name and meta["drill"] == "0"
    [started] = await phone.audit("campaign.start")
    assert started["details"]["line"] == "trigger-2"
