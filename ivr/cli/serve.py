"""`ivr serve`: the console, the REST API and the metrics."""

from __future__ import annotations

import argparse
import asyncio

from ivr.api.app import serve
from ivr.cli.common import Commands
from ivr.config import load_config


def register(commands: Commands) -> None:
    serve_cmd = commands.add_parser(
        "serve", help="serve the console and its API (IVR_HTTP_HOST, IVR_HTTP_PORT)"
    )
    serve_cmd.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    asyncio.run(serve(load_config(require_ami_credentials=False)))
    return 0
