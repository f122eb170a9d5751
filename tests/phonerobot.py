"""A scripted caller for the phone lines: a real SIP phone (SIPp) calling the sandbox Asterisk.

The phone dials a line of `ivr-lines` through the sandbox's SIP endpoint (so the call is real
SIP, with keys sent as RFC 4733 events, SIP INFO or in-band tones), and plays a script given in
advance: `On("pin", Keys("246810#"))` means "when the line waits at step `pin`, press those
keys". The line's flow reports each step it waits at (Lines' observer); the hub then sends an
in-dialog SIP MESSAGE to the phone (AMI SendText on the line's channel), which SIPp waits for
(`Cue`) before it goes on. So keys are pressed the moment the line is ready, with no sleeps,
and a script that does not match the flow fails: the phone waits for a cue that never comes.

`Robot` keeps what the line did: `seen` (steps), `said` (dynamic sentences spoken), `holds`
("one moment, please"), the time of each step, and SIPp's result. Several calls may run at once
if their caller ids differ (the hub tells the calls apart by the caller id the line sees).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from ivr.pbx.agi import AgiSession
from ivr.pbx.ami import AmiLink
from tests.sipp import Cue, DtmfMode, Hangup, Sipp, SippResult, Step, WaitBye, sandbox_root

#: Seconds a test waits for a line to reach a step.
STEP_TIMEOUT = 30.0


class On:
    """When the line waits at `step`, do `actions` (Keys, Audio, Wait, Hangup)."""

    def __init__(self, step: str, *actions: Step) -> None:
        self.step = step
        self.actions = actions

    def __repr__(self) -> str:
        return f"On({self.step!r}, {', '.join(map(repr, self.actions))})"


@dataclass
class Robot:
    """One scripted call: what the line did, and the SIPp run that is the phone."""

    line: str
    caller: str
    #: Steps still to cue the phone at, in order.
    cues: list[str]
    tag: str = field(default_factory=lambda: secrets.token_hex(4))
    steps: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    seen: list[str] = field(default_factory=list)
    said: list[str] = field(default_factory=list)
    #: Times the line said "one moment, please" (`On("hold", ...)` acts at the first one
    #: after the previous cue).
    holds: int = 0
    #: Step -> time.monotonic() of its first occurrence; "dialled" is when SIPp started.
    at: dict[str, float] = field(default_factory=dict)
    channel: str = ""
    phone: asyncio.Task[SippResult] | None = None
    #: The SIP port of a phone the service calls (`RobotHub.answer`).
    port: int = 0

    async def until(self, step: str, timeout: float = STEP_TIMEOUT) -> None:
        """Wait for the line to reach `step` (steps in between are kept in `seen`)."""

        async def wait() -> None:
            while (await self.steps.get()) != step:
                pass

        try:
            await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"the {self.line} line never reached {step!r}: {self.seen}"
            ) from None

    async def finished(self) -> SippResult:
        """Wait until the phone's call is over; it must have gone as scripted."""
        assert self.phone is not None
        result = await asyncio.wait_for(asyncio.shield(self.phone), 4 * STEP_TIMEOUT)
        assert result.ok, (
            f"{self.line}: seen {self.seen}, cues left {self.cues}\n{result.explain()}"
        )
        assert not self.cues, f"the {self.line} line never reached {self.cues}: {self.seen}"
        return result


class RobotHub:
    """Runs the scripted SIP phones and routes the lines' observer calls to the current one."""

    def __init__(self, ami: AmiLink, agi_url: str, sipp: Sipp | None = None) -> None:
        self.ami = ami
        #: The FastAGI server running the lines under test (sent in the X-Ivr-Agi header).
        self.agi_url = agi_url
        self.sipp = sipp or Sipp(sandbox_root())
        #: The calls in progress, by caller id.
        self.robots: dict[str, Robot] = {}
        self._cueing: set[asyncio.Task[None]] = set()

    def observe(self, line: str, step: str, session: AgiSession) -> None:
        robot = self.robots.get(session.caller_id)
        # A scenario's own number (`trigger-1`) runs the trigger line: one PIN lockout for both.
        if robot is None or line != robot.line.partition("-")[0]:
            return
        robot.channel = channel = session.channel
        if step.startswith("say:"):
            robot.said.append(step[4:])
            return
        if step == "hold":
            robot.holds += 1  # not a step: whether it comes depends on the machine's speed
        else:
            robot.seen.append(step)
        robot.at.setdefault(step, time.monotonic())
        robot.steps.put_nowait(step)
        if robot.cues and robot.cues[0] == step:
            robot.cues.pop(0)
            task = asyncio.create_task(self._cue(channel, step), name=robot.tag)
            self._cueing.add(task)
            task.add_done_callback(self._cueing.discard)

    @contextlib.asynccontextmanager
    async def answer(
        self,
        line: str,
        script: Sequence[On | Step] = (),
        *,
        suffix: str = "0611223344",
        port: int | None = None,
        reject: int | None = None,
        dtmf: DtmfMode = "rfc4733",
        timeout: float = 120.0,
    ) -> AsyncIterator[Robot]:
        """A phone the service calls (the director's call-back), answering with `script` as
        `call` plays it, or refusing the call with SIP status `reject`.

        Its number, `robot.caller`, is its SIP port then `suffix`: dialled through
        `Local/{number}@ivr-test-hospital` (ivr/dialplans/ivr-test.conf) it reaches this phone;
        `port` reuses a port (the same number called again). The flow must take that number for
        the caller (`AgiSession.assume_caller`), which is how the hub finds the robot.
        """
        cues = [on.step for on in script if isinstance(on, On)]
        steps: list[Step] = []
        for on in script:
            steps += [Cue(), *on.actions] if isinstance(on, On) else [on]
        if not steps or not isinstance(steps[-1], Hangup):
            steps.append(WaitBye())
        async with self.sipp.answer(
            steps=steps, dtmf=dtmf, timeout=timeout, reject=reject, port=port
        ) as uas:
            number = f"{uas.port:05d}{suffix}"
            if number in self.robots:
                raise ValueError(f"a call with {number} is already running")
            robot = Robot(line, number, [] if reject else cues, port=uas.port)
            self.robots[number] = robot
            robot.at["listening"] = time.monotonic()
            robot.phone = asyncio.create_task(uas.wait())
            try:
                yield robot
                await asyncio.wait_for(asyncio.shield(robot.phone), timeout + 10)
            finally:
                await self._end(robot)

    async def _end(self, robot: Robot) -> None:
        """Hang up a robot's call still running, wait for its cues to be sent, forget it."""
        assert robot.phone is not None
        if not robot.phone.done():
            if robot.channel:
                with contextlib.suppress(Exception):
                    await self.ami.action({"Action": "Hangup", "Channel": robot.channel})
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(robot.phone), 15)
            robot.phone.cancel()
        mine = [t for t in self._cueing if t.get_name() == robot.tag]
        if mine:
            await asyncio.gather(*mine, return_exceptions=True)
        del self.robots[robot.caller]

    async def _cue(self, channel: str, step: str) -> None:
        # An in-dialog SIP MESSAGE to the phone: the SIPp script's next Cue.
        await self.ami.action({"Action": "SendText", "Channel": channel, "Message": step})

    @contextlib.asynccontextmanager
    async def call(
        self,
        line: str,
        caller: str,
        script: Sequence[On | Step] = (),
        *,
        dtmf: DtmfMode = "rfc4733",
        timeout: float = 120.0,
    ) -> AsyncIterator[Robot]:
        """Dial `line` (trigger, report, callback) from `caller` over SIP and play `script`
        (`On(step, ...)` waits for the line to reach the step; a bare step plays at once).

        The phone hangs up where the script says `Hangup()`; otherwise it waits for the line
        to hang up. Leaving the block waits for the call to end (kills it past `timeout`).
        """
        if caller in self.robots:
            raise ValueError(f"a call from {caller} is already running: give each its caller id")
        robot = Robot(line, caller, [on.step for on in script if isinstance(on, On)])
        steps: list[Step] = []
        for on in script:
            # A bare step is played at once, cued by nothing: a caller typing ahead.
            steps += [Cue(), *on.actions] if isinstance(on, On) else [on]
        if not steps or not isinstance(steps[-1], Hangup):
            steps.append(WaitBye())
        self.robots[caller] = robot
        robot.at["dialled"] = time.monotonic()
        robot.phone = asyncio.create_task(
            self.sipp.call(
                line,
                steps,
                dtmf=dtmf,
                caller=caller,
                tag=robot.tag,
                headers={"X-Ivr-Agi": self.agi_url},
                timeout=timeout,
            )
        )
        try:
            yield robot
            await asyncio.wait_for(asyncio.shield(robot.phone), timeout + 10)
        finally:
            await self._end(robot)
