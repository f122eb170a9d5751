"""The audit log: every write through the API or the token commands, with who and when.

One Redis stream (`constants.audit_key`). An entry holds who (a token name, or `cli:<user>`
for commands run on the server), their role, the action (`campaign.start`, `roster.import`...),
its target (a campaign id, a token name...) and a few details as JSON. The stream is trimmed to
about MAX_ENTRIES, far more than a crisis and its drills write.
"""

from __future__ import annotations

import getpass
import json
import secrets
import time
from typing import Any, cast

from redis.asyncio import Redis

from ivr.keys import audit_key, audit_written_prefix

#: Entries kept (approximately: Redis trims whole blocks).
MAX_ENTRIES = 100_000
#: Entries a filtered search reads at most per call before it hands back a cursor.
SEARCH_SCAN = 20_000
_BATCH = 1000
#: Seconds an entry's token is kept: far longer than any resend of the command.
TOKEN_SECONDS = 3600
# KEYS: audit token ; ARGV: ttl maxlen field value...
_RECORD = r"""
local done = redis.call('GET', KEYS[2])
if done then return done end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
redis.call('SET', KEYS[2], id, 'EX', tonumber(ARGV[1]))
return id
"""


async def record(
    redis: Redis,
    who: str,
    action: str,
    *,
    role: str = "",
    target: str = "",
    details: dict[str, Any] | None = None,
) -> str:
    """Append one entry; return its stream id. Once, even when the command is sent again after
    its reply was lost (through Sentinel, at a failover): the entry's own token says it is in."""
    fields = {
        "who": who,
        "role": role,
        "action": action,
        "target": target,
        "details": json.dumps(details or {}, ensure_ascii=False, separators=(",", ":")),
        "t": int(time.time() * 1000),
    }
    token = audit_written_prefix + secrets.token_hex(8)
    flat = [str(v) for pair in fields.items() for v in pair]
    keys_ = (audit_key, token)
    return str(await redis.eval(_RECORD, 2, *keys_, TOKEN_SECONDS, MAX_ENTRIES, *flat))


def cli_user() -> str:
    """Who runs a command on the server, as the audit log names them."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


async def entries(
    redis: Redis, *, before: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Newest first: up to `limit` entries older than the entry id `before` (or the newest)."""
    if before is not None and before.strip("0-") == "":
        return []  # nothing is older than 0-0 (and Redis refuses the range "(0-0")
    newest = "+" if before is None else f"({before}"
    got = await redis.xrevrange(audit_key, max=newest, min="-", count=limit) or []
    return [_entry(entry_id, raw) for entry_id, raw in got]


def _entry(entry_id: Any, raw: Any) -> dict[str, Any]:
    fields = cast(dict[str, str], raw)
    return {
        "id": str(entry_id),
        "at": int(fields.get("t", "0")) / 1000,
        "who": fields.get("who", ""),
        "role": fields.get("role", ""),
        "action": fields.get("action", ""),
        "target": fields.get("target", ""),
        "details": json.loads(fields.get("details") or "{}"),
    }


async def search(
    redis: Redis,
    *,
    before: str | None = None,
    limit: int = 100,
    action: str | None = None,
    who: str | None = None,
    target: str | None = None,
    scan: int = SEARCH_SCAN,
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first: up to `limit` entries older than `before` whose action starts with
    `action` ("campaign." or "campaign.start"), by `who`, on `target` (None: any).

    Returns (entries, cursor): the cursor is the `before` of the next call, None at the end
    of the log. At most `scan` entries are read per call: a filter that matches little hands
    back fewer entries and a cursor, never a request that reads the whole log.
    """
    wanted = {"who": who, "target": target}
    found: list[dict[str, Any]] = []
    cursor = before
    read = 0
    while read < scan:
        if cursor is not None and cursor.strip("0-") == "":
            return found, None
        newest = "+" if cursor is None else f"({cursor}"
        count = min(_BATCH, scan - read)
        got = await redis.xrevrange(audit_key, max=newest, min="-", count=count) or []
        for entry_id, raw in got:
            read += 1
            cursor = str(entry_id)
            entry = _entry(entry_id, raw)
            if action is not None and not entry["action"].startswith(action):
                continue
            if any(value is not None and entry[k] != value for k, value in wanted.items()):
                continue
            found.append(entry)
            if len(found) == limit:
                return found, cursor
        if len(got) < count:
            return found, None
    return found, cursor
