"""The one place that turns what Asterisk said (OriginateResponse Reason, Q.850 hangup cause,
the dialplan's AstDB journal) into an `Outcome`."""

from __future__ import annotations

from ivr.outcomes import Outcome

#: OriginateResponse Reason codes (Asterisk's AST_CONTROL_* values).
REASON_ANSWERED = 4
_REASONS = {
    0: (Outcome.FAILED, "unreachable or unknown number"),
    1: (Outcome.NO_ANSWER, "hung up while ringing"),
    3: (Outcome.NO_ANSWER, "no answer"),
    5: (Outcome.BUSY, "busy"),
    8: (Outcome.FAILED, "congestion"),
}

#: Q.850 hangup causes that say more than the Reason code.
_CAUSES = {
    1: (Outcome.FAILED, "unallocated number"),
    3: (Outcome.FAILED, "no route to destination"),
    17: (Outcome.BUSY, "busy"),
    18: (Outcome.NO_ANSWER, "no user responding"),
    19: (Outcome.NO_ANSWER, "no answer"),
    20: (Outcome.FAILED, "subscriber absent"),
    21: (Outcome.BUSY, "declined"),
    22: (Outcome.FAILED, "number changed"),
    27: (Outcome.FAILED, "destination out of order"),
    28: (Outcome.FAILED, "invalid number format"),
    34: (Outcome.FAILED, "congestion"),
    38: (Outcome.FAILED, "network out of order"),
    41: (Outcome.FAILED, "temporary failure"),
    42: (Outcome.FAILED, "switching equipment congestion"),
}


def informative(cause: int) -> bool:
    """True for a cause that says why a call did not connect (16, normal clearing, does not)."""
    return cause in _CAUSES


def not_answered(reason: int, cause: int | None) -> tuple[Outcome, str]:
    """Outcome of a call that never connected, from OriginateResponse Reason and Hangup Cause."""
    if cause in _CAUSES:
        return _CAUSES[cause]
    return _REASONS.get(reason, (Outcome.FAILED, f"reason {reason}"))


def answered(key: str | None) -> tuple[Outcome, str]:
    """Outcome of an answered attempt from what the IVR reported: the key accepted ('1', '2'),
    'V' (answering machine), 'Q' (quota met, not asked), or None/'' (no valid key)."""
    if key == "1":
        return Outcome.AVAILABLE, "pressed 1"
    if key == "2":
        return Outcome.UNAVAILABLE, "pressed 2"
    if key == "V":
        return Outcome.VOICEMAIL, "answering machine, message left"
    if key == "Q":
        return Outcome.CANCELLED, "quota met, told to stay reachable"
    return Outcome.HUNG_UP, "no valid key"


def parse_journal(value: str) -> tuple[str | None, int | None]:
    """(key, arrival minutes) from a journal value: 'K1E30' -> ('1', 30), 'V' -> ('V', None),
    'T' -> ('', None); (None, None) when it holds no answer ('A', 'F<reason>')."""
    if value.startswith("K") and len(value) >= 2:
        key, _, eta = value[1:].partition("E")
        return key, int(eta) if eta.isdigit() else None
    if value in ("V", "Q"):
        return value, None
    if value == "T":
        return "", None
    return None, None


def from_journal(value: str | None) -> tuple[Outcome, str] | None:
    """Outcome recorded in the AstDB journal by the dialplan, or None if it says nothing final.

    `A` (answered, no key yet) is not final while the channel lives; the caller decides.
    """
    if not value:
        return None
    if value == "T":
        return Outcome.HUNG_UP, "no valid key after the tries"
    key, _ = parse_journal(value)
    if key:
        return answered(key)
    if value.startswith("F"):
        try:
            reason = int(value[1:])
        except ValueError:
            return Outcome.FAILED, f"journal {value!r}"
        return not_answered(reason, None)
    return None
