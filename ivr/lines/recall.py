"""The director's call-back, answered: the flow of the call `ivr.dialer.recall` places when a
campaign started by phone meets every quota or ends (`ivr.campaign.recall`).

The call carries which call-back it is (channel variable IVR_RECALL). The flow first marks the
call-back answered (so no other call is made for this event, whatever becomes of the worker
that placed it), says why it calls, then runs the report line's own summary and menu
(`ReportLine.control`): 1 repeat, 2 stop, 3 raise a quota or extend, 4 the crisis cell. The
PIN is asked before any key but 1: the phone that answers is the one the director triggered
from, but anyone may pick it up.
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
from ivr.pbx.agi import AgiSession
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
        answered = Recall(cid, placed.event, placed.number)  # whichever attempt this is
        got = await recalls.finish(redis, answered, "answered", store.now_ms())
        if got[0] != "done":
            # Another attempt was answered first (a lease that ran out mid-ring): the director
            # is on the line all the same, so he hears it; the log says it happened.
            log.warning("campaign %s: call-back %s answered again (%s)", cid, placed.name, got)
        await audit.record(redis, f"phone:{placed.number}", "recall.answered", target=cid,
                           details={"event": placed.event, "attempt": placed.attempt,
                                    "first": got[0] == "done"})  # fmt: skip
        call = await self.context.start(session, "recall")
        intro = await call.say(speech.recall_intro(cid, placed.event, call.language))
        await self.report.control(call, cid, None, intro=intro)
