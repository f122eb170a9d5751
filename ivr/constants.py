"""Every Redis key name and prefix, in one place: code, tests and scripts import these."""

from __future__ import annotations

#: Prefix of every key the service writes.
PREFIX = "ivr:"

# -- roster -------------------------------------------------------------------------------
#: String: the version id of the roster in force.
roster_current_key = "ivr:roster:current"
#: Hash per roster version: person id -> compact JSON of the person.
roster_people_prefix = "ivr:roster:people:"

# -- campaigns ----------------------------------------------------------------------------
#: Sorted set of campaign ids, scored by creation time.
campaigns_key = "ivr:campaigns"
#: Set of the ids of running campaigns (the scheduler's Lua names it too).
active_campaigns_key = "ivr:campaigns:active"
#: Counter that numbers campaigns: ids are short numbers a director can hear and key in.
campaign_seq_key = "ivr:campaigns:seq"
#: Hash per campaign: its definition and lifecycle fields.
campaign_prefix = "ivr:campaign:"
#: Pub/sub channel that wakes the dialer workers when there is new work.
wake_channel = "ivr:wake"
#: Hash: worker id -> heartbeat JSON (asterisk, capacity, in flight, last seen).
workers_key = "ivr:workers"


def campaign_key(cid: str, part: str = "") -> str:
    """`ivr:campaign:<cid>` or `ivr:campaign:<cid>:<part>` (people, state, due:<tier>, ...)."""
    return f"{campaign_prefix}{cid}:{part}" if part else f"{campaign_prefix}{cid}"
