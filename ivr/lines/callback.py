"""The callback line: staff who missed the call (or got the voicemail message) call back. They
are found by caller id among the running campaigns and those ended within IVR_CALLBACK_WINDOW
hours (else they key their staff number), hear the alert, and answer 1/2 (+ arrival minutes)
as on an alert call. The answer counts once, in the same campaign.
"""

from __future__ import annotations

import json
import time
from typing import Any, cast

from ivr import keys
from ivr.campaign import store
from ivr.campaign.store import CRISIS_TAG, CampaignError
from ivr.dialer.alerter import campaign_message
from ivr.keys import campaign_key
from ivr.lines.call import TRIES, LineBase, LineCall
from ivr.pbx.agi import AgiSession


class CallbackLine(LineBase):
    """The `callback` flow."""

    async def callback(self, session: AgiSession) -> None:
        call = await self._start(session, "callback")
        recent = await self._recent_campaigns()
        found = await self._find_by_caller(recent, session.caller_id)
        await call.play(call.p("line_callback"))
        if found is None and recent:
            found = await self._find_by_staff_number(call, recent)
        if found is None:
            await call.play(call.p("no_alert"))
            return
        cid, pid = found
        record = json.loads(cast(str, await self.redis.hget(campaign_key(cid, "people"), pid)))
        language = record.get("l", self.config.language)
        if language != call.language:
            call = await self._start(session, "callback", language)
        await self._answer(call, cid, pid, record)

    async def _recent_campaigns(self) -> list[str]:
        """Running campaigns, and those ended within the callback window; newest first."""
        since = (time.time() - self.config.callback_window * 3600) * 1000
        ids = cast(list[str], await self.redis.zrevrange(keys.campaigns_key, 0, 49))
        out = []
        for cid in ids:
            meta = cast(dict[str, str], await self.redis.hgetall(campaign_key(cid)))
            if meta.get("status") == "running" or (
                meta.get("status") == "done" and int(meta.get("finished_at", 0)) >= since
            ):
                out.append(cid)
        return out

    async def _find_by_caller(self, recent: list[str], caller: str) -> tuple[str, str] | None:
        if not caller:
            return None
        hits = []
        for cid in recent:
            pid = await store.find_by_number(self.redis, cid, caller)
            if pid is not None:
                hits.append((cid, pid))
        return await self._best(hits)

    async def _find_by_staff_number(
        self, call: LineCall, recent: list[str]
    ) -> tuple[str, str] | None:
        for _ in range(TRIES):
            got = await call.digits(call.p("staff_enter"), "staff", accept=lambda d: len(d) <= 20)
            if got is None:
                return None
            hits = [
                (cid, got)
                for cid in recent
                if await self.redis.hexists(campaign_key(cid, "people"), got)
            ]
            best = await self._best(hits)
            if best is not None:
                return best
            await call.play(call.p("staff_unknown"))
        return None

    async def _best(self, hits: list[tuple[str, str]]) -> tuple[str, str] | None:
        """The newest campaign the person has not answered yet, else the newest one."""
        for cid, pid in hits:
            raw = await self.redis.hget(campaign_key(cid, "state"), pid)
            state = json.loads(raw) if raw else {}
            if state.get("o") not in ("available", "unavailable"):
                return cid, pid
        return hits[0] if hits else None

    async def _answer(self, call: LineCall, cid: str, pid: str, record: dict[str, Any]) -> None:
        raw = await self.redis.hget(campaign_key(cid, "state"), pid)
        state = json.loads(raw) if raw else {}
        if state.get("o") in ("available", "unavailable"):
            call.step("already")
            await call.play(call.p("already_yes" if state["o"] == "available" else "already_no"))
            return
        role = record["r"]
        quota = await self.redis.hget(campaign_key(cid, "quota"), role)
        got = await self.redis.hget(campaign_key(cid, "counts"), f"role:{role}:available")
        if quota is not None and int(got or 0) >= int(quota):
            await call.play(f"{call.p('quota_met')}&{call.p('goodbye')}")
            return
        spec = json.loads((await store.get_meta(self.redis, cid))["spec"])
        message = await self._message(call, spec)
        key = await call.menu(f"{message}&{call.p('menu')}", "12", "answer")
        if key is None:
            await call.play(call.p("no_input"))
            return
        outcome = "available" if key == "1" else "unavailable"
        now = int(time.time() * 1000)
        result = await self.scheduler.answer(cid, pid, outcome, now, call.session.caller_id)
        if result[0] == "already":
            call.step("already")
            await call.play(call.p("already_yes" if result[1] == "available" else "already_no"))
            return
        if result[0] == "quota_met":
            await self.redis.publish(keys.wake_channel, f"quota {cid} {role}")
        if outcome == "unavailable":
            await call.play(call.p("confirm_no"))
            return
        await call.play(call.p("confirm_yes"))
        if spec.get("ask_eta", True):
            call.step("eta")
            minutes = await call.session.read(call.p("eta"), timeout=self.key_wait, max_digits=3)
            if minutes and minutes.isdigit():
                now = int(time.time() * 1000)
                await self.scheduler.record_eta(cid, pid, int(minutes), now, role)
                await call.play(call.p("eta_recorded"))
        if CRISIS_TAG in record.get("t", ()):
            await call.play(call.p("conference"))
            await call.session.set_variable("IVR_NEXT", "member")

    async def _message(self, call: LineCall, spec: dict[str, Any]) -> str:
        """The campaign's message as the alert call plays it: in the caller's language, else in
        French, else in the language it has."""
        recordings, texts = spec.get("recordings") or {}, spec.get("messages") or {}
        for language in (call.language, "fr", *recordings, *texts):
            message = await campaign_message(spec, language, self.config, call.say, call.prompts)
            if message is not None:
                return message
        raise CampaignError(f"campaign {spec.get('name', '')!r} has no message")
