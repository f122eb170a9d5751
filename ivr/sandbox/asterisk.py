"""The embedded default for `ivr demo` and the tests: the sandbox Asterisk (scripts/sandbox)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ivr.config import Config, load_config
from ivr.envfile import read_env_file
from ivr.errors import SandboxError

#: scripts/sandbox in a source checkout; the sandbox is a developer and demo tool.
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "sandbox"


def _run(*args: str, timeout: float = 300) -> str:
    if not SCRIPT.exists():
        raise SandboxError(f"{SCRIPT} not found: the sandbox runs from a source checkout")
    try:
        done = subprocess.run(
            ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise SandboxError(f"scripts/sandbox {' '.join(args)} took more than {timeout} s") from None
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
        last = lines[-1] if lines else f"exit code {done.returncode}"
        raise SandboxError(f"scripts/sandbox {' '.join(args)} failed: {last}")
    return done.stdout


def status() -> None:
    """Return if the sandbox Asterisk is running; SandboxError otherwise."""
    _run("status")


def start() -> None:
    """Start the sandbox Asterisk (building its root the first time); idempotent."""
    _run("start")


def stop() -> None:
    _run("stop")


def restart() -> None:
    _run("restart")


def kill() -> None:
    """SIGKILL the sandbox Asterisk (fault tests)."""
    _run("kill")


def env_file() -> Path:
    return Path(_run("envfile").strip())


def config(**overrides: str) -> Config:
    """The Config that reaches the sandbox Asterisk, with `IVR_*` overrides."""
    values = read_env_file(env_file())
    values.update(overrides)
    values.setdefault("IVR_REDIS_URL", os.environ.get("IVR_REDIS_URL", "redis://127.0.0.1:6379/0"))
    return load_config(values)
