"""Shared fixtures: the real sandbox Asterisk, private redis-servers, AMI links.

Integration tests need root (the sandbox is a chroot) and redis-server. Without them they skip
on a developer machine; under CI (CI=true) they fail instead, never skip.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from ivr.config import Config
from ivr.db import connect
from ivr.dialer.alerter import Alerter
from ivr.errors import SandboxError
from ivr.pbx.ami import AmiLink
from ivr.sandbox import asterisk as sandbox
from ivr.sandbox.redisserver import RedisServer
from ivr.sandbox.sentinel import SentinelCluster
from tests.teardown import bounded_close

IN_CI = os.environ.get("CI") == "true"
#: Serializes the first start of the sandbox among parallel test processes.
SANDBOX_LOCK = Path(tempfile.gettempdir()) / "ivr-tests-sandbox.lock"


def unavailable(reason: str) -> None:
    """Skip on a developer machine, fail under CI."""
    if IN_CI:
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def sandbox_config() -> Config:
    """The sandbox Asterisk, started once for every test process; its Config (ring timeout 6 s).

    Parallel test processes (pytest-xdist) share one sandbox: the first one starts it, under a
    lock, and the others find it running. A running sandbox is not restarted or reloaded here
    (a reload would cut the AMI sessions of the others); `scripts/test` starts it beforehand.
    """
    if os.geteuid() != 0:
        unavailable("the Asterisk sandbox needs root")
    try:
        with open(SANDBOX_LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                sandbox.status()
            except SandboxError:
                sandbox.start()
        return sandbox.config(IVR_RING_TIMEOUT="6")
    except SandboxError as exc:
        unavailable(f"the Asterisk sandbox did not start: {exc}")
        raise


@pytest.fixture
async def ami(sandbox_config: Config) -> AsyncIterator[AmiLink]:
    """A logged-in AMI link straight to the sandbox Asterisk."""
    c = sandbox_config
    link = AmiLink(c.ami_host, c.ami_port, c.ami_user, c.ami_secret)
    await link.start()
    yield link
    await bounded_close("the test's AMI link", link.close())


@pytest.fixture
async def alerter(sandbox_config: Config) -> AsyncIterator[Alerter]:
    async with Alerter(sandbox_config) as a:
        yield a


@pytest.fixture
def redis_server(redis_factory: Callable[..., RedisServer]) -> RedisServer:
    """A private redis-server with append-only persistence, as in production."""
    return redis_factory(appendonly=True)


@pytest.fixture
async def db(redis_server: RedisServer) -> AsyncIterator[Redis]:
    """A client of `redis_server`, closed after the test."""
    client = connect(redis_server.url)
    yield client
    await bounded_close("the test's Redis client", client.aclose())


@pytest.fixture
def sentinel_cluster(tmp_path: Path) -> Iterator[SentinelCluster]:
    """A private Redis primary, one replica and three Sentinels (quorum 2) on free ports,
    Sentinel's down-after-milliseconds at 1 s; all stopped after the test."""
    if shutil.which("redis-server") is None:
        unavailable("redis-server is not installed")
    cluster = SentinelCluster(tmp_path / "sentinel", down_after_ms=1000)
    try:
        cluster.start()
    except SandboxError as exc:
        unavailable(f"the Redis Sentinel cluster did not start: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture
def redis_factory(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Returns create(appendonly=True) -> a started private redis-server; all stopped after."""
    if shutil.which("redis-server") is None:
        unavailable("redis-server is not installed")
    servers: list[RedisServer] = []

    def create(*, appendonly: bool = True) -> RedisServer:
        server = RedisServer(tmp_path / f"redis-{len(servers)}", appendonly=appendonly)
        server.start()
        servers.append(server)
        return server

    yield create
    for server in servers:
        server.stop()
