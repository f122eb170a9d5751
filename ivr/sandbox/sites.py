"""Two sites and a witness on this one machine, for the two-site fault tests and benches.

Three hosts on one bridge (`ivr.sandbox.netns`), as README "Two sites" deploys them:

- site a: the Redis primary, a Sentinel, an Asterisk;
- site b: a Redis replica, a Sentinel, an Asterisk;
- site c: the third Sentinel (a witness: a quorum of 2 survives the loss of either site).

Each Asterisk is the sandbox's (`scripts/sandbox`), run inside its host's namespace with its
own configuration, database, spool, run and log directories under the sandbox root, and the
sandbox's AMI user, dialplans and simulated phones (AMI on the host's own 127.0.0.1). The
`ivr worker`s are the caller's to start (`prefix(site)` runs a program on a site).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from ivr.errors import SandboxError
from ivr.sandbox import asterisk as sandbox
from ivr.sandbox.netns import Network
from ivr.sandbox.redisserver import RedisServer, end_process
from ivr.sandbox.sentinel import SentinelCluster, SentinelProcess

REDIS_PORT, SENTINEL_PORT = 6379, 26379
#: The sites with an Asterisk, and where each Redis server and Sentinel runs.
SITES = ("a", "b")
WITNESS = "c"


def sandbox_root() -> Path:
    return sandbox.env_file().parent / "root"


class SiteAsterisk:
    """The sandbox's Asterisk as host `name`'s own (see the module's docstring)."""

    def __init__(self, root: Path, name: str, prefix: tuple[str, ...], tag: str) -> None:
        self.root, self.name, self.prefix = root, name, prefix
        self.inside = f"ivr-sites/{tag}-{name}"  # under /etc, /var/lib, ... of the root
        self.conf = f"/etc/{self.inside}/asterisk.conf"
        self.process: subprocess.Popen[bytes] | None = None

    def _dirs(self) -> dict[str, str]:
        var = f"/var/lib/{self.inside}"
        return {
            "astetcdir": f"/etc/{self.inside}",
            "astdbdir": var,
            "astspooldir": f"{var}/spool",
            "astrundir": f"/run/{self.inside}",
            "astlogdir": f"/var/log/{self.inside}",
        }

    def start(self, timeout: float = 60.0) -> None:
        if not (self.root / "proc" / "self").exists():
            raise SandboxError("the sandbox is not started: scripts/sandbox start")
        dirs = self._dirs()
        etc = self.root / dirs["astetcdir"].lstrip("/")
        shutil.rmtree(etc, ignore_errors=True)
        shutil.copytree(self.root / "etc" / "asterisk", etc, symlinks=True)
        for path in dirs.values():
            (self.root / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
        defaults = {
            "astcachedir": "/var/cache/asterisk",
            "astmoddir": "/usr/lib/x86_64-linux-gnu/asterisk/modules",
            "astvarlibdir": "/var/lib/asterisk",
            "astkeydir": "/var/lib/asterisk",
            "astdatadir": "/usr/share/asterisk",
            "astagidir": "/usr/share/asterisk/agi-bin",
            "astsbindir": "/usr/sbin",
        }
        moddir = next((self.root / "usr" / "lib").glob("*/asterisk/modules"), None)
        if moddir is not None:
            defaults["astmoddir"] = "/" + str(moddir.relative_to(self.root))
        lines = ["[directories]"] + [f"{k} => {v}" for k, v in {**defaults, **dirs}.items()]
        lines += ["[options]", f"systemname = site-{self.name}"]
        (etc / "asterisk.conf").write_text("\n".join(lines) + "\n")
        out = (self.root / dirs["astlogdir"].lstrip("/") / "console.out").open("wb")
        with out:
            self.process = subprocess.Popen(
                [*self.prefix, "chroot", str(self.root), "/usr/sbin/asterisk", "-C", self.conf,
                 "-f", "-n", "-q"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SandboxError(f"Asterisk of site {self.name} exited at start ({out.name})")
            if self.rx("core waitfullybooted", timeout=5) is not None:
                return
            time.sleep(0.2)  # polling a process that has no readiness signal
        raise SandboxError(f"Asterisk of site {self.name} did not boot within {timeout} s")

    def rx(self, command: str, timeout: float = 10) -> str | None:
        """An Asterisk CLI command on this site's Asterisk; None when it does not answer."""
        try:
            done = subprocess.run(
                ["chroot", str(self.root), "/usr/sbin/asterisk", "-C", self.conf, "-rx", command],
                capture_output=True, text=True, timeout=timeout,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return None
        return done.stdout if done.returncode == 0 else None

    def stop(self) -> None:
        if self.process is not None:
            end_process(self.process, kill=True)
        self.process = None
        for path in self._dirs().values():
            shutil.rmtree(self.root / path.lstrip("/"), ignore_errors=True)


class TwoSites:
    """The topology of the module's docstring. `down_after_ms`: Sentinel's
    down-after-milliseconds (5000, the README's production setting)."""

    def __init__(self, directory: Path, *, down_after_ms: int = 5000) -> None:
        self.directory = directory
        self.down_after_ms = down_after_ms
        self.net = Network()
        self.asterisks: dict[str, SiteAsterisk] = {}
        self.redis: dict[str, RedisServer] = {}
        self.sentinels: dict[str, SentinelProcess] = {}
        self.cluster: SentinelCluster | None = None

    def prefix(self, site: str) -> tuple[str, ...]:
        return self.net.prefix(site)

    @property
    def sentinel_env(self) -> str:
        """IVR_REDIS_SENTINELS for every site's workers."""
        assert self.cluster is not None
        return self.cluster.env

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        self.net.create()
        for index, site in enumerate((*SITES, WITNESS), start=1):
            self.net.add_host(site, index)
        primary = self.net.address("a")
        for site in SITES:
            self.redis[site] = RedisServer(
                self.directory / f"redis-{site}", port=REDIS_PORT, host=self.net.address(site),
                prefix=self.prefix(site), replica_of=None if site == "a" else REDIS_PORT,
                primary_host=primary,
            )  # fmt: skip
        for site in (*SITES, WITNESS):
            self.sentinels[site] = SentinelProcess(
                self.directory / f"sentinel-{site}", REDIS_PORT, down_after_ms=self.down_after_ms,
                quorum=2, host=self.net.address(site), primary_host=primary, port=SENTINEL_PORT,
                prefix=self.prefix(site),
            )  # fmt: skip
        members = (list(self.redis.values()), list(self.sentinels.values()))
        self.cluster = SentinelCluster(self.directory, members=members)
        self.cluster.start()
        root = sandbox_root()
        for site in SITES:
            self.asterisks[site] = SiteAsterisk(root, site, self.prefix(site), self.net.tag)
            self.asterisks[site].start()

    def power_off(self, site: str) -> None:
        """Every process of `site` SIGKILLed at once (its Asterisk, Redis, Sentinel, workers)."""
        self.net.power_off(site)
        for server in (self.redis.get(site), self.sentinels.get(site), self.asterisks.get(site)):
            if server is not None and server.process is not None:
                server.process.wait(10)
                server.process = None

    def cut(self, site: str) -> None:
        self.net.cut(site)

    def restore(self, site: str) -> None:
        self.net.restore(site)

    def stop(self) -> None:
        for asterisk in self.asterisks.values():
            asterisk.stop()
        if self.cluster is not None:
            self.cluster.stop()
        self.net.destroy()

    def __enter__(self) -> TwoSites:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
