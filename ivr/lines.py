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
  2 stop, 3 raise a quota (people the old quota cancelled are called again), 4 join the
  crisis-cell conference.
- callback: the caller is found by caller id in recent campaigns (or keys their staff number);
  they hear the alert and answer 1/2 (+ arrival minutes) as on an alert call; the answer
  counts once, in the same campaign.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import time
import wave
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from redis.asyncio import Redis

from ivr import audit, campaignops, campaigns, constants, speech
from ivr.agi import AgiError, AgiServer, AgiSession
from ivr.campaigns import CRISIS_TAG
from ivr.config import Config
from ivr.constants import campaign_key
from ivr.pins import PinStore
from ivr.roster import RosterStore
from ivr.scenarios import DRILL_KEY, Scenario, load_role_labels, load_scenarios
from ivr.scheduler import Scheduler
from ivr.tts import Speaker
from ivr.voiceprompts import build_prompts

log = logging.getLogger(__name__)

#: Times a menu is offered before the call ends for lack of an answer.
TRIES = 3
#: Seconds to wait for a menu key, and for a PIN or a number.
KEY_WAIT = 6.0
DIGITS_WAIT = 10.0
#: Keys read for a PIN or a number: more than any valid one, so a long string is one attempt.
MAX_DIGITS = 32
#: A recorded message: its longest, and seconds of silence that end it; shorter is refused.
RECORD_MAX = 90
RECORD_SILENCE = 4
RECORD_MIN_SECONDS = 1.0
#: Observer of the flows (tests, logs): called with (line, step) before each wait for keys,
#: and with (line, "say:<text>") for each dynamic sentence spoken.
Observer = Callable[[str, str], None]


@dataclass
class _Call:
    """One caller on one line: the prompts in their language, the keys they press."""

    lines: Lines
    session: AgiSession
    line: str
    language: str
    prompts: str = ""
    steps: list[str] = field(default_factory=list)

    def p(self, *names: str) -> str:
        """Fixed prompts, as files Asterisk plays."""
        return "&".join(f"{self.prompts}/{name}" for name in names)

    async def say(self, text: str) -> str:
        """Dynamic text (a count, a campaign number), rendered and cached; its file."""
        if self.lines.observer is not None:
            self.lines.observer(self.line, f"say:{text}")
        return await self.lines.voice(text, self.language)

    async def play(self, files: str) -> None:
        await self.session.play(files, keys="")

    def step(self, name: str) -> None:
        self.steps.append(name)
        if self.lines.observer is not None:
            self.lines.observer(self.line, name)

    async def menu(self, files: str, keys: str, step: str) -> str | None:
        """Offer a one-key menu; star repeats it. The key pressed, or None after TRIES."""
        tries = 0
        while tries < TRIES:
            self.step(step)
            got = await self.session.read(files, timeout=self.lines.key_wait, max_digits=1)
            if got == "*":
                continue
            if got and got in keys:
                return got
            tries += 1
            if got is None:
                continue
            await self.play(self.p("invalid" if got else "not_understood"))
        return None

    async def digits(self, files: str, step: str, *, accept: Callable[[str], bool]) -> str | None:
        """Read digits ended by '#', checked by `accept`; None after TRIES."""
        for _ in range(TRIES):
            self.step(step)
            got = await self.session.read(
                files, timeout=self.lines.digits_wait, max_digits=MAX_DIGITS
            )
            if got is None:
                continue
            if got.isdigit() and accept(got):
                return got
            await self.play(self.p("not_understood"))
        return None


class Lines:
    """The three lines, for the FastAGI server: `handlers()` maps script names to flows."""

    def __init__(
        self,
        config: Config,
        redis: Redis,
        speaker: Speaker,
        scenarios: list[Scenario],
        *,
        role_labels: dict[str, dict[str, str]] | None = None,
        observer: Observer | None = None,
        key_wait: float = KEY_WAIT,
        digits_wait: float = DIGITS_WAIT,
    ) -> None:
        self.config = config
        self.key_wait = key_wait
        self.digits_wait = digits_wait
        self.redis = redis
        self.speaker = speaker
        self.scenarios = scenarios
        self.role_labels = role_labels or {}
        self.observer = observer
        self.pins = PinStore(redis, lockout=config.pin_lockout)
        self.scheduler = Scheduler(redis)
        self._prompts: dict[str, str] = {}

    def handlers(self) -> dict[str, Callable[[AgiSession], Any]]:
        return {"trigger": self.trigger, "report": self.report, "callback": self.callback}

    async def voice(self, text: str, language: str) -> str:
        wav = await self.speaker.render(text, language)
        return self.config.asterisk_path(wav.with_suffix(""))

    async def _start(self, session: AgiSession, line: str, language: str | None = None) -> _Call:
        language = language or self.config.language
        if language not in self._prompts:
            directory = await build_prompts(self.speaker, language)
            self._prompts[language] = self.config.asterisk_path(directory)
        call = _Call(self, session, line, language, self._prompts[language])
        await session.answer()
        # The dialplan plays our error prompt if the flow fails after this point.
        await session.set_variable("IVR_PROMPTS", call.prompts)
        return call

    # -- PIN ------------------------------------------------------------------------------

    async def _authenticate(self, call: _Call) -> str | None:
        """The staff id behind a right PIN, or None when the call must end (it was told why)."""
        caller = call.session.caller_id
        allowed = self.config.trigger_callers
        if allowed and caller not in allowed:
            await audit.record(self.redis, f"phone:{caller or 'anonymous'}", "line.refused",
                               target=call.line)  # fmt: skip
            await call.play(call.p("not_allowed"))
            return None
        if await self.pins.locked_for(caller):
            await call.play(call.p("locked"))
            return None
        intro = call.p(f"line_{call.line}")
        silent = 0
        while silent < TRIES:
            call.step("pin")
            pin = await call.session.read(
                f"{intro}&{call.p('pin_enter')}" if intro else call.p("pin_enter"),
                timeout=self.digits_wait,
                max_digits=MAX_DIGITS,
            )
            intro = ""
            if not pin:
                silent += 1
                if pin == "":
                    await call.play(call.p("not_understood"))
                continue
            check = await self.pins.check(pin, caller, line=call.line)
            if check.person is not None:
                return check.person
            if check.locked_for:
                await call.play(call.p("pin_wrong", "locked"))
                return None
            await call.play(call.p("pin_wrong"))
        await call.play(call.p("goodbye"))
        return None

    # -- trigger line ---------------------------------------------------------------------

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
        count = len(campaigns.select(people, spec))
        count_file = await call.say(speech.staff_to_call(count, call.language))
        if count == 0:
            await call.play(f"{count_file}&{call.p('cancelled')}")
            return
        key = await call.menu(f"{count_file}&{call.p('launch_confirm')}", "12", "confirm")
        if key != "1":
            await call.play(call.p("cancelled"))
            return
        cid = await campaigns.create(self.redis, spec, people)
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

    async def _pick_scenario(self, call: _Call) -> tuple[Scenario, bool] | None:
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

    async def _maybe_record(self, call: _Call) -> dict[str, str] | None:
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

    async def _record(self, call: _Call) -> tuple[str, str] | None:
        """Record until it is long enough; (path under the audio dir, file Asterisk plays)."""
        incoming = self.config.audio_dir / "incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        for _ in range(TRIES):
            name = f"rec-{secrets.token_hex(8)}"
            local = incoming / f"{name}.wav"
            await call.play(call.p("record_start"))
            call.step("record")
            await call.session.record(
                self.config.asterisk_path(incoming / name),
                max_seconds=RECORD_MAX,
                silence=RECORD_SILENCE,
            )
            try:
                if _seconds(local) >= RECORD_MIN_SECONDS:
                    stored = await self.speaker.import_audio(local)
                    relative = stored.relative_to(self.config.audio_dir)
                    return str(relative), self.config.asterisk_path(stored.with_suffix(""))
            except (OSError, wave.Error, AgiError) as exc:
                log.warning("recording %s unusable: %s", local, exc)
            except Exception as exc:  # a silent recording fails the TTS checks
                log.info("recording %s refused: %s", local, exc)
            finally:
                local.unlink(missing_ok=True)
            await call.play(call.p("record_short"))
        return None

    # -- report and control line ----------------------------------------------------------

    async def report(self, session: AgiSession) -> None:
        call = await self._start(session, "report")
        who = await self._authenticate(call)
        if who is None:
            return
        cid = await self._pick_campaign(call)
        if cid is None:
            await call.play(call.p("no_campaign"))
            key = await call.menu(call.p("report_menu_idle"), "4", "idle")
            if key == "4":
                await self._conference(call, who)
            return
        while True:
            report = await campaigns.report(self.redis, cid)
            summary = await call.say(
                speech.summary(
                    report, call.language, now=time.time(), role_labels=self._labels(call.language)
                )
            )
            key = await call.menu(f"{summary}&{call.p('report_menu')}", "1234", "report")
            if key is None:
                await call.play(call.p("goodbye"))
                return
            if key == "2":
                if await self._stop(call, who, cid):
                    return
            elif key == "3":
                await self._raise_quota(call, who, cid, report)
            elif key == "4":
                await self._conference(call, who)
                return

    def _labels(self, language: str) -> dict[str, str]:
        return self.role_labels.get(language, {})

    async def _pick_campaign(self, call: _Call) -> str | None:
        active = await campaigns.active(self.redis)
        if not active:
            return None
        if len(active) == 1:
            return active[0]
        newest = list(reversed(active))[:9]
        names = [
            (cid, (await campaigns.get_meta(self.redis, cid)).get("name", "")) for cid in newest
        ]
        menu = await call.say(speech.campaign_choice(names, call.language))
        key = await call.menu(menu, "".join(str(i) for i in range(1, len(names) + 1)), "campaign")
        return None if key is None else names[int(key) - 1][0]

    async def _stop(self, call: _Call, who: str, cid: str) -> bool:
        key = await call.menu(call.p("stop_confirm"), "12", "stop_confirm")
        if key != "1":
            await call.play(call.p("not_stopped"))
            return False
        status = await campaigns.stop(self.redis, cid)
        details = {"caller": call.session.caller_id, "status": status}
        await audit.record(self.redis, f"phone:{who}", "campaign.stop", target=cid, details=details)
        said = await call.say(speech.stopped(cid, call.language))
        await call.play(f"{said}&{call.p('goodbye')}")
        return True

    async def _raise_quota(self, call: _Call, who: str, cid: str, report: dict[str, Any]) -> None:
        roles = [r for r, entry in report["by_role"].items() if entry.get("quota")]
        if not roles:
            await call.play(call.p("no_quota_roles"))
            return
        role = roles[0]
        labels = self._labels(call.language)
        if len(roles) > 1:
            roles = roles[:9]
            choices = [(str(i + 1), labels.get(r, r)) for i, r in enumerate(roles)]
            menu = await call.say(speech.role_menu(choices, call.language))
            key = await call.menu(menu, "".join(k for k, _ in choices), "quota_role")
            if key is None:
                return
            role = roles[int(key) - 1]
        current = int(report["by_role"][role]["quota"])
        asked = await call.say(speech.quota_now(labels.get(role, role), current, call.language))
        got = await call.digits(
            f"{asked}&{call.p('quota_enter')}", "quota", accept=lambda d: 0 < int(d) <= 100_000
        )
        if got is None:
            return
        if int(got) <= current:
            await call.play(call.p("quota_too_low"))
            return
        try:
            await campaignops.raise_quota(self.redis, cid, role, int(got))
        except campaigns.CampaignError as exc:
            log.warning("quota not raised by phone: %s", exc)
            await call.play(call.p("not_understood"))
            return
        await audit.record(self.redis, f"phone:{who}", "campaign.quota", target=cid,
                           details={"role": role, "quota": int(got), "old": current})  # fmt: skip
        said = await call.say(speech.quota_now(labels.get(role, role), int(got), call.language))
        await call.play(said)

    async def _conference(self, call: _Call, who: str) -> None:
        await audit.record(self.redis, f"phone:{who}", "conference.join", target="crisis")
        await call.play(call.p("conference"))
        await call.session.set_variable("IVR_NEXT", "conf")

    # -- callback line --------------------------------------------------------------------

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
        ids = cast(list[str], await self.redis.zrevrange(constants.campaigns_key, 0, 49))
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
            pid = await campaigns.find_by_number(self.redis, cid, caller)
            if pid is not None:
                hits.append((cid, pid))
        return await self._best(hits)

    async def _find_by_staff_number(self, call: _Call, recent: list[str]) -> tuple[str, str] | None:
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

    async def _answer(self, call: _Call, cid: str, pid: str, record: dict[str, Any]) -> None:
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
        message = await self._message(call, cid)
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
            await self.redis.publish(constants.wake_channel, f"quota {cid} {role}")
        if outcome == "unavailable":
            await call.play(call.p("confirm_no"))
            return
        await call.play(call.p("confirm_yes"))
        meta = await campaigns.get_meta(self.redis, cid)
        if json.loads(meta["spec"]).get("ask_eta", True):
            call.step("eta")
            minutes = await call.session.read(call.p("eta"), timeout=self.key_wait, max_digits=3)
            if minutes and minutes.isdigit():
                now = int(time.time() * 1000)
                await self.scheduler.record_eta(cid, pid, int(minutes), now, role)
                await call.play(call.p("eta_recorded"))
        if CRISIS_TAG in record.get("t", ()):
            await call.play(call.p("conference"))
            await call.session.set_variable("IVR_NEXT", "member")

    async def _message(self, call: _Call, cid: str) -> str:
        """The campaign's message in the caller's language, as the alert call plays it."""
        meta = await campaigns.get_meta(self.redis, cid)
        spec = json.loads(meta["spec"])
        recordings: dict[str, str] = spec.get("recordings") or {}
        texts: dict[str, str] = spec.get("messages") or {}
        if call.language in recordings:
            local = self.config.audio_dir / recordings[call.language]
            message = self.config.asterisk_path(local.with_suffix(""))
        else:
            text = texts.get(call.language) or texts.get("fr") or next(iter(texts.values()))
            message = await call.say(text)
        if spec.get("drill"):
            message = f"{call.p('drill')}&{message}&{call.p('drill')}"
        return message


@contextlib.asynccontextmanager
async def serving(config: Config, redis: Redis, speaker: Speaker) -> AsyncIterator[AgiServer]:
    """Serve the lines on IVR_AGI_HOST:IVR_AGI_PORT while the block runs."""
    scenarios = load_scenarios(config.scenarios)
    labels = load_role_labels(config.scenarios)
    lines = Lines(config, redis, speaker, scenarios, role_labels=labels)
    server = AgiServer(lines.handlers(), config.agi_host, config.agi_port)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


def _seconds(path: Path) -> float:
    with wave.open(str(path)) as wav:
        return float(wav.getnframes() / wav.getframerate())
