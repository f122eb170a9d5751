"""A private redis-server on a free port, for tests and the demo; never the machine's shared one."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from ivr.errors import SandboxError


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel's choice)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_started(
    process: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    what: str,
    logfile: Path,
    timeout: float,
) -> None:
    """Poll `ready` until it is true; stop `process` and raise if it exits or is too slow."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SandboxError(
                f"{what} exited at start (code {process.returncode}; port in use?); see {logfile}"
            )
        if ready():
            return
        time.sleep(0.02)  # polling a child process that has no readiness signal
    end_process(process)
    raise SandboxError(f"{what} did not answer within {timeout} s")


def end_process(process: subprocess.Popen[bytes], *, kill: bool = False) -> None:
    """SIGTERM (SIGKILL with `kill`, or after 10 s), then reap it."""
    if process.poll() is None:
        if kill:
            process.kill()
        else:
            process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)
        if process.poll() is None:
            process.kill()
            process.wait(5)


class RedisServer:
    """A redis-server child process bound to 127.0.0.1, data in `directory`.

    With `appendonly=True` (the demo) every write is logged to disk (fsync every second), so a
    restart of this server loses nothing older than a second; tests restart it to prove it.
    """

    def __init__(
        self,
        directory: Path,
        *,
        port: int | None = None,
        appendonly: bool = True,
        replica_of: int | None = None,
        host: str = "127.0.0.1",
        primary_host: str = "127.0.0.1",
        prefix: tuple[str, ...] = (),
    ):
        self.directory = directory
        self.port = port or free_port()
        self.appendonly = appendonly
        #: The port of the primary this server replicates (None: a primary), on `primary_host`.
        self.replica_of = replica_of
        self.primary_host = primary_host
        #: The address it listens on, and what runs it (`ip netns exec NS`: another host).
        self.host = host
        self.prefix = prefix
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SandboxError("redis-server not found: apt-get install redis-server")
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            binary,
            "--port", str(self.port),
            "--bind", self.host,
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            # Off only on a test host's private address (`ivr.sandbox.netns`): nothing else
            # reaches it. A real site sets requirepass, masterauth and Sentinel's auth-pass.
            "--protected-mode", "yes" if self.host == "127.0.0.1" else "no",
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        if self.replica_of is not None:
            args += ["--replicaof", self.primary_host, str(self.replica_of)]
        self.process = subprocess.Popen([*self.prefix, *args], stdin=subprocess.DEVNULL)
        # A PONG alone could come from another server already on this port.
        wait_started(
            self.process,
            lambda: self._answers() and self._is_ours(),
            f"redis-server on port {self.port}",
            self.directory / "redis.log",
            timeout,
        )

    def _is_ours(self) -> bool:
        assert self.process is not None
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
                sock.sendall(b"INFO server\r\n")
                data = b""
                while b"process_id:" not in data or not data.endswith(b"\r\n"):
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    data += chunk
        except OSError:
            return False
        if self.process.poll() is not None:
            raise SandboxError(
                f"redis-server could not start on port {self.port} (in use by another server?); "
                f"see {self.directory / 'redis.log'}"
            )
        return f"process_id:{self.process.pid}\r\n".encode() in data

    def _answers(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server: SIGTERM (it flushes the AOF) or, with kill=True, SIGKILL."""
        if self.process is not None:
            end_process(self.process, kill=kill)
        self.process = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
