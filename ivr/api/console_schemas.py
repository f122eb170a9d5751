"""JSON Schemas of the console's answers for its action and admin screens (stream tickets,
roster check, scenario preview, extensions, PINs, tokens, who am I); the rest of the API's
schemas are in `ivr.api.schemas`."""

from __future__ import annotations

from ivr.api.schemas import ESTIMATED, NUMBER_OR_NULL, STRING_OR_NULL, Schema


def _list_of(properties: Schema, required: list[str]) -> Schema:
    """An array of objects with these properties."""
    item = {"type": "object", "properties": properties, "required": required}
    return {"type": "array", "items": item}


STREAM_TICKET: Schema = {
    "type": "object",
    "properties": {
        "ticket": {"type": "string", "description": "for `?ticket=` of the stream, once"},
        "expires_in": {"type": "integer", "description": "seconds"},
    },
    "required": ["ticket", "expires_in"],
}
_COUNTS = {"type": "object", "additionalProperties": {"type": "integer"}}
ROSTER_CHECKED: Schema = {
    "type": "object",
    "properties": {
        "count": {"type": "integer"},
        "roles": _COUNTS,
        "units": _COUNTS,
        "added": {"type": "integer", "description": "ids not in the roster in force"},
        "removed": {"type": "integer", "description": "ids of the roster in force not in it"},
        "current": {"type": "object"},
    },
    "required": ["count", "roles", "units", "added", "removed"],
}
SCENARIO_PREVIEW: Schema = {
    "type": "object",
    "properties": {
        "key": {"type": "string"},
        "name": {"type": "string"},
        "labels": {"type": "object"},
        "messages": {"type": "object"},
        "quotas": _COUNTS,
        "targets": {"type": "integer"},
        "on_call": {"type": "integer"},
        "by_role": _COUNTS,
        "by_unit": _COUNTS,
        "groups": {"type": "array", "items": {"type": "object"}},
        "estimate": ESTIMATED,
    },
    "required": ["key", "name", "messages", "targets", "by_role", "by_unit", "estimate"],
}
EXTENSIONS: Schema = {
    "type": "object",
    "properties": {
        "groups": {"type": "array", "items": {"type": "object"}},
        "roles": _COUNTS,
        "units": _COUNTS,
    },
    "required": ["groups", "roles", "units"],
}
PIN_HOLDERS: Schema = {
    "type": "object",
    "properties": {
        "items": _list_of(
            {
                "id": {"type": "string"},
                "name": STRING_OR_NULL,
                "role": STRING_OR_NULL,
                "unit": STRING_OR_NULL,
                "in_roster": {"type": "boolean"},
            },
            ["id", "in_roster"],
        ),
        "roster": {"type": "integer", "description": "people in the roster in force"},
    },
    "required": ["items", "roster"],
}
TOKENS: Schema = {
    "type": "object",
    "properties": {
        "items": _list_of(
            {
                "name": {"type": "string"},
                "role": {"enum": ["viewer", "operator", "admin"]},
                "created_at": {"type": "number"},
                "revoked_at": NUMBER_OR_NULL,
            },
            ["name", "role", "created_at"],
        )
    },
    "required": ["items"],
}
TOKEN_CREATED: Schema = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "role": {"type": "string"},
        "token": {"type": "string", "description": "shown this once: only its digest is kept"},
    },
    "required": ["name", "role", "token"],
}
TOKEN_REVOKED: Schema = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "revoked": {"const": True}},
    "required": ["name", "revoked"],
}
WHOAMI: Schema = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "role": {"enum": ["viewer", "operator", "admin"]}},
    "required": ["name", "role"],
}
ROSTER_SUMMARY: Schema = {
    "type": "object",
    "properties": {
        "version": STRING_OR_NULL,
        "total": {"type": "integer"},
        "roles": _COUNTS,
        "units": _COUNTS,
    },
    "required": ["version", "total", "roles", "units"],
}
_STATE = {"enum": ["ok", "warning", "critical", "unknown"]}
_WORKER = {
    "worker": {"type": "string"},
    "in_flight": {"type": "integer", "description": "channels in use"},
    "capacity": {"type": "integer"},
    "ami_up": {"type": "boolean"},
    "heard_s_ago": {"type": "number", "description": "seconds since its last heartbeat"},
    "silent": {"type": "boolean", "description": "no heartbeat for three periods"},
}
_REPLICA = {
    "address": {"type": "string"},
    "state": STRING_OR_NULL,
    "lag_s": {"type": "integer"},
    "bytes_behind": {"type": "integer"},
}
_SENTINEL = {
    "sentinel": {"type": "string", "description": "its address"},
    "primary": {"type": "string", "description": "the primary it names"},
    "replicas": {"type": "integer"},
    "sentinels": {"type": "integer"},
    "down": {"type": "boolean", "description": "it sees that primary down"},
    "error": {"type": "string", "description": "instead of the rest: why it did not answer"},
}
CLUSTER: Schema = {
    "type": "object",
    "properties": {
        "status": _STATE,
        "checks": _list_of(
            {"name": {"type": "string"}, "state": _STATE, "summary": {"type": "string"}},
            ["name", "state", "summary"],
        ),
        "where": {"type": "string", "description": "Redis as configured, secrets masked"},
        "sites": {
            "type": "object",
            "description": "the workers of each site, by Asterisk name",
            "additionalProperties": _list_of(_WORKER, list(_WORKER)),
        },
        "redis": {
            "type": "object",
            "properties": {
                "primary": {**STRING_OR_NULL, "description": "null without Sentinel"},
                "role": STRING_OR_NULL,
                "replicas": _list_of(_REPLICA, list(_REPLICA)),
            },
            "required": ["primary", "role", "replicas"],
        },
        "sentinel": {
            "description": "null without Sentinel (one Redis server, IVR_REDIS_URL)",
            "anyOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "properties": {
                        "master": {"type": "string"},
                        "sentinels": _list_of(_SENTINEL, ["sentinel"]),
                    },
                    "required": ["master", "sentinels"],
                },
            ],
        },
    },
    "required": ["status", "checks", "where", "sites", "redis", "sentinel"],
}
