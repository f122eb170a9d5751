"""Real alert calls through the sandbox Asterisk: simulated phones, real audio, real DTMF."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ivr.config import Config
from ivr.dialer.alerter import Alerter
from ivr.outcomes import Outcome
from ivr.pbx.ami import AmiLink
from ivr.pbx.calls import CallRequest, CallResult
from tests.tcpproxy import TcpProxy

pytestmark = pytest.mark.integration

MESSAGE = "Alerte de test."
FAST = {"IVR_KEY_WAIT": "2", "IVR_MAX_TRIES": "2"}

BEHAVIOURS = [
    ("1011", Outcome.AVAILABLE, "1"),
    ("1022", Outcome.UNAVAILABLE, "2"),
    ("1033", Outcome.AVAILABLE, "1"),  # star (repeat), then 1
    ("1044", Outcome.AVAILABLE, "1"),  # invalid 9, then 1
    ("1055", Outcome.AVAILABLE, "1"),  # 1 then hangs up during the confirmation
    ("1006", Outcome.HUNG_UP, None),  # never presses
    ("2007", Outcome.NO_ANSWER, None),
    ("3008", Outcome.BUSY, None),
    ("4009", Outcome.HUNG_UP, None),  # hangs up during the message
    ("5010", Outcome.FAILED, None),  # congestion
    ("9011", Outcome.FAILED, None),  # no such number
]


async def test_every_simulated_behaviour_gives_its_outcome(alerter: Alerter) -> None:
    requests = [
        await alerter.request(number, MESSAGE, variables=FAST) for number, _, _ in BEHAVIOURS
    ]
    notified: dict[str, list[Outcome]] = {r.attempt_id: [] for r in requests}

    async def note(result: CallResult) -> None:
        notified[result.attempt_id].append(result.outcome)

    results = await asyncio.gather(*(alerter.caller.call(r, note) for r in requests))

    got = {r.number: (r.outcome, r.key) for r in results}
    assert got == {number: (outcome, key) for number, outcome, key in BEHAVIOURS}
    for result in results:
        assert notified[result.attempt_id] == [result.outcome], "one notification per attempt"
        assert result.answered == (
            result.outcome in (Outcome.AVAILABLE, Outcome.UNAVAILABLE, Outcome.HUNG_UP)
        )
        assert not result.reconciled
    details = {r.number: r.detail for r in results}
    assert (details["3008"], details["5010"]) == ("busy", "congestion")
    # The callee side's Hangup (cause 17, 34) may come after OriginateResponse: the outcome
    # waits for every channel of the call, so the cause is the callee's.
    causes = {r.number: r.cause for r in results}
    assert (causes["2007"], causes["3008"], causes["5010"]) == (19, 17, 34)
    journal = await alerter.caller.journal()
    assert not set(journal) & set(notified), "journal entries are removed once recorded"


async def test_a_key_pressed_during_answering_machine_detection_counts(alerter: Alerter) -> None:
    """The simulated phone 1X7 presses 1 the moment it answers, without a word: the key falls
    in answering-machine detection, which drops it; the service takes it from the DTMF event."""
    amd = {**FAST, "IVR_AMD": "1"}
    requests = [await alerter.request(f"107{i}", MESSAGE, variables=amd) for i in range(4)]
    results = await asyncio.gather(*(alerter.caller.call(r) for r in requests))
    assert [(r.outcome, r.key) for r in results] == [(Outcome.AVAILABLE, "1")] * 4


async def test_no_answer_ends_at_the_ring_timeout(alerter: Alerter) -> None:
    result = await alerter.call("2000", MESSAGE)
    assert result.outcome is Outcome.NO_ANSWER
    assert result.ended_at is not None
    elapsed = result.ended_at - result.started_at
    assert alerter.config.ring_timeout - 0.5 <= elapsed <= alerter.config.ring_timeout + 3


async def test_outcome_is_known_before_the_line_is_free(alerter: Alerter) -> None:
    seen: list[tuple[Outcome, float | None]] = []

    async def note(result: CallResult) -> None:
        seen.append((result.outcome, result.ended_at))

    result = await alerter.caller.call(await alerter.request("1011", MESSAGE), note)
    assert seen == [(Outcome.AVAILABLE, None)], "notified while the confirmation still plays"
    assert result.ended_at is not None


def _watch(link: AmiLink, attempt: str) -> dict[str, asyncio.Event]:
    """Events a test can await, seen on an AMI link of its own (not the one under test)."""
    seen = {name: asyncio.Event() for name in ("ringing", "up", "key", "hangup")}

    def on(message: Any) -> None:
        if message.get("Uniqueid") != attempt and message.get("Attempt") != attempt:
            return
        event = message.get("Event")
        if event == "Newstate" and message.get("ChannelStateDesc") == "Ringing":
            seen["ringing"].set()
        elif event == "Newstate" and message.get("ChannelStateDesc") == "Up":
            seen["up"].set()
        elif event == "UserEvent" and message.get("UserEvent") == "IvrKey":
            seen["key"].set()
        elif event == "Hangup":
            seen["hangup"].set()

    link.on_event(on)
    return seen


@pytest.fixture
async def proxied(sandbox_config: Config) -> Any:
    """An Alerter whose AMI link runs through a TcpProxy the test can cut."""
    proxy = TcpProxy(sandbox_config.ami_host, sandbox_config.ami_port)
    await proxy.start()
    link = AmiLink(
        "127.0.0.1",
        proxy.port,
        sandbox_config.ami_user,
        sandbox_config.ami_secret,
        backoff=(0.1, 0.5),
    )
    async with Alerter(sandbox_config, link=link) as alerter:
        yield alerter, proxy
    await proxy.close()


@pytest.mark.parametrize("cut_at", ["up", "ringing"])
async def test_key_press_during_ami_outage_counts_once(
    proxied: tuple[Alerter, TcpProxy], ami: AmiLink, cut_at: str
) -> None:
    """The link under test is cut (at answer, or while ringing); the callee presses 1 during
    the outage; once the link is back the key press is counted, exactly once."""
    alerter, proxy = proxied
    request: CallRequest = await alerter.request("1211", MESSAGE)  # rings 2 s, then presses 1
    seen = _watch(ami, request.attempt_id)
    outcomes: list[Outcome] = []

    async def note(result: CallResult) -> None:
        outcomes.append(result.outcome)

    call = asyncio.create_task(alerter.caller.call(request, note))
    await asyncio.wait_for(seen[cut_at].wait(), 10)
    proxy.cut()
    await asyncio.wait_for(seen["key"].wait(), 15)  # pressed while the link is down
    assert not alerter.link.is_up and outcomes == []
    proxy.restore()
    result = await asyncio.wait_for(call, 30)

    assert result.outcome is Outcome.AVAILABLE and result.key == "1"
    assert result.reconciled, "settled from the AstDB journal, the UserEvent having been lost"
    assert outcomes == [Outcome.AVAILABLE]
    assert alerter.link.generation == 2
    assert request.attempt_id not in await alerter.caller.journal()


async def test_outage_over_the_whole_call_still_gives_its_outcome(
    proxied: tuple[Alerter, TcpProxy], ami: AmiLink
) -> None:
    alerter, proxy = proxied
    request = await alerter.request("1022", MESSAGE)
    seen = _watch(ami, request.attempt_id)
    call = asyncio.create_task(alerter.caller.call(request))
    await asyncio.wait_for(seen["up"].wait(), 10)
    proxy.cut()
    await asyncio.wait_for(seen["hangup"].wait(), 20)  # the whole call ends during the outage
    proxy.restore()
    result = await asyncio.wait_for(call, 30)
    assert (result.outcome, result.reconciled) == (Outcome.UNAVAILABLE, True)


async def test_an_outcome_not_yet_safe_keeps_its_journal_entry_for_a_later_follow(
    alerter: Alerter,
) -> None:
    """A handler that could not make its record safe (no Redis replica acknowledged it) sets
    `keep_journal`: the AstDB entry outlives the call, and following the attempt later
    (another worker adopting it) gives the key press from the journal, then removes it."""
    request = await alerter.request("1011", MESSAGE)  # answers, presses 1

    async def not_safe(result: CallResult) -> None:
        result.keep_journal = True

    first = await alerter.caller.call(request, not_safe)
    assert first.outcome is Outcome.AVAILABLE
    journal = await alerter.caller.journal()
    assert journal.get(request.attempt_id, "").startswith("K1"), journal.get(request.attempt_id)

    again: list[CallResult] = []

    async def note(result: CallResult) -> None:
        again.append(result)

    followed = await alerter.caller.follow(request.attempt_id, "1011", on_outcome=note)
    assert (followed.outcome, followed.key) == (Outcome.AVAILABLE, "1")
    assert [r.outcome for r in again] == [Outcome.AVAILABLE]
    assert request.attempt_id not in await alerter.caller.journal()
