"""FastAGI: Asterisk hands an inbound call's flow to the service over TCP. This module is one
call's session (`AgiSession`: typed commands and replies, keys); `ivr.pbx.agiserver` serves them.

The phone lines (trigger, report, callback) need the service's data to run: PINs, the roster,
the campaigns. Asterisk connects to `agi://host:port/<script>` for each call; the server reads
the AGI environment, runs the handler registered for `<script>`, and the call goes back to the
dialplan when the handler returns (with channel variables the handler set, like IVR_NEXT).

Our own implementation, not `panoramisk.fast_agi`: that one spins on a client that closes
before sending its header and freezes the event loop, and it gives no typed replies. The
protocol is small: `agi_<name>: <value>` lines then a blank line; then one command per line,
each answered by `200 result=<n> [(<extra>)]`; `HANGUP` arrives on its own line when the caller
hangs up, and commands on a dead channel get `511`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass

from ivr.errors import IvrError
from ivr.pbx.keys import KeyStream

log = logging.getLogger(__name__)

#: Seconds one command may run (a Record or a ConfBridge is bounded by its own limits).
COMMAND_TIMEOUT = 3600.0
#: Commands Asterisk answers at once, and the seconds their reply may take: none means the
#: channel is gone (a hung-up call once left a flow waiting on CHANNEL STATUS for the hour).
QUICK_COMMANDS = frozenset({"ANSWER", "CHANNEL STATUS", "GET VARIABLE", "SET VARIABLE", "NOOP"})
QUICK_TIMEOUT = 10.0
#: Keys a caller can press.
ALL_KEYS = "0123456789*#"
#: The script every AgiServer answers itself, for health probes (`probe()`): a NOOP naming it.
HEALTH_SCRIPT = "ivr-health"
#: Seconds the event of a key that cut a prompt may lag behind AGI's answer.
EVENT_GRACE = 1.0
#: Seconds of silence that end the swallowing of an over-long entry.
SWALLOW_WAIT = 1.5
_REPLY = re.compile(r"(\d{3}) result=(-?[^ ]*)(?: \((.*)\))?(?: endpos=(\d+))?")
_SAFE_ARG = re.compile(r"[A-Za-z0-9_./:&*#,=+\-@]*")


class AgiError(IvrError):
    """Asterisk refused a command or the session broke."""

    error_id = "agi_error"
    exit_code = 3


class AgiHangup(AgiError):
    """The caller hung up: the flow ends here, with nothing half-done."""

    error_id = "agi_hangup"


@dataclass(frozen=True)
class AgiReply:
    """One command's answer: `200 result=<result> (<extra>)`."""

    code: int
    result: str
    extra: str = ""

    @property
    def number(self) -> int:
        try:
            return int(self.result)
        except ValueError:
            return -1


class AgiSession:
    """One call handed over by Asterisk: its AGI environment and the commands we send."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, env: dict[str, str]
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.env = env
        self.hung_up = False
        #: The call's keys from AMI events (ivr.pbx.keys), when the server has them: a key
        #: pressed between two commands is kept there, where AGI would lose it.
        self.keys: KeyStream | None = None
        #: Who is on the line when we placed the call (`assume_caller`).
        self._called: str | None = None

    @property
    def script(self) -> str:
        """The path of the AGI URL (`agi://host/<script>?...`), without slashes."""
        raw = self.env.get("agi_network_script", "")
        return raw.split("?", 1)[0].strip("/")

    @property
    def caller_id(self) -> str:
        """The caller's number as the network gave it ("" when unknown or withheld); on a call
        we placed, the number we called (`assume_caller`)."""
        if self._called is not None:
            return self._called
        number = self.env.get("agi_callerid", "")
        return "" if number in ("unknown", "anonymous", "") else number

    def assume_caller(self, number: str) -> None:
        """A call the service placed (the director's call-back): the party on the line is the
        number called, for everything keyed on the caller (PIN lockout, audit)."""
        self._called = number

    @property
    def channel(self) -> str:
        return self.env.get("agi_channel", "")

    @property
    def uniqueid(self) -> str:
        return self.env.get("agi_uniqueid", "")

    async def command(self, *parts: str) -> AgiReply:
        """Send one command and wait for its reply; raise AgiHangup on a dead channel."""
        if self.hung_up:
            raise AgiHangup("the caller hung up")
        for part in parts[1:]:
            if not _SAFE_ARG.fullmatch(part) and not (part.startswith('"') and part.endswith('"')):
                raise AgiError(f"unsafe AGI argument {part!r}")
        line = " ".join(parts)
        quick = parts[0] in QUICK_COMMANDS
        try:
            self.writer.write(line.encode() + b"\n")
            await self.writer.drain()
            return await asyncio.wait_for(
                self._reply(), QUICK_TIMEOUT if quick else COMMAND_TIMEOUT
            )
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            self.hung_up = True
            raise AgiHangup("the AGI connection closed") from exc
        except TimeoutError:
            if not quick:
                raise
            self.hung_up = True
            raise AgiHangup(f"no answer to {parts[0]} within {QUICK_TIMEOUT:g} s") from None

    async def _reply(self) -> AgiReply:
        while True:
            raw = await self.reader.readline()
            if not raw:
                self.hung_up = True
                raise AgiHangup("the AGI connection closed")
            text = raw.decode(errors="replace").strip()
            if not text:
                continue
            if text == "HANGUP":
                # Asterisk tells us at once; the command in progress still gets its reply.
                self.hung_up = True
                continue
            if text.startswith("511"):
                self.hung_up = True
                raise AgiHangup("the caller hung up")
            if text.startswith("520-"):
                while not (usage := await self.reader.readline()).startswith(b"520 "):
                    if not usage:
                        self.hung_up = True
                        raise AgiHangup("the AGI connection closed")
                raise AgiError("AGI usage error")
            match = _REPLY.match(text)
            if not match:
                raise AgiError(f"unexpected AGI reply {text!r}")
            reply = AgiReply(int(match[1]), match[2], match[3] or "")
            if reply.code != 200:
                raise AgiError(f"AGI command failed: {text}")
            return reply

    def _checked(self, reply: AgiReply) -> AgiReply:
        # result=-1 means the channel went away during the command.
        if reply.result == "-1":
            self.hung_up = True
            raise AgiHangup("the caller hung up")
        return reply

    async def answer(self) -> None:
        self._checked(await self.command("ANSWER"))

    async def play(self, files: str, keys: str = ALL_KEYS) -> str:
        """Play `files` ('&'-joined, no extension); return the key that interrupted it, or ""."""
        key = ""
        for file in files.split("&"):
            reply = await self.command("STREAM FILE", file, f'"{keys}"')
            if reply.result == "-1":
                # Also the answer for a missing file: ask the channel (511 if it is gone).
                if self.hung_up or (await self.command("CHANNEL STATUS")).result == "-1":
                    raise AgiHangup("the caller hung up")
                raise AgiError(f"Asterisk cannot play {file}")
            if reply.number > 0:
                key = chr(reply.number)
                break
        return key

    async def read(self, files: str, *, timeout: float, max_digits: int) -> str | None:
        """Play `files` then collect up to `max_digits` keys ended by '#'.

        Returns the digits ("" for '#' alone), or None when nothing came before `timeout`
        seconds. A key pressed during the prompt interrupts it and counts (barge-in); keys
        pressed before it (typed ahead) answer at once, the prompt not played."""
        if self.keys is not None and self.keys.live:
            return await self._read_events(self.keys, files, timeout, max_digits)
        return await self._read_agi(files, timeout, max_digits)

    async def _read_events(
        self, keys: KeyStream, files: str, timeout: float, max_digits: int
    ) -> str | None:
        """`read()` from the call's key events: AGI only plays the prompt."""
        first: str | None = None
        if not keys.pending():
            interrupted = await self.play(files, ALL_KEYS)
            if interrupted:
                # The key that cut the prompt is in the events too, a moment later; if the
                # AMI link fails meanwhile, AGI's own answer stands in for it.
                first = await keys.next(EVENT_GRACE) or interrupted
        if first is None:
            first = await keys.next(timeout)
        if first is None:
            return None
        if first == "#":
            return ""
        digits = first
        while len(digits) < max_digits:
            key = await keys.next(timeout)
            if key is None or key == "#":
                return digits
            digits += key
        if max_digits > 1:
            # Longer than anything valid: swallow the rest up to '#', so that the tail does
            # not count as the next answer.
            while (key := await keys.next(SWALLOW_WAIT)) not in (None, "#"):
                pass
        return digits

    async def _read_agi(self, files: str, timeout: float, max_digits: int) -> str | None:
        """`read()` from AGI's own answers (no key events: the AMI link is down)."""
        first = await self.play(files, ALL_KEYS)
        if first == "#":
            return ""
        digits = first
        if first and len(digits) >= max_digits:
            return digits
        wait = str(int(timeout * 1000))
        reply = self._checked(
            await self.command("GET DATA", "silence/1", wait, str(max_digits - len(digits)))
        )
        got = digits + reply.result
        if not got and reply.extra == "timeout":
            return None
        if max_digits > 1 and len(got) >= max_digits:
            # Longer than anything valid: swallow the rest up to '#', so that the tail does
            # not count as the next answer.
            while True:
                wait = str(int(SWALLOW_WAIT * 1000))
                more = self._checked(await self.command("GET DATA", "silence/1", wait, "64"))
                if len(more.result) < 64:
                    break
        return got

    async def record(self, path: str, *, max_seconds: int, silence: int) -> None:
        """Record the caller into `path`.wav at once (play a beep before); '#' ends it."""
        self._checked(
            await self.command(
                "RECORD FILE", path, "wav", '"#"', str(max_seconds * 1000), f"s={silence}"
            )
        )
        if self.keys is not None:
            self.keys.clear()  # the '#' that ended the recording answers nothing

    async def set_variable(self, name: str, value: str) -> None:
        await self.command("SET VARIABLE", name, f'"{value}"')

    async def get_variable(self, name: str) -> str:
        reply = await self.command("GET VARIABLE", name)
        return reply.extra if reply.result == "1" else ""

    async def exec(self, application: str, data: str = "") -> AgiReply:
        return self._checked(await self.command("EXEC", application, f'"{data}"'))

    async def hangup(self) -> None:
        with contextlib.suppress(AgiHangup):
            await self.command("HANGUP")
