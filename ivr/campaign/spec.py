"""What a campaign is asked to do: its message, its targets, its quotas and options.

`CampaignSpec` is what the crisis manager asks for (CLI, API, scenario file, the trigger
line); a campaign keeps it as JSON (`to_json`) and every part that reads it back gets the same
typed value (`from_json`), defaults included, so no reader restates them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from ivr import limits
from ivr.campaign import plan as plans
from ivr.errors import IvrError
from ivr.numbers import UNPRINTABLE, normalize_number
from ivr.staff.roster import Person

_ROLE = re.compile(r"[a-z0-9_]{1,40}")


class CampaignError(IvrError):
    """A campaign cannot be created, found or changed as asked."""

    error_id = "campaign_error"
    exit_code = 2


@dataclass(frozen=True)
class Group:
    """More people to call when the alert is extended ("the next group"): roles and units of
    the roster, as a campaign's own targets are given (both empty: nobody more)."""

    name: str = ""
    roles: tuple[str, ...] = ()
    units: tuple[str, ...] = ()


@dataclass(frozen=True)
class CampaignSpec:
    """What the crisis manager asks for."""

    #: Message text per language ("fr", "en"); French is used for a language without one.
    messages: dict[str, str]
    #: Recorded messages per language, paths relative to IVR_AUDIO_DIR (`Speaker.import_audio`);
    #: a recording replaces the text-to-speech of its language.
    recordings: dict[str, str] = field(default_factory=dict)
    name: str = "plan blanc"
    #: Roles to call (empty: every role); units likewise.
    roles: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    #: role -> how many `available` answers are needed; roles without a quota: everyone.
    quotas: dict[str, int] = field(default_factory=dict)
    drill: bool = False
    ring_timeout: int = 30
    #: Rounds over each person's numbers; within a round, alternate numbers are tried at once.
    attempts: int = 3
    retry_delay: int = 300
    escalate: bool = True
    amd: bool = True
    ask_eta: bool = True
    #: Spoken on answering machines: the number staff should call back.
    callback_number: str = ""
    #: Seconds the IVR waits for a key after the menu, and times it plays the message.
    key_wait: int = 6
    max_tries: int = 3
    #: Calls in flight for a role with a quota: at most this many times the answers still
    #: needed (0: no cap; over-mobilisation is then bounded by the lines only).
    overcall: float = 2.0
    #: Groups called only when the alert is extended, one at a time, in this order.
    groups: tuple[Group, ...] = ()
    #: The delivery plan (`ivr.campaign.plan`): steps such as ("voice", "sms", "voice"), one
    #: `retry_delay` apart; empty: `attempts` voice rounds (or `plan.DEFAULT` when the
    #: installation sends SMS, `with_default_plan`).
    plan: tuple[str, ...] = ()

    def validate(self) -> None:
        """Refuse what the workers could not run. The one check of every path that starts or
        prepares a campaign: the CLI, the API, the scenario file, the trigger line."""
        self._validate_messages()
        _text(self.name, "campaign name")
        for role, quota in self.quotas.items():
            if not _ROLE.fullmatch(role):
                raise CampaignError(f"campaign: quota role {role!r} is not a role name")
            _within(limits.QUOTA, quota, f"quota for {role}")
        for unit in self.units:
            _text(unit, "unit")
        _within(limits.RING_TIMEOUT, self.ring_timeout, "ring timeout")
        _within(limits.ATTEMPTS, self.attempts, "attempts")
        _within(limits.RETRY_DELAY, self.retry_delay, "retry delay")
        _within(limits.OVERCALL, self.overcall, "overcall")
        _within(limits.KEY_WAIT, self.key_wait, "key wait")
        _within(limits.MAX_TRIES, self.max_tries, "tries")
        if len(self.groups) > 9:
            raise CampaignError("campaign: at most 9 groups to extend to")
        for n, group in enumerate(self.groups, start=1):
            if not group.roles and not group.units:
                raise CampaignError(f"campaign: group {n} names no role and no unit")
            _text(group.name, f"group {n}'s name")
        if self.callback_number:
            normalize_number(self.callback_number)
        if self.plan:
            try:
                plans.validate(self.plan)
            except plans.PlanError as exc:
                raise CampaignError(str(exc)) from None

    def steps(self) -> tuple[str, ...]:
        """The plan the scheduler walks: the one given, or `attempts` voice rounds."""
        return self.plan or (plans.VOICE,) * self.attempts

    def with_default_plan(self, sms: bool) -> CampaignSpec:
        """This spec as an installation that can send SMS (`sms`) or not runs it: no plan
        gets `plan.DEFAULT` with SMS; without SMS, the plan's SMS steps are left out (a
        prepared scenario still calls when the gateway is not configured)."""
        if sms and not self.plan:
            return replace(self, plan=plans.DEFAULT)
        if not sms and plans.uses_sms(self.plan):
            return replace(self, plan=plans.without_sms(self.plan))
        return self

    def check_sms(self, sms: bool) -> None:
        """Refuse a plan asked for with SMS steps on an installation that cannot send SMS."""
        if not sms and plans.uses_sms(self.plan):
            raise CampaignError(
                "campaign: the delivery plan sends SMS but no SMS transport is configured "
                "(IVR_SMS_SIP_TO)"
            )

    def _validate_messages(self) -> None:
        if not any(t.strip() for t in self.messages.values()) and not self.recordings:
            raise CampaignError("campaign: a message text or a recording is required")
        for language in (*self.messages, *self.recordings):
            if language not in ("fr", "en"):
                raise CampaignError(f"campaign: unknown message language {language!r}")
        for language, text in self.messages.items():
            if len(text) > limits.MESSAGE_CHARS:
                raise CampaignError(
                    f"campaign: the {language} message is {len(text)} characters long "
                    f"({limits.MESSAGE_CHARS} at most, about five minutes of speech)"
                )
            if "\x00" in text:
                raise CampaignError(f"campaign: the {language} message holds a NUL character")
            # Speech says words and digits: punctuation alone renders silence (and the worker
            # could not place a single call).
            if text.strip() and not any(ch.isalpha() or ch in "0123456789" for ch in text):
                raise CampaignError(f"campaign: the {language} message has no word to say")

    def to_json(self) -> str:
        """How the campaign keeps its spec (the `spec` field of its hash)."""
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> CampaignSpec:
        """The spec a campaign was created with, from `to_json()`; fields added since then
        take their defaults."""
        raw: dict[str, Any] = json.loads(text)
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in raw.items() if k in known}
        for name in ("roles", "units", "plan"):
            values[name] = tuple(values.get(name) or ())
        values["groups"] = tuple(
            Group(g.get("name", ""), tuple(g.get("roles") or ()), tuple(g.get("units") or ()))
            for g in values.get("groups") or ()
        )
        return cls(**values)


def _within(bounds: limits.Range, value: float, what: str) -> None:
    if isinstance(value, bool) or not bounds.holds(value):
        raise CampaignError(f"campaign: {what} must be {bounds.describe()}, got {value}")


def _text(value: str, what: str) -> None:
    """A name shown in the console, the reports and the CSV: one line of printable text."""
    if len(value) > limits.NAME_CHARS:
        raise CampaignError(f"campaign: {what} is longer than {limits.NAME_CHARS} characters")
    if UNPRINTABLE.search(value):
        raise CampaignError(f"campaign: {what} holds a control or invisible format character")


def select(people: Iterable[Person], spec: CampaignSpec | Group) -> list[Person]:
    """The people a campaign (or one of its groups) targets: its roles and its units."""
    roles = {r.lower() for r in spec.roles}
    units = {u.lower() for u in spec.units}
    return [
        p
        for p in people
        if (not roles or p.role in roles) and (not units or p.unit.lower() in units)
    ]
