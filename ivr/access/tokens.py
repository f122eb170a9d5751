"""Per-operator API tokens: created once, stored hashed in Redis, revocable.

A token is `ivr_` and 32 random bytes (URL-safe base64). Only its SHA-256 digest is stored:
someone who reads Redis cannot use the API. A digest of 256 random bits needs no salt or slow
hash, and looking it up by digest compares no secret byte by byte.

Roles are ordered: a viewer reads, an operator also starts and stops campaigns, an admin also
manages rosters and reads the audit log (tokens are managed on the server: `ivr token`).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

from redis.asyncio import Redis

from ivr.errors import IvrError
from ivr.keys import token_hashes_key, token_names_key

#: What every token starts with: easy to recognise in a leaked file or a secret scanner.
TOKEN_PREFIX = "ivr_"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
# What a token of ours looks like: anything else is refused before it is hashed.
_TOKEN = re.compile(r"ivr_[A-Za-z0-9_-]{20,100}")


class Role(StrEnum):
    """What a token may do; each role may do everything the roles before it may."""

    #: Reads rosters, campaigns, reports.
    viewer = "viewer"
    #: Also starts, stops and raises the quotas of campaigns.
    operator = "operator"
    #: Also imports rosters and reads the audit log.
    admin = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        """True if this role may do what `needed` may."""
        return self.rank >= needed.rank


class TokenError(IvrError):
    """A token cannot be created or revoked as asked (bad name, name taken, unknown name)."""

    error_id = "token_error"
    exit_code = 2


class TokenNotFound(TokenError):
    """No live token has this name."""

    error_id = "token_not_found"


@dataclass(frozen=True)
class TokenInfo:
    """A token as listed: never its secret."""

    name: str
    role: Role
    #: Unix time of creation.
    created_at: float
    #: Unix time of revocation; None while the token is live.
    revoked_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role.value,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


def digest(token: str) -> str:
    """The SHA-256 hex digest stored for `token`."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_role(raw: str) -> Role:
    try:
        return Role(raw)
    except ValueError:
        names = ", ".join(r.value for r in Role)
        raise TokenError(f"token: role must be one of {names}, got {raw!r}") from None


# Creates a name's token unless the name already has a live one.
_CREATE = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
"""
# Marks a name's token revoked and frees the name; returns the digest, or false if unknown.
_REVOKE = """
local d = redis.call('HGET', KEYS[2], ARGV[1])
if not d then return false end
local raw = redis.call('HGET', KEYS[1], d)
if raw then
  local info = cjson.decode(raw)
  info.revoked_at = tonumber(ARGV[2])
  redis.call('HSET', KEYS[1], d, cjson.encode(info))
end
redis.call('HDEL', KEYS[2], ARGV[1])
return d
"""


class TokenStore:
    """The API tokens in Redis (`token_hashes_key`, `token_names_key`)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._create = redis.register_script(_CREATE)
        self._revoke = redis.register_script(_REVOKE)

    async def create(self, name: str, role: Role) -> str:
        """Create a token for `name`; return it. It is not stored: show it once."""
        if not _NAME.fullmatch(name):
            raise TokenError(
                f"token: name {name!r} must be 1-64 letters, digits, '_', '.', '@' or '-'"
            )
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        info = {"name": name, "role": role.value, "created_at": round(time.time(), 3)}
        created = await self._create(
            keys=[token_hashes_key, token_names_key],
            args=[name, digest(token), json.dumps(info)],
        )
        if not created:
            raise TokenError(f"token: {name!r} already has a token; revoke it first")
        return token

    async def list(self) -> list[TokenInfo]:
        """The live tokens, by name."""
        names = cast(dict[str, str], await self._redis.hgetall(token_names_key))
        if not names:
            return []
        ordered = sorted(names)
        raws = cast(
            list[str | None],
            await self._redis.hmget(token_hashes_key, [names[n] for n in ordered]),
        )
        return [_info(raw) for raw in raws if raw is not None]

    async def revoke(self, name: str) -> None:
        """Revoke `name`'s token at once; TokenError if it has none."""
        if not await self._revoke(
            keys=[token_hashes_key, token_names_key], args=[name, round(time.time(), 3)]
        ):
            raise TokenNotFound(f"token: no live token named {name!r}")

    async def lookup(self, token: str) -> TokenInfo | None:
        """The token's record (revoked ones included, see `revoked_at`); None if unknown."""
        if not _TOKEN.fullmatch(token):
            return None
        return await self.lookup_digest(digest(token))

    async def lookup_digest(self, token_digest: str) -> TokenInfo | None:
        """The record of the token whose digest is `token_digest`; None if unknown."""
        raw = cast(str | None, await self._redis.hget(token_hashes_key, token_digest))
        return None if raw is None else _info(raw)


def _info(raw: str) -> TokenInfo:
    record = json.loads(raw)
    return TokenInfo(
        name=record["name"],
        role=Role(record["role"]),
        created_at=float(record["created_at"]),
        revoked_at=None if record.get("revoked_at") is None else float(record["revoked_at"]),
    )
