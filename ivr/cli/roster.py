"""`ivr roster import FILE | export [FILE]`: the staff roster, all or nothing."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from ivr import limits
from ivr.cli.common import Commands, redis_for
from ivr.config import load_config
from ivr.errors import InputError
from ivr.staff.csvfile import export_csv, parse_roster
from ivr.staff.roster import RosterError, RosterStore


def register(commands: Commands) -> None:
    roster = commands.add_parser("roster", help="import or export the staff roster")
    sub = roster.add_subparsers(dest="roster_command", required=True)
    imp = sub.add_parser("import", help="replace the roster with a CSV file (all or nothing)")
    imp.add_argument("file", help="CSV as HR exports it (UTF-8, ';' or ',')")
    imp.set_defaults(func=import_roster)
    exp = sub.add_parser("export", help="write the roster as CSV")
    exp.add_argument("file", nargs="?", help="output file (default: standard output)")
    exp.set_defaults(func=export_roster)


def import_roster(args: argparse.Namespace) -> int:
    """The file is read here, outside the event loop, and no further than the largest roster
    accepted (a device such as /dev/zero never ends)."""
    try:
        with open(args.file, "rb") as file:
            data = file.read(limits.ROSTER_BYTES + 1)
    except OSError as exc:
        raise InputError(f"roster: cannot read {args.file}: {exc.strerror or exc}") from None
    if len(data) > limits.ROSTER_BYTES:
        raise InputError(
            f"roster: {args.file} is larger than {limits.ROSTER_BYTES // 2**20} MB: "
            "is this a roster?"
        )
    return asyncio.run(_import(args.file, data))


async def _import(name: str, data: bytes) -> int:
    config = load_config(require_ami_credentials=False)
    try:
        people = parse_roster(data, default_language=config.language)
    except RosterError as exc:
        for line, reason in exc.problems:
            print(f"{name}:{line}: {reason}", file=sys.stderr)
        raise
    async with redis_for(config) as db:
        await RosterStore(db).replace(people)
    print(f"roster: {len(people)} staff imported")
    single = [p.id for p in people if p.single_number]
    if single:
        shown = ", ".join(single[:10]) + (", ..." if len(single) > 10 else "")
        count = len(single)
        print(f"roster: {count} staff have a single number (one phone to reach them): {shown}")
    return 0


def export_roster(args: argparse.Namespace) -> int:
    text = asyncio.run(_export())
    if not args.file:
        sys.stdout.write(text)
        return 0
    try:
        Path(args.file).write_text(text, encoding="utf-8", newline="")
    except OSError as exc:
        raise InputError(f"roster: cannot write {args.file}: {exc.strerror or exc}") from None
    return 0


async def _export() -> str:
    async with redis_for(load_config(require_ami_credentials=False)) as db:
        return export_csv(await RosterStore(db).load())
