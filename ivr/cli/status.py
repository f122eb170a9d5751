"""`ivr status`: the sites, their workers, Redis and the Sentinels at a glance."""

from __future__ import annotations

import argparse
import asyncio

from ivr.cli.common import Commands, print_json, redis_for
from ivr.config import load_config
from ivr.db import describe
from ivr.health.status import cluster_status, status_lines


def register(commands: Commands) -> None:
    status = commands.add_parser(
        "status", help="the sites and their workers, Redis's replicas, the Sentinels' view"
    )
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=lambda args: asyncio.run(run(args)))


async def run(args: argparse.Namespace) -> int:
    config = load_config(require_ami_credentials=False)
    async with redis_for(config) as db:
        status = await cluster_status(db)
    if args.json:
        print_json(status)
    else:
        print("\n".join(status_lines(status, describe(config))))
    return 0
