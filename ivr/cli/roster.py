"""`ivr roster import FILE | export [FILE]`: the staff roster, all or nothing."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from ivr.cli.common import Commands, redis_for
from ivr.config import load_config
from ivr.errors import IvrError
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
    """The file is read here, outside the event loop."""
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        raise IvrError(f"roster: cannot read {args.file}: {exc.strerror}") from exc
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
    return 0


def export_roster(args: argparse.Namespace) -> int:
    text = asyncio.run(_export())
    if args.file:
        Path(args.file).write_text(text, encoding="utf-8", newline="")
    else:
        sys.stdout.write(text)
    return 0


async def _export() -> str:
    async with redis_for(load_config(require_ami_credentials=False)) as db:
        return export_csv(await RosterStore(db).load())
