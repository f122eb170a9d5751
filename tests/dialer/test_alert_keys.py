"""Alert calls hear a key however early or late it comes: at 0, 50 and 100 ms into the
message (before the person can have heard a word), at the very end of the menu prompt, and
while a "wrong key" or the thanks before the arrival-time question plays.

Each call goes from the sandbox Asterisk through the trunk endpoint to a SIPp answering phone
that presses its keys at fixed moments after its 200 OK, in each DTMF transport.
"""

from __future__ import annotations

import pytest

from ivr.dialer.alerter import Alerter
from ivr.outcomes import Outcome
from ivr.pbx.calls import Caller
from ivr.pbx.follow import CallResult
from ivr.voice.prompts import build_prompts
from ivr.voice.wav import wav_duration
from tests.sipp import DtmfMode, Keys, Sipp, Step, Wait, WaitBye, sandbox_root

pytestmark = pytest.mark.integration

MODES: list[DtmfMode] = ["rfc4733", "info", "inband"]
TEXT = "Alerte de test. Merci de rappeler le service."
#: One try, a short wait: a key that is not heard fails the test fast (no answer).
ONE_TRY = {"IVR_KEY_WAIT": "2", "IVR_MAX_TRIES": "1"}


async def _call(
    alerter: Alerter, mode: DtmfMode, steps: list[Step], variables: dict[str, str]
) -> CallResult:
    async with Sipp(sandbox_root()).answer(dtmf=mode, steps=steps, timeout=60) as uas:
        caller = Caller(alerter.link, uas.dial_template)
        request = await alerter.request("1000", TEXT, variables=variables)
        result = await caller.call(request)
        phone = await uas.wait()
    assert phone.ok, phone.explain()
    return result


@pytest.mark.parametrize("at_ms", [0, 50, 100])
@pytest.mark.parametrize("mode", MODES)
async def test_a_key_at_the_start_of_the_message_counts(
    alerter: Alerter, mode: DtmfMode, at_ms: int
) -> None:
    steps: list[Step] = [*([Wait(at_ms)] if at_ms else []), Keys("1"), WaitBye()]
    result = await _call(alerter, mode, steps, ONE_TRY)
    assert (result.outcome, result.key) == (Outcome.AVAILABLE, "1"), result


@pytest.mark.parametrize("offset_ms", [-150, 0, 150])
@pytest.mark.parametrize("mode", MODES)
async def test_a_key_at_the_end_of_the_menu_prompt_counts(
    alerter: Alerter, mode: DtmfMode, offset_ms: int
) -> None:
    """The message then "press 1..." play in one Read: a key as the prompt ends, or just
    after, while Read goes from playing to waiting."""
    message = await alerter.speaker.render(TEXT, "fr")
    menu = (await build_prompts(alerter.speaker, "fr")) / "menu.wav"
    end_ms = int((wav_duration(message) + wav_duration(menu)) * 1000)
    steps: list[Step] = [Wait(end_ms + offset_ms), Keys("2"), WaitBye()]
    result = await _call(alerter, mode, steps, ONE_TRY)
    assert (result.outcome, result.key) == (Outcome.UNAVAILABLE, "2"), result


@pytest.mark.parametrize("mode", MODES)
async def test_keys_during_the_wrong_key_prompt_and_the_thanks_count(
    alerter: Alerter, mode: DtmfMode
) -> None:
    """'5' (no such choice) then '1' while "wrong key" plays; then the minutes to arrival
    typed while the thanks plays, before the question itself."""
    steps: list[Step] = [Wait(300), Keys("5"), Wait(300), Keys("1"), Wait(400), Keys("15#")]
    steps.append(WaitBye())
    variables = {"IVR_KEY_WAIT": "2", "IVR_MAX_TRIES": "2", "IVR_ASK_ETA": "1"}
    result = await _call(alerter, mode, steps, variables)
    assert (result.outcome, result.key, result.eta) == (Outcome.AVAILABLE, "1", 15), result
