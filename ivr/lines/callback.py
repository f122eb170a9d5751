"""The callback line: staff who missed the call (or got the voicemail message) call back. They
are found by caller id among the running campaigns and those ended within IVR_CALLBACK_WINDOW
hours (else they key their staff number), hear the alert, and answer 1/2 (+ arrival minutes)
as on an alert call. The answer counts once, in the same campaign.
"""

from __future__ import annotations

from typing import cast

from ivr import keys, logs
from ivr.campaign import store
from ivr.campaign.message import campaign_message, message_languages
from ivr.campaign.spec import CampaignError, CampaignSpec
from ivr.campaign.state import PersonState
from ivr.keys import campaign_key
from ivr.lines.call import TRIES, LineCall, LineContext
from ivr.outcomes import Outcome
from ivr.pbx.agi import AgiSession
from ivr.staff.roster import CRISIS_TAG, Person


class CallbackLine:
    """The `callback` flow."""

    def __init__(self, context: LineContext) -> None:
        self.context = context

    async def __call__(self, session: AgiSession) -> None:
        call = await self.context.start(session, "callback")
        recent = await self._recent_campaigns()
        found = await self._find_by_caller(recent, session.caller_id)
        await call.play(call.p("line_callback"))
        if found is None and recent:
            found = await self._find_by_staff_number(call, recent)
        got = None if found is None else await store.get_person(self.context.redis, *found)
        if found is None or got is None:
            await call.play(call.p("no_alert"))
            return
        person, _ = got
        logs.bind(campaign_id=found[0])  # this call's own task (ivr.pbx.agi)
        if person.language != call.language:
            call = await self.context.start(session, "callback", person.language)
        await self._answer(call, found[0], person)

    async def _recent_campaigns(self) -> list[str]:
        """Running campaigns, and those ended within the callback window; newest first."""
        return await store.recent(self.context.redis, self.context.config.callback_window)

    async def _find_by_caller(self, recent: list[str], caller: str) -> tuple[str, str] | None:
        if not caller:
            return None
        hits = []
        for cid in recent:
            pid = await store.find_by_number(self.context.redis, cid, caller)
            if pid is not None:
                hits.append((cid, pid))
        return await self._best(hits)

    async def _find_by_staff_number(
        self, call: LineCall, recent: list[str]
    ) -> tuple[str, str] | None:
        redis = self.context.redis
        for _ in range(TRIES):
            got = await call.digits(call.p("staff_enter"), "staff", accept=lambda d: len(d) <= 20)
            if got is None:
                return None
            hits = [
                (cid, got)
                for cid in recent
                if await redis.hexists(campaign_key(cid, "people"), got)
            ]
            best = await self._best(hits)
            if best is not None:
                return best
            await call.play(call.p("staff_unknown"))
        return None

    async def _state(self, cid: str, pid: str) -> PersonState:
        raw = await self.context.redis.hget(campaign_key(cid, "state"), pid)
        return PersonState.decode(cast(str | None, raw))

    async def _best(self, hits: list[tuple[str, str]]) -> tuple[str, str] | None:
        """The newest campaign the person has not answered yet, else the newest one."""
        for cid, pid in hits:
            if not (await self._state(cid, pid)).answered:
                return cid, pid
        return hits[0] if hits else None

    async def _already(self, call: LineCall, outcome: Outcome) -> None:
        call.step("already")
        yes = outcome is Outcome.AVAILABLE
        await call.play(call.p("already_yes" if yes else "already_no"))

    async def _answer(self, call: LineCall, cid: str, person: Person) -> None:
        redis = self.context.redis
        state = await self._state(cid, person.id)
        if state.outcome is not None and state.answered:
            await self._already(call, state.outcome)
            return
        quota = await redis.hget(campaign_key(cid, "quota"), person.role)
        got = await redis.hget(campaign_key(cid, "counts"), f"role:{person.role}:available")
        if quota is not None and int(got or 0) >= int(quota):
            await call.play(f"{call.p('quota_met')}&{call.p('goodbye')}")
            return
        spec = await store.get_spec(redis, cid)
        message = await self._message(call, spec)
        key = await call.menu(f"{message}&{call.p('menu')}", "12", "answer")
        if key is None:
            await call.play(call.p("no_input"))
            return
        if not await call.vouched(f"answer of {person.id} to campaign {cid}"):
            return
        outcome = Outcome.AVAILABLE if key == "1" else Outcome.UNAVAILABLE
        result = await self.context.scheduler.answer(
            cid, person.id, outcome, store.now_ms(), call.session.caller_id
        )
        if result[0] == "already":
            await self._already(call, Outcome(result[1]))
            return
        if result[0] == "quota_met":
            await redis.publish(keys.wake_channel, f"quota {cid} {person.role}")
        if outcome is Outcome.UNAVAILABLE:
            await call.play(call.p("confirm_no"))
            return
        await call.play(call.p("confirm_yes"))
        if spec.ask_eta:
            await self._eta(call, cid, person)
        if CRISIS_TAG in person.tags:
            await call.play(call.p("conference"))
            await call.session.set_variable("IVR_NEXT", "member")

    async def _eta(self, call: LineCall, cid: str, person: Person) -> None:
        call.step("eta")
        minutes = await call.session.read(
            call.p("eta"), timeout=self.context.key_wait, max_digits=3
        )
        if minutes and minutes.isdigit():
            await self.context.scheduler.record_eta(
                cid, person.id, int(minutes), store.now_ms(), person.role
            )
            await call.play(call.p("eta_recorded"))

    async def _message(self, call: LineCall, spec: CampaignSpec) -> str:
        """The campaign's message as the alert call plays it: in the caller's language, else in
        French, else in the language it has."""
        for language in (call.language, "fr", *message_languages(spec)):
            message = await campaign_message(
                spec, language, self.context.config, call.say, call.prompts
            )
            if message is not None:
                return message
        raise CampaignError(f"campaign {spec.name!r} has no message")
