"""`ivr sandbox start|stop|restart|status|env`: the embedded Asterisk of the demo and the tests."""

from __future__ import annotations

import argparse
import shlex

from ivr.cli.common import Commands
from ivr.envfile import read_env_file
from ivr.errors import IvrError
from ivr.sandbox import asterisk


def register(commands: Commands) -> None:
    sandbox = commands.add_parser("sandbox", help="start, stop or query the sandbox Asterisk")
    sandbox.add_argument("action", choices=("start", "stop", "restart", "status", "env"))
    sandbox.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "status":
        try:
            asterisk.status()
        except IvrError:
            print("stopped")
            return 1
        print("running")
        return 0
    if args.action == "env":
        # Shell lines: `eval "$(ivr sandbox env)"` exports them.
        for key, value in read_env_file(asterisk.env_file()).items():
            print(f"export {key}={shlex.quote(value)}")
        return 0
    {"start": asterisk.start, "stop": asterisk.stop, "restart": asterisk.restart}[args.action]()
    return 0
