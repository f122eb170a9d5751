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


def _client(port: int, host: str = "127.0.0.1") -> redis.Redis:
    return redis.Redis(
        host=host, port=port, socket_timeout=0.5, socket_connect_timeout=0.5, decode_responses=True
    )


def ask(port: int, *command: str, host: str = "127.0.0.1") -> Any:
    """One command to host:port, its reply (None when nobody answers)."""
    try:
        with _client(port, host) as client:
            return client.execute_command(*command)
    except redis.RedisError:
        return None


class SentinelProcess:
    """One `redis-server --sentinel` child process monitoring MASTER."""

    def __init__(
        self,
        directory: Path,
        primary: int,
        *,
        down_after_ms: int,
        quorum: int,
        host: str = "127.0.0.1",
        primary_host: str = "127.0.0.1",
        port: int | None = None,
        prefix: tuple[str, ...] = (),
    ):
        self.directory = directory
        self.host = host
        self.port = port or free_port()
        self.primary = primary
        self.primary_host = primary_host
        self.down_after_ms = down_after_ms
        self.quorum = quorum
        #: What runs it (`ip netns exec NS`: on another host).
        self.prefix = prefix
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SandboxError("redis-server not found: apt-get install redis-server")
        self.directory.mkdir(parents=True, exist_ok=True)
        conf = self.directory / "sentinel.conf"  # Sentinel rewrites it: its own file
        conf.write_text(
            f"port {self.port}\n"
            f"bind {self.host}\n"
            f"protected-mode {'yes' if self.host == '127.0.0.1' else 'no'}\n"
            f"dir {self.directory}\n"
            f"logfile {self.directory / 'sentinel.log'}\n"
            f"sentinel monitor {MASTER} {self.primary_host} {self.primary} {self.quorum}\n"
            f"sentinel down-after-milliseconds {MASTER} {self.down_after_ms}\n"
            f"sentinel failover-timeout {MASTER} {max(10_000, 4 * self.down_after_ms)}\n"
            f"sentinel parallel-syncs {MASTER} 1\n"
        )
        self.process = subprocess.Popen(
            [*self.prefix, binary, str(conf), "--sentinel"], stdin=subprocess.DEVNULL
        )
        wait_started(
            self.process,
            lambda: bool(ask(self.port, "PING", host=self.host)),
            f"redis sentinel on port {self.port}",
            self.directory / "sentinel.log",
            timeout,
        )

    def primary_port(self) -> int | None:
        """The primary's port this Sentinel names right now."""
        address = self.primary_address()
        return address[1] if address else None

    def primary_address(self) -> tuple[str, int] | None:
        """The primary's address this Sentinel names right now (None: it does not answer)."""
        reply = ask(self.port, "SENTINEL", "get-master-addr-by-name", MASTER, host=self.host)
        return (str(reply[0]), int(reply[1])) if reply else None

    def stop(self) -> None:
        if self.process is not None:
            end_process(self.process)
        self.process = None


class SentinelCluster:
    """A primary, `replicas` replicas and `sentinels` Sentinels (quorum: a majority).

    `down_after_ms` is Sentinel's down-after-milliseconds: how long the primary may be silent
    before a Sentinel deems it down (production: 5000; tests: shorter, to fail over quickly).
    `members` gives the servers (the primary first) and Sentinels instead, already placed
    (`ivr.sandbox.sites`: each on its own host).
    """

    def __init__(
        self,
        directory: Path,
        *,
        replicas: int = 1,
        sentinels: int = 3,
        down_after_ms: int = 1000,
        members: tuple[list[RedisServer], list[SentinelProcess]] | None = None,
    ) -> None:
        self.directory = directory
        if members is not None:
            self.servers, self.sentinels = members
            return
        self.servers = [RedisServer(directory / "redis-0")]
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
        return tuple((s.host, s.port) for s in self.sentinels)

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
            self.wait_sentinels_agree(self.servers[0], timeout)
        except BaseException:
            self.stop()
            raise

    def server_on(self, port: int, host: str = "127.0.0.1") -> RedisServer:
        return next(s for s in self.servers if (s.host, s.port) == (host, port))

    def primary(self) -> RedisServer:
        """The server the running Sentinels that answer name as primary right now."""
        named = {s.primary_address() for s in self.sentinels if s.process is not None}
        named.discard(None)
        if len(named) != 1:
            seen = sorted(map(str, named))
            raise SandboxError(f"the Sentinels do not agree on a primary: {seen}")
        host, port = named.pop() or ("", 0)
        return self.server_on(port, host)

    def wait_replicated(self, primary: RedisServer, timeout: float, replicas: int = 0) -> None:
        """Until every other running server (or `replicas` of them) is a replica of `primary`,
        in sync (a restarted old primary is turned into one by the Sentinels within seconds)."""
        deadline = time.monotonic() + timeout
        wanted = replicas or sum(s.process is not None for s in self.servers) - 1
        while time.monotonic() < deadline:
            info = ask(primary.port, "INFO", "replication", host=primary.host) or {}
            online = [v for k, v in info.items() if k.startswith("slave") and "online" in str(v)]
            if len(online) >= wanted:
                return
            time.sleep(0.05)
        raise SandboxError(f"replicas not in sync with {primary.url} within {timeout} s")

    def wait_sentinels_agree(
        self, primary: RedisServer, timeout: float, sentinels: list[SentinelProcess] | None = None
    ) -> None:
        """Until every running Sentinel (or those given) names `primary`, and knows the other
        Sentinels and a replica (a failover needs both)."""
        deadline = time.monotonic() + timeout
        others = len(self.sentinels) - 1
        asked = [s for s in (sentinels or self.sentinels) if s.process is not None]
        while time.monotonic() < deadline:
            ready = True
            for sentinel in asked:
                state = ask(sentinel.port, "SENTINEL", "master", MASTER, host=sentinel.host) or {}
                if (
                    (state.get("ip"), int(state.get("port", 0))) != (primary.host, primary.port)
                    or int(state.get("num-other-sentinels", 0)) < others
                    or int(state.get("num-slaves", 0)) < 1
                ):
                    ready = False
            if ready:
                return
            time.sleep(0.05)
        raise SandboxError(f"the Sentinels did not agree on {primary.url} within {timeout} s")

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
