"""`ivr selftest`: prove each route can reach a phone and bring a key press back.

For every configured route (IVR_SELFTEST_TARGETS: whole dial strings such as
`PJSIP/1000@trunk`) one test call is placed to a known phone that answers and presses 1. The
report says, per route: answered or not (and why), whether the key came back, the time to
answer and the time from answer to key. A route that answers but brings no key back has a
broken DTMF path (a dtmf_mode mismatch, a transcoding gateway eating RFC 4733 events...):
exactly the fault that silently loses staff answers during a crisis.

The test call is a real alert call: the same Caller, the same `ivr-alert` dialplan, Read() and
IvrKey event, only with a short test message and one try. We chose that over a dedicated
dialplan context so the self-test exercises the very path staff answers take; a separate
context could pass while the alert flow fails.

A route may also have a busy check (IVR_SELFTEST_BUSY: a number on that route that answers
busy): its call must come back `busy`. A route that reports busy staff as `failed` loses the
callee's hangup cause (an operator announcing "busy" in the audio, a custom context that
answers before dialling...), and the report would send someone to fix a roster that is right.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ivr.dialer.alerter import Alerter
from ivr.outcomes import Outcome
from ivr.pbx.calls import CallResult

#: What the test call says (the menu prompt follows it).
MESSAGES = {
    "fr": "Appel de test du serveur d'alerte. Appuyez sur 1.",
    "en": "Test call from the alert server. Press 1.",
}
#: Seconds the test call waits for the key after the menu, once (the phone may press earlier,
#: during the message).
KEY_WAIT = 8


@dataclass(frozen=True)
class RouteCheck:
    """What one route's test call showed."""

    target: str
    outcome: str
    detail: str
    answered: bool
    #: The key that came back ('1', '2') or None.
    key: str | None
    #: Seconds from placing the call to its answer.
    time_to_answer: float | None
    #: Seconds from the answer to the key reaching the service.
    time_to_key: float | None
    #: "key": a phone that presses 1; "busy": a number that answers busy.
    check: str = "key"

    @property
    def ok(self) -> bool:
        if self.check == "busy":
            return self.outcome == Outcome.BUSY
        return self.key == "1"

    @property
    def verdict(self) -> str:
        if self.ok:
            return "ok"
        if self.check == "busy":
            return (
                f"busy came back as {self.outcome} ({self.detail}): the route loses the "
                "callee's hangup cause (README, Custom contexts)"
            )
        if not self.answered:
            return f"not answered: {self.outcome} ({self.detail})"
        if self.key is None:
            return "answered, but no key came back: the DTMF path is broken"
        return f"answered, but key {self.key} came back instead of 1"

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "ok": self.ok, "verdict": self.verdict}


async def check_route(
    alerter: Alerter, target: str, *, key_wait: int = KEY_WAIT, check: str = "key"
) -> RouteCheck:
    """Place one test call to `target` and say what came back (`check`: "key" or "busy")."""
    language = alerter.config.language
    request = await alerter.request(
        "0",
        MESSAGES[language],
        language=language,
        variables={"IVR_KEY_WAIT": str(key_wait), "IVR_MAX_TRIES": "1"},
    )
    request = dataclasses.replace(request, number=target, channel=target)
    key_at: list[float] = []

    async def noted(result: CallResult) -> None:
        key_at.append(time.time())

    result = await alerter.caller.call(request, noted)
    answered_at = result.answered_at
    to_answer = answered_at - result.started_at if answered_at is not None else None
    to_key = key_at[0] - answered_at if result.key and key_at and answered_at else None
    return RouteCheck(
        target=target,
        outcome=result.outcome.value,
        detail=result.detail,
        answered=result.answered,
        key=result.key,
        time_to_answer=to_answer,
        time_to_key=to_key,
        check=check,
    )


async def run_selftest(
    alerter: Alerter,
    targets: Sequence[str],
    *,
    busy: Sequence[str] = (),
    key_wait: int = KEY_WAIT,
) -> list[RouteCheck]:
    """Test every route at once (each is its own trunk or line): `targets` must bring key 1
    back, `busy` must come back busy. Results in that order."""
    # Render the test message and prompts once before the calls race to do it.
    await alerter.request("0", MESSAGES[alerter.config.language])
    checks = [*((t, "key") for t in targets), *((b, "busy") for b in busy)]
    return list(
        await asyncio.gather(
            *(check_route(alerter, t, key_wait=key_wait, check=kind) for t, kind in checks)
        )
    )


def render(checks: Sequence[RouteCheck]) -> str:
    """The report as text: one line per route, then the summary."""

    def secs(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} s"

    width = max((len(c.target) for c in checks), default=5)
    lines = [f"{'route':<{width}}  check  answered  key  to answer  to key   verdict"]
    for c in checks:
        lines.append(
            f"{c.target:<{width}}  {c.check:<5}  {'yes' if c.answered else 'no':<8}  "
            f"{c.key or '-':<3}  {secs(c.time_to_answer):<9}  {secs(c.time_to_key):<7}  "
            f"{c.verdict}"
        )
    failed = sum(not c.ok for c in checks)
    lines.append(
        f"{len(checks) - failed} of {len(checks)} checks ok"
        + (f"; {failed} FAILED" if failed else "")
    )
    return "\n".join(lines)
