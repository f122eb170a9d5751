"""The director's trigger line: PIN -> scenario (9 first: a drill) -> optional message in the
director's own voice (record, listen, re-record, accept) -> "N staff will be called, press 1"
-> the campaign starts and its number is spoken. Nothing is created before the last "press 1":
a caller who hangs up at any step leaves no half-started campaign.
"""

from __future__ import annotations

import logging
import secrets

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
    """The `trigger` flow."""

    def __init__(self, context: LineContext) -> None:
        self.context = context

    async def __call__(self, session: AgiSession) -> None:
        call = await self.context.start(session, "trigger")
        who = await authenticate(call)
        if who is None:
            return
        picked = await self._pick_scenario(call)
        if picked is None:
            await call.play(call.p("cancelled"))
            return
        scenario, drill = picked
        recordings = await self._maybe_record(call)
        if recordings is None:
            await call.play(call.p("cancelled"))
            return
        people = await RosterStore(self.context.redis).load()
        spec = scenario.campaign(drill=drill, recordings=recordings)
        count = len(select(people, spec))
        count_file = await call.say(speech.staff_to_call(count, call.language))
        if count == 0:
            await call.play(f"{count_file}&{call.p('cancelled')}")
            return
        key = await call.menu(f"{count_file}&{call.p('launch_confirm')}", "12", "confirm")
        if key != "1":
            await call.play(call.p("cancelled"))
            return
        cid = await store.create(self.context.redis, spec, people)
        logs.bind(campaign_id=cid)  # this call's own task (ivr.pbx.agi)
        await audit.record(
            self.context.redis,
            f"phone:{who}",
            "campaign.start",
            target=cid,
            details={
                "scenario": scenario.key,
                "name": scenario.name,
                "drill": drill,
                "recorded": bool(recordings),
                "caller": call.session.caller_id,
                "staff": count,
            },
        )
        log.info("campaign %s started by phone (%s, scenario %s)", cid, who, scenario.key)
        said = await call.say(speech.launched(cid, call.language))
        call.step("launched")
        await call.play(f"{said}&{said}&{call.p('goodbye')}")

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

    async def _maybe_record(self, call: LineCall) -> dict[str, str] | None:
        """{} for the prepared message, {language: file} for a recording; None: give up."""
        key = await call.menu(call.p("record_offer"), "12", "record_offer")
        if key is None:
            return None
        if key == "2":
            return {}
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
