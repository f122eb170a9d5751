"""Alert calls: place one attempt through Asterisk and follow it to one outcome.

`Caller` originates each attempt with its own ChannelId (the attempt id) into the alert
dialplan (`ivr/dialplans/ivr-alert.conf`), routes the AMI events of its calls to the attempt
they belong to, and hands each attempt to a `Follower` (`ivr.pbx.follow`), which decides the
outcome. An Originate whose fate is unknown is never placed again by this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ivr.errors import AmiError, AmiNotConnected, IvrError
from ivr.logs import log_fields
from ivr.numbers import DIAL_STRING, dial_string, normalize_number
from ivr.outcomes import Outcome
from ivr.pbx.ami import AmiLink
from ivr.pbx.astdb import AstDb
from ivr.pbx.follow import (
    ORIGINATE_MARGIN,
    CallResult,
    Follower,
    OutcomeHandler,
    Sightings,
)

log = logging.getLogger(__name__)

#: Dialplan context of the alert call (ivr/dialplans/ivr-alert.conf).
ALERT_CONTEXT = "ivr-alert"

_ATTEMPT_ID = re.compile(r"[A-Za-z0-9._-]{1,100}")
_DIALPLAN_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
#: Channel variable values: paths, ids, digits; `&` joins audio files for Playback/Read.
_VARIABLE_VALUE = re.compile(r"[A-Za-z0-9._/:+&\-]*")

__all__ = ["CallRequest", "CallResult", "Caller", "OutcomeHandler", "new_attempt_id"]


def new_attempt_id() -> str:
    """A fresh attempt id; also the call's Asterisk ChannelId (Uniqueid)."""
    return f"ivr-{uuid.uuid4().hex}"


@dataclass(frozen=True)
class CallRequest:
    """One alert call to place."""

    number: str
    #: The message audio as Asterisk sees it, without extension.
    message: str
    #: Directory of the fixed prompts (menu, confirm_yes, ...) as Asterisk sees it.
    prompts: str
    ring_timeout: int = 30
    caller_id: str = ""
    attempt_id: str = field(default_factory=new_attempt_id)
    #: Extra channel variables for the dialplan (names IVR_*, values checked).
    variables: dict[str, str] = field(default_factory=dict)
    #: A whole dial string to use instead of the Caller's template (`ivr selftest` dials each
    #: configured route as it is); `number` is then only a label for the result.
    channel: str = ""
    #: Where the answered call goes: the alert dialplan, or a phone line's flow (the
    #: director's call-back: context ivr-line-run, extension recall).
    context: str = ALERT_CONTEXT
    exten: str = "s"


class Caller:
    """Places alert calls over one AMI link and follows each to a single outcome."""

    def __init__(self, link: AmiLink, dial_template: str, *, place_timeout: float = 30.0) -> None:
        self.link = link
        self.astdb = AstDb(link)
        self.dial_template = dial_template
        self.place_timeout = place_timeout
        self._live: dict[str, Sightings] = {}
        #: Uniqueid of each live channel of an attempt in flight -> the attempt's id.
        self._channels: dict[str, str] = {}
        #: AMI Redirects in flight (keys pressed during answering-machine detection).
        self._redirects: set[asyncio.Task[Any]] = set()
        link.on_event(self._on_event)
        link.on_up(self._on_link_up)

    @property
    def in_flight(self) -> int:
        return len(self._live)

    async def call(
        self,
        request: CallRequest,
        on_outcome: OutcomeHandler | None = None,
        *,
        hang_up_on_cancel: bool = False,
    ) -> CallResult:
        """Place one call and return when it is over (the line is free again).

        `on_outcome` is awaited exactly once, as soon as the outcome is known (for a callee who
        presses 1, while the confirmation is still playing); the journal entry is removed only
        after it returns, so a crash inside it leaves the journal for the next reconciliation
        (and not at all if it sets `result.keep_journal`).
        With `hang_up_on_cancel`, a cancelled call (Ctrl-C on `ivr call`) is hung up in
        Asterisk rather than left ringing; a worker leaves its calls to be adopted instead.
        """
        if request.channel:
            if not DIAL_STRING.fullmatch(request.channel):
                raise IvrError(f"dial string {request.channel!r} is not valid")
            number, channel = request.number, request.channel
        else:
            number = normalize_number(request.number)
            channel = dial_string(self.dial_template, number)
        if not _ATTEMPT_ID.fullmatch(request.attempt_id):
            raise IvrError(f"attempt id {request.attempt_id!r} is not valid")
        fields = self._originate_fields(request, channel)
        result = CallResult(request.attempt_id, number, Outcome.FAILED, "", started_at=time.time())
        with self._tracking(request.attempt_id, channel) as seen:
            originate = await self._place(fields, request.ring_timeout)
            follower = Follower(
                self.link, seen, result, ring_timeout=request.ring_timeout,
                originate=originate, on_outcome=on_outcome,
            )  # fmt: skip
            try:
                await follower.run()
            except asyncio.CancelledError:
                if hang_up_on_cancel:
                    await self._hang_up(request.attempt_id)
                raise
        await self._forget(result)
        return result

    async def follow(
        self,
        attempt_id: str,
        number: str,
        *,
        ring_timeout: int = 30,
        on_outcome: OutcomeHandler | None = None,
    ) -> CallResult:
        """Follow an attempt placed earlier, by this process before a restart or by another.

        Nothing is sent: the attempt is settled from the journal and the channel list, then
        from events while its channel lives. An attempt that never reached Asterisk ends as
        `failed` ("not placed"), so the caller may place it again.
        """
        result = CallResult(attempt_id, number, Outcome.FAILED, "", started_at=time.time())
        with self._tracking(attempt_id) as seen:
            follower = Follower(
                self.link, seen, result, ring_timeout=ring_timeout,
                originate=None, on_outcome=on_outcome,
            )  # fmt: skip
            await follower.run()
        await self._forget(result)
        return result

    async def _forget(self, result: CallResult) -> None:
        """The call is over and its outcome recorded: its journal entry can go (unless the
        record is not safe yet: `CallResult.keep_journal`)."""
        if result.keep_journal:
            log.info(
                "attempt %s: journal entry kept (outcome not on a replica yet)", result.attempt_id
            )
            return
        with contextlib.suppress(AmiError):
            await self.astdb.forget(result.attempt_id)

    async def _hang_up(self, attempt_id: str) -> None:
        """Hang up an attempt's call, ringing or answered (a short, bounded wait)."""
        with contextlib.suppress(AmiError):
            await self.link.action({"Action": "Hangup", "Channel": attempt_id}, timeout=3.0)

    async def journal(self) -> dict[str, str]:
        """Every attempt the dialplan journalled and nobody has forgotten yet."""
        return await self.astdb.journal()

    @contextlib.contextmanager
    def _tracking(self, attempt_id: str, channel: str = "") -> Iterator[Sightings]:
        """Route this attempt's AMI events to its sightings while the block runs (and name the
        attempt and its channel in what is logged meanwhile)."""
        if attempt_id in self._live:
            raise IvrError(f"attempt {attempt_id} is already in flight")
        seen = self._live[attempt_id] = Sightings(attempt_id)
        named = {"channel": channel} if channel else {}
        try:
            with log_fields(attempt_id=attempt_id, **named):
                yield seen
        finally:
            self._live.pop(attempt_id, None)
            for uniqueid in seen.channels:
                self._channels.pop(uniqueid, None)

    # -- placing ---------------------------------------------------------------------------

    def _originate_fields(self, request: CallRequest, channel: str) -> dict[str, Any]:
        variables = {
            "IVR_ATTEMPT": request.attempt_id,
            "IVR_MSG": request.message,
            "IVR_PROMPTS": request.prompts,
            **request.variables,
        }
        for name, value in variables.items():
            # Values travel in a comma-separated dialplan context: keep them plain.
            if not re.fullmatch(r"IVR_[A-Z0-9_]+", name) or not _VARIABLE_VALUE.fullmatch(value):
                raise IvrError(f"channel variable {name}={value!r} is not allowed")
        if not (
            _DIALPLAN_NAME.fullmatch(request.context) and _DIALPLAN_NAME.fullmatch(request.exten)
        ):
            raise IvrError(f"dialplan place {request.context},{request.exten} is not valid")
        fields: dict[str, Any] = {
            "Action": "Originate",
            "Channel": channel,
            "Context": request.context,
            "Exten": request.exten,
            "Priority": "1",
            "Timeout": str(request.ring_timeout * 1000),
            "ChannelId": request.attempt_id,
            # Without an explicit Async panoramisk breaks (docs/asterisk.md); with it, the answer is
            # OriginateResponse, which tells answered / busy / no answer / failed.
            "Async": "true",
            "Variable": [f"{k}={v}" for k, v in variables.items()],
        }
        if request.caller_id:
            fields["CallerID"] = request.caller_id
        return fields

    async def _place(self, fields: dict[str, Any], ring_timeout: int) -> asyncio.Task[Any]:
        """Send the Originate once the link is up; the task answers with OriginateResponse."""
        deadline = time.monotonic() + self.place_timeout
        while True:
            await self.link.wait_up(max(0.0, deadline - time.monotonic()))
            try:
                return self.link.submit(fields, timeout=ring_timeout + ORIGINATE_MARGIN)
            except AmiNotConnected:
                continue  # nothing was sent: safe to wait for the link and send it then

    # -- AMI events ------------------------------------------------------------------------

    def _on_event(self, message: Any) -> None:
        event = message.get("Event")
        if event == "Newchannel":
            self._on_new_channel(message)
        elif event == "Hangup":
            self._on_hangup(message)
        elif event == "UserEvent":
            self._on_user_event(message)
        elif event == "DTMFEnd" and message.get("Direction") == "Received":
            self._on_key(message)

    def _owner(self, uniqueid: str, linkedid: str) -> Sightings | None:
        """The attempt a channel belongs to: its own id, a Local channel's `<id>;2`, or a
        channel created for the attempt (its Linkedid at creation)."""
        base = uniqueid[:-2] if uniqueid.endswith(";2") else uniqueid
        return self._live.get(base) or self._live.get(self._channels.get(uniqueid, linkedid))

    def _on_new_channel(self, message: Any) -> None:
        uniqueid, linkedid = str(message.get("Uniqueid", "")), str(message.get("Linkedid", ""))
        seen = self._owner(uniqueid, linkedid)
        if seen is None:
            return
        # A channel keeps its owner even if a bridge later changes its Linkedid.
        self._channels[uniqueid] = seen.attempt_id
        seen.channels[uniqueid] = seen.depth(uniqueid)

    def _on_hangup(self, message: Any) -> None:
        uniqueid, linkedid = str(message.get("Uniqueid", "")), str(message.get("Linkedid", ""))
        seen = self._owner(uniqueid, linkedid)
        self._channels.pop(uniqueid, None)
        if seen is None:
            return
        seen.channels.pop(uniqueid, None)
        with contextlib.suppress(TypeError, ValueError):
            seen.causes.append((seen.depth(uniqueid), int(message.get("Cause", 0))))
        if uniqueid == seen.attempt_id:
            seen.ended = True
        seen.wake.set()

    def _on_user_event(self, message: Any) -> None:
        kind = message.get("UserEvent")
        seen = self._live.get(str(message.get("Attempt", "")))
        if seen is None:
            return
        if kind == "IvrKey" and seen.key is None:
            key = str(message.get("Key", ""))
            seen.key = key if key in ("1", "2", "V", "Q") else ""
            seen.wake.set()
        elif kind == "IvrEta":
            minutes = str(message.get("Minutes", ""))
            if minutes.isdigit():
                seen.eta = int(minutes)
                seen.wake.set()
        elif kind == "IvrAmd":
            seen.detecting = message.get("State") == "start"

    def _on_key(self, message: Any) -> None:
        """A key pressed while answering-machine detection runs: AMD() drops it, so send the
        call where the dialplan takes it as the answer (ivr/dialplans/ivr-alert.conf)."""
        seen = self._live.get(str(message.get("Uniqueid", "")))
        if seen is None or not seen.detecting:
            return
        seen.detecting = False  # the first key decides; the call leaves AMD with it
        digit = str(message.get("Digit", ""))
        exten = {"1": "amd-1", "2": "amd-2", "*": "amd-star"}.get(digit, "amd-other")
        fields = {
            "Action": "Redirect",
            "Channel": seen.attempt_id,
            "Context": ALERT_CONTEXT,
            "Exten": exten,
            "Priority": "1",
        }
        try:
            task = self.link.submit(fields)
        except AmiError as exc:
            log.warning("attempt %s: key %s during AMD lost: %s", seen.attempt_id, digit, exc)
            return
        self._redirects.add(task)
        task.add_done_callback(self._redirect_done)

    def _redirect_done(self, task: asyncio.Task[Any]) -> None:
        self._redirects.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        reply = None if error is not None else task.result()
        if error is not None or (reply is not None and not reply.success):
            log.warning("a key pressed during AMD could not be taken: %s", error or reply)

    async def _on_link_up(self) -> None:
        for live in self._live.values():
            live.wake.set()
