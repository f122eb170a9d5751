"""From the first ring of the trigger line to the first staff call ringing.

    .venv/bin/python bench/trigger.py            # 20 runs of each director
    .venv/bin/python bench/trigger.py --runs 3 --director "keys at once"

A director calls the trigger line of the sandbox Asterisk over SIP (SIPp, tests/phonerobot.py:
keys as RFC 4733 events), keys the PIN, picks scenario 1 and launches it with the prepared
message. A dialer worker is running on the same Asterisk with a roster of 300 simulated staff.
Four directors, each timed from the INVITE of their call to the first staff call's channel
(Newchannel) of the campaign they started:

- "keys at once": every key the moment the line waits for it, over the prompt (barge-in);
- "knows the menu": 1.5 s to react to each prompt, then keys 250 ms apart (a person typing);
- "listens to all": waits for every prompt to end, then reacts in 1 s;
- "listens to all, scenario's number": the same, dialling scenario 1's own number
  (`trigger-1`: no scenario menu).

Also printed: when the PIN prompt starts, when the line starts saying the campaign number (the
first staff call often rings before), and the prompts' length on that path. Each run waits for
the previous campaign's calls to end, so that it starts on free lines.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ivr.campaign import report as reports
from ivr.campaign import store
from ivr.campaign.scenarios import load_scenarios  # noqa: E402
from ivr.db import connect  # noqa: E402
from ivr.dialer.alerter import Alerter  # noqa: E402
from ivr.dialer.worker import DialerWorker, WorkerSettings  # noqa: E402
from ivr.keys import campaign_key  # noqa: E402
from ivr.lines.call import LineContext  # noqa: E402
from ivr.lines.server import Lines  # noqa: E402
from ivr.pbx.agiserver import AgiServer  # noqa: E402
from ivr.pbx.keys import KeyEvents  # noqa: E402
from ivr.sandbox import asterisk as sandbox
from ivr.sandbox.redisserver import RedisServer  # noqa: E402
from ivr.staff.roster import Person, RosterStore  # noqa: E402
from ivr.voice import speech  # noqa: E402
from ivr.voice.prompts import prompt_dir  # noqa: E402
from ivr.voice.wav import wav_duration  # noqa: E402
from tests.phonerobot import On, RobotHub  # noqa: E402
from tests.sipp import Keys, Wait  # noqa: E402

PIN = "246810"
#: The steps of each path and the keys pressed at each: the trigger number (scenario menu) and
#: scenario 1's own number (no menu).
PATHS = {
    "trigger": (("pin", f"{PIN}#"), ("scenario", "1"), ("confirm", "1")),
    "trigger-1": (("pin", f"{PIN}#"), ("confirm", "1")),
}
Steps = tuple[tuple[str, str], ...]
Director = Callable[[Steps, dict[str, float]], list[On]]


def at_once(path: Steps, prompts: dict[str, float]) -> list[On]:
    return [On(step, Keys(keys, gap_ms=100)) for step, keys in path]


def knows_the_menu(path: Steps, prompts: dict[str, float]) -> list[On]:
    return [On(step, Wait(1500), Keys(keys, gap_ms=250)) for step, keys in path]


def listens_to_all(path: Steps, prompts: dict[str, float]) -> list[On]:
    return [
        On(step, Wait(int(prompts[step] * 1000) + 1000), Keys(keys, gap_ms=250))
        for step, keys in path
    ]


#: name -> (line dialled, director).
DIRECTORS: dict[str, tuple[str, Director]] = {
    "keys at once": ("trigger", at_once),
    "knows the menu": ("trigger", knows_the_menu),
    "listens to all": ("trigger", listens_to_all),
    "listens to all, scenario's number": ("trigger-1", listens_to_all),
}


async def prompt_lengths(lines: Lines, alerter: Alerter, staff: int) -> dict[str, float]:
    """Seconds of prompts played at each step of the path (the read's files)."""
    fixed = prompt_dir(alerter.config.audio_dir, "fr")

    async def spoken(text: str) -> float:
        return wav_duration(await alerter.speaker.render(text, "fr"))

    scenarios = lines.context.scenarios
    choices = [(s.key, s.label("fr")) for s in scenarios]
    about = speech.launch_summary(scenarios[0].label("fr"), staff, "fr")
    return {
        "pin": wav_duration(fixed / "line_trigger.wav") + wav_duration(fixed / "pin_enter.wav"),
        "scenario": await spoken(speech.scenario_menu(choices, "fr", drill_key="9")),
        "confirm": await spoken(about) + wav_duration(fixed / "launch_confirm.wav"),
    }


async def one_run(
    alerter: Alerter, db: Any, hub: RobotHub, line: str, script: list[On]
) -> dict[str, float]:
    rings: list[tuple[str, float]] = []

    def on_event(message: Any) -> None:
        if message.get("Event") == "Newchannel" and "@ivr-sim" in message.get("Channel", ""):
            rings.append((message.get("Uniqueid", ""), time.monotonic()))

    alerter.link.on_event(on_event)
    async with hub.call(line, "0611223344", script, timeout=90) as robot:
        await robot.until("launched", timeout=90)
        t0 = robot.at["dialled"]
        [cid] = await store.active(db)
        prefix = f"ivr-{(await store.get_meta(db, cid))['uid']}-"

        async def first_ring() -> float:
            while True:
                mine = [t for uid, t in rings if uid.startswith(prefix)]
                if mine:
                    return min(mine)
                await asyncio.sleep(0.01)

        ring = await asyncio.wait_for(first_ring(), 60)
        marks = {
            "PIN prompt": robot.at["pin"] - t0,
            "number spoken": robot.at["launched"] - t0,
            "first staff call": ring - t0,
        }
    await store.stop(db, cid)
    # The next run starts on free lines: wait until this campaign's calls are over.
    last = "$"
    while (await reports.report(db, cid))["in_flight"]:
        got = await db.xread({campaign_key(cid, "events"): last}, block=1000)
        for _, entries in got:
            last = entries[-1][0]
    return marks


async def main(runs: int, only: str | None = None) -> None:
    sandbox.start()
    config = sandbox.config()
    people = [
        Person(f"S{i:04d}", f"Staff {i}", ("nurse", "doctor")[i % 2], "bench", (f"1071{i:04d}",))
        for i in range(300)
    ]
    results: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="ivr-bench-") as tmp, RedisServer(Path(tmp)) as server:
        config = dataclasses.replace(config, redis_url=server.url)
        db = connect(server.url)
        await RosterStore(db).replace(people)
        async with Alerter(config) as alerter:
            hub = RobotHub(alerter.link, "")
            context = LineContext(
                config, db, alerter.speaker, load_scenarios(), observer=hub.observe
            )
            lines = Lines(context)
            await lines.context.pins.set("S0000", PIN)
            prompts = await prompt_lengths(lines, alerter, len(people))
            keys = KeyEvents(alerter.link)
            async with AgiServer(lines.handlers(), keys=keys) as agi:
                hub.agi_url = f"agi://127.0.0.1:{agi.port}"
                stop = asyncio.Event()
                worker = DialerWorker(alerter, db, WorkerSettings("bench", capacity=20))
                task = asyncio.create_task(worker.run(stop))
                try:
                    for name, (line, director) in DIRECTORS.items():
                        if only and name != only:
                            continue
                        script = director(PATHS[line], prompts)
                        results[name] = [
                            await one_run(alerter, db, hub, line, script) for _ in range(runs)
                        ]
                finally:
                    stop.set()
                    await task
        await db.aclose()
    print("prompts at each step (s): " + ", ".join(f"{k} {v:.1f}" for k, v in prompts.items()))
    for line, path in PATHS.items():
        print(f"  {line}: {sum(prompts[step] for step, _ in path):.1f} s of prompts in all")
    for name, marks in results.items():
        print(f"{name}:")
        for mark in marks[0]:
            values = [m[mark] for m in marks]
            print(
                f"  {mark:18} median {statistics.median(values):6.2f} s   "
                f"min {min(values):6.2f}   worst {max(values):6.2f}   ({runs} runs)"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--director", choices=DIRECTORS, help="only this director")
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.director))
