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
#: String per campaign being created (an hour): the id its creation took (`store.new_id`).
campaign_creation_prefix = "ivr:campaigns:creating:"
#: Hash per campaign: its definition and lifecycle fields.
campaign_prefix = "ivr:campaign:"
#: Pub/sub channel that wakes the dialer workers when there is new work.
wake_channel = "ivr:wake"
#: Hash: worker id -> heartbeat JSON (asterisk, capacity, in flight, last seen).
workers_key = "ivr:workers"


def campaign_key(cid: str, part: str = "") -> str:
    """`ivr:campaign:<cid>` or `ivr:campaign:<cid>:<part>` (people, state, due:<tier>, ...)."""
    return f"{campaign_prefix}{cid}:{part}" if part else f"{campaign_prefix}{cid}"


#: Parts of a campaign's SMS keys (`campaign_key(cid, part)`), see `ivr.campaign.plan`: the SMS
#: steps due (sorted set of `<pid>:<step>` by due time), those being sent (by lease expiry),
#: and each step's fate (hash `<pid>:<step>` -> sending:<worker>/sent/failed/skipped/unknown:
#: a step is handed out once ever, so nobody gets the same SMS twice).
sms_due_part = "sms:due"
sms_sending_part = "sms:sending"
sms_jobs_part = "sms:jobs"
#: Part of a campaign: hash sender (worker/port) -> "<token> <pid>:<step>" of its last SMS claim, so
#: that a claim retried with its token (its answer lost at a failover) returns the same step.
sms_claims_part = "sms:claims"
#: Stream: SMS from numbers no campaign knows, or texts that are no answer (kept for audit).
sms_inbox_key = "ivr:sms:inbox"
#: Key per SMS an SMSC gave a message id (SMPP): `<campaign> <pid>:<step>`, for its delivery
#: receipt; they expire after three days.
sms_message_prefix = "ivr:sms:msg:"
#: Part of a campaign: hash `<pid>:<step>` -> the first delivery receipt's status.
sms_receipts_part = "sms:receipts"
#: Part of a campaign: hash staff id -> sending:<worker>/sent/failed of their informative mail
#: (one mail per person ever).
mail_part = "mail"
#: Key per inbound SMS (its SIP Call-ID), set by the one worker that handles it: every
#: worker on that Asterisk sees the event.
sms_seen_prefix = "ivr:sms:seen:"

# -- the director's call-back (ivr.campaign.recall) ----------------------------------------
#: Sorted set: "<campaign>:<event>:<number>" of each call-back to place, scored by when (ms).
#: Placing one pushes its score to the end of its lease: a worker that dies mid-call leaves it
#: due again then. Each call-back's own state is the campaign's `recalls` hash (its field is
#: "<event>:<number>"): created once (HSETNX), so an event calls each number once.
recalls_due_key = "ivr:recalls:due"


# -- console: API tokens and audit log ----------------------------------------------------
#: Hash: sha256 hex digest of an API token -> JSON {name, role, created_at[, revoked_at]}.
#: Revoked tokens stay here (marked) so that using one says "revoked", not "unknown".
token_hashes_key = "ivr:tokens:hashes"
#: Hash: token name -> digest of its live token (one live token per name).
token_names_key = "ivr:tokens:names"
#: Stream: every write through the API or the token commands (who, action, target, when).
audit_key = "ivr:audit"
#: String per audit entry written (an hour): its stream id (`ivr.access.audit.record`).
audit_written_prefix = "ivr:audit:written:"

# -- phone lines: PINs ------------------------------------------------------------------
#: String: the installation's random salt for PIN hashes (hex).
pin_salt_key = "ivr:pins:salt"
#: Hash: scrypt digest of a PIN -> staff id.
pins_key = "ivr:pins"
#: Hash: staff id -> the digest of their PIN (to replace or remove it).
pin_owners_key = "ivr:pins:owners"
#: Counter per caller id: wrong PINs in the lockout window.
pin_fail_prefix = "ivr:pins:fail:"
#: Key per caller id, set while that caller is locked out (its TTL is the time left).
pin_lock_prefix = "ivr:pins:lock:"
#: Counter: wrong PINs from every caller in the lockout window (guessing from many numbers).
pin_fail_all_key = "ivr:pins:fail-all"
#: Set while the flood is on (its audit event written once per window).
pin_flood_key = "ivr:pins:flood"

# -- health -------------------------------------------------------------------------------
#: Prefix of the short-lived keys `ivr health` writes and deletes to prove Redis is writable.
health_probe_prefix = "ivr:health:"

# -- console: live stream tickets ---------------------------------------------------------
#: String per ticket (key: the prefix and the ticket's sha256 hex digest), expiring with the
#: ticket: JSON {digest: the token's digest, campaign}. Deleted by its first use.
stream_ticket_prefix = "ivr:tickets:"
