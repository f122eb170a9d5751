"""The alert service's parts wired together: speech, the AMI link, and the caller.

`Alerter` is what the workers, `ivr call`, `ivr selftest` and the demo use to place alert calls:
it renders the message once (cached), makes sure the fixed prompts exist in each language used,
and places calls through the configured Asterisk.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from ivr.config import Config
from ivr.errors import ConfigError
from ivr.pbx.ami import AmiLink
from ivr.pbx.calls import Caller, CallRequest, CallResult, OutcomeHandler, new_attempt_id
from ivr.voice.prompts import build_prompts
from ivr.voice.tts import Speaker


class Alerter:
    """Speech + AMI link + Caller for one Asterisk, as an async context manager."""

    def __init__(self, config: Config, *, link: AmiLink | None = None) -> None:
        self.config = config
        self.link = link or AmiLink.for_config(config)
        self.speaker = Speaker(config.audio_dir, rate=config.tts_rate, timeout=config.tts_timeout)
        self.caller = Caller(self.link, config.dial_template)
        self._prompts: dict[str, str] = {}
        self._prompt_lock = asyncio.Lock()

    async def __aenter__(self) -> Alerter:
        try:
            self.config.audio_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"IVR_AUDIO_DIR: cannot create {self.config.audio_dir}: {exc.strerror}"
            ) from exc
        try:
            await self.link.start()
        except BaseException:
            await self.speaker.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.link.close()
        await self.speaker.close()

    async def prompts(self, language: str) -> str:
        """The fixed prompts' directory for `language`, as Asterisk sees it (built once)."""
        async with self._prompt_lock:
            if language not in self._prompts:
                directory = await build_prompts(self.speaker, language)
                self._prompts[language] = self.config.asterisk_path(directory)
            return self._prompts[language]

    async def message(self, text: str, language: str) -> str:
        """The spoken message for `text`, as a path Asterisk plays (no extension)."""
        wav = await self.speaker.render(text, language)
        return self.config.asterisk_path(wav.with_suffix(""))

    async def request(
        self,
        number: str,
        text: str,
        *,
        language: str | None = None,
        attempt_id: str | None = None,
        variables: dict[str, str] | None = None,
    ) -> CallRequest:
        """Everything needed to call `number` with `text`, audio rendered."""
        language = language or self.config.language
        return CallRequest(
            number=number,
            message=await self.message(text, language),
            prompts=await self.prompts(language),
            ring_timeout=self.config.ring_timeout,
            caller_id=self.config.caller_id,
            attempt_id=attempt_id or new_attempt_id(),
            variables=dict(variables or {}),
        )

    async def call(
        self,
        number: str,
        text: str,
        *,
        language: str | None = None,
        on_outcome: OutcomeHandler | None = None,
    ) -> CallResult:
        """Place one alert call and return its result when the line is free again (cancelled,
        the call is hung up: this one has no worker to adopt it)."""
        request = await self.request(number, text, language=language)
        return await self.caller.call(request, on_outcome, hang_up_on_cancel=True)
