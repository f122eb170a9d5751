"""`ivr pin set|remove|list`: the PINs of the trigger and report lines (stored as digests)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from ivr.access import audit
from ivr.access.pins import PinError, PinStore, generate_pin
from ivr.cli.common import Commands, redis_for
from ivr.config import load_config
from ivr.staff.roster import RosterStore


def register(commands: Commands) -> None:
    pin = commands.add_parser("pin", help="set, remove or list the PINs of the phone lines")
    sub = pin.add_subparsers(dest="pin_command", required=True)
    pset = sub.add_parser("set", help="give a person a PIN (drawn at random unless --stdin)")
    pset.add_argument("person", help="staff id in the roster")
    pset.add_argument("--stdin", action="store_true", help="read the PIN from standard input")
    sub.add_parser("remove", help="remove a person's PIN").add_argument("person")
    sub.add_parser("list", help="who has a PIN (never the PINs)")
    pin.set_defaults(func=lambda args: asyncio.run(run(args)))


async def run(args: argparse.Namespace) -> int:
    async with redis_for(load_config(require_ami_credentials=False)) as db:
        pins = PinStore(db)
        if args.pin_command == "list":
            for holder in await pins.holders():
                print(holder)
            return 0
        if args.pin_command == "remove":
            if not await pins.remove(args.person):
                raise PinError(f"pin: {args.person} has no PIN")
        else:
            if await RosterStore(db).get(args.person) is None:
                raise PinError(f"pin: {args.person!r} is not in the roster")
            pin = sys.stdin.readline().strip() if args.stdin else generate_pin()
            await pins.set(args.person, pin)
            if not args.stdin:
                print(pin)
                print(f"PIN of {args.person}: shown once, give it now", file=sys.stderr)
        action = f"pin.{args.pin_command}"
        await audit.record(db, audit.cli_user(), action, target=args.person)
    return 0
