"""`ivr token create|list|revoke`: the API's bearer tokens (shown once, stored hashed)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from ivr.access import audit
from ivr.access.tokens import Role, TokenStore
from ivr.cli.common import Commands, redis_for
from ivr.config import load_config


def register(commands: Commands) -> None:
    token = commands.add_parser("token", help="create, list or revoke API tokens")
    sub = token.add_subparsers(dest="token_command", required=True)
    create = sub.add_parser("create", help="create a token (printed once, stored hashed)")
    create.add_argument("name", help="who uses it (an operator, an integration)")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    sub.add_parser("list", help="the live tokens (names and roles, never the secrets)")
    revoke = sub.add_parser("revoke", help="revoke a token at once")
    revoke.add_argument("name")
    token.set_defaults(func=lambda args: asyncio.run(run(args)))


async def run(args: argparse.Namespace) -> int:
    async with redis_for(load_config(require_ami_credentials=False)) as db:
        tokens = TokenStore(db)
        if args.token_command == "list":
            for info in await tokens.list():
                created = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.created_at))
                print(f"{info.name}\t{info.role.value}\tcreated {created}")
            return 0
        details: dict[str, str] = {}
        if args.token_command == "create":
            role = Role(args.role)
            secret = await tokens.create(args.name, role)
            print(secret)
            print(f"token {args.name} ({role.value}): shown once, keep it now", file=sys.stderr)
            details["role"] = role.value
        else:
            await tokens.revoke(args.name)
            print(f"token {args.name} revoked", file=sys.stderr)
        action = f"token.{args.token_command}"
        await audit.record(db, audit.cli_user(), action, target=args.name, details=details)
    return 0
