"""The `ivr` command line. Errors become one clear line on stderr and a non-zero exit code."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from ivr import __version__
from ivr.config import LANGUAGES, load_config
from ivr.errors import IvrError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ivr", description="Crisis call-out server for hospitals (plan blanc)."
    )
    parser.add_argument("--version", action="version", version=f"ivr {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", required=True)

    call = sub.add_parser("call", help="place one alert call and print its outcome")
    call.add_argument("number", help="the number to call (digits, leading +, * and #)")
    call.add_argument("--message", "-m", required=True, help="the alert text to speak")
    call.add_argument("--language", choices=LANGUAGES, help="spoken language (IVR_LANGUAGE)")
    call.add_argument("--ring-timeout", type=int, help="seconds to ring (IVR_RING_TIMEOUT)")
    call.add_argument("--json", action="store_true", help="print the result as JSON")

    demo = sub.add_parser(
        "demo", help="call simulated staff through the sandbox Asterisk and print the outcomes"
    )
    demo.add_argument("--json", action="store_true", help="print the results as JSON")

    sandbox = sub.add_parser("sandbox", help="start, stop or query the sandbox Asterisk")
    sandbox.add_argument("action", choices=("start", "stop", "restart", "status", "env"))

    sub.add_parser("config", help="check the configuration and print it (secrets hidden)")
    return parser


async def _call(args: argparse.Namespace) -> int:
    from ivr.alert import Alerter

    config = load_config()
    if args.ring_timeout is not None:
        config = dataclasses.replace(config, ring_timeout=args.ring_timeout)
    from ivr.numbers import normalize_number

    number = normalize_number(args.number)  # refuse bad input before touching Asterisk
    async with Alerter(config) as alerter:
        result = await alerter.call(number, args.message, language=args.language)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        took = (result.ended_at or result.started_at) - result.started_at
        print(f"{result.number}: {result.outcome.value} ({result.detail}) in {took:.1f} s")
    return 0


def _sandbox(args: argparse.Namespace) -> int:
    from ivr import sandbox

    if args.action == "status":
        try:
            sandbox._run("status")
        except IvrError:
            print("stopped")
            return 1
        print("running")
        return 0
    if args.action == "env":
        print(sandbox.env_file().read_text(encoding="utf-8"), end="")
        return 0
    getattr(sandbox, args.action)()
    return 0


def _config() -> int:
    config = load_config()
    shown: dict[str, Any] = dataclasses.asdict(config)
    shown["ami_secret"] = "(set)" if config.ami_secret else "(missing)"
    for key, value in shown.items():
        print(f"{key} = {value}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `ivr` command; return its exit code."""
    args = _parser().parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "call":
            return asyncio.run(_call(args))
        if args.command == "demo":
            from ivr.demo import run_demo

            return asyncio.run(run_demo(as_json=args.json))
        if args.command == "sandbox":
            return _sandbox(args)
        if args.command == "config":
            return _config()
    except IvrError as exc:
        print(f"ivr: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ivr: interrupted", file=sys.stderr)
        return 130
    raise AssertionError(f"unhandled command {args.command}")
