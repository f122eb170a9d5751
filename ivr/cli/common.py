"""What the command modules share: the Redis client of a command, JSON printing, the type of
the subcommand registry."""

from __future__ import annotations

import argparse
import contextlib
import json
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

from redis.asyncio import Redis

from ivr.config import Config
from ivr.db import connect

#: Where each command module adds its subcommand (`register(commands)`).
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


@contextlib.asynccontextmanager
async def redis_for(config: Config) -> AsyncIterator[Redis]:
    """The Redis client of one command, closed when it is done."""
    db = connect(config.redis_url)
    try:
        yield db
    finally:
        await db.aclose()


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def safe_url(url: str) -> str:
    """The URL with its password, if any, shown as `***` (for messages and `ivr config`)."""
    # urllib's parser, as redis-py's own: a password holding '@' or ':' is hidden whole, and
    # so is one given as `?password=` (redis-py takes it there too).
    parts = urllib.parse.urlsplit(url)
    if parts.password is not None:
        host = parts.netloc.rpartition("@")[2]
        url = url.replace(parts.netloc, f"{parts.username or ''}:***@{host}", 1)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "password" for key, _ in query):
        hidden = [(key, "***" if key == "password" else value) for key, value in query]
        url = f"{url.partition('?')[0]}?{urllib.parse.urlencode(hidden, safe='*')}"
    return url
