"""Short-lived, single-use tickets for the console's live stream.

A browser's EventSource cannot set an `Authorization` header, and a bearer token in a URL ends
up in proxy logs, browser history and access logs. So the page asks for a ticket with its token
in the header (`POST /api/campaigns/ID/stream-ticket`) and opens the stream with
`?ticket=...`: the ticket is good for that campaign only, for TICKET_SECONDS, once (Redis
`GETDEL`: two requests racing with one ticket cannot both get in). Only its SHA-256 digest is
stored, with the digest of the token it was issued to: the token is looked up again when the
ticket is used, so revoking a token also voids the tickets it got.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from typing import cast

from redis.asyncio import Redis

from ivr.keys import stream_ticket_prefix

#: Seconds a ticket stays usable: the page opens the stream at once.
TICKET_SECONDS = 30
#: What every ticket starts with (told apart from an API token at a glance).
TICKET_PREFIX = "ivrt_"
_TICKET = re.compile(r"ivrt_[A-Za-z0-9_-]{20,100}")


@dataclass(frozen=True)
class Ticket:
    """What a used ticket was issued for."""

    #: SHA-256 digest of the API token that asked for it.
    token_digest: str
    campaign: str


def _key(ticket: str) -> str:
    return stream_ticket_prefix + hashlib.sha256(ticket.encode("utf-8")).hexdigest()


class StreamTickets:
    """The tickets in Redis (`stream_ticket_prefix`)."""

    def __init__(self, redis: Redis, seconds: int = TICKET_SECONDS) -> None:
        self._redis = redis
        self.seconds = seconds

    async def issue(self, token_digest: str, campaign: str) -> str:
        """A new ticket for the holder of the token of `token_digest` to follow `campaign`."""
        ticket = TICKET_PREFIX + secrets.token_urlsafe(32)
        record = json.dumps({"digest": token_digest, "campaign": campaign})
        await self._redis.set(_key(ticket), record, ex=self.seconds)
        return ticket

    async def redeem(self, ticket: str) -> Ticket | None:
        """Use `ticket`: what it was issued for, or None if unknown, expired or used already."""
        if not _TICKET.fullmatch(ticket):
            return None
        raw = cast(str | None, await self._redis.getdel(_key(ticket)))
        if raw is None:
            return None
        record = json.loads(raw)
        return Ticket(token_digest=record["digest"], campaign=record["campaign"])
