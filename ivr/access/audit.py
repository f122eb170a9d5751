"""The audit log: every write through the API or the token commands, with who and when.

One Redis stream (`constants.audit_key`). An entry holds who (a token name, or `cli:<user>`
for commands run on the server), their role, the action (`campaign.start`, `roster.import`...),
its target (a campaign id, a token name...) and a few details as JSON. The stream is trimmed to
about MAX_ENTRIES, far more than a crisis and its drills write.
"""

from __future__ import annotations

import getpass
import json
import time
from typing import Any, cast

from redis.asyncio import Redis

from ivr.keys import audit_key

#: Entries kept (approximately: Redis trims whole blocks).
MAX_ENTRIES = 100_000


async def record(
    redis: Redis,
    who: str,
    action: str,
    *,
    role: str = "",
    target: str = "",
    details: dict[str, Any] | None = None,
) -> str:
    """Append one entry; return its stream id."""
    fields = {
        "who": who,
        "role": role,
        "action": action,
        "target": target,
        "details": json.dumps(details or {}, ensure_ascii=False, separators=(",", ":")),
        "t": int(time.time() * 1000),
    }
    return str(await redis.xadd(audit_key, cast(Any, fields), maxlen=MAX_ENTRIES, approximate=True))


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
    out: list[dict[str, Any]] = []
    for entry_id, raw in got:
        fields = cast(dict[str, str], raw)
        out.append(
            {
                "id": str(entry_id),
                "at": int(fields.get("t", "0")) / 1000,
                "who": fields.get("who", ""),
                "role": fields.get("role", ""),
                "action": fields.get("action", ""),
                "target": fields.get("target", ""),
                "details": json.loads(fields.get("details") or "{}"),
            }
        )
    return out
