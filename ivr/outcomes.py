"""What a call attempt comes to: the vocabulary every layer shares.

The PBX adapter decides an attempt's outcome from what Asterisk said (`ivr.pbx.causes`); the
campaign engine counts them; reports, the console and the spoken summary name them. The
members are in report order: iterate `Outcome` wherever every outcome is listed.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """What one call attempt came to; a person's final outcome is one of these too."""

    #: Answered and pressed 1.
    AVAILABLE = "available"
    #: Answered and pressed 2.
    UNAVAILABLE = "unavailable"
    #: Rang until the ring timeout (or the callee's network gave up ringing).
    NO_ANSWER = "no_answer"
    #: The line was busy, or the callee rejected the call.
    BUSY = "busy"
    #: An answering machine took the call; a short message with the callback number was left.
    VOICEMAIL = "voicemail"
    #: Never connected: congestion, unreachable, unknown number, channel error.
    FAILED = "failed"
    #: Answered, then hung up (or stayed silent) without a valid key.
    HUNG_UP = "hung_up"
    #: Not asked: the quota of the person's role was met first (before or during the call).
    CANCELLED = "cancelled"

    @property
    def reached(self) -> bool:
        """True when a person answered and gave an answer (1 or 2): final, never called again."""
        return self in (Outcome.AVAILABLE, Outcome.UNAVAILABLE)


#: The answers a person can give (they end the person's campaign).
ANSWERS = (Outcome.AVAILABLE, Outcome.UNAVAILABLE)
