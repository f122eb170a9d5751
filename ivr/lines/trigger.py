"""The director's trigger line: PIN -> scenario (9 first: a drill) -> "<scenario>: N staff
will be called; press 1 to launch, 2 to record your own message first" (record, listen,
re-record, accept, then the same question) -> the campaign starts and its number is spoken.
A scenario's own number (`trigger-<key>`) skips the scenario menu. Nothing is created before
the last "press 1": a caller who hangs up at any step leaves no half-started campaign.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable

from ivr import logs
from ivr.access import audit
from ivr.campaign import store
from ivr.campaign.scenarios import DRILL_KEY, Scenario
from ivr.campaign.spec import select
from ivr.lines.call import TRIES, LineCall, LineContext
from ivr.lines.pin import authenticate
from ivr.pbx.agi import AgiError, AgiHangup, AgiSession
from ivr.staff.roster import RosterStore
from ivr.voice import speech
from ivr.voice.wav import wav_duration

log = logging.getLogger(__name__)

#: A recorded message: its longest, and seconds of silence that end it; shorter is refused.
RECORD_MAX = 90
RECORD_SILENCE = 4
RECORD_MIN_SECONDS = 1.0


class TriggerLine:
    """The `trigger` flow; `shortcut(scenario)` gives the flow of a scenario's own number."""

    def __init__(self, context: LineContext) -> None:
        self.context = context

    async def __call__(self, session: AgiSession) -> None:
        await self._run(session, None)

    def shortcut(self, scenario: Scenario) -> Callable[[AgiSession], Awaitable[None]]:
        """The flow of `trigger-<key>`: the scenario is the number dialled, no menu (a real
        alert: drills go through the main number). The confirmation names it, so a wrong
        number is caught before anything starts."""

        async def run(session: AgiSession) -> None:
            await self._run(session, scenario)

        return run

    async def _run(self, session: AgiSession, preset: Scenario | None) -> None:
        call = await self.context.start(session, "trigger")
        who = await authenticate(call)
        if who is None:
            return
        picked = (preset, False) if preset is not None else await self._pick_scenario(call)
        if picked is None:
            await call.play(call.p("cancelled"))
            return
        scenario, drill = picked
        people = await RosterStore(self.context.redis).load()
        count = len(select(people, scenario.campaign(drill=drill, recordings={})))
        about = speech.launch_summary(scenario.label(call.language), count, call.language, drill)
        about_file = await call.say(about)
        if count == 0:
            await call.play(f"{about_file}&{call.p('cancelled')}")
            return
        recordings = await self._confirm(call, about_file)
        if recordings is None:
            await call.play(call.p("cancelled"))
            return
        spec = scenario.campaign(drill=drill, recordings=recordings)
        # Called back when its quotas are met or it ends: this phone, and the scenario's numbers.
        recall = scenario.recall.meta(call.session.caller_id, who)
        sms = self.context.config.sms_ready
        if not await call.vouched(f"campaign start ({who}, scenario {scenario.key})"):
            return  # a site cut off with a stale primary: it would be dropped unseen
        details = {
            "scenario": scenario.key,
            "name": scenario.name,
            "drill": drill,
            "recorded": bool(recordings),
            "caller": call.session.caller_id,
            "staff": count,
            "line": session.script,
            "call_back": json.loads(recall)["numbers"] if recall else [],
        }

        async def launch() -> str:
            # Whole, even if the director hangs up meanwhile: they pressed 1.
            cid = await store.create(self.context.redis, spec, people, sms=sms, recall=recall)
            await audit.record(
                self.context.redis, f"phone:{who}", "campaign.start", target=cid, details=details
            )
            log.info("campaign %s started by phone (%s, scenario %s)", cid, who, scenario.key)
            return cid

        cid = await call.meanwhile(launch())
        logs.bind(campaign_id=cid)  # this call's own task (ivr.pbx.agi)
        said = await call.say(speech.launched(cid, call.language))
        call.step("launched")
        await call.play(f"{said}&{said}&{call.p('goodbye')}")

    async def _confirm(self, call: LineCall, about_file: str) -> dict[str, str] | None:
        """One prompt: what will start, "1 to launch, 2 to record your own message first".
        {} to launch with the prepared message, {language: file} with a recording; None: no.
        (The record offer used to be a step of its own: 6 s more for every director.)"""
        recordings: dict[str, str] = {}
        while True:
            confirm = "launch_confirm_recorded" if recordings else "launch_confirm"
            key = await call.menu(f"{about_file}&{call.p(confirm)}", "12", "confirm")
            if key == "1":
                return recordings
            if key is None:
                return None
            recorded = await self._record_and_review(call)
            if recorded is None:
                return None
            recordings = recorded

    async def _pick_scenario(self, call: LineCall) -> tuple[Scenario, bool] | None:
        by_key = {s.key: s for s in self.context.scenarios}
        choices = [(s.key, s.label(call.language)) for s in self.context.scenarios]
        drill = False
        menu = await call.say(speech.scenario_menu(choices, call.language, drill_key=DRILL_KEY))
        while True:
            keys = "".join(by_key) + ("" if drill else DRILL_KEY)
            key = await call.menu(menu, keys, "scenario")
            if key is None:
                return None
            if key == DRILL_KEY:
                drill = True
                await call.play(call.p("drill_on"))
                menu = await call.say(speech.scenario_menu(choices, call.language))
                continue
            return by_key[key], drill

    async def _record_and_review(self, call: LineCall) -> dict[str, str] | None:
        """Record, listen, re-record, accept: {language: file}; None: gave up."""
        while True:
            recorded = await self._record(call)
            if recorded is None:
                return None
            while True:
                key = await call.menu(call.p("record_review"), "123", "review")
                if key == "1":
                    await call.play(f"{call.p('your_message')}&{recorded[1]}")
                    continue
                break
            if key == "3":
                # The director's own words carry the news: every language hears them.
                return dict.fromkeys(("fr", "en"), recorded[0])
            if key is None:
                return None

    async def _record(self, call: LineCall) -> tuple[str, str] | None:
        """Record until it is long enough; (path under the audio dir, file Asterisk plays)."""
        incoming = self.context.config.audio_dir / "incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        for _ in range(TRIES):
            name = f"rec-{secrets.token_hex(8)}"
            local = incoming / f"{name}.wav"
            # Our own beep, then the step: the recording starts the moment it is announced.
            await call.play(f"{call.p('record_start')}&beep")
            call.step("record")
            try:
                # In the try: a caller hanging up mid-message leaves no half recording behind.
                await call.session.record(
                    self.context.config.asterisk_path(incoming / name),
                    max_seconds=RECORD_MAX,
                    silence=RECORD_SILENCE,
                )
                if wav_duration(local) >= RECORD_MIN_SECONDS:
                    stored = await self.context.speaker.import_audio(local)
                    relative = stored.relative_to(self.context.config.audio_dir)
                    return str(relative), self.context.config.asterisk_path(stored.with_suffix(""))
            except AgiHangup:
                raise
            except (OSError, AgiError) as exc:
                log.warning("recording %s unusable: %s", local, exc)
            except Exception as exc:  # not a WAV, or silent: the TTS checks refuse it
                log.info("recording %s refused: %s", local, exc)
            finally:
                local.unlink(missing_ok=True)
            await call.play(call.p("record_short"))
        return None
