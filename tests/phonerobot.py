"""A scripted caller for the phone lines: a real call through the sandbox Asterisk.

The test originates a Local channel into a line of `ivr-lines`; the caller's half runs an AGI
flow served by the test's own FastAGI server (`robot`), which presses keys (SendDTMF) and plays
audio when the test says so. The test says so when the line's flow reports the step it waits
at (Lines' observer), so keys are pressed at the right moment, with no sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from ivr.agi import AgiHangup, AgiSession
from ivr.ami import AmiLink

#: Seconds a test waits for a line to reach a step.
STEP_TIMEOUT = 30.0


@dataclass
class Robot:
    """One scripted call; `press`/`play`/`hang_up` act, `until` waits for the line's steps."""

    line: str
    commands: asyncio.Queue[tuple[str, str]] = field(default_factory=asyncio.Queue)
    steps: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    seen: list[str] = field(default_factory=list)
    said: list[str] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    async def until(self, step: str) -> None:
        """Wait for the line to reach `step` (steps in between are kept in `seen`)."""

        async def wait() -> None:
            while True:
                got = await self.steps.get()
                if got == step:
                    return

        try:
            await asyncio.wait_for(wait(), STEP_TIMEOUT)
        except TimeoutError:
            raise AssertionError(
                f"the {self.line} line never reached {step!r}: {self.seen}"
            ) from None

    async def press(self, keys: str) -> None:
        await self.commands.put(("keys", keys))

    async def play(self, sound: str) -> None:
        await self.commands.put(("play", sound))

    async def hang_up(self) -> None:
        await self.commands.put(("hangup", ""))

    async def finished(self) -> None:
        """Wait until the call is over (the line's flow has ended)."""
        await asyncio.wait_for(self.ended.wait(), 3 * STEP_TIMEOUT)


class RobotHub:
    """Routes the lines' observer calls and the robot AGI sessions to the current Robot."""

    def __init__(self, ami: AmiLink, agi_url: str) -> None:
        self.ami = ami
        self.agi_url = agi_url
        self.robots: dict[str, Robot] = {}
        self.current: Robot | None = None

    def observe(self, line: str, step: str) -> None:
        robot = self.current
        if robot is None:
            return
        if step.startswith("say:"):
            robot.said.append(step[4:])
            return
        robot.seen.append(step)
        robot.steps.put_nowait(step)

    async def robot_flow(self, session: AgiSession) -> None:
        """The caller's half of the call: do what the test queued."""
        robot = self.robots[session.env.get("agi_arg_1", "")]
        try:
            while True:
                try:
                    kind, arg = await asyncio.wait_for(robot.commands.get(), 0.2)
                except TimeoutError:
                    # Read the line's audio meanwhile, or it piles up in the Local channel.
                    await session.command("WAIT FOR DIGIT", "100")
                    continue
                if kind == "hangup":
                    return
                if kind == "keys":
                    await session.exec("SendDTMF", f"{arg},80,120")
                elif kind == "play":
                    await session.exec("Playback", arg)
        except AgiHangup:
            pass
        finally:
            robot.ended.set()

    @contextlib.asynccontextmanager
    async def call(self, line: str, caller: str = "0611223344") -> AsyncIterator[Robot]:
        """Dial `line` (trigger, report, callback) from `caller`; the Robot drives the call."""
        robot = Robot(line)
        token = secrets.token_hex(4)
        self.robots[token] = robot
        self.current = robot
        originate = asyncio.create_task(
            self.ami.action(
                {
                    "Action": "Originate",
                    "Channel": f"Local/{line}@ivr-lines/n",
                    "Application": "AGI",
                    "Data": f"{self.agi_url}/robot,{token}",
                    "CallerID": f'"Robot" <{caller}>',
                    "Async": "true",
                    "Timeout": "30000",
                },
                timeout=40,
            )
        )
        try:
            yield robot
        finally:
            await robot.hang_up()
            with contextlib.suppress(Exception):
                await originate
            self.robots.pop(token, None)
            self.current = None
