"""How long a campaign should take to meet its quotas, before it starts (`--estimate`).

Lines are the limit (docs/asterisk.md: 2,000 two-minute calls over 40 lines take at least
100 minutes), so the model is line time: each call holds a line for the ring time plus, when
answered, the message, the menu, the key and the confirmation.
Expected values, stated with their assumptions.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

#: Seconds of fixed prompts around the message on an answered call (menu, key, confirmation).
PROMPTS_SECONDS = 16.0
#: Seconds a phone that is answered rings first, on average.
ANSWER_DELAY = 8.0


@dataclass(frozen=True)
class Estimate:
    lines: int
    calls: int
    seconds_per_call: float
    #: role -> (people, quota or None, calls needed, minutes to meet the quota or None)
    roles: dict[str, tuple[int, int | None, int, float | None]]
    total_minutes: float
    warnings: list[str]

    def lines_text(self) -> list[str]:
        out = [
            f"{self.calls} calls on {self.lines} lines, {self.seconds_per_call:.0f} s of line "
            f"time per call on average: about {self.total_minutes:.0f} min "
            "(if every needed call goes out)."
        ]
        for role, (people, quota, calls, minutes) in sorted(self.roles.items()):
            if quota is None:
                out.append(f"  {role}: {people} staff, no quota: all called")
            elif minutes is None:
                out.append(f"  {role}: quota {quota} of {people} staff: may not be met")
            else:
                out.append(
                    f"  {role}: quota {quota} of {people} staff: ~{calls} calls, met in "
                    f"~{minutes:.0f} min"
                )
        out.extend(f"  warning: {w}" for w in self.warnings)
        return out


def estimate(
    roles: Counter[str],
    quotas: dict[str, int],
    *,
    lines: int,
    message_seconds: float,
    ring_timeout: int,
    answer_rate: float = 0.6,
    available_rate: float = 0.6,
) -> Estimate:
    """Expected line time for the targets (`roles`: role -> number of people)."""
    answered = ANSWER_DELAY + message_seconds + PROMPTS_SECONDS
    per_call = answer_rate * answered + (1 - answer_rate) * ring_timeout
    yes_per_call = answer_rate * available_rate
    plan: dict[str, tuple[int, int | None, int, float | None]] = {}
    warnings: list[str] = []
    total_calls = 0
    for role, people in roles.items():
        quota = quotas.get(role)
        if quota is None:
            calls = people
            plan[role] = (people, None, calls, None)
        else:
            needed = math.ceil(quota / yes_per_call) if yes_per_call > 0 else people
            calls = min(people, needed)
            reachable = people * yes_per_call
            minutes = None if reachable < quota else calls * per_call / lines / 60
            if reachable < quota:
                warnings.append(
                    f"{role}: {quota} needed but only ~{reachable:.0f} of {people} expected to "
                    "say yes: widen the targets"
                )
            plan[role] = (people, quota, calls, minutes)
        total_calls += calls
    for role in quotas:
        if role not in roles:
            warnings.append(f"{role}: a quota is set but nobody of that role is targeted")
    total = total_calls * per_call / max(lines, 1) / 60
    # Roles are called interleaved, in roster order: role r's k-th call goes out after about
    # k * (everyone / people of r) calls overall, until its quota is met.
    everyone = sum(roles.values())
    for role, (people, quota, calls, minutes) in plan.items():
        if minutes is not None:
            spread = calls * everyone / max(people, 1)
            plan[role] = (people, quota, calls, min(total, spread * per_call / lines / 60))
    return Estimate(lines, total_calls, per_call, plan, total, warnings)
