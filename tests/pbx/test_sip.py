"""Key presses over real SIP: SIPp as the phone, the sandbox Asterisk, every DTMF transport.

The phone dials extension `keys` (ivr/dialplans/ivr-test.conf), which reports each key it
hears as an AMI UserEvent tagged with the call's X-Ivr-Test header; the alert call goes the
other way, from Asterisk through the trunk endpoint to a SIPp answering phone.
"""

from __future__ import annotations

import array
import asyncio
import math
import secrets
import time
import wave
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from ivr.config import Config
from ivr.dialer.alerter import Alerter
from ivr.outcomes import Outcome
from ivr.pbx.ami import AmiLink
from ivr.pbx.calls import Caller
from ivr.voice.wav import wav_duration
from tests.sipp import Audio, DtmfMode, Hangup, Keys, Sipp, Step, Wait, WaitBye, sandbox_root

pytestmark = pytest.mark.integration

MODES: list[DtmfMode] = ["rfc4733", "info", "inband"]
FAST = {"IVR_KEY_WAIT": "3", "IVR_MAX_TRIES": "1"}


@dataclass
class Heard:
    """The ivr-test UserEvents of the calls tagged so far, in arrival order."""

    events: dict[str, list[tuple[float, dict[str, str]]]] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_event(self, message: Any) -> None:
        name = str(message.get("UserEvent", ""))
        if message.get("Event") != "UserEvent" or not name.startswith("IvrTest"):
            return
        fields = {k: str(v) for k, v in message.items() if isinstance(v, str)}
        self.events.setdefault(fields.get("Tag", ""), []).append((time.monotonic(), fields))
        self.changed.set()

    def keys(self, tag: str) -> str:
        return "".join(
            e["Key"] for _, e in self.events.get(tag, []) if e["UserEvent"] == "IvrTestKey"
        )

    async def until(
        self, tag: str, done: Callable[[list[dict[str, str]]], bool], timeout: float = 15
    ) -> list[dict[str, str]]:
        """Wait until `done(events of tag)`; fail with what was heard if it never is."""

        async def wait() -> list[dict[str, str]]:
            while True:
                got = [e for _, e in self.events.get(tag, [])]
                if done(got):
                    return got
                self.changed.clear()
                await self.changed.wait()

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"call {tag}: heard only {self.events.get(tag)}") from None


@pytest.fixture
async def heard(ami: AmiLink) -> AsyncIterator[Heard]:
    h = Heard()
    ami.on_event(h.on_event)
    yield h


@pytest.fixture(scope="session")
def sipp(sandbox_config: Config) -> Sipp:
    return Sipp(sandbox_root())


def digits_event(events: list[dict[str, str]]) -> bool:
    return any(e["UserEvent"] == "IvrTestDigits" for e in events)


@pytest.mark.parametrize("mode", MODES)
async def test_a_key_is_heard(sipp: Sipp, heard: Heard, mode: DtmfMode) -> None:
    tag = secrets.token_hex(4)
    call = asyncio.create_task(
        sipp.call(
            "keys",
            [Wait(200), Keys("1#"), Wait(500), Hangup()],
            dtmf=mode,
            tag=tag,
            caller="0611223344",
        )
    )
    events = await heard.until(tag, digits_event)
    result = await call
    assert result.ok, result.explain()
    answered, first = events[0], events[1]
    assert answered["UserEvent"] == "IvrTestAnswered"
    assert answered["CallerIDNum"] == "0611223344", "the phone's P-Asserted-Identity is trusted"
    assert (first["UserEvent"], first["Key"]) == ("IvrTestKey", "1")
    assert events[-1]["Digits"] == "1" and events[-1]["Status"] == "OK"


@pytest.mark.parametrize("mode", MODES)
async def test_keys_in_a_row_arrive_intact(sipp: Sipp, heard: Heard, mode: DtmfMode) -> None:
    tag = secrets.token_hex(4)
    steps: list[Step] = [Wait(200), Keys("1123456*0#"), Wait(500), Hangup()]
    result, events = await asyncio.gather(
        sipp.call("keys", steps, dtmf=mode, tag=tag), heard.until(tag, digits_event)
    )
    assert result.ok, result.explain()
    assert heard.keys(tag) == "1123456*0#", "every key, the repeated one too, in order"
    assert events[-1]["Digits"] == "1123456*0"


@pytest.mark.parametrize("every_ms", [150, 350])
@pytest.mark.parametrize("mode", MODES)
async def test_keys_at_a_typists_rhythm_arrive_intact(
    sipp: Sipp, heard: Heard, mode: DtmfMode, every_ms: int
) -> None:
    """A key every 150 ms (a fast typist) or 350 ms, from the answer on, in each transport."""
    tag = secrets.token_hex(4)
    steps: list[Step] = [Keys("2468100#", every_ms=every_ms), Wait(500), Hangup()]
    result, _ = await asyncio.gather(
        sipp.call("keys", steps, dtmf=mode, tag=tag), heard.until(tag, digits_event)
    )
    assert result.ok, result.explain()
    assert heard.keys(tag) == "2468100#"


async def test_transports_mix_in_one_call_and_calls_run_concurrently(
    sipp: Sipp, heard: Heard
) -> None:
    """SIP INFO is heard beside either media transport; tones only when no RFC 4733 was agreed.

    dtmf_mode=auto turns the in-band detector on only when the phone offers no telephone-event:
    a phone that offers it and then sends tones is not heard (the trade-off of the templates).
    """
    scripts: list[tuple[DtmfMode, list[Keys], str]] = [
        ("rfc4733", [Keys("1", "rfc4733"), Keys("2", "info"), Keys("#", "rfc4733")], "12#"),
        ("inband", [Keys("1", "inband"), Keys("2", "info"), Keys("#", "inband")], "12#"),
        ("rfc4733", [Keys("3", "inband"), Keys("4", "info"), Keys("#", "rfc4733")], "4#"),
    ]
    tags = [secrets.token_hex(4) for _ in scripts]
    runs = [
        sipp.call("keys", [Wait(100), *keys, Wait(300), Hangup()], dtmf=offer, tag=tag)
        for (offer, keys, _), tag in zip(scripts, tags, strict=True)
    ]
    hearing = asyncio.gather(*(heard.until(t, digits_event) for t in tags))
    results = await asyncio.gather(*runs)
    await hearing
    for result in results:
        assert result.ok, result.explain()
    assert [heard.keys(t) for t in tags] == [expected for _, _, expected in scripts]


async def test_first_key_right_after_answer_is_heard(sipp: Sipp, heard: Heard) -> None:
    """No pause at all after the ACK: how soon a phone may press is measured here."""
    delays = {}
    for mode in MODES:
        tag = secrets.token_hex(4)
        started = time.monotonic()
        result, _ = await asyncio.gather(
            sipp.call("keys", [Keys("5#"), Wait(300), Hangup()], dtmf=mode, tag=tag),
            heard.until(tag, digits_event),
        )
        assert result.ok, result.explain()
        assert heard.keys(tag) == "5#"
        answered = next(at for at, e in heard.events[tag] if e["UserEvent"] == "IvrTestAnswered")
        first_key = next(at for at, e in heard.events[tag] if e["UserEvent"] == "IvrTestKey")
        delays[mode] = (round(answered - started, 3), round(first_key - answered, 3))
    print("\nstart->answered, answered->first key (s):", delays)


@pytest.mark.parametrize("mode", ["rfc4733", "info"])
async def test_alert_call_through_the_trunk_gets_key_1(alerter: Alerter, mode: DtmfMode) -> None:
    async with sipp_answering(mode) as uas:
        caller = Caller(alerter.link, uas.dial_template)
        request = await alerter.request("1000", "Alerte de test.", variables=FAST)
        result = await caller.call(request)
        phone = await uas.wait()
    assert (result.outcome, result.key) == (Outcome.AVAILABLE, "1"), result
    assert result.answered and result.answered_at is not None
    assert phone.ok, phone.explain()
    assert "INVITE sip:1000@127.0.0.1" in phone.messages


def sipp_answering(mode: DtmfMode, key: str | None = "1") -> Any:
    return Sipp(sandbox_root()).answer(key=key, delay_ms=1500, dtmf=mode, timeout=40)


async def test_a_phone_nobody_calls_times_out(sipp: Sipp) -> None:
    async with sipp.answer(timeout=1) as uas:
        result = await uas.wait()
    assert result.timed_out and not result.ok
    assert 1 <= result.elapsed < 3
    assert "timed out" in result.explain()


async def test_audio_is_recorded_for_its_length(sipp: Sipp, heard: Heard) -> None:
    """What a director says into the trigger line: Audio(ms) reaches Record() at that length."""
    tag = secrets.token_hex(4)
    steps: list[Step] = [Wait(300), Audio(2000), Keys("#"), WaitBye()]
    result, events = await asyncio.gather(
        sipp.call("record", steps, tag=tag),
        heard.until(tag, lambda got: any(e["UserEvent"] == "IvrTestRecorded" for e in got)),
    )
    assert result.ok, result.explain()
    recorded = events[-1]
    assert recorded["Status"] == "DTMF", recorded
    wav = sandbox_root() / "tmp" / f"ivr-test-{tag}.wav"
    try:
        # Record() trims the end it ends on (a '#' gives 1.75 s of the 2 s here).
        assert 1.6 <= wav_duration(wav) <= 2.1
        with wave.open(str(wav), "rb") as f:
            samples = array.array("h", f.readframes(f.getnframes()))
    finally:
        wav.unlink(missing_ok=True)
    rms = math.sqrt(sum(x * x for x in samples) / len(samples))
    assert rms > 2000, "the tone, not silence"
