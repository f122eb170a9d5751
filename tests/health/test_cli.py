"""`ivr health` as supervision runs it, real processes against the sandbox Asterisk, a private
redis-server and a real `ivr worker`: all OK, then each failure in turn, with the Nagios exit
code and one line: Redis down, Redis without persistence, the AMI secret wrong, Asterisk
stopped, the FastAGI port taken, no voice, a worker that loses Asterisk, a configuration error."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from ivr.config import Config
from ivr.sandbox import asterisk as sandbox
from ivr.sandbox.redisserver import RedisServer, free_port
from tests.cli.test_cli import ivr as run_ivr
from tests.tcpproxy import TcpProxy

pytestmark = pytest.mark.integration

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3


async def ivr(*args: str, timeout: float = 60, **env: str) -> tuple[int, str]:
    """`python -m ivr ARGS` with the sandbox's settings plus `env`; (code, stdout + stderr)."""
    code, out, err = await run_ivr(*args, timeout=timeout, **env)
    return code, out + err


class Worker:
    """`ivr worker` in its own process, on its own AGI port, audio dir and Redis."""

    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.name = name
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
        environ.update(IVR_CONFIG=str(sandbox.env_file()), **self.env)
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ivr", "worker", "--name", self.name,
            env=environ, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip

    async def health_becomes(self, code: int, deadline: float = 60) -> str:
        """Run `ivr health --worker` until it exits with `code` (as supervision polls it)."""
        end = time.monotonic() + deadline
        while True:
            got, out = await ivr("health", "--worker", self.name, **self.env)
            if got == code:
                return out
            assert self.proc is not None and self.proc.returncode is None, "the worker died"
            assert time.monotonic() < end, f"still {got} after {deadline} s: {out}"
            await asyncio.sleep(0.3)  # polling the health check, as supervision does

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await asyncio.wait_for(self.proc.wait(), 30)


@pytest.fixture
async def env(sandbox_config: Config, redis_server: RedisServer) -> dict[str, str]:
    """Settings of this test's own: Redis and the FastAGI port. The audio directory stays the
    sandbox's (Asterisk plays from it; renders are cached there by content)."""
    return {"IVR_REDIS_URL": redis_server.url, "IVR_AGI_PORT": str(free_port())}


@pytest.fixture
async def worker(env: dict[str, str]) -> AsyncIterator[Worker]:
    started = Worker(f"health-{os.getpid()}-{time.monotonic_ns()}", env)
    await started.start()
    yield started
    await started.stop()


async def test_all_ok_then_the_worker_loses_asterisk(
    sandbox_config: Config, env: dict[str, str]
) -> None:
    proxy = TcpProxy(sandbox_config.ami_host, sandbox_config.ami_port)
    await proxy.start()
    worker = Worker(f"health-proxy-{os.getpid()}", {**env, "IVR_AMI_PORT": str(proxy.port)})
    await worker.start()
    try:
        await worker.health_becomes(OK)
        code, out = await ivr("health", **env)
        assert code == OK, out
        lines = out.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("IVR OK - ami: Asterisk 22"), out
        assert f"workers: 1 alive ({worker.name})" in out and "| 'ami'=" in out

        # Asterisk gone (its connection dropped, new ones refused): the worker's heartbeat says
        # so at once, not a period later.
        proxy.cut()
        cut_at = time.monotonic()
        out = await worker.health_becomes(CRITICAL, deadline=10)
        assert time.monotonic() - cut_at < 5
        assert f"IVR CRITICAL - worker: {worker.name}: its AMI link" in out
        code, out = await ivr("health", "--check", "workers", **env)
        assert code == CRITICAL and "no worker alive with its AMI link up" in out

        proxy.restore()
        await worker.health_becomes(OK, deadline=30)
    finally:
        await worker.stop()
        await proxy.close()
    # A clean stop removes the heartbeat: no worker, not a silent one.
    code, out = await ivr("health", "--check", "workers", "--json", **env)
    assert json.loads(out)["checks"][0]["details"]["silent"] == []


async def test_selftest_places_a_real_call(worker: Worker, env: dict[str, str]) -> None:
    await worker.health_becomes(OK)
    code, out = await ivr(
        "health", "--check", "ami", "--selftest", IVR_SELFTEST_TARGETS="Local/1011@ivr-sim", **env
    )
    assert code == OK and "selftest: Local/1011@ivr-sim ok" in out, out
    # A phone that answers and never presses: the DTMF path looks broken.
    code, out = await ivr(
        "health", "--check", "ami", "--selftest", IVR_SELFTEST_TARGETS="Local/1000@ivr-sim", **env
    )
    assert code == CRITICAL and "no key came back" in out, out


async def test_redis_down_and_redis_without_persistence(
    env: dict[str, str], redis_factory: Callable[..., RedisServer]
) -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"
    code, out = await ivr("health", "--check", "redis", **{**env, "IVR_REDIS_URL": down})
    assert code == CRITICAL and out.startswith("IVR CRITICAL - redis: Redis unreachable"), out
    volatile = redis_factory(appendonly=False).url
    code, out = await ivr("health", "--check", "redis", **{**env, "IVR_REDIS_URL": volatile})
    assert code == WARNING and "persistence is off" in out, out


async def test_wrong_ami_secret_and_asterisk_stopped(env: dict[str, str]) -> None:
    code, out = await ivr("health", "--check", "ami", IVR_AMI_SECRET="not-the-secret", **env)
    assert code == CRITICAL and "refused AMI user 'ivr'" in out, out
    # Nothing listens where Asterisk should: what a stopped Asterisk looks like from here
    # (tests/deploy/test_images.py kills a real one).
    code, out = await ivr("health", "--check", "ami", IVR_AMI_PORT=str(free_port()), **env)
    assert code == CRITICAL and "unreachable" in out, out


async def test_agi_port_taken_by_another_program(env: dict[str, str]) -> None:
    async def stranger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n")
        await writer.drain()
        writer.close()

    port = int(env["IVR_AGI_PORT"])
    server = await asyncio.start_server(stranger, "127.0.0.1", port)
    try:
        code, out = await ivr("health", "--check", "agi", **env)
        assert code == CRITICAL and "not as ivr's FastAGI server" in out, out
        # And a worker cannot start on it: one clear line, exit 2.
        code, out = await ivr("worker", "--name", "taken", timeout=120, **env)
        assert code == 2 and f"cannot listen on 127.0.0.1:{port}" in out, out
    finally:
        server.close()
        await server.wait_closed()
    code, out = await ivr("health", "--check", "agi", **env)
    assert code == CRITICAL and "nothing answers" in out, out


@pytest.fixture
def espeak_without_french(tmp_path: Path) -> Path:
    """A copy of espeak-ng's data (links) without the French voice: what a machine missing it
    looks like. Its parent is what ESPEAK_DATA_PATH names."""
    version = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout
    data = Path(next(word for word in version.split() if word.startswith("/")))
    partial = tmp_path / "espeak" / "espeak-ng-data"
    (partial / "lang").mkdir(parents=True)
    for entry in data.iterdir():
        if entry.name not in ("lang", "voices"):
            (partial / entry.name).symlink_to(entry)
    for family in (data / "lang").iterdir():
        if family.name != "roa":
            (partial / "lang" / family.name).symlink_to(family)
    return partial.parent


async def test_no_voice(env: dict[str, str], espeak_without_french: Path) -> None:
    code, out = await ivr(
        "health", "--check", "speech", ESPEAK_DATA_PATH=str(espeak_without_french), **env
    )
    assert code == CRITICAL and "speech: no voice" in out and "roa/fr" in out, out
    code, out = await ivr("health", "--check", "speech", **env)
    assert code == OK and "speech: voices render (fr" in out, out


async def test_configuration_error_is_unknown(env: dict[str, str]) -> None:
    code, out = await ivr("health", IVR_AMI_PORT="five", **env)
    assert code == UNKNOWN
    assert out.strip() == (
        "IVR UNKNOWN - config: IVR_AMI_PORT: expected a whole number, got 'five' | 'config'=0.000s"
    )
