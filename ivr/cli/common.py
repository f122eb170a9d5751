"""What the command modules share: the Redis client of a command, JSON printing, the type of
the subcommand registry."""

from __future__ import annotations

import argparse
import contextlib
import json
import re
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
    """The URL without its password, for messages."""
    return re.sub(r"//[^@/]*@", "//***@", url)
