"""A private Redis primary, a replica and three Sentinels on free ports, for tests and benches.

`redis-server --sentinel` is Sentinel (Debian's redis-server package has it; the
`redis-sentinel` package only adds a service unit). Nothing here touches the machine's Redis.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import redis

from ivr.errors import SandboxError
from ivr.sandbox.redisserver import RedisServer, end_process, free_port, wait_started

#: The name the Sentinels monitor the primary under (IVR_REDIS_SENTINEL_MASTER's default).
MASTER = "ivr"


def _client(port: int) -> redis.Redis:
    return redis.Redis(
        port=port, socket_timeout=0.5, socket_connect_timeout=0.5, decode_responses=True
    )


def _ask(port: int, *command: str) -> Any:
    """One command to 127.0.0.1:port, its reply (None when nobody answers)."""
    try:
        with _client(port) as client:
            return client.execute_command(*command)
    except redis.RedisError:
        return None


class SentinelProcess:
    """One `redis-server --sentinel` child process monitoring MASTER."""

    def __init__(self, directory: Path, primary: int, *, down_after_ms: int, quorum: int):
        self.directory = directory
        self.port = free_port()
        self.primary = primary
        self.down_after_ms = down_after_ms
        self.quorum = quorum
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SandboxError("redis-server not found: apt-get install redis-server")
        self.directory.mkdir(parents=True, exist_ok=True)
        conf = self.directory / "sentinel.conf"  # Sentinel rewrites it: its own file
        conf.write_text(
            f"port {self.port}\n"
            "bind 127.0.0.1\n"
            f"dir {self.directory}\n"
            f"logfile {self.directory / 'sentinel.log'}\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {self.primary} {self.quorum}\n"
            f"sentinel down-after-milliseconds {MASTER} {self.down_after_ms}\n"
            f"sentinel failover-timeout {MASTER} {max(10_000, 4 * self.down_after_ms)}\n"
            f"sentinel parallel-syncs {MASTER} 1\n"
        )
        self.process = subprocess.Popen([binary, str(conf), "--sentinel"], stdin=subprocess.DEVNULL)
        wait_started(
            self.process,
            lambda: bool(_ask(self.port, "PING")),
            f"redis sentinel on port {self.port}",
            self.directory / "sentinel.log",
            timeout,
        )

    def primary_port(self) -> int | None:
        """The primary's port this Sentinel names right now."""
        reply = _ask(self.port, "SENTINEL", "get-master-addr-by-name", MASTER)
        return int(reply[1]) if reply else None

    def stop(self) -> None:
        if self.process is not None:
            end_process(self.process)
        self.process = None


class SentinelCluster:
    """A primary, `replicas` replicas and `sentinels` Sentinels (quorum: a majority).

    `down_after_ms` is Sentinel's down-after-milliseconds: how long the primary may be silent
    before a Sentinel deems it down (production: 5000; tests: shorter, to fail over quickly).
    """

    def __init__(
        self,
        directory: Path,
        *,
        replicas: int = 1,
        sentinels: int = 3,
        down_after_ms: int = 1000,
    ) -> None:
        self.directory = directory
        self.servers: list[RedisServer] = [RedisServer(directory / "redis-0")]
        primary = self.servers[0].port
        self.servers += [
            RedisServer(directory / f"redis-{i + 1}", replica_of=primary) for i in range(replicas)
        ]
        quorum = sentinels // 2 + 1
        self.sentinels = [
            SentinelProcess(
                directory / f"sentinel-{i}", primary, down_after_ms=down_after_ms, quorum=quorum
            )
            for i in range(sentinels)
        ]

    @property
    def addresses(self) -> tuple[tuple[str, int], ...]:
        return tuple(("127.0.0.1", s.port) for s in self.sentinels)

    @property
    def env(self) -> str:
        """The value of IVR_REDIS_SENTINELS."""
        return ",".join(f"{host}:{port}" for host, port in self.addresses)

    def start(self, timeout: float = 20.0) -> None:
        try:
            for server in self.servers:
                server.start()
            self.wait_replicated(self.servers[0], timeout)
            for sentinel in self.sentinels:
                sentinel.start()
            self.wait_sentinels_agree(self.servers[0].port, timeout)
        except BaseException:
            self.stop()
            raise

    def server_on(self, port: int) -> RedisServer:
        return next(s for s in self.servers if s.port == port)

    def primary(self) -> RedisServer:
        """The server the Sentinels name as primary right now."""
        ports = {s.primary_port() for s in self.sentinels if s.process is not None}
        ports.discard(None)
        if len(ports) != 1:
            named = sorted(map(str, ports))
            raise SandboxError(f"the Sentinels do not agree on a primary: {named}")
        return self.server_on(int(ports.pop() or 0))

    def wait_replicated(self, primary: RedisServer, timeout: float) -> None:
        """Until every other running server is a replica of `primary`, in sync (a restarted
        old primary is turned into one by the Sentinels, within about ten seconds)."""
        deadline = time.monotonic() + timeout
        running = sum(s.process is not None for s in self.servers)
        while time.monotonic() < deadline:
            info = _ask(primary.port, "INFO", "replication") or {}
            online = [v for k, v in info.items() if k.startswith("slave") and "online" in str(v)]
            if len(online) >= running - 1:
                return
            time.sleep(0.05)
        raise SandboxError(f"replicas not in sync with port {primary.port} within {timeout} s")

    def wait_sentinels_agree(self, port: int, timeout: float) -> None:
        """Until every running Sentinel names 127.0.0.1:`port` as the primary, and knows the
        other Sentinels and the replicas (a failover needs both)."""
        deadline = time.monotonic() + timeout
        others = len(self.sentinels) - 1
        while time.monotonic() < deadline:
            ready = True
            for sentinel in self.sentinels:
                if sentinel.process is None:
                    continue
                state = _ask(sentinel.port, "SENTINEL", "master", MASTER) or {}
                if (
                    int(state.get("port", 0)) != port
                    or int(state.get("num-other-sentinels", 0)) < others
                    or int(state.get("num-slaves", 0)) < 1
                ):
                    ready = False
            if ready:
                return
            time.sleep(0.05)
        raise SandboxError(f"the Sentinels did not agree on 127.0.0.1:{port} within {timeout} s")

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        for server in self.servers:
            server.stop()

    def __enter__(self) -> SentinelCluster:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
