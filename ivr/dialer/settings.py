"""How one dialer worker uses its Asterisk: its name, its channels, its pace."""

from __future__ import annotations

import socket
from dataclasses import dataclass

#: Calls of a campaign that fail to be prepared in a row before the campaign ends `failed`.
PREPARE_ATTEMPTS = 3


@dataclass(frozen=True)
class WorkerSettings:
    """How one worker uses its Asterisk."""

    #: Stable across restarts: a restarted worker takes its own calls in flight back at once.
    name: str
    #: Name of the Asterisk this worker dials through (workers sharing it can adopt its calls).
    asterisk: str = "default"
    #: Channels to keep busy.
    capacity: int = 30
    #: Most new calls per second (0: no cap).
    cps: float = 0.0
    #: Seconds a claim stays ours without renewal.
    lease: float = 30.0
    #: Seconds after its lease expired that an attempt on an Asterisk with no live worker (a
    #: site lost) is ended as lost and called again from here: longer than any call lasts, so
    #: that the lost Asterisk can no longer deliver its key (`Scheduler.orphans`).
    orphan_after: float = 600.0

    @staticmethod
    def default_name(asterisk: str = "default", index: int = 0) -> str:
        return f"{socket.gethostname()}-{asterisk}-{index}"
