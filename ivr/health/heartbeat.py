"""The heartbeat each dialer worker writes to Redis (`ivr.keys.workers_key`), read by the health
checks and the metrics: one definition, so writer and readers agree on it.

A worker writes its heartbeat when it starts, every `period` seconds, and at once when its AMI
link goes down or comes back; it removes it when it stops cleanly. A heartbeat older than three
periods therefore means a worker that died without a word (SIGKILL, a crash, a host gone).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

#: Periods without a heartbeat after which a worker counts as silent.
MISSED_PERIODS = 3
#: Seconds after which a silent worker is forgotten by the checks (a host retired long ago).
FORGOTTEN_AFTER = 86400.0


@dataclass(frozen=True)
class Heartbeat:
    """What one worker says about itself."""

    #: The Asterisk it dials through (`ivr worker --asterisk`).
    asterisk: str
    capacity: int
    in_flight: int
    #: Whether its AMI link is logged in.
    ami_up: bool
    #: Unix time of this heartbeat.
    seen: float
    #: Seconds between two heartbeats.
    period: float = 10.0

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str) -> Heartbeat | None:
        """The heartbeat in `raw`, or None when it is not one (older or foreign data)."""
        try:
            data: Any = json.loads(raw)
            return cls(
                asterisk=str(data["asterisk"]),
                capacity=int(data["capacity"]),
                in_flight=int(data["in_flight"]),
                ami_up=bool(data["ami_up"]),
                seen=float(data["seen"]),
                period=float(data.get("period", 10.0)),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return None

    def age(self, now: float | None = None) -> float:
        return max(0.0, (time.time() if now is None else now) - self.seen)

    def silent(self, now: float | None = None) -> bool:
        """No heartbeat for MISSED_PERIODS periods: the worker is gone or stuck."""
        return self.age(now) > MISSED_PERIODS * self.period
