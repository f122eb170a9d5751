"""Several hosts on this one machine: Linux network namespaces on one bridge (iproute2, root).

`Network` makes a switch namespace holding a bridge, then one namespace per host with one
interface on that bridge and the address 10.231.N.<index>/24; the machine itself joins the
bridge as .254, so a test or a bench reaches every host. `prefix(host)` runs a program on a
host (`ip netns exec NS`, which execs it: the child's pid is the program's). Faults: `cut`
takes a host's link down (`restore` brings it back), `power_off` SIGKILLs every process of
the host at once.

Names carry the creating process's pid: `create` first removes what a dead creator left.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess

from ivr.errors import SandboxError

#: The first two bytes of every address; the third is chosen free on the machine.
NET = "10.231"
#: The machine's own address on the bridge.
MACHINE = 254


def ip(*args: str, check: bool = True) -> str:
    """`ip ARGS`, its output; SandboxError (with ip's message) when it fails."""
    try:
        done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise SandboxError("ip not found: apt-get install iproute2") from None
    if check and done.returncode != 0:
        raise SandboxError(f"ip {' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale() -> None:
    """Namespaces and links left by a creator that died without cleaning up."""
    for line in ip("netns", "list").splitlines():
        name = line.split()[0] if line.strip() else ""
        found = re.fullmatch(r"ivr(\d+)[a-z]+", name)
        if found and not _alive(int(found.group(1))):
            _kill_all(name)
            ip("netns", "del", name, check=False)
    for line in ip("-o", "link", "show").splitlines():
        found = re.search(r"^\d+: (ivh(\d+))[@:]", line)
        if found and not _alive(int(found.group(2))):
            ip("link", "del", found.group(1), check=False)


def _kill_all(namespace: str) -> list[int]:
    pids = [int(p) for p in ip("netns", "pids", namespace, check=False).split()]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids


def _free_subnet() -> int:
    """A third byte no address of the machine uses; starting from one the pid picks, so that
    parallel test processes building networks at the same moment do not pick the same."""
    used = set(re.findall(rf"inet {re.escape(NET)}\.(\d+)\.", ip("-o", "addr", "show")))
    for step in range(240):
        third = 10 + (os.getpid() + step) % 240
        if str(third) not in used:
            return third
    raise SandboxError(f"no free {NET}.N.0/24 network on this machine")


class Network:
    """A bridge and the hosts on it (see the module's docstring)."""

    def __init__(self) -> None:
        self.tag = f"ivr{os.getpid()}"
        self.switch = f"{self.tag}switch"
        self.link = f"ivh{os.getpid()}"  # the machine's end of its link to the bridge
        self.subnet = 0
        #: host name -> (namespace, address)
        self.hosts: dict[str, tuple[str, str]] = {}

    @property
    def machine(self) -> str:
        return f"{NET}.{self.subnet}.{MACHINE}"

    def create(self) -> None:
        remove_stale()
        self.subnet = _free_subnet()
        ip("netns", "add", self.switch)
        try:
            ip("-n", self.switch, "link", "set", "lo", "up")
            ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
            ip("-n", self.switch, "link", "set", "br0", "up")
            ip("link", "add", self.link, "type", "veth", "peer", "name", "up0",
               "netns", self.switch)  # fmt: skip
            ip("-n", self.switch, "link", "set", "up0", "master", "br0", "up")
            ip("addr", "add", f"{self.machine}/24", "dev", self.link)
            ip("link", "set", self.link, "up")
        except BaseException:
            self.destroy()
            raise

    def add_host(self, name: str, index: int) -> str:
        """A host `name` (lower-case letters) at .`index`; its address."""
        if not re.fullmatch(r"[a-z]{1,6}", name) or not 0 < index < MACHINE:
            raise SandboxError(f"bad host {name!r} {index}")
        namespace, address = f"{self.tag}{name}", f"{NET}.{self.subnet}.{index}"
        ip("netns", "add", namespace)
        self.hosts[name] = (namespace, address)
        port = f"p{name}"
        ip("-n", self.switch, "link", "add", port, "type", "veth", "peer", "name", "eth0",
           "netns", namespace)  # fmt: skip
        ip("-n", self.switch, "link", "set", port, "master", "br0", "up")
        ip("-n", namespace, "link", "set", "lo", "up")
        ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
        ip("-n", namespace, "link", "set", "eth0", "up")
        return address

    def address(self, name: str) -> str:
        return self.hosts[name][1]

    def prefix(self, name: str) -> tuple[str, ...]:
        """The command prefix that runs a program on host `name`."""
        return ("ip", "netns", "exec", self.hosts[name][0])

    def cut(self, name: str) -> None:
        """Host `name` loses its link: nothing in or out, its processes go on."""
        ip("-n", self.switch, "link", "set", f"p{name}", "down")

    def restore(self, name: str) -> None:
        ip("-n", self.switch, "link", "set", f"p{name}", "up")

    def power_off(self, name: str) -> list[int]:
        """SIGKILL every process of host `name` at once; their pids."""
        return _kill_all(self.hosts[name][0])

    def destroy(self) -> None:
        """Every process of every host killed, every namespace and link removed."""
        for namespace, _ in self.hosts.values():
            _kill_all(namespace)
            ip("netns", "del", namespace, check=False)
        self.hosts.clear()
        ip("netns", "del", self.switch, check=False)
        ip("link", "del", self.link, check=False)

    def __enter__(self) -> Network:
        self.create()
        return self

    def __exit__(self, *_: object) -> None:
        self.destroy()
