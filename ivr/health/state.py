"""Check results in the Nagios plugin convention, so Centreon and Nagios run `ivr health` as is.

A plugin prints one line, `SERVICE STATE - text | perfdata`, and exits with its state: 0 OK,
1 WARNING, 2 CRITICAL, 3 UNKNOWN (the check itself could not run: a wrong configuration). When
several checks make one result, the worst wins, in the order CRITICAL, WARNING, UNKNOWN, OK (the
monitoring plugins' `max_state_alt`): a service that is down matters more than a check that
could not say.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from ivr.errors import IvrError


class State(IntEnum):
    """A check's state; its value is the plugin's exit code."""

    #: Working.
    OK = 0
    #: Working, but something needs a look (persistence off, a worker silent).
    WARNING = 1
    #: Not working: calls cannot be placed, answers could be lost.
    CRITICAL = 2
    #: The check could not run (a configuration error, an unexpected failure of the check).
    UNKNOWN = 3


#: Worst first.
_SEVERITY = (State.CRITICAL, State.WARNING, State.UNKNOWN, State.OK)


def worst(states: Sequence[State]) -> State:
    """The state of several checks together (OK when there are none)."""
    for state in _SEVERITY:
        if state in states:
            return state
    return State.OK


@dataclass(frozen=True)
class Check:
    """One check's result: a one-line summary a person on call can act on."""

    name: str
    state: State
    summary: str
    #: Seconds the check took.
    seconds: float = 0.0
    #: Machine-readable facts (versions, counts, names).
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state.name.lower(),
            "summary": self.summary,
            "seconds": round(self.seconds, 3),
            "details": self.details,
        }


@dataclass(frozen=True)
class Report:
    """Several checks together: the worst state, the plugin line, the JSON."""

    checks: tuple[Check, ...]

    @property
    def state(self) -> State:
        return worst([c.state for c in self.checks])

    def line(self, service: str = "IVR") -> str:
        """`IVR CRITICAL - ami: ...; redis: ok ... | 'ami'=0.012s ...`, problems first."""
        ordered = sorted(self.checks, key=lambda c: _SEVERITY.index(c.state))
        text = "; ".join(f"{c.name}: {_one_line(c.summary)}" for c in ordered) or "no check"
        perf = " ".join(f"'{c.name}'={c.seconds:.3f}s" for c in self.checks)
        return f"{service} {self.state.name} - {text}" + (f" | {perf}" if perf else "")

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state.name.lower(),
            "code": int(self.state),
            "checks": [c.as_dict() for c in self.checks],
        }


def _one_line(text: str) -> str:
    # '|' starts the performance data of a plugin's output; a line break ends its first line.
    return " ".join(text.replace("|", "/").split())


Probe = Callable[[], Awaitable[Check]]


async def timed(name: str, probe: Probe, timeout: float) -> Check:
    """Run one check within `timeout` seconds; its own failure is UNKNOWN, its silence CRITICAL."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            check = await probe()
    except TimeoutError:
        check = Check(name, State.CRITICAL, f"no answer within {timeout:g} s")
    except IvrError as exc:
        check = Check(name, State.UNKNOWN, str(exc))
    except Exception as exc:  # a bug in a check must not hide the other checks' results
        check = Check(name, State.UNKNOWN, f"the check failed: {type(exc).__name__}: {exc}")
    return Check(check.name, check.state, check.summary, time.monotonic() - started, check.details)


async def run(probes: Sequence[tuple[str, Probe]], timeout: float) -> Report:
    """Run the checks at once (the result takes as long as the slowest), in the given order."""
    checks = await asyncio.gather(*(timed(name, probe, timeout) for name, probe in probes))
    return Report(tuple(checks))
