"""JSON Schemas of the API's bodies and answers.

The same schemas go into the OpenAPI document (`ivr.api.openapi`) and check each request
(`ivr.api.validate`), so the document cannot promise what the service refuses.
"""

from __future__ import annotations

from typing import Any

from ivr import limits
from ivr.campaign import progress

Schema = dict[str, Any]

#: A role as the roster spells it (ivr.staff.csvfile lowers and checks it).
ROLE = {"type": "string", "pattern": "^[a-z0-9_]{1,40}$"}
# Printable text without control characters (a line break in a name ends up in CSV reports).
_LINE = "^[^\\x00-\\x1f\\x7f]*$"
#: An alert text: what text-to-speech accepts.
MESSAGE = {
    "type": "string",
    "minLength": 1,
    "maxLength": limits.MESSAGE_CHARS,
    "pattern": "^[^\\x00]*$",
}

CAMPAIGN_FIELDS: dict[str, Schema] = {
    "messages": {
        "type": "object",
        "description": "The alert text per language; French is used for staff without theirs.",
        "properties": {"fr": MESSAGE, "en": MESSAGE},
        "additionalProperties": False,
        "minProperties": 1,
    },
    "name": {"type": "string", "maxLength": limits.NAME_CHARS, "pattern": _LINE},
    "roles": {"type": "array", "items": ROLE, "maxItems": 100},
    "units": {
        "type": "array",
        "items": {
            "type": "string",
            "minLength": 1,
            "maxLength": limits.NAME_CHARS,
            "pattern": _LINE,
        },
        "maxItems": 500,
    },
    "quotas": {
        "type": "object",
        "description": "role -> available answers needed; roles without one: everyone.",
        "propertyNames": ROLE,
        "additionalProperties": limits.QUOTA.schema(),
        "maxProperties": 100,
    },
    "drill": {"type": "boolean"},
    "ring_timeout": limits.RING_TIMEOUT.schema(),
    "attempts": limits.ATTEMPTS.schema(),
    "retry_delay": limits.RETRY_DELAY.schema(),
    "escalate": {"type": "boolean"},
    "amd": {"type": "boolean"},
    "ask_eta": {"type": "boolean"},
    "callback_number": {"type": "string", "maxLength": 40, "pattern": "^[0-9+*#() .-]*$"},
    "plan": {
        "type": "array",
        "description": "Delivery plan: voice, sms or voice+sms steps, one retry_delay apart; "
        "the first with voice. Absent: voice, sms, voice when the installation sends SMS, "
        "else `attempts` voice rounds.",
        "items": {"enum": ["voice", "sms", "voice+sms"]},
        "minItems": 1,
        "maxItems": 10,
    },
}
_UNITS = CAMPAIGN_FIELDS["units"]
#: More people to call when the campaign is extended: roles and/or units of the roster.
GROUP: Schema = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": limits.NAME_CHARS, "pattern": _LINE},
        "roles": CAMPAIGN_FIELDS["roles"],
        "units": _UNITS,
    },
    "additionalProperties": False,
}
CAMPAIGN_FIELDS["groups"] = {
    "type": "array",
    "description": "Groups called only when the campaign is extended, one at a time, in order.",
    "items": {**GROUP, "minProperties": 1},
    "maxItems": 9,
}

CAMPAIGN: Schema = {
    "type": "object",
    "properties": CAMPAIGN_FIELDS,
    "required": ["messages"],
    "additionalProperties": False,
}
ESTIMATE: Schema = {
    "type": "object",
    "properties": {
        **CAMPAIGN_FIELDS,
        "lines": limits.LINES.schema(),
    },
    "required": ["messages"],
    "additionalProperties": False,
}
QUOTA: Schema = {
    "type": "object",
    "properties": {"role": ROLE, "quota": limits.QUOTA.schema()},
    "required": ["role", "quota"],
    "additionalProperties": False,
}

EXTEND: Schema = {
    **GROUP,
    "description": "Empty: the campaign's next group. Otherwise the roles and/or units to add.",
}
SCENARIO_START: Schema = {
    "type": "object",
    "properties": {"drill": {"type": "boolean"}},
    "additionalProperties": False,
}

TOKEN_NEW: Schema = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"},
        "role": {"enum": ["viewer", "operator", "admin"]},
    },
    "required": ["name", "role"],
    "additionalProperties": False,
}

# -- answers ------------------------------------------------------------------------------

NUMBER_OR_NULL = {"type": ["number", "null"]}
STRING_OR_NULL = {"type": ["string", "null"]}


def page_of(item: Schema) -> Schema:
    """A page of `item`s: `{total, offset, limit, items}`."""
    return {
        "type": "object",
        "properties": {
            "total": {"type": "integer"},
            "offset": {"type": "integer"},
            "limit": {"type": "integer"},
            "items": {"type": "array", "items": item},
        },
        "required": ["total", "offset", "limit", "items"],
    }


def stream_of(item: Schema) -> Schema:
    """A page of a log: `{items, next}` (`next`: the cursor for the following page)."""
    return {
        "type": "object",
        "properties": {"items": {"type": "array", "items": item}, "next": STRING_OR_NULL},
        "required": ["items", "next"],
    }


ERROR: Schema = {
    "type": "object",
    "properties": {
        "error": {"type": "string", "description": "stable code, for programs"},
        "message": {"type": "string", "description": "for people"},
        "details": {"type": "object"},
        "problems": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"line": {"type": "integer"}, "field": {"type": "string"},
                               "reason": {"type": "string"}},
            },
        },
    },
    "required": ["error", "message"],
}  # fmt: skip
HEALTH: Schema = {
    "type": "object",
    "properties": {
        "status": {"enum": ["ok", "warning", "critical", "unknown"]},
        "redis": {"enum": ["up", "down"]},
        "ami": {"enum": ["up", "down", "unconfigured"]},
        "version": {"type": "string"},
        "checks": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "state": {"enum": ["ok", "warning", "critical", "unknown"]},
                    "summary": {"type": "string"},
                    "seconds": {"type": "number"},
                    "details": {"type": "object"},
                },
                "required": ["name", "state", "summary"],
            },
        },
    },
    "required": ["status", "redis", "ami", "checks"],
}
PERSON: Schema = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "role": {"type": "string"},
        "unit": {"type": "string"},
        "phones": {"type": "array", "items": {"type": "string"}},
        "language": {"type": "string"},
        "on_call": {"type": "boolean"},
        "backup": STRING_OR_NULL,
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["id", "name", "role", "phones"],
}
ROSTER_PAGE: Schema = {
    **page_of(PERSON),
    "properties": {**page_of(PERSON)["properties"], "version": STRING_OR_NULL},
}
ROSTER_IMPORTED: Schema = {
    "type": "object",
    "properties": {"version": {"type": "string"}, "count": {"type": "integer"}},
    "required": ["version", "count"],
}
CAMPAIGN_SUMMARY: Schema = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "status": {"type": "string"},
        "drill": {"type": "boolean"},
        "created_at": NUMBER_OR_NULL,
        "finished_at": NUMBER_OR_NULL,
        "total": {"type": "integer"},
        "pending": {"type": "integer"},
        "available": {"type": "integer"},
    },
    "required": ["id", "status"],
}
REPORT: Schema = {
    "type": "object",
    "description": "Counts per final outcome, per role against quota, and arrival forecast.",
    "properties": {
        "campaign": {"type": "string"},
        "name": {"type": "string"},
        "status": {
            "type": "string",
            "description": "running, done, stopped (by an operator) or failed (see reason)",
        },
        "reason": {"type": ["string", "null"], "description": "why a campaign failed"},
        "drill": {"type": "boolean"},
        "total": {"type": "integer"},
        "pending": {"type": "integer"},
        "in_flight": {"type": "integer"},
        "by_role": {"type": "object"},
        "forecast": {"type": "object"},
        "plan": {
            "type": "array",
            "items": {"type": "string"},
            "description": "the delivery plan: voice, sms, voice+sms steps",
        },
        "sms": {
            "type": "object",
            "description": "SMS steps sent (handed to the gateway), failed (refused), skipped "
            "(answered before, no SMS number, quota met), unknown (sender lost while sending), "
            "and answers given by SMS reply",
            "additionalProperties": {"type": "integer"},
        },
        "mail": {
            "type": "object",
            "description": "mails sent (accepted by the mail server) and failed",
            "additionalProperties": {"type": "integer"},
        },
    },
    "required": ["campaign", "status", "total", "by_role"],
}
STOPPED: Schema = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "status": {"type": "string"}},
    "required": ["id", "status"],
}
QUOTA_RAISED: Schema = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "role": {"type": "string"},
        "quota": {"type": "integer"},
        "old": {"type": "integer"},
    },
    "required": ["id", "role", "quota", "old"],
}
EXTENDED: Schema = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "added": {"type": "integer", "description": "people added (already in it: skipped)"},
        "group": {"type": "string"},
        "groups_left": {"type": "integer"},
    },
    "required": ["id", "added", "group", "groups_left"],
}
SCENARIO: Schema = {
    "type": "object",
    "properties": {
        "key": {"type": "string", "description": "its key on the trigger line's menu"},
        "name": {"type": "string"},
        "labels": {"type": "object"},
        "messages": {"type": "object"},
        "roles": {"type": "array", "items": {"type": "string"}},
        "units": {"type": "array", "items": {"type": "string"}},
        "quotas": {"type": "object"},
        "groups": {"type": "array", "items": GROUP},
        "targets": {"type": "integer", "description": "people of the roster it would call"},
    },
    "required": ["key", "name", "labels", "targets"],
}
SCENARIOS: Schema = {
    "type": "object",
    "properties": {"items": {"type": "array", "items": SCENARIO}},
    "required": ["items"],
}
ESTIMATED: Schema = {
    "type": "object",
    "properties": {
        "targets": {"type": "integer"},
        "message_seconds": {"type": "number"},
        "lines": {"type": "integer"},
        "calls": {"type": "integer"},
        "seconds_per_call": {"type": "number"},
        "total_minutes": {"type": "number"},
        "roles": {"type": "object"},
        "warnings": {"type": "array", "items": {"type": "string"}},
        "assumptions": {"type": "string"},
    },
    "required": ["targets", "calls", "total_minutes", "roles", "warnings"],
}
PLAN_ENTRY: Schema = {
    "type": "object",
    "description": "One channel of one step of the person's delivery plan (ivr.campaign.progress)",
    "properties": {
        "step": {"type": "integer", "description": "0-based"},
        "channel": {"enum": ["voice", "sms"]},
        "state": {"enum": list(progress.STATES)},
        "result": {**STRING_OR_NULL, "description": "done: the call's outcome or the SMS's"},
        "at": {**NUMBER_OR_NULL, "description": "done: when (Unix s); due: when it is due"},
    },
    "required": ["step", "channel", "state", "result", "at"],
}
CAMPAIGN_PERSON: Schema = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "role": {"type": "string"},
        "unit": {"type": "string"},
        "on_call": {"type": "boolean"},
        "state": {
            "enum": ["queued", "calling", "sms", "done", "unknown"],
            "description": "sms: waiting on an SMS step of the delivery plan",
        },
        "outcome": STRING_OR_NULL,
        "attempts": {"type": "integer"},
        "eta_minutes": {"type": ["integer", "null"]},
        "finished_at": NUMBER_OR_NULL,
        "backup_for": STRING_OR_NULL,
        "step": {"type": "integer", "description": "where the person is in the plan (0-based)"},
        "answered_by": {"enum": ["voice", "callback", "sms", None]},
        "plan": {"type": "array", "items": PLAN_ENTRY},
    },
    "required": ["id", "role", "state", "attempts", "plan"],
}
EVENT: Schema = {
    "type": "object",
    "description": "A stream entry: its id, `type` and `t` (Unix ms), other fields by type.",
    "properties": {"id": {"type": "string"}, "type": {"type": "string"}},
    "additionalProperties": {"type": "string"},
    "required": ["id"],
}
AUDIT_ENTRY: Schema = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "at": {"type": "number"},
        "who": {"type": "string"},
        "role": {"type": "string"},
        "action": {"type": "string"},
        "target": {"type": "string"},
        "details": {"type": "object"},
    },
    "required": ["id", "at", "who", "action"],
}
