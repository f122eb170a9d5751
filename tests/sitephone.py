"""A phone on one site of the two-site topology (`ivr.sandbox.sites`): SIPp run on the site's
host calls a line of the site's own Asterisk, served by the site's `ivr worker` in another
process, and presses its keys when the line's prompts begin.

No observer reaches into the worker, so the phone is cued as tests/lines/test_lines.py's
end-to-end test cues it: Asterisk reports each AGI command (AMI `AGIExecStart`), and when the
call starts to play the prompt a script waits for, an in-dialog SIP MESSAGE (AMI `SendText`)
tells SIPp to press the keys that follow (`Cue`). The site's AMI listens on the site's own
127.0.0.1 only: `NamespaceForwarder` makes it reachable from the machine, opening each
connection from inside the site's network namespace (setns(2) on a thread of its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import socket
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ivr.config import Config
from ivr.pbx.agi import ALL_KEYS
from ivr.pbx.ami import AmiLink
from ivr.sandbox.sites import TwoSites, sandbox_root
from tests.sipp import Cue, Keys, Sipp, SippResult, Step, WaitBye

CLONE_NEWNET = 0x40000000
#: A cue at the first prompt that takes any key (a line's first question).
FIRST_QUESTION = "*"


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def connect_in(namespace: str, host: str, port: int) -> socket.socket:
    """A TCP connection to host:port made from network namespace `namespace` (the calling
    thread enters it, connects, and comes back: the socket stays in the namespace)."""
    with (
        open("/proc/thread-self/ns/net", "rb") as home,
        open(f"/run/netns/{namespace}", "rb") as there,
    ):
        _setns(there.fileno())
        try:
            return socket.create_connection((host, port), timeout=10)
        finally:
            _setns(home.fileno())


class NamespaceForwarder:
    """Listens on the machine's 127.0.0.1:`port` and forwards each connection to
    `host`:`target_port` as seen from inside network namespace `namespace`."""

    def __init__(self, namespace: str, host: str, target_port: int) -> None:
        self.namespace, self.target = namespace, (host, target_port)
        self.port = 0
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="setns")
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._pool.shutdown()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        try:
            sock = await loop.run_in_executor(self._pool, connect_in, self.namespace, *self.target)
        except OSError:
            writer.close()
            return
        sock.setblocking(False)
        far_reader, far_writer = await asyncio.open_connection(sock=sock)
        for source, sink in ((reader, far_writer), (far_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            sink.close()


@dataclass
class PromptCall:
    """One call's script, as (prompt, keys): when the call starts playing `prompt` (a prompt's
    name, such as "report_menu", or FIRST_QUESTION), press `keys`."""

    caller: str
    cues: list[str]
    #: Every file the line played to this call (STREAM FILE), in order, and when it began
    #: (time.time()).
    played: list[str] = field(default_factory=list)
    began: list[float] = field(default_factory=list)
    channel: str = ""
    result: SippResult | None = None


class SitePhone:
    """Calls the lines of site `site`'s Asterisk from that site (see the module's docstring)."""

    def __init__(self, sites: TwoSites, site: str, config: Config) -> None:
        self.config = config
        namespace = sites.net.hosts[site][0]
        self.forwarder = NamespaceForwarder(namespace, config.ami_host, config.ami_port)
        self.sipp = Sipp(sandbox_root(), prefix=sites.prefix(site))
        self.calls: dict[str, PromptCall] = {}
        self._cueing: set[asyncio.Task[Any]] = set()
        self.ami: AmiLink | None = None

    async def start(self) -> None:
        await self.forwarder.start()
        c = self.config
        self.ami = AmiLink("127.0.0.1", self.forwarder.port, c.ami_user, c.ami_secret, events="agi")
        self.ami.on_event(self._on_event)
        await self.ami.start()

    async def close(self) -> None:
        await asyncio.gather(*self._cueing, return_exceptions=True)
        if self.ami is not None:
            await self.ami.close()
        await self.forwarder.close()

    def _on_event(self, event: Any) -> None:
        call = self.calls.get(str(event.get("CallerIDNum", "")))
        command = str(event.get("Command", ""))
        if event.get("Event") != "AGIExecStart" or call is None:
            return
        if not command.startswith("STREAM FILE "):
            return
        file, _, keys = command.removeprefix("STREAM FILE ").partition(" ")
        call.played.append(file)
        call.began.append(time.time())
        call.channel = str(event.get("Channel", ""))
        if not call.cues:
            return
        wanted = call.cues[0]
        if (wanted == FIRST_QUESTION and keys == f'"{ALL_KEYS}"') or (
            file.rsplit("/", 1)[-1] == wanted
        ):
            call.cues.pop(0)
            assert self.ami is not None
            action = {"Action": "SendText", "Channel": call.channel, "Message": wanted}
            task = asyncio.create_task(self.ami.action(action))
            self._cueing.add(task)
            task.add_done_callback(self._cueing.discard)

    async def call(
        self, line: str, caller: str, script: Sequence[tuple[str, str]], timeout: float = 90
    ) -> PromptCall:
        """Dial `line` from `caller`, play `script` ((prompt, keys) pairs), wait for the line
        to hang up; the call, with what it played. SIPp must have gone as scripted."""
        if caller in self.calls:
            raise ValueError(f"a call from {caller} is already running")
        call = self.calls[caller] = PromptCall(caller, [prompt for prompt, _ in script])
        steps: list[Step] = []
        for _, keys in script:
            steps += [Cue(), Keys(keys)]
        steps.append(WaitBye())
        agi = {"X-Ivr-Agi": f"agi://127.0.0.1:{self.config.agi_port}"}
        try:
            call.result = await self.sipp.call(
                line, steps, caller=caller, headers=agi, timeout=timeout
            )
        finally:
            del self.calls[caller]
        assert call.result.ok, (
            f"{line} from {caller}: played {call.played}\n{call.result.explain()}"
        )
        assert not call.cues, f"{line} from {caller} never played {call.cues}: {call.played}"
        return call


@contextlib.asynccontextmanager
async def site_phone(sites: TwoSites, site: str, config: Config) -> AsyncIterator[SitePhone]:
    phone = SitePhone(sites, site, config)
    await phone.start()
    try:
        yield phone
    finally:
        await phone.close()
