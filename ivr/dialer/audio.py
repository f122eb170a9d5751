"""What a worker needs to call the people of one campaign: its message rendered in each
language (with the drill announcements), the message left on answering machines, its quotas,
and the call request built for one claimed person.

Rendered once per campaign and worker, when its first person is claimed.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from ivr.campaign import store
from ivr.campaign.message import campaign_message, message_languages
from ivr.campaign.scheduler import Claim
from ivr.campaign.spec import CampaignSpec
from ivr.dialer.alerter import Alerter
from ivr.keys import campaign_key
from ivr.pbx.astdb import quota_flag
from ivr.pbx.calls import CallRequest
from ivr.staff.roster import CRISIS_TAG
from ivr.voice import speech


@dataclass
class CampaignAudio:
    """One campaign, ready to dial."""

    uid: str
    spec: CampaignSpec
    #: language -> the message as Asterisk plays it.
    messages: dict[str, str]
    #: language -> what answering machines hear (the message and the number to call back).
    voicemail: dict[str, str]
    #: role -> quota (raised quotas update it).
    quotas: dict[str, int]

    def language_for(self, preferred: str) -> str:
        """The person's language if the campaign speaks it, else French, else what it has."""
        if preferred in self.messages:
            return preferred
        return "fr" if "fr" in self.messages else next(iter(self.messages))

    def quota_flag(self, role: str) -> str:
        return quota_flag(self.uid, role)


async def load_audio(alerter: Alerter, redis: Redis, cid: str) -> CampaignAudio:
    """Read campaign `cid` and render what its calls play."""
    meta = await store.get_meta(redis, cid)
    spec = CampaignSpec.from_json(meta["spec"])
    raw_quotas = await redis.hgetall(campaign_key(cid, "quota"))
    messages: dict[str, str] = {}
    voicemail: dict[str, str] = {}
    for language in message_languages(spec):
        prompts = await alerter.prompts(language) if spec.drill else ""
        message = await campaign_message(spec, language, alerter.config, alerter.message, prompts)
        if message is None:
            continue
        messages[language] = message
        text = spec.messages.get(language, "")
        if spec.callback_number:
            tail = speech.call_back(spec.callback_number, language)
            voicemail[language] = await alerter.message(f"{text} {tail}", language)
        elif text.strip():
            voicemail[language] = await alerter.message(text, language)
    quotas = {str(k): int(v) for k, v in raw_quotas.items()}
    return CampaignAudio(meta["uid"], spec, messages, voicemail, quotas)


async def call_request(alerter: Alerter, claim: Claim, audio: CampaignAudio) -> CallRequest:
    """The call that asks `claim`'s person, in their language, with the campaign's options."""
    person, spec = claim.person, audio.spec
    language = audio.language_for(person.language)
    variables = {
        "IVR_AMD": "1" if spec.amd else "0",
        "IVR_ASK_ETA": "1" if spec.ask_eta else "0",
        "IVR_KEY_WAIT": str(spec.key_wait),
        "IVR_MAX_TRIES": str(spec.max_tries),
    }
    if audio.voicemail.get(language):
        variables["IVR_VOICEMAIL"] = audio.voicemail[language]
    if CRISIS_TAG in person.tags:
        variables["IVR_CONF"] = "1"
    if person.role in audio.quotas:
        variables["IVR_QUOTA"] = audio.quota_flag(person.role)
    return CallRequest(
        number=claim.number,
        message=audio.messages[language],
        prompts=await alerter.prompts(language),
        ring_timeout=spec.ring_timeout,
        caller_id=alerter.config.caller_id,
        attempt_id=claim.attempt_id,
        variables=variables,
    )
