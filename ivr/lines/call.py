"""What the phone lines share: one caller's call (prompts, menus, digits) and the context every
line works in (configuration, stores, speech, the fixed prompts).

Every key is answered by voice: star repeats a menu, a wrong key says so and asks again,
silence asks again, and after TRIES misses the call ends politely.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from redis.asyncio import Redis

from ivr.access.pins import PinStore
from ivr.campaign.scenarios import Scenario
from ivr.campaign.scheduler import Scheduler
from ivr.config import Config
from ivr.pbx.agi import AgiHangup, AgiSession
from ivr.replication import primary_vouched
from ivr.voice.prompts import build_prompts
from ivr.voice.tts import Speaker

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Times a menu is offered before the call ends for lack of an answer.
TRIES = 3
#: Seconds to wait for a menu key, and for a PIN or a number.
KEY_WAIT = 6.0
DIGITS_WAIT = 10.0
#: Seconds of silence a caller may hear while the service waits (on Redis during a failover:
#: up to 20 s) before "one moment, please", said again until it is done.
HOLD_AFTER = 1.0
#: Keys read for a PIN or a number: more than any valid one, so a long string is one attempt.
MAX_DIGITS = 32
#: Why a line refuses a change (ivr.replication.primary_vouched): the Sentinels' majority does
#: not name the Redis primary it reaches.
NOT_VOUCHED = (
    "most Redis Sentinels do not name the primary this site reaches (this site may be cut "
    "off from the others): a change written there would be lost"
)
#: Observer of the flows (tests, benchmarks): called with (line, step, session) before each
#: wait for keys, with (line, "say:<text>", session) for each dynamic sentence spoken, and with
#: (line, "hold", session) before each "one moment, please".
Observer = Callable[[str, str, AgiSession], None]


@dataclass
class LineCall:
    """One caller on one line: the prompts in their language, the keys they press."""

    context: LineContext
    session: AgiSession
    line: str
    language: str
    prompts: str = ""
    steps: list[str] = field(default_factory=list)
    #: Every answer keyed at a menu or for digits, in order.
    keys: list[str] = field(default_factory=list)

    def p(self, *names: str) -> str:
        """Fixed prompts, as files Asterisk plays."""
        return "&".join(f"{self.prompts}/{name}" for name in names)

    async def say(self, text: str, language: str | None = None) -> str:
        """Dynamic text (a count, a campaign number), rendered in the caller's language (or
        `language`) and cached; its file."""
        if self.context.observer is not None:
            self.context.observer(self.line, f"say:{text}", self.session)
        return await self.context.voice(text, language or self.language)

    async def play(self, files: str) -> None:
        await self.session.play(files, keys="")

    async def meanwhile(self, work: Awaitable[T]) -> T:
        """`work`'s result; if it takes more than HOLD_AFTER s (Redis failing over, Sentinels
        asked), the caller hears "one moment, please" until it is done, not silence. Keys
        pressed meanwhile wait for the next question (typed ahead)."""
        task = asyncio.ensure_future(work)
        await asyncio.wait({task}, timeout=HOLD_AFTER)
        try:
            while not task.done():
                if self.context.observer is not None:
                    self.context.observer(self.line, "hold", self.session)
                await self.play(self.p("one_moment"))
        except AgiHangup:
            await task  # what the caller asked for goes through, as if they had stayed
            raise
        return task.result()

    async def vouched(self, change: str) -> bool:
        """Whether `change` may be written now (`ivr.replication.primary_vouched`); if not, the
        caller hears that it cannot be done (the error prompt, which says goodbye) and the
        reason is logged: the flow must end."""
        if await self.meanwhile(primary_vouched(self.context.redis)):
            return True
        log.warning("%s refused on the %s line: %s", change, self.line, NOT_VOUCHED)
        await self.play(self.p("error"))
        return False

    def step(self, name: str) -> None:
        self.steps.append(name)
        if self.context.observer is not None:
            self.context.observer(self.line, name, self.session)

    async def menu(self, files: str, keys: str, step: str) -> str | None:
        """Offer a one-key menu; star repeats it. The key pressed, or None after TRIES."""
        tries = 0
        while tries < TRIES:
            self.step(step)
            got = await self.session.read(files, timeout=self.context.key_wait, max_digits=1)
            if got:
                self.keys.append(got)
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
                files, timeout=self.context.digits_wait, max_digits=MAX_DIGITS
            )
            if got is None:
                continue
            self.keys.append(got)
            if got.isdigit() and accept(got):
                return got
            await self.play(self.p("not_understood"))
        return None


class LineContext:
    """What the three lines share: configuration, stores, speech and the fixed prompts. One
    per server; each line holds it (`TriggerLine(context)`...)."""

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

    async def voice(self, text: str, language: str) -> str:
        """`text` spoken in `language`, as a file Asterisk plays (rendered once, cached)."""
        wav = await self.speaker.render(text, language)
        return self.config.asterisk_path(wav.with_suffix(""))

    async def prompts(self, language: str) -> str:
        """The directory of the fixed prompts in `language`, as Asterisk sees it (built once)."""
        if language not in self._prompts:
            directory = await build_prompts(self.speaker, language)
            self._prompts[language] = self.config.asterisk_path(directory)
        return self._prompts[language]

    async def start(self, session: AgiSession, line: str, language: str | None = None) -> LineCall:
        language = language or self.config.language
        call = LineCall(self, session, line, language, await self.prompts(language))
        await session.answer()
        # The dialplan plays our error prompt if the flow fails after this point.
        await session.set_variable("IVR_PROMPTS", call.prompts)
        return call
