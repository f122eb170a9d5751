"""Alert calls: place one attempt through Asterisk and turn what happens into one outcome.

An attempt is followed from three sources, so that none of them is a single point of failure:
the answer to Originate (OriginateResponse: answered or why not), AMI events (the `IvrKey`
UserEvent the dialplan sends when a key is accepted, and Hangup), and the AstDB journal the
dialplan keeps (`ivr/<attempt>`: A, K1, K2, T, F<reason>; see ivr/dialplans/ivr-alert.conf).
Whenever the AMI link was lost while an attempt was live, the attempt is re-checked against the
journal and against Asterisk's channel list (Getvar on its ChannelId) before anything is decided.
So a key pressed during an outage is still counted, once, and nothing is re-sent: an Originate
whose fate is unknown is never placed again by this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ivr import outcomes
from ivr.ami import AmiLink
from ivr.errors import AmiDisconnected, AmiError, AmiNotConnected, AmiTimeout, IvrError
from ivr.numbers import DIAL_STRING, dial_string, normalize_number
from ivr.outcomes import Outcome

log = logging.getLogger(__name__)

#: Dialplan context and AstDB family of the alert call (ivr/dialplans/ivr-alert.conf).
ALERT_CONTEXT = "ivr-alert"
JOURNAL_FAMILY = "ivr"
#: Seconds past the ring timeout we wait for OriginateResponse before asking Asterisk directly.
ORIGINATE_MARGIN = 30.0
#: The dialplan caps a call at 900 s (TIMEOUT(absolute)); past this we stop waiting for Hangup.
MAX_CALL_SECONDS = 960.0

_ATTEMPT_ID = re.compile(r"[A-Za-z0-9._-]{1,100}")
#: Channel variable values: paths, ids, digits; `&` joins audio files for Playback/Read.
_VARIABLE_VALUE = re.compile(r"[A-Za-z0-9._/:+&\-]*")

OutcomeHandler = Callable[["CallResult"], Awaitable[None]]


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


@dataclass
class CallResult:
    """What became of one attempt."""

    attempt_id: str
    number: str
    outcome: Outcome
    detail: str
    key: str | None = None
    answered: bool = False
    reason: int | None = None
    cause: int | None = None
    started_at: float = 0.0
    answered_at: float | None = None
    ended_at: float | None = None
    #: Minutes to arrival the callee keyed after pressing 1, if any.
    eta: int | None = None
    #: True when the outcome was settled from the AstDB journal after a loss of the AMI link.
    reconciled: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "attempt": self.attempt_id,
            "number": self.number,
            "outcome": self.outcome.value,
            "detail": self.detail,
            "key": self.key,
            "answered": self.answered,
            "reason": self.reason,
            "cause": self.cause,
            "started_at": self.started_at,
            "answered_at": self.answered_at,
            "ended_at": self.ended_at,
            "eta": self.eta,
            "reconciled": self.reconciled,
        }


@dataclass
class _Live:
    """Facts gathered about one attempt in flight."""

    attempt_id: str
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    ended: bool = False
    #: '1', '2', 'V' (machine), 'Q' (quota met) or '' (no valid key); None: nothing yet.
    key: str | None = None
    eta: int | None = None
    causes: list[int] = field(default_factory=list)


class Caller:
    """Places alert calls over one AMI link and follows each to a single outcome."""

    def __init__(self, link: AmiLink, dial_template: str, *, place_timeout: float = 30.0) -> None:
        self.link = link
        self.dial_template = dial_template
        self.place_timeout = place_timeout
        self._live: dict[str, _Live] = {}
        link.on_event(self._on_event)
        link.on_up(self._on_link_up)

    @property
    def in_flight(self) -> int:
        return len(self._live)

    async def call(
        self, request: CallRequest, on_outcome: OutcomeHandler | None = None
    ) -> CallResult:
        """Place one call and return when it is over (the line is free again).

        `on_outcome` is awaited exactly once, as soon as the outcome is known (for a callee who
        presses 1, while the confirmation is still playing); the journal entry is removed only
        after it returns, so a crash inside it leaves the journal for the next reconciliation.
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
        if request.attempt_id in self._live:
            raise IvrError(f"attempt {request.attempt_id} is already in flight")
        live = _Live(request.attempt_id)
        self._live[request.attempt_id] = live
        started = time.time()
        try:
            originate = await self._place(request, channel)
            result = await self._follow(live, request, number, originate, started, on_outcome)
        finally:
            self._live.pop(request.attempt_id, None)
        with contextlib.suppress(AmiError):
            await self.forget(request.attempt_id)
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
        if attempt_id in self._live:
            raise IvrError(f"attempt {attempt_id} is already in flight")
        live = _Live(attempt_id)
        self._live[attempt_id] = live
        request = CallRequest(number, "", "", ring_timeout=ring_timeout, attempt_id=attempt_id)
        try:
            result = await self._follow(live, request, number, None, time.time(), on_outcome)
        finally:
            self._live.pop(attempt_id, None)
        with contextlib.suppress(AmiError):
            await self.forget(attempt_id)
        return result

    async def journal(self) -> dict[str, str]:
        """Every attempt the dialplan journalled and nobody has forgotten yet."""
        reply = await self.link.action({"Action": "DBGetTree", "Family": JOURNAL_FAMILY})
        entries: dict[str, str] = {}
        for message in reply if isinstance(reply, list) else []:
            if message.get("Event") == "DBGetTreeResponse":
                key = str(message.get("Key", "")).rsplit("/", 1)[-1]
                entries[key] = str(message.get("Val", ""))
        return entries

    async def forget(self, attempt_id: str) -> None:
        """Remove an attempt's journal entry, once its outcome is safely recorded elsewhere."""
        await self.link.action({"Action": "DBDel", "Family": JOURNAL_FAMILY, "Key": attempt_id})

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
        fields: dict[str, Any] = {
            "Action": "Originate",
            "Channel": channel,
            "Context": ALERT_CONTEXT,
            "Exten": "s",
            "Priority": "1",
            "Timeout": str(request.ring_timeout * 1000),
            "ChannelId": request.attempt_id,
            # Without an explicit Async panoramisk breaks (NOTES); with it, the answer is
            # OriginateResponse, which tells answered / busy / no answer / failed.
            "Async": "true",
            "Variable": [f"{k}={v}" for k, v in variables.items()],
        }
        if request.caller_id:
            fields["CallerID"] = request.caller_id
        return fields

    async def _place(self, request: CallRequest, channel: str) -> asyncio.Task[Any]:
        fields = self._originate_fields(request, channel)
        deadline = time.monotonic() + self.place_timeout
        while True:
            await self.link.wait_up(max(0.0, deadline - time.monotonic()))
            try:
                return self.link.submit(
                    fields, timeout=request.ring_timeout + ORIGINATE_MARGIN, as_list=None
                )
            except AmiNotConnected:
                continue  # nothing was sent: safe to wait for the link and send it then

    # -- following -------------------------------------------------------------------------

    async def _follow(
        self,
        live: _Live,
        request: CallRequest,
        number: str,
        originate: asyncio.Task[Any] | None,
        started: float,
        on_outcome: OutcomeHandler | None,
    ) -> CallResult:
        result = CallResult(request.attempt_id, number, Outcome.FAILED, "", started_at=started)
        reason: int | None = None
        # Adopting an attempt (no Originate of ours): only Asterisk can say where it stands.
        originate_read = originate is None
        uncertain = originate is None
        if originate is not None:
            originate.add_done_callback(lambda _: live.wake.set())
        empty_probes = 0
        seen_generation = self.link.generation
        notified = False
        deadline = time.monotonic() + request.ring_timeout + ORIGINATE_MARGIN + MAX_CALL_SECONDS

        while True:
            if not originate_read and originate is not None and originate.done():
                originate_read = True
                reason, detail = self._originate_reason(originate)
                uncertain = uncertain or reason is None
                result.detail = detail
            if self.link.generation != seen_generation and self.link.is_up:
                # The link dropped and came back while this attempt was live: events may be lost.
                seen_generation = self.link.generation
                uncertain = True
            if reason is None and live.ended and originate_read:
                # Over, but the OriginateResponse was lost: only the journal can tell.
                uncertain = True
            if uncertain and self.link.is_up:
                probed = await self._probe(live)
                if probed is not None:
                    uncertain = False
                    result.reconciled = True
                    journal, alive = probed
                    reason = self._apply_journal(live, journal, alive, reason)
                    if reason is None and not alive:
                        # Asterisk writes F<reason> just after the channel is gone: look again
                        # a few times before deciding the Originate never reached it.
                        empty_probes += 1
                        if empty_probes < 8:
                            await asyncio.sleep(0.05 * 2**empty_probes)
                            uncertain = True
                            continue
                        result.detail = "not placed: AMI link lost before Asterisk took the call"
                        reason = 0
            if time.monotonic() > deadline:
                log.error("attempt %s: no end seen; settling from the journal", live.attempt_id)
                probed = await self._probe(live) if self.link.is_up else None
                reason = self._apply_journal(live, probed[0] if probed else None, False, reason)
                if reason is None:
                    reason = 0
                    result.detail = "lost track of the call"

            if reason is not None and reason != outcomes.REASON_ANSWERED:
                cause = next((c for c in live.causes if c), None)
                outcome, detail = outcomes.not_answered(reason, cause)
                result.outcome, result.reason, result.cause = outcome, reason, cause
                result.detail = result.detail or detail
                result.ended_at = time.time()
                if on_outcome is not None:
                    await on_outcome(result)
                return result

            if reason == outcomes.REASON_ANSWERED:
                if not result.answered:
                    result.answered, result.reason = True, reason
                    result.answered_at = time.time()
                if (
                    live.ended
                    and (live.key is None or (live.key == "1" and live.eta is None))
                    and self.link.is_up
                ):
                    # Over without a key (or arrival time) event: the journal, written before
                    # any Hangup, may hold what the event would have said.
                    probed = await self._probe(live)
                    if probed is not None:
                        self._apply_journal(live, probed[0], False, reason)
                if live.key is not None or live.ended:
                    outcome, detail = outcomes.answered(live.key or None)
                    result.outcome, result.detail = outcome, detail
                    result.key = live.key if live.key in ("1", "2") else None
                    result.eta = live.eta
                    if not notified and on_outcome is not None:
                        notified = True
                        await on_outcome(result)
                if live.ended:
                    result.cause = next((c for c in live.causes if c), None)
                    result.ended_at = time.time()
                    return result

            live.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(live.wake.wait(), max(0.05, deadline - time.monotonic()))

    @staticmethod
    def _originate_reason(originate: asyncio.Task[Any]) -> tuple[int | None, str]:
        """Reason code from the Originate answer; None when the link failed us."""
        try:
            reply = originate.result()
        except (AmiDisconnected, AmiTimeout):
            return None, ""
        if not isinstance(reply, list):
            # Refused outright (bad channel technology, ...): Asterisk never tried.
            return 0, f"originate refused: {reply.get('Message', 'error')}"
        response = next((m for m in reply if m.get("Event") == "OriginateResponse"), None)
        if response is None:
            return None, ""
        try:
            return int(response.get("Reason", 0)), ""
        except ValueError:
            return 0, f"reason {response.get('Reason')!r}"

    @staticmethod
    def _apply_journal(
        live: _Live, journal: str | None, alive: bool, reason: int | None
    ) -> int | None:
        """Fold the journal and channel liveness into the attempt; return the reason now known."""
        if not alive:
            live.ended = True
        if not journal:
            return reason
        if journal.startswith("F"):
            try:
                return int(journal[1:])
            except ValueError:
                return 0
        key, eta = outcomes.parse_journal(journal)
        if key is not None and live.key is None:
            live.key = key
        if eta is not None:
            live.eta = eta
        return outcomes.REASON_ANSWERED

    async def _probe(self, live: _Live) -> tuple[str | None, bool] | None:
        """(journal value, channel alive) from Asterisk, or None if the link failed meanwhile."""
        try:
            got = await self.link.action(
                {"Action": "DBGet", "Family": JOURNAL_FAMILY, "Key": live.attempt_id}
            )
            journal = None
            if isinstance(got, list):
                journal = next(
                    (str(m.get("Val")) for m in got if m.get("Event") == "DBGetResponse"), None
                )
            # Asterisk finds a channel by Uniqueid too, and ChannelId set it to the attempt id.
            var = await self.link.action(
                {"Action": "Getvar", "Channel": live.attempt_id, "Variable": "IVR_ATTEMPT"}
            )
            alive = bool(var.success)
        except AmiError as exc:
            log.warning("attempt %s: cannot check with Asterisk yet: %s", live.attempt_id, exc)
            return None
        return journal, alive

    # -- AMI events ------------------------------------------------------------------------

    def _on_event(self, message: Any) -> None:
        event = message.get("Event")
        if event == "Hangup":
            uniqueid = str(message.get("Uniqueid", ""))
            # A Local channel's other half is <ChannelId>;2 and carries the callee's cause.
            base = uniqueid[:-2] if uniqueid.endswith(";2") else uniqueid
            live = self._live.get(base)
            if live is None:
                return
            with contextlib.suppress(TypeError, ValueError):
                live.causes.append(int(message.get("Cause", 0)))
            if uniqueid == base:
                live.ended = True
            live.wake.set()
        elif event == "UserEvent" and message.get("UserEvent") == "IvrKey":
            live = self._live.get(str(message.get("Attempt", "")))
            if live is None or live.key is not None:
                return
            key = str(message.get("Key", ""))
            live.key = key if key in ("1", "2", "V", "Q") else ""
            live.wake.set()
        elif event == "UserEvent" and message.get("UserEvent") == "IvrEta":
            live = self._live.get(str(message.get("Attempt", "")))
            minutes = str(message.get("Minutes", ""))
            if live is not None and minutes.isdigit():
                live.eta = int(minutes)
                live.wake.set()

    async def _on_link_up(self) -> None:
        for live in self._live.values():
            live.wake.set()
