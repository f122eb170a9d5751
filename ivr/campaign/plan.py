"""A campaign's delivery plan: the channels that reach each person, in order.

A plan is a short list of steps, each `voice` (one round of calls over the person's numbers),
`sms` (one SMS to their SMS number) or `voice+sms` (both at once: the SMS leaves when the
step's first call is placed). Steps follow one another after the campaign's interval (its
retry delay); an answer on any channel — a key pressed, the callback line, an SMS reply — ends
the plan for that person. Without a plan a campaign makes `attempts` voice rounds, as before
plans existed; with an SMS transport configured the default is `DEFAULT`: call, then an SMS
to whoever the call did not reach, then call again.

The scheduler's Lua (`ivr.campaign.scripts`) walks the plan: the person's `rd` is the index of
their current step, and an SMS step waits in the campaign's `sms` queue as `<pid>:<step>`.
"""

from __future__ import annotations

from collections.abc import Sequence

from ivr.errors import IvrError

VOICE = "voice"
SMS = "sms"
BOTH = "voice+sms"
#: What a step may be.
STEPS = (VOICE, SMS, BOTH)
#: The plan of a real alert when the installation can send SMS.
DEFAULT = (VOICE, SMS, VOICE)
#: Steps in a plan at most (with a 5-minute interval, close to an hour of tries).
MAX_STEPS = 10


class PlanError(IvrError):
    """A delivery plan that cannot be run."""

    error_id = "campaign_error"
    exit_code = 2


def parse(text: str) -> tuple[str, ...]:
    """`"voice, sms, voice"` -> the steps, checked; `sms+voice` is `voice+sms`."""
    steps = []
    for raw in text.split(","):
        channels = {part.strip().lower() for part in raw.split("+")}
        # `sms+voice` and `voice+sms` are the same step.
        steps.append(BOTH if channels == {VOICE, SMS} else raw.strip().lower())
    validate(steps)
    return tuple(steps)


def validate(steps: Sequence[str]) -> None:
    """Refuse a plan the scheduler could not walk, saying which step is wrong."""
    if not steps:
        raise PlanError("campaign: the delivery plan has no step")
    if len(steps) > MAX_STEPS:
        raise PlanError(f"campaign: the delivery plan has {len(steps)} steps ({MAX_STEPS} at most)")
    for n, step in enumerate(steps, start=1):
        if step not in STEPS:
            raise PlanError(
                f"campaign: step {n} of the delivery plan is {step!r}; "
                f"a step is one of {', '.join(STEPS)}"
            )
    # Everyone enters a campaign through a call (escalated backups and extended groups too).
    if VOICE not in steps[0]:
        raise PlanError("campaign: the delivery plan must start with voice or voice+sms")


def uses_sms(steps: Sequence[str]) -> bool:
    """True when some step sends an SMS."""
    return any(SMS in step for step in steps)


def without_sms(steps: Sequence[str]) -> tuple[str, ...]:
    """The plan with its SMS left out: `voice+sms` becomes `voice`, `sms` steps go."""
    return tuple(VOICE for step in steps if VOICE in step)


def text(steps: Sequence[str]) -> str:
    """The plan as the CLI takes it: `voice,sms,voice`."""
    return ",".join(steps)
