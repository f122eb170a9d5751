"""Following one alert call attempt to its single outcome.

What is known about an attempt comes from three sources, none of them a single point of
failure: the answer to Originate (OriginateResponse: answered, or why not), AMI events (the
`IvrKey`/`IvrEta` UserEvents the dialplan sends, and Hangup with its cause), and the AstDB
journal the dialplan keeps (`ivr.pbx.astdb`). Whenever the AMI link was lost while the attempt
was live, the attempt is checked against the journal and Asterisk's channel list before
anything is decided, so a key pressed during an outage is still counted, once.

`Follower.run()` is a loop of small steps: read the Originate answer, notice doubts (a link that
dropped, an end without a reason), reconcile with Asterisk when in doubt, then settle: a call
that was never answered ends at once with its reason and cause; an answered one reports its
outcome as soon as the key is known (while the confirmation still plays) and returns when the
call is over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ivr.errors import AmiDisconnected, AmiError, AmiTimeout
from ivr.outcomes import Outcome
from ivr.pbx import causes
from ivr.pbx.ami import AmiLink
from ivr.pbx.astdb import AstDb

log = logging.getLogger(__name__)

#: Seconds past the ring timeout we wait for OriginateResponse before asking Asterisk directly.
ORIGINATE_MARGIN = 30.0
#: The dialplan caps a call at 900 s (TIMEOUT(absolute)); past this we stop waiting for Hangup.
MAX_CALL_SECONDS = 960.0
#: Times Asterisk is asked again about an attempt it shows no trace of, before deciding the
#: Originate never reached it (it writes F<reason> just after the channel is gone).
EMPTY_PROBES = 8
#: Seconds an unanswered attempt waits, after its OriginateResponse, for the Hangup events of
#: its channels: Asterisk sends the response before the Hangup of a Local channel's other half
#: (with the callee's cause: busy, declined...) as often as after it.
SETTLE_GRACE = 2.0


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
    #: Set by an `on_outcome` handler whose record of the outcome is not safe yet (Redis wrote
    #: it, no replica acknowledged it): the AstDB journal entry is then kept, for a later
    #: reconciliation, instead of being removed when the call is over.
    keep_journal: bool = False

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


OutcomeHandler = Callable[[CallResult], Awaitable[None]]


@dataclass
class Sightings:
    """What AMI events said about one attempt in flight (filled in by `Caller`'s handler).

    An attempt's channels are the one it originated (its Uniqueid is the attempt id), the other
    half of a Local channel (`<attempt>;2`) and whatever that half dialled (a PJSIP leg through a
    hospital's own context): each new channel whose Linkedid is the attempt's. Their depth (0,
    1, 2) says how close to the callee they are.
    """

    attempt_id: str
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    #: The originated channel has hung up.
    ended: bool = False
    #: '1', '2', 'V' (machine), 'Q' (quota met) or '' (no valid key); None: nothing yet.
    key: str | None = None
    eta: int | None = None
    #: Channels of the attempt still up: Uniqueid -> depth.
    channels: dict[str, int] = field(default_factory=dict)
    #: (depth, Q.850 cause) of each channel of the attempt that hung up, in the order seen.
    causes: list[tuple[int, int]] = field(default_factory=list)
    #: Answering-machine detection is running on the call (keys then reach us as DTMF events).
    detecting: bool = False

    def depth(self, uniqueid: str) -> int:
        if uniqueid == self.attempt_id:
            return 0
        return 1 if uniqueid == f"{self.attempt_id};2" else 2

    @property
    def cause(self) -> int | None:
        """The cause that best says why the call ended: an informative one (busy, declined, no
        answer, unknown number, congestion) from the channel nearest the callee, else the first
        non-zero one."""
        told = [(depth, c) for depth, c in self.causes if causes.informative(c)]
        if told:
            deepest = max(depth for depth, _ in told)
            return next(c for depth, c in told if depth == deepest)
        return next((c for _, c in self.causes if c), None)

    @property
    def story_complete(self) -> bool:
        """Every channel of the attempt seen so far has hung up, the originated one included."""
        return self.ended and not self.channels


class Follower:
    """Follows one attempt (placed by us, or adopted with `originate=None`) to its outcome."""

    def __init__(
        self,
        link: AmiLink,
        seen: Sightings,
        result: CallResult,
        *,
        ring_timeout: int,
        originate: asyncio.Task[Any] | None,
        on_outcome: OutcomeHandler | None,
    ) -> None:
        self.link = link
        self.astdb = AstDb(link)
        self.seen = seen
        self.result = result
        self.originate = originate
        self.on_outcome = on_outcome
        #: The OriginateResponse Reason once known (4: answered).
        self.reason: int | None = None
        # Adopting an attempt (no Originate of ours): only Asterisk can say where it stands.
        self.originate_read = originate is None
        self.uncertain = originate is None
        self.empty_probes = 0
        self.notified = False
        self.generation = link.generation
        self.deadline = time.monotonic() + ring_timeout + ORIGINATE_MARGIN + MAX_CALL_SECONDS
        #: When an unanswered attempt stops waiting for the rest of its story.
        self.settle_by: float | None = None
        if originate is not None:
            originate.add_done_callback(self._originate_done)

    def _originate_done(self, task: asyncio.Task[Any]) -> None:
        # Retrieved even when nobody reads it any more (a cancelled call): no "never retrieved".
        if not task.cancelled():
            task.exception()
        self.seen.wake.set()

    async def run(self) -> CallResult:
        """Return when the call is over; `on_outcome` was awaited once before that."""
        while True:
            self._read_originate()
            self._note_doubts()
            if self.uncertain and self.link.is_up and await self._reconcile():
                continue
            if time.monotonic() > self.deadline:
                await self._give_up()
            unanswered = self.reason is not None and self.reason != causes.REASON_ANSWERED
            if unanswered and self._settled():
                return await self._not_answered()
            if self.reason == causes.REASON_ANSWERED and await self._answered():
                return self.result
            await self._wait()

    # -- steps ------------------------------------------------------------------------------

    def _read_originate(self) -> None:
        """Take the Reason of the Originate answer once it is there."""
        if self.originate_read or self.originate is None or not self.originate.done():
            return
        self.originate_read = True
        self.reason, self.result.detail = originate_reason(self.originate)
        self.uncertain = self.uncertain or self.reason is None

    def _note_doubts(self) -> None:
        """Events may have been lost: the link dropped and came back while the attempt was
        live, or the call is over and the OriginateResponse never came."""
        if self.link.generation != self.generation and self.link.is_up:
            self.generation = self.link.generation
            self.uncertain = True
        if self.reason is None and self.seen.ended and self.originate_read:
            self.uncertain = True

    async def _reconcile(self) -> bool:
        """Ask Asterisk where the attempt stands. True: ask again at once (it showed no trace
        of the attempt yet)."""
        probed = await self._probe()
        if probed is None:
            return False
        self.uncertain = False
        self.result.reconciled = True
        journal, alive = probed
        self._apply_journal(journal, alive)
        if self.reason is None and not alive:
            self.empty_probes += 1
            if self.empty_probes < EMPTY_PROBES:
                # Backing off while Asterisk writes the journal, not waiting for an event.
                await asyncio.sleep(0.05 * 2**self.empty_probes)
                self.uncertain = True
                return True
            self.result.detail = "not placed: AMI link lost before Asterisk took the call"
            self.reason = 0
        return False

    async def _give_up(self) -> None:
        """No end seen in time: settle from the journal, else as lost."""
        log.error("attempt %s: no end seen; settling from the journal", self.seen.attempt_id)
        probed = await self._probe() if self.link.is_up else None
        self._apply_journal(probed[0] if probed else None, alive=False)
        if self.reason is None:
            self.reason = 0
            self.result.detail = "lost track of the call"

    def _settled(self) -> bool:
        """An unanswered attempt's outcome is decided once its channels have all hung up (their
        causes are in), or when the grace after the originate response is over."""
        if self.seen.story_complete:
            return True
        now = time.monotonic()
        if self.settle_by is None:
            self.settle_by = now + SETTLE_GRACE
        return now >= self.settle_by

    async def _not_answered(self) -> CallResult:
        assert self.reason is not None
        cause = self.seen.cause
        outcome, detail = causes.not_answered(self.reason, cause)
        result = self.result
        result.outcome, result.reason, result.cause = outcome, self.reason, cause
        result.detail = result.detail or detail
        result.ended_at = time.time()
        if self.on_outcome is not None:
            await self.on_outcome(result)
        return result

    async def _answered(self) -> bool:
        """Report the answer once known; True when the call is over."""
        result, seen = self.result, self.seen
        if not result.answered:
            result.answered, result.reason = True, self.reason
            result.answered_at = time.time()
        waiting_for_eta = seen.key == "1" and seen.eta is None
        if seen.ended and (seen.key is None or waiting_for_eta) and self.link.is_up:
            # Over without a key (or arrival time) event: the journal, written before any
            # Hangup, may hold what the event would have said.
            probed = await self._probe()
            if probed is not None:
                self._apply_journal(probed[0], alive=False)
        if seen.key is not None or seen.ended:
            result.outcome, result.detail = causes.answered(seen.key or None)
            result.key = seen.key if seen.key in ("1", "2") else None
            result.eta = seen.eta
            if not self.notified and self.on_outcome is not None:
                self.notified = True
                await self.on_outcome(result)
        if seen.ended:
            result.cause = seen.cause
            result.ended_at = time.time()
            return True
        return False

    async def _wait(self) -> None:
        self.seen.wake.clear()
        until = self.deadline if self.settle_by is None else min(self.deadline, self.settle_by)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.seen.wake.wait(), max(0.05, until - time.monotonic()))

    # -- asking Asterisk --------------------------------------------------------------------

    def _apply_journal(self, journal: str | None, alive: bool) -> None:
        """Fold the journal and the channel's liveness into what is known."""
        if not alive:
            self.seen.ended = True
        if not journal:
            return
        if journal.startswith("F"):
            self.reason = int(journal[1:]) if journal[1:].isdigit() else 0
            return
        key, eta = causes.parse_journal(journal)
        if key is not None and self.seen.key is None:
            self.seen.key = key
        if eta is not None:
            self.seen.eta = eta
        self.reason = causes.REASON_ANSWERED

    async def _probe(self) -> tuple[str | None, bool] | None:
        """(journal value, channel alive) from Asterisk, or None if the link failed meanwhile."""
        attempt = self.seen.attempt_id
        try:
            journal = await self.astdb.journal_entry(attempt)
            # Asterisk finds a channel by Uniqueid too, and ChannelId set it to the attempt id.
            var = await self.link.action(
                {"Action": "Getvar", "Channel": attempt, "Variable": "IVR_ATTEMPT"}
            )
        except AmiError as exc:
            log.warning("attempt %s: cannot check with Asterisk yet: %s", attempt, exc)
            return None
        return journal, bool(var.success)


def originate_reason(originate: asyncio.Task[Any]) -> tuple[int | None, str]:
    """Reason code from the Originate answer (and a detail); None when the link failed us."""
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
