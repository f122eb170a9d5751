"""The director's call-backs, placed (`ivr.campaign.recall` says what is due and keeps count).

Each worker runs a `RecallDialer` beside its `DialerWorker`: it claims the next call-back due
(an atomic claim with a lease, so with several workers one call is placed), originates it into
the phone lines' context `ivr-line-run`, extension `recall` (`ivr/dialplans/ivr-lines.conf`),
where the flow `ivr.lines.recall` speaks the report line's summary and menu, then records the
attempt: answered, or due again after the scenario's retry delay. Every attempt is audited
(`recall.call`). The call's flow marks the call-back answered itself when the director picks
up, so a worker dying during the conversation does not make another call him again; one dying
while the phone rings leaves the call-back due again when its lease ends (after the ring).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from redis.asyncio import Redis

from ivr import logs
from ivr.access import audit
from ivr.campaign import recall as recalls
from ivr.campaign.recall import Recall
from ivr.dialer.alerter import Alerter
from ivr.dialer.settings import WorkerSettings
from ivr.errors import AmiError, IvrError
from ivr.numbers import dial_string
from ivr.pbx.calls import CallRequest, new_attempt_id
from ivr.pbx.follow import ORIGINATE_MARGIN
from ivr.retry import retrying

log = logging.getLogger(__name__)

#: Where the call goes once answered (ivr/dialplans/ivr-lines.conf).
RECALL_CONTEXT = "ivr-line-run"
RECALL_EXTEN = "recall"
#: Seconds the director's phone rings, at least (he may be busy: longer than a staff call).
RING_SECONDS = 30
#: Longest wait between two looks at the due call-backs.
IDLE_SECONDS = 0.5
#: Observer of the attempts (tests): called with the call-back and what `finish` answered.
RecallObserver = Callable[[Recall, str, list[str]], None]


class RecallDialer:
    """Places the director's call-backs through one Asterisk. `run()` until `stop` is set."""

    def __init__(
        self,
        alerter: Alerter,
        redis: Redis,
        settings: WorkerSettings,
        *,
        agi_url: str = "",
        dial_template: str = "",
        ring_timeout: int | None = None,
        observer: RecallObserver | None = None,
    ) -> None:
        self.alerter = alerter
        self.redis = redis
        self.settings = settings
        #: The FastAGI server of the flow, when not the dialplan's global IVR_AGI_URL (tests).
        self.agi_url = agi_url
        #: How the director's numbers are dialled, when not as the staff's (IVR_DIAL_TEMPLATE).
        self.dial_template = dial_template
        self.ring_timeout = ring_timeout or max(alerter.config.ring_timeout, RING_SECONDS)
        self.observer = observer
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def lease_ms(self) -> int:
        """Longer than a call can ring: a call-back is placed again only once its call is over."""
        return int((self.ring_timeout + 2 * ORIGINATE_MARGIN) * 1000)

    async def run(self, stop: asyncio.Event) -> None:
        with logs.log_fields(worker=self.settings.name):
            while not stop.is_set():
                if not self.alerter.link.is_up:
                    with contextlib.suppress(AmiError):
                        await self.alerter.link.wait_up(1.0)
                    continue
                claimed = await retrying(
                    recalls.claim,
                    self.redis,
                    _now_ms(),
                    lease_ms=self.lease_ms,
                    worker=self.settings.name,
                )
                if claimed is None:
                    await self._idle(stop)
                    continue
                self._spawn(self._place(claimed))
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _idle(self, stop: asyncio.Event) -> None:
        """Until the next call-back is due, looking again every IDLE_SECONDS (a call-back is
        noted inside the scheduler's scripts, which wake nobody)."""
        due = await retrying(recalls.next_due, self.redis)
        wait = IDLE_SECONDS if due is None else (due - _now_ms()) / 1000
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), min(max(wait, 0.01), IDLE_SECONDS))

    async def _place(self, recall: Recall) -> None:
        logs.bind(campaign_id=recall.campaign)  # its own task
        language = self.alerter.config.language
        variables = {"IVR_RECALL": recall.token}
        if self.agi_url:
            variables["IVR_AGI_URL"] = self.agi_url
        detail = ""
        try:
            request = CallRequest(
                number=recall.number,
                message="",
                prompts=await self.alerter.prompts(language),
                ring_timeout=self.ring_timeout,
                caller_id=self.alerter.config.caller_id,
                attempt_id=new_attempt_id(),
                variables=variables,
                context=RECALL_CONTEXT,
                exten=RECALL_EXTEN,
                channel=dial_string(self.dial_template, recall.number)
                if self.dial_template
                else "",
            )
            result = await self.alerter.caller.call(request)
            outcome = "answered" if result.answered else result.outcome.value
            detail = result.detail
        except IvrError as exc:  # a number Asterisk cannot dial, the AMI link gone...
            outcome, detail = "failed", str(exc)
        got = await retrying(recalls.finish, self.redis, recall, outcome, _now_ms())
        log.info(
            "campaign %s: call-back %s to %s, attempt %d: %s (%s) -> %s",
            recall.campaign, recall.event, recall.number, recall.attempt, outcome, detail,
            " ".join(got),
        )  # fmt: skip
        details = {"event": recall.event, "number": recall.number, "attempt": recall.attempt,
                   "outcome": outcome, "detail": detail, "next": got[0]}  # fmt: skip
        await retrying(
            audit.record,
            self.redis,
            f"worker:{self.settings.name}",
            "recall.call",
            target=recall.campaign,
            details=details,
        )
        if self.observer is not None:
            self.observer(recall, outcome, got)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("call-back task failed", exc_info=t.exception())

        task.add_done_callback(done)


def _now_ms() -> int:
    return int(time.time() * 1000)
