"""The director's call-back, answered: the flow of the call `ivr.dialer.recall` places when a
campaign started by phone meets every quota or ends (`ivr.campaign.recall`).

The call carries which call-back it is (channel variable IVR_RECALL). The flow first marks the
call-back answered (so no other call is made for this event, whatever becomes of the worker
that placed it), says why it calls, then runs the report line's own summary and menu
(`ReportLine.control`): 1 repeat, 2 stop, 3 raise a quota or extend, 4 the crisis cell. The
PIN is asked before any key but 1: the phone that answers is the one the director triggered
from, but anyone may pick it up.

Picked up is not heard: a voicemail box answers too. The news counts as taken once a key is
pressed, or when the phone hangs up after the first summary and menu (a second round began);
a hang-up before, or menus that run out without a key, put the call-back back in line
(`unheard`: due again after the retry delay, while attempts remain).
"""

from __future__ import annotations

import logging

from ivr import logs
from ivr.access import audit
from ivr.campaign import recall as recalls
from ivr.campaign import store
from ivr.campaign.recall import Recall
from ivr.errors import InvalidNumberError
from ivr.lines.call import LineContext
from ivr.lines.report import ReportLine
from ivr.pbx.agi import AgiHangup, AgiSession
from ivr.voice import speech

log = logging.getLogger(__name__)


class RecallLine:
    """The `recall` flow (a call the service placed, not a number anyone dials)."""

    def __init__(self, context: LineContext, report: ReportLine) -> None:
        self.context = context
        self.report = report

    async def __call__(self, session: AgiSession) -> None:
        token = await session.get_variable("IVR_RECALL")
        try:
            placed = Recall.from_token(token)
        except (ValueError, InvalidNumberError):
            log.warning("recall line: %r names no call-back; hanging up", token)
            await session.hangup()
            return
        session.assume_caller(placed.number)
        cid = placed.campaign
        logs.bind(campaign_id=cid)  # this call's own task (ivr.pbx.agi)
        redis = self.context.redis
        got = await recalls.finish(redis, placed, "answered", store.now_ms(), flow=True)
        if got[0] != "done":
            # Another attempt was answered first (a lease that ran out mid-ring): the director
            # is on the line all the same, so he hears it; the log says it happened.
            log.warning("campaign %s: call-back %s answered again (%s)", cid, placed.name, got)
        await audit.record(redis, f"phone:{placed.number}", "recall.answered", target=cid,
                           details={"event": placed.event, "attempt": placed.attempt,
                                    "first": got[0] == "done"})  # fmt: skip
        call = await self.context.start(session, "recall")
        intro = await call.say(speech.recall_intro(cid, placed.event, call.language))
        try:
            await self.report.control(call, cid, None, intro=intro)
        except AgiHangup:
            # Hung up once the first summary and menu were over (a second round began): heard.
            if not call.keys and call.steps.count("report") < 2:
                await self._unheard(placed)
            raise
        if not call.keys:  # the menus ran out: nobody listens (a voicemail box?)
            await self._unheard(placed)

    async def _unheard(self, placed: Recall) -> None:
        """Picked up, but nobody took the news: the call-back is due again (or given up)."""
        redis = self.context.redis
        got = await recalls.finish(redis, placed, "unheard", store.now_ms(), flow=True)
        log.info("campaign %s: call-back %s not heard: %s", placed.campaign, placed.name, got)
        await audit.record(redis, f"phone:{placed.number}", "recall.unheard",
                           target=placed.campaign,
                           details={"event": placed.event, "attempt": placed.attempt,
                                    "next": got[0]})  # fmt: skip
