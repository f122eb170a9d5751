"""`ivr selftest [ROUTE]...`: a test call through each route to a phone that presses 1."""

from __future__ import annotations

import argparse
import asyncio
import os

from ivr.cli.common import Commands, print_json
from ivr.config import load_config
from ivr.dialer.alerter import Alerter
from ivr.dialer.selftest import render, run_selftest
from ivr.errors import ConfigError


def register(commands: Commands) -> None:
    selftest = commands.add_parser(
        "selftest", help="call each route's test phone and check its key press comes back"
    )
    selftest.add_argument("targets", nargs="*", help="dial strings (default IVR_SELFTEST_TARGETS)")
    selftest.add_argument(
        "--busy",
        action="append",
        default=[],
        metavar="ROUTE",
        help="a dial string that answers busy: it must come back busy (IVR_SELFTEST_BUSY)",
    )
    selftest.add_argument("--key-wait", type=int, default=8, help="seconds to wait for the key")
    selftest.add_argument("--json", action="store_true", help="print the results as JSON")
    selftest.set_defaults(func=lambda args: asyncio.run(run(args)))


async def run(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    if args.targets:
        env["IVR_SELFTEST_TARGETS"] = ",".join(args.targets)
    if args.busy:
        env["IVR_SELFTEST_BUSY"] = ",".join(args.busy)
    config = load_config(env)
    if not config.selftest_targets and not config.selftest_busy:
        raise ConfigError("IVR_SELFTEST_TARGETS: no route to test (or name them on the line)")
    async with Alerter(config) as alerter:
        checks = await run_selftest(
            alerter, config.selftest_targets, busy=config.selftest_busy, key_wait=args.key_wait
        )
    if args.json:
        print_json([c.as_dict() for c in checks])
    else:
        print(render(checks))
    return 0 if all(c.ok for c in checks) else 1
