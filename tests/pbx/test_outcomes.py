"""Alert calls tell the truth through any route: the outcome of every kind of callee, over real
SIP, straight to a PJSIP endpoint and through a hospital's own Local context, many calls at once.

The callees are SIPp phones (tests/sipfarm.py): 486 Busy Here, 480 Temporarily Unavailable, 603
Decline, 404 Not Found, 503 Service Unavailable, ringing until the ring timeout, answering and
pressing 1 at once, after 200 ms, 1 s or 2 s (silent, or saying hello first), pressing 2,
hanging up, an answering machine; keys as RFC 4733 events and as SIP INFO. Answering-machine
detection is on, as in a real campaign: a key pressed while it runs must count.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from ivr.config import Config
from ivr.dialer.alerter import Alerter
from ivr.pbx.calls import CallRequest, CallResult
from tests.sipfarm import PHONES, Phone, farm
from tests.sipp import Sipp, sandbox_root

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

#: Copies of each behaviour in one run (19 behaviours: 57 calls at once), and runs per route.
COPIES = 3
RUNS = 2
RING_TIMEOUT = 6
#: What a campaign sets on its calls (ivr.dialer.audio), shortened: no arrival time, one try.
VARIABLES = {"IVR_AMD": "1", "IVR_ASK_ETA": "0", "IVR_KEY_WAIT": "4", "IVR_MAX_TRIES": "1"}


async def one_run(alerter: Alerter, run: int) -> list[tuple[Phone, CallResult]]:
    message = await alerter.message("Alerte test. Tapez 1 si vous êtes disponible.", "fr")
    prompts = await alerter.prompts("fr")
    calls = [
        (phone, f"{phone.code}{run}{copy:02d}")
        for phone in PHONES.values()
        for copy in range(COPIES)
    ]
    requests = [
        CallRequest(number, message, prompts, ring_timeout=RING_TIMEOUT, variables=VARIABLES)
        for _, number in calls
    ]
    results = await asyncio.gather(*(alerter.caller.call(r) for r in requests))
    return [(phone, result) for (phone, _), result in zip(calls, results, strict=True)]


@pytest.mark.parametrize("route", ["pjsip", "local"])
async def test_every_outcome_is_right_through_any_route(sandbox_config: Config, route: str) -> None:
    total = len(PHONES) * COPIES * RUNS
    async with farm(Sipp(sandbox_root()), calls=total) as phones:
        template = phones.dial_template if route == "pjsip" else phones.local_template
        config = dataclasses.replace(
            sandbox_config, dial_template=template, ring_timeout=RING_TIMEOUT
        )
        async with Alerter(config) as alerter:
            for run in range(RUNS):
                wrong = [
                    f"{phone.code} {phone.description}: {result.outcome} ({result.detail}, "
                    f"reason {result.reason}, cause {result.cause}), expected {phone.expected}"
                    for phone, result in await one_run(alerter, run)
                    if result.outcome is not phone.expected
                ]
                assert not wrong, f"run {run} through {route}:\n" + "\n".join(wrong)
        verdict = await phones.wait()
    assert verdict.ok, verdict.explain()
