"""Every range a number given to the service must fall in, declared once.

The configuration (`ivr.config`), the command line (`ivr.cli`), the API's JSON Schemas
(`ivr.api.schemas`) and the campaign spec (`ivr.campaign.spec`) all read their bounds from here,
so no path accepts what another refuses: a campaign the CLI starts is one the API would start
and the worker can run.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from ivr.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """Inclusive bounds of one number, with its unit for messages."""

    low: float
    high: float
    unit: str = ""
    integer: bool = True

    def describe(self) -> str:
        low, high = (int(self.low), int(self.high)) if self.integer else (self.low, self.high)
        return f"{low}-{high}{f' {self.unit}' if self.unit else ''}"

    def holds(self, value: float) -> bool:
        return self.low <= value <= self.high

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of a value in this range."""
        bounds: dict[str, Any] = {"minimum": self.low, "maximum": self.high}
        if self.integer:
            bounds = {k: int(v) for k, v in bounds.items()}
        return {"type": "integer" if self.integer else "number", **bounds}

    def option(self, name: str) -> Any:
        """An argparse `type=` that refuses a value out of range with a clear line (exit 2)."""

        def parse(text: str) -> int | float:
            try:
                value: int | float = int(text) if self.integer else float(text)
            except ValueError:
                kind = "a whole number" if self.integer else "a number"
                raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
            if not self.holds(value):
                raise argparse.ArgumentTypeError(f"{name} must be {self.describe()}, got {text}")
            return value

        parse.__name__ = name  # argparse names the type in its messages
        return parse

    def check(self, value: float, what: str) -> None:
        """Raise ConfigError naming `what` when `value` is out of range."""
        if not self.holds(value):
            raise ConfigError(f"{what}: must be {self.describe()}, got {value}")


#: Seconds a phone rings before the attempt counts as no answer.
RING_TIMEOUT = Range(5, 300, "s")
#: Channels one worker keeps busy.
CAPACITY = Range(1, 10_000, "channels")
#: New calls per second a worker may start (0: no cap).
CPS = Range(0, 1_000, "calls/s", integer=False)
#: Lines an estimate assumes.
LINES = Range(1, 10_000, "lines")
#: Rounds over each person's numbers.
ATTEMPTS = Range(1, 10)
#: Seconds between rounds.
RETRY_DELAY = Range(0, 86_400, "s")
#: Available answers needed for a role.
QUOTA = Range(1, 100_000)
#: Calls in flight for a role, as a multiple of the answers still needed (0: no cap).
OVERCALL = Range(0, 100, integer=False)
#: Seconds the alert call waits for a key after the menu.
KEY_WAIT = Range(2, 30, "s")
#: Times the alert call plays its message before giving up.
MAX_TRIES = Range(1, 5)
#: Characters of one message: about five minutes of speech at 150 words per minute.
MESSAGE_CHARS = 5_000
#: Bytes of a roster file: 100,000 staff export to about 10 MB.
ROSTER_BYTES = 64 * 1024 * 1024
#: Characters of a campaign's, group's or unit's name.
NAME_CHARS = 200
