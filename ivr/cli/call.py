"""`ivr call NUMBER --message TEXT`: one alert call, its outcome printed."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys

from ivr import limits
from ivr.cli.common import Commands, print_json
from ivr.cli.lifecycle import INTERRUPTED, Stopped, until_signalled
from ivr.config import LANGUAGES, load_config
from ivr.dialer.alerter import Alerter
from ivr.errors import InputError
from ivr.numbers import normalize_number


def register(commands: Commands) -> None:
    call = commands.add_parser("call", help="place one alert call and print its outcome")
    call.add_argument("number", help="the number to call (digits, leading +, * and #)")
    call.add_argument("--message", "-m", required=True, help="the alert text to speak")
    call.add_argument("--language", choices=LANGUAGES, help="spoken language (IVR_LANGUAGE)")
    call.add_argument(
        "--ring-timeout",
        type=limits.RING_TIMEOUT.option("--ring-timeout"),
        help=f"seconds to ring, {limits.RING_TIMEOUT.describe()} (IVR_RING_TIMEOUT)",
    )
    call.add_argument("--json", action="store_true", help="print the result as JSON")
    call.set_defaults(func=lambda args: asyncio.run(run(args)))


async def run(args: argparse.Namespace) -> int:
    try:
        # Ctrl-C or SIGTERM: the call is hung up, not left ringing after the process is gone.
        return await until_signalled(lambda _: place(args), grace=0)
    except Stopped:
        print("ivr: interrupted; the call was hung up", file=sys.stderr)
        return INTERRUPTED


async def place(args: argparse.Namespace) -> int:
    config = load_config()
    if args.ring_timeout is not None:
        config = dataclasses.replace(config, ring_timeout=args.ring_timeout)
    # Refuse bad input before touching Asterisk.
    number = normalize_number(args.number)
    text = args.message.strip()
    if not text or len(text) > limits.MESSAGE_CHARS:
        raise InputError(f"--message: 1 to {limits.MESSAGE_CHARS} characters of text, please")
    async with Alerter(config) as alerter:
        result = await alerter.call(number, text, language=args.language)
    if args.json:
        print_json(result.as_dict())
    else:
        took = (result.ended_at or result.started_at) - result.started_at
        print(f"{result.number}: {result.outcome.value} ({result.detail}) in {took:.1f} s")
    return 0
