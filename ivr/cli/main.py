"""The `ivr` command line: each command module registers its own subcommand; errors become one
clear line on stderr and the exit code of their class (`ivr.errors`): 2 configuration and
input, 3 Asterisk, 4 speech, 5 sandbox, 6 Redis unreachable, 130 interrupted."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from redis.exceptions import RedisError

from ivr import __version__, logs
from ivr.cli import (
    call,
    campaign,
    config,
    demo,
    health,
    pin,
    prompts,
    roster,
    sandbox,
    selftest,
    serve,
    status,
    token,
    worker,
)
from ivr.config import log_format
from ivr.errors import IvrError
from ivr.redact import redact, safe_url

#: The command modules, in the order `ivr --help` lists them.
COMMANDS = (
    call, demo, sandbox, config, health, status, selftest, prompts, roster, campaign, serve,
    token, pin, worker,
)  # fmt: skip
#: Exit code when Redis cannot be reached.
REDIS_EXIT = 6


def parser() -> argparse.ArgumentParser:
    """The whole command line, from each command module's `register()`."""
    top = argparse.ArgumentParser(
        prog="ivr", description="Crisis call-out server for hospitals (plan blanc)."
    )
    top.add_argument("--version", action="version", version=f"ivr {__version__}")
    top.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    commands = top.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.register(commands)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `ivr` command; return its exit code."""
    args = parser().parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    run: Callable[[argparse.Namespace], int] = args.func
    try:
        logs.configure(level, log_format())
        return run(args)
    except IvrError as exc:
        print(f"ivr: error: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except RedisError as exc:
        # Only the commands that need Redis get here: say which server, not a traceback.
        url = os.environ.get("IVR_REDIS_URL", "the configured Redis")
        where, key = safe_url(url), "IVR_REDIS_URL"
        if os.environ.get("IVR_REDIS_SENTINELS", "").strip():
            where = f"Sentinels {os.environ['IVR_REDIS_SENTINELS'].strip()}"
            key = "IVR_REDIS_SENTINELS"
        print(f"ivr: error: Redis ({where}): {redact(str(exc))} ({key})", file=sys.stderr)
        return REDIS_EXIT
    except KeyboardInterrupt:
        print("ivr: interrupted", file=sys.stderr)
        return 130
