"""Where Redis is, as IVR_REDIS_URL, IVR_REDIS_SENTINELS and IVR_REDIS_SENTINEL_MASTER say
(`ivr.config` reads them through these parsers; `ivr.db` connects)."""

from __future__ import annotations

import re

from ivr.errors import ConfigError


def redis_url(raw: str) -> str:
    if not re.match(r"(redis|rediss|unix)://", raw):
        raise ConfigError(f"IVR_REDIS_URL: expected redis://host:port/db, got {raw!r}")
    return raw


def sentinels(raw: str) -> tuple[tuple[str, int], ...]:
    """`host:port,host:port,...` ("[::1]:26379" for an IPv6 address)."""
    out: list[tuple[str, int]] = []
    for item in (i.strip() for i in raw.split(",")):
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        host = host.strip("[]") if host.startswith("[") and host.endswith("]") else host
        valid_host = re.fullmatch(r"[A-Za-z0-9._\-]{1,253}|[0-9A-Fa-f:.]{2,45}", host)
        if not sep or not valid_host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ConfigError(
                f"IVR_REDIS_SENTINELS: expected host:port,host:port,..., got {item!r}"
            )
        out.append((host, int(port)))
    if not out:
        raise ConfigError("IVR_REDIS_SENTINELS: expected host:port,host:port,..., got nothing")
    if len(set(out)) != len(out):
        raise ConfigError("IVR_REDIS_SENTINELS: a Sentinel is listed twice")
    return tuple(out)


def sentinels_text(sentinels: tuple[tuple[str, int], ...]) -> str:
    """IVR_REDIS_SENTINELS as written: `host:port,[v6::addr]:port`."""
    return ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in sentinels)


def sentinel_master(raw: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9._\-]{1,64}", raw):
        raise ConfigError(
            "IVR_REDIS_SENTINEL_MASTER: expected the name Sentinel monitors "
            f"(letters, digits, '.', '_', '-'), got {raw!r}"
        )
    return raw
