"""From the first ring of the trigger line to the first staff call ringing.

    .venv/bin/python bench/trigger.py --runs 5

A director who knows the menu calls the trigger line of the sandbox Asterisk (a real call,
scripted by tests/phonerobot.py: each key is pressed as soon as the line waits for it, over
the prompt, as a director who does not wait for the end of a sentence does), keys the PIN,
picks scenario 1, keeps the prepared message and confirms. A dialer worker is running on the
same Asterisk with a roster of 300 simulated staff. Printed per run: seconds from the
Originate of the director's call to the PIN prompt, to the campaign created, and to the first
staff call's channel (Newchannel); then the length of the prompts a director who listens to
every prompt to its end would hear on the same path (their sum bounds that director's time).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ivr import campaigns, sandbox, speech  # noqa: E402
from ivr.agi import AgiServer  # noqa: E402
from ivr.alert import Alerter  # noqa: E402
from ivr.db import connect  # noqa: E402
from ivr.dialer import DialerWorker, WorkerSettings  # noqa: E402
from ivr.lines import Lines  # noqa: E402
from ivr.redisserver import RedisServer  # noqa: E402
from ivr.roster import Person, RosterStore  # noqa: E402
from ivr.scenarios import load_scenarios  # noqa: E402
from ivr.voiceprompts import prompt_dir  # noqa: E402
from tests.phonerobot import RobotHub  # noqa: E402

PIN = "246810"


async def one_run(alerter: Alerter, db: Any, hub: RobotHub) -> dict[str, float]:
    rings: list[tuple[str, float]] = []

    def on_event(message: Any) -> None:
        if message.get("Event") == "Newchannel" and "@ivr-sim" in message.get("Channel", ""):
            rings.append((message.get("Uniqueid", ""), time.perf_counter()))

    alerter.link.on_event(on_event)
    marks: dict[str, float] = {}
    t0 = time.perf_counter()
    async with hub.call("trigger", "0611223344") as robot:
        await robot.until("pin")
        marks["pin prompt"] = time.perf_counter() - t0
        await robot.press(f"{PIN}#")
        for step, key in (("scenario", "1"), ("record_offer", "2"), ("confirm", "1")):
            await robot.until(step)
            await robot.press(key)
        await robot.until("launched")
        marks["campaign created"] = time.perf_counter() - t0
        [cid] = await campaigns.active(db)
        prefix = f"ivr-{(await campaigns.get_meta(db, cid))['uid']}-"

        async def first_ring() -> float:
            while True:
                mine = [t for uid, t in rings if uid.startswith(prefix)]
                if mine:
                    return min(mine)
                await asyncio.sleep(0.01)

        marks["first staff call"] = await asyncio.wait_for(first_ring(), 60) - t0
        await robot.hang_up()
    await campaigns.stop(db, cid)
    return marks


def _seconds(path: Path) -> float:
    with wave.open(str(path)) as wav:
        return wav.getnframes() / wav.getframerate()


async def prompts_heard(lines: Lines, alerter: Alerter, staff: int) -> float:
    fixed = prompt_dir(alerter.config.audio_dir, "fr")
    total = sum(
        _seconds(fixed / f"{name}.wav")
        for name in ("line_trigger", "pin_enter", "record_offer", "launch_confirm")
    )
    choices = [(s.key, s.label("fr")) for s in lines.scenarios]
    for text in (
        speech.scenario_menu(choices, "fr", drill_key="9"),
        speech.staff_to_call(staff, "fr"),
    ):
        total += _seconds(await alerter.speaker.render(text, "fr"))
    return total


async def main(runs: int) -> None:
    sandbox.start()
    config = sandbox.config()
    people = [
        Person(f"S{i:04d}", f"Staff {i}", ("nurse", "doctor")[i % 2], "bench", (f"1071{i:04d}",))
        for i in range(300)
    ]
    with tempfile.TemporaryDirectory(prefix="ivr-bench-") as tmp, RedisServer(Path(tmp)) as server:
        config = dataclasses.replace(config, redis_url=server.url)
        db = connect(server.url)
        await RosterStore(db).replace(people)
        async with Alerter(config) as alerter:
            hub = RobotHub(alerter.link, "")
            lines = Lines(config, db, alerter.speaker, load_scenarios(), observer=hub.observe)
            await lines.pins.set("S0000", PIN)
            async with AgiServer({**lines.handlers(), "robot": hub.robot_flow}) as agi:
                hub.agi_url = f"agi://127.0.0.1:{agi.port}"
                await alerter.link.action(
                    {"Action": "Setvar", "Variable": "IVR_AGI_URL", "Value": hub.agi_url}
                )
                stop = asyncio.Event()
                worker = DialerWorker(alerter, db, WorkerSettings("bench", capacity=20))
                task = asyncio.create_task(worker.run(stop))
                results = [await one_run(alerter, db, hub) for _ in range(runs)]
                stop.set()
                await task
                await alerter.link.action(
                    {
                        "Action": "Setvar",
                        "Variable": "IVR_AGI_URL",
                        "Value": "agi://127.0.0.1:14573",
                    }
                )
                heard = await prompts_heard(lines, alerter, len(people))
        await db.aclose()
    print(f"prompts heard in full on this path: {heard:.1f} s (a patient director)")
    for name in results[0]:
        values = [r[name] for r in results]
        print(
            f"{name:18} median {statistics.median(values):6.2f} s   "
            f"min {min(values):6.2f}   max {max(values):6.2f}   ({runs} runs)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    asyncio.run(main(parser.parse_args().runs))
