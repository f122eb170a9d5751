"""Where one person stands in a campaign: the scheduler's per-person state, typed.

The scheduler's Lua scripts (`ivr.campaign.scheduler`, `ivr.campaign.ops`) read and write this
state as compact JSON in one hash field per person (`ivr:campaign:<id>:state`); Python code
reads it through `PersonState.decode` and writes the initial one with `PersonState.queued`, so
the short keys are spelt out here once:

    s   q/c/m/d: queued, calling, waiting on  n    attempts made
        an SMS step of the plan, done
    ph  index of the phone to dial next       rd   step of the delivery plan (0-based)
    ix  index in the campaign (attempt ids)   o    final outcome, once done
    w   worker holding the call               a    the Asterisk it was placed on
    ft  finished at (ms)                      eta  minutes to arrival keyed after 1
    esc id of the person this one backs up    cb   1: answered on the callback line
    sr  1: answered by SMS reply              lo   the last call's outcome (plan over on SMS)

The person's own record (name, role, phones...) is the roster's compact `Person` JSON
(`ivr.staff.roster.Person.to_json`), kept per campaign in `ivr:campaign:<id>:people`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ivr.outcomes import Outcome

#: The `s` letters, spelt out.
STATUSES = {"q": "queued", "c": "calling", "m": "sms", "d": "done"}


@dataclass(frozen=True, slots=True)
class PersonState:
    """One person's progress through a campaign (see the module docstring for the keys)."""

    status: str = "q"
    attempts: int = 0
    phone: int = 0
    round: int = 0
    index: int = 0
    outcome: Outcome | None = None
    worker: str = ""
    asterisk: str = ""
    finished_ms: int | None = None
    eta: int | None = None
    backup_for: str | None = None
    callback: bool = False
    sms_reply: bool = False

    @property
    def answered(self) -> bool:
        """True once the person gave an answer (1 or 2): never called again for it."""
        return self.outcome is not None and self.outcome.reached

    @property
    def answered_by(self) -> str | None:
        """How the answer came: "sms", "callback" (the line) or "voice" (a key on a call)."""
        if not self.answered:
            return None
        return "sms" if self.sms_reply else "callback" if self.callback else "voice"

    @property
    def status_name(self) -> str:
        return STATUSES.get(self.status, "unknown")

    @classmethod
    def decode(cls, raw: str | None) -> PersonState:
        """The state from its JSON (an absent field: a person not in the campaign, all
        defaults)."""
        st: dict[str, Any] = json.loads(raw) if raw else {}
        outcome = st.get("o")
        return cls(
            status=str(st.get("s", "q")),
            attempts=int(st.get("n", 0)),
            phone=int(st.get("ph", 0)),
            round=int(st.get("rd", 0)),
            index=int(st.get("ix", 0)),
            outcome=Outcome(outcome) if outcome else None,
            worker=str(st.get("w", "")),
            asterisk=str(st.get("a", "")),
            finished_ms=int(st["ft"]) if st.get("ft") is not None else None,
            eta=int(st["eta"]) if st.get("eta") is not None else None,
            backup_for=st.get("esc"),
            callback=bool(st.get("cb")),
            sms_reply=bool(st.get("sr")),
        )

    @staticmethod
    def queued(index: int) -> str:
        """The JSON of a person just added at `index`, waiting for their first call."""
        return json.dumps({"s": "q", "n": 0, "ph": 0, "rd": 0, "ix": index})
