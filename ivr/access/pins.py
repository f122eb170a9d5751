"""Personal PINs for the phone lines, stored hashed, with a lockout after wrong attempts.

A director keys only a PIN, so a PIN must find its owner in one step: it is hashed with scrypt
under one random salt of the installation (kept in Redis), and the digest is the key of a
hash digest -> staff id. Every check costs one scrypt whether or not the PIN exists (~50 ms,
in a thread), so timing tells nothing; a copy of Redis costs an attacker that much per guess
(per-person salts would make every check try every director's hash). Use PINs of 6 digits
or more; `ivr pin set` draws one when none is given.

Wrong PINs are counted per caller ID ("anonymous" when withheld) over the lockout window;
the third locks that caller out for the window and writes an audit event. Caller ids can be
forged, so wrong PINs are also counted from all callers: past FLOOD_FAILURES in the window
every wrong answer is slowed down (`PinCheck.slow_down`) and `pin.flood` is audited once. Nobody
is locked out for it: a director with the right PIN still gets in during an attack.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import cast

from redis.asyncio import Redis

from ivr import keys
from ivr.access import audit
from ivr.errors import IvrError

PIN_RE = re.compile(r"[0-9]{4,12}")
#: Wrong PINs from one caller before the lockout.
MAX_FAILURES = 3
#: Wrong PINs from all callers in the window past which every wrong answer is slowed down.
FLOOD_FAILURES = 20
#: Seconds a wrong answer waits during a flood (a guess per call costs that much line time).
FLOOD_DELAY = 5.0
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


class PinError(IvrError):
    """A PIN cannot be set as asked."""

    error_id = "pin_error"
    exit_code = 2


@dataclass(frozen=True)
class PinCheck:
    """The result of one PIN entry."""

    #: The owner's staff id, or None for a wrong PIN (or a locked-out caller).
    person: str | None
    #: Wrong PINs from this caller in the window, this one included.
    failures: int = 0
    #: Seconds the caller stays locked out (0: not locked).
    locked_for: int = 0
    #: Seconds to wait before saying the PIN is wrong (a flood of wrong PINs is on).
    slow_down: float = 0.0


def generate_pin(length: int = 6) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(length))


class PinStore:
    """PINs in Redis: `keys.pin_*` keys."""

    def __init__(self, redis: Redis, *, lockout: int = 900) -> None:
        self.redis = redis
        self.lockout = lockout

    async def _digest(self, pin: str) -> str:
        salt = await self.redis.get(keys.pin_salt_key)
        if salt is None:
            await self.redis.set(keys.pin_salt_key, secrets.token_hex(16), nx=True)
            salt = await self.redis.get(keys.pin_salt_key)
        raw = await asyncio.to_thread(
            hashlib.scrypt, pin.encode(), salt=bytes.fromhex(cast(str, salt)), **_SCRYPT
        )
        return raw.hex()

    async def set(self, person: str, pin: str) -> None:
        """Give `person` the PIN `pin` (replacing theirs); PINs are unique."""
        if not PIN_RE.fullmatch(pin):
            raise PinError("a PIN is 4 to 12 digits (6 or more recommended)")
        digest = await self._digest(pin)
        owner = await self.redis.hget(keys.pins_key, digest)
        if owner is not None and owner != person:
            raise PinError("this PIN is taken: choose another one")
        old = await self.redis.hget(keys.pin_owners_key, person)
        pipe = self.redis.pipeline(transaction=True)
        if old is not None and old != digest:
            pipe.hdel(keys.pins_key, old)
        pipe.hset(keys.pins_key, digest, person)
        pipe.hset(keys.pin_owners_key, person, digest)
        await pipe.execute()

    async def remove(self, person: str) -> bool:
        old = await self.redis.hget(keys.pin_owners_key, person)
        if old is None:
            return False
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(keys.pins_key, old)
        pipe.hdel(keys.pin_owners_key, person)
        await pipe.execute()
        return True

    async def holders(self) -> list[str]:
        """Staff ids that have a PIN."""
        return sorted(cast(list[str], await self.redis.hkeys(keys.pin_owners_key)))

    async def locked_for(self, caller: str) -> int:
        """Seconds `caller` stays locked out (0: free to try)."""
        ttl = int(await self.redis.ttl(keys.pin_lock_prefix + _caller(caller)))
        return max(ttl, 0)

    async def check(self, pin: str, caller: str, *, line: str) -> PinCheck:
        """Check a PIN keyed by `caller` on `line`; count a failure, lock out on the third."""
        who = _caller(caller)
        # Hash even a malformed or locked-out entry: every answer takes the same time.
        digest = await self._digest(pin if PIN_RE.fullmatch(pin) else "x" + pin)
        locked = await self.locked_for(caller)
        if locked:
            return PinCheck(None, MAX_FAILURES, locked)
        person = cast(str | None, await self.redis.hget(keys.pins_key, digest))
        if person is not None:
            await self.redis.delete(keys.pin_fail_prefix + who)
            return PinCheck(person)
        key = keys.pin_fail_prefix + who
        pipe = self.redis.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, self.lockout)
        pipe.incr(keys.pin_fail_all_key)
        pipe.expire(keys.pin_fail_all_key, self.lockout, nx=True)
        got = await pipe.execute()
        failures, everyone = int(got[0]), int(got[2])
        await audit.record(
            self.redis, f"phone:{who}", "pin.wrong", target=line, details={"failures": failures}
        )
        slow_down = 0.0
        if everyone > FLOOD_FAILURES:
            slow_down = FLOOD_DELAY
            if await self.redis.set(keys.pin_flood_key, "1", ex=self.lockout, nx=True):
                details = {"failures": everyone, "seconds": self.lockout}
                await audit.record(self.redis, "phone:*", "pin.flood", target=line, details=details)
        if failures < MAX_FAILURES:
            return PinCheck(None, failures, slow_down=slow_down)
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(keys.pin_lock_prefix + who, "1", ex=self.lockout)
        pipe.delete(key)
        await pipe.execute()
        await audit.record(
            self.redis,
            f"phone:{who}",
            "pin.lockout",
            target=line,
            details={"failures": failures, "seconds": self.lockout},
        )
        return PinCheck(None, failures, self.lockout, slow_down)


def _caller(caller: str) -> str:
    # Caller ids come from the network: keep them to what a number holds.
    cleaned = re.sub(r"[^0-9+]", "", caller)[:32]
    return cleaned or "anonymous"
