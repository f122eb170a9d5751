"""The phone lines: the director's trigger line, the report and control line, the callback line.

Each line is a flow run by the FastAGI server (`ivr.agi`) when Asterisk hands it a call
(dialplan `ivr/dialplans/ivr-lines.conf`). Everything is keyed on a telephone keypad and every
key is answered by voice; star repeats, a wrong key says so and asks again, silence asks again
and then ends the call. Nothing changes until the last confirmation: a caller who hangs up at
any step leaves no half-started campaign.

- trigger: PIN -> scenario (9 first: a drill) -> optional message in the director's own voice
  (record, listen, re-record, accept) -> "N staff will be called, press 1" -> the campaign
  starts and its number is spoken.
- report: PIN -> a spoken summary of the running campaign (fresh counts each time) -> 1 repeat,
  2 stop, 3 raise a quota (people the old quota cancelled are called again) or extend the alert
  to its next group, 4 join the crisis-cell conference.
- callback: the caller is found by caller id in recent campaigns (or keys their staff number);
  they hear the alert and answer 1/2 (+ arrival minutes) as on an alert call; the answer
  counts once, in the same campaign.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

from redis.asyncio import Redis

from ivr.access import audit
from ivr.campaign import store
from ivr.campaign.scenarios import DRILL_KEY, Scenario, load_role_labels, load_scenarios
from ivr.config import Config
from ivr.lines.call import DIGITS_WAIT, KEY_WAIT, TRIES, LineCall, Observer
from ivr.lines.callback import CallbackLine
from ivr.lines.report import ReportLine
from ivr.pbx.agi import AgiError, AgiHangup, AgiServer, AgiSession
from ivr.staff.roster import RosterStore
from ivr.voice import speech
from ivr.voice.prompts import build_prompts
from ivr.voice.tts import Speaker, wav_duration

log = logging.getLogger(__name__)

#: A recorded message: its longest, and seconds of silence that end it; shorter is refused.
RECORD_MAX = 90
RECORD_SILENCE = 4
RECORD_MIN_SECONDS = 1.0

__all__ = ["DIGITS_WAIT", "KEY_WAIT", "Lines", "Observer", "serving"]


class Lines(ReportLine, CallbackLine):
    """The three lines, for the FastAGI server: `handlers()` maps script names to flows.

    The trigger flow is here; the report line is `ivr.reportline`, the callback line
    `ivr.callbackline`, what they share `ivr.linecall`.
    """

    def handlers(self) -> dict[str, Callable[[AgiSession], Any]]:
        return {"trigger": self.trigger, "report": self.report, "callback": self.callback}

    async def warm_up(self, languages: tuple[str, ...] = ("fr", "en")) -> None:
        """Render the prompts and the scenario menus now, not during the director's call: keys
        pressed while the service renders a sentence are lost (AGI discards them)."""
        for language in languages:
            await build_prompts(self.speaker, language)
            choices = [(s.key, s.label(language)) for s in self.scenarios]
            for drill_key in (DRILL_KEY, None):
                text = speech.scenario_menu(choices, language, drill_key=drill_key)
                await self.speaker.render(text, language)

    async def trigger(self, session: AgiSession) -> None:
        call = await self._start(session, "trigger")
        who = await self._authenticate(call)
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
        people = await RosterStore(self.redis).load()
        spec = scenario.campaign(drill=drill, recordings=recordings)
        count = len(store.select(people, spec))
        count_file = await call.say(speech.staff_to_call(count, call.language))
        if count == 0:
            await call.play(f"{count_file}&{call.p('cancelled')}")
            return
        key = await call.menu(f"{count_file}&{call.p('launch_confirm')}", "12", "confirm")
        if key != "1":
            await call.play(call.p("cancelled"))
            return
        cid = await store.create(self.redis, spec, people)
        await audit.record(
            self.redis,
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
        by_key = {s.key: s for s in self.scenarios}
        choices = [(s.key, s.label(call.language)) for s in self.scenarios]
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
        incoming = self.config.audio_dir / "incoming"
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
                    self.config.asterisk_path(incoming / name),
                    max_seconds=RECORD_MAX,
                    silence=RECORD_SILENCE,
                )
                if wav_duration(local) >= RECORD_MIN_SECONDS:
                    stored = await self.speaker.import_audio(local)
                    relative = stored.relative_to(self.config.audio_dir)
                    return str(relative), self.config.asterisk_path(stored.with_suffix(""))
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


@contextlib.asynccontextmanager
async def serving(config: Config, redis: Redis, speaker: Speaker) -> AsyncIterator[AgiServer]:
    """Serve the lines on IVR_AGI_HOST:IVR_AGI_PORT while the block runs."""
    scenarios = load_scenarios(config.scenarios)
    labels = load_role_labels(config.scenarios)
    lines = Lines(config, redis, speaker, scenarios, role_labels=labels)
    await lines.warm_up()
    server = AgiServer(lines.handlers(), config.agi_host, config.agi_port)
    await server.start()
    try:
        yield server
    finally:
        await server.close()
