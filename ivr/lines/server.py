"""The phone lines: the director's trigger line, the report and control line, the callback line.

Each line is a flow run by the FastAGI server (`ivr.pbx.agi`) when Asterisk hands it a call
(dialplan `ivr/dialplans/ivr-lines.conf`). Everything is keyed on a telephone keypad and every
key is answered by voice; star repeats, a wrong key says so and asks again, silence asks again
and then ends the call. Nothing changes until the last confirmation: a caller who hangs up at
any step leaves no half-started campaign.

- trigger: PIN -> scenario (9 first: a drill) -> "<scenario>: N staff will be called; 1 to
  launch, 2 to record your own message first" -> the campaign starts and its number is
  spoken. trigger-<key>: the same for scenario <key>, without the scenario menu.
- report: PIN -> a spoken summary of the running campaign (fresh counts each time) -> 1 repeat,
  2 stop, 3 raise a quota (people the old quota cancelled are called again) or extend the alert
  to its next group, 4 join the crisis-cell conference.
- callback: the caller is found by caller id in recent campaigns (or keys their staff number);
  they hear the alert and answer 1/2 (+ arrival minutes) as on an alert call; the answer
  counts once, in the same campaign.
- recall: not a number anyone dials: the director's call-back, placed by the service when a
  campaign started by phone meets every quota or ends -> why it calls, then the report line's
  summary and menu (the PIN asked before any key but 1).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from redis.asyncio import Redis

from ivr.campaign.scenarios import DRILL_KEY, load_role_labels, load_scenarios
from ivr.config import Config
from ivr.errors import ConfigError
from ivr.lines.call import DIGITS_WAIT, KEY_WAIT, LineContext, Observer
from ivr.lines.callback import CallbackLine
from ivr.lines.recall import RecallLine
from ivr.lines.report import ReportLine
from ivr.lines.trigger import TriggerLine
from ivr.pbx.agi import AgiSession
from ivr.pbx.agiserver import AgiServer
from ivr.pbx.ami import AmiLink
from ivr.pbx.keys import KeyEvents
from ivr.voice import speech
from ivr.voice.tts import Speaker

log = logging.getLogger(__name__)

__all__ = ["DIGITS_WAIT", "KEY_WAIT", "Lines", "Observer", "serving"]


class Lines:
    """The lines over one shared context, for the FastAGI server: `handlers()` maps the
    dialplan's script names to the flows (`ivr.lines.trigger`, `ivr.lines.report`,
    `ivr.lines.callback`, `ivr.lines.recall`)."""

    def __init__(self, context: LineContext) -> None:
        self.context = context
        self.trigger = TriggerLine(self.context)
        self.report = ReportLine(self.context)
        self.callback = CallbackLine(self.context)
        self.recall = RecallLine(self.context, self.report)

    def handlers(self) -> dict[str, Callable[[AgiSession], Awaitable[None]]]:
        shortcuts = {f"trigger-{s.key}": self.trigger.shortcut(s) for s in self.context.scenarios}
        return {
            "trigger": self.trigger,
            **shortcuts,
            "report": self.report,
            "callback": self.callback,
            "recall": self.recall,
        }

    async def warm_up(self, languages: tuple[str, ...] = ("fr", "en")) -> None:
        """Render the prompts and the scenario menus now, not during the director's first call
        (some seconds of speech synthesis before the line could answer)."""
        for language in languages:
            await self.context.prompts(language)
            choices = [(s.key, s.label(language)) for s in self.context.scenarios]
            for drill_key in (DRILL_KEY, None):
                text = speech.scenario_menu(choices, language, drill_key=drill_key)
                await self.context.speaker.render(text, language)


@contextlib.asynccontextmanager
async def serving(
    config: Config, redis: Redis, speaker: Speaker, link: AmiLink | None = None
) -> AsyncIterator[AgiServer]:
    """Serve the lines on IVR_AGI_HOST:IVR_AGI_PORT while the block runs; with the AMI link
    of the same Asterisk, the callers' keys come from its events (ivr.pbx.keys)."""
    scenarios = load_scenarios(config.scenarios)
    labels = load_role_labels(config.scenarios)
    lines = Lines(LineContext(config, redis, speaker, scenarios, role_labels=labels))
    await lines.warm_up()
    keys = KeyEvents(link) if link is not None else None
    server = AgiServer(lines.handlers(), config.agi_host, config.agi_port, keys=keys)
    try:
        await server.start()
    except OSError as exc:
        raise ConfigError(
            f"IVR_AGI_HOST/IVR_AGI_PORT: cannot serve the phone lines on {config.agi_host}:"
            f"{config.agi_port}: {exc.strerror or exc} (another worker there? --no-lines)"
        ) from None
    try:
        yield server
    finally:
        await server.close()
