"""`ivr config`: check the configuration and print it, secrets hidden."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from ivr.cli.common import Commands
from ivr.config import load_config
from ivr.redact import safe_url
from ivr.redisconfig import sentinels_text


def register(commands: Commands) -> None:
    config = commands.add_parser(
        "config", help="check the configuration and print it (secrets hidden)"
    )
    config.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_config()
    shown: dict[str, Any] = dataclasses.asdict(config)
    shown["ami_secret"] = "(set)" if config.ami_secret else "(missing)"
    shown["redis_url"] = safe_url(config.redis_url)
    shown["redis_sentinels"] = sentinels_text(config.redis_sentinels) or "(none)"
    for secret in ("sms_smpp_password", "smtp_password"):
        shown[secret] = "(set)" if getattr(config, secret) else ""
    for key, value in shown.items():
        print(f"{key} = {value}")
    return 0
