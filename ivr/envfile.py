"""The `KEY=VALUE` file named by IVR_CONFIG (`ivr.config`), and the sandbox's env file."""

from __future__ import annotations

import re
from pathlib import Path

from ivr.errors import ConfigError


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a `KEY=VALUE` file; raise ConfigError naming the file and line when malformed.

    Twenty lines rather than python-dotenv: dotenv skips a line it cannot parse with a warning
    and goes on (a crisis service must not start with a key silently dropped), and expands
    `${VAR}` in values (an AMI secret or a Redis password holding `$` must arrive as written).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"IVR_CONFIG: cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise ConfigError(f"IVR_CONFIG: {path} is not UTF-8 text") from None
    values: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Z_][A-Z0-9_]*", key):
            raise ConfigError(f"IVR_CONFIG: {path}:{lineno}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key] = value
    return values
