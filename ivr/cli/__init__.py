"""The `ivr` command line: `ivr.cli.main` builds it from one module per command group."""

from ivr.cli.main import main

__all__ = ["main"]
