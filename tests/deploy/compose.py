"""Run the services of docker/compose.yaml from their images without a container runtime.

This machine builds images with podman but cannot start containers (its cgroup layout is
refused). What `network_mode: host` gives a container is, for these services, a root of its own
on the host's network: so each service runs here in a chroot of a container's file system
(`podman create` + `podman mount`: the image, writable), with the compose file's user,
entrypoint, command, environment (the env file, resolved by `docker-compose config`, a real
parser) and volumes (named volumes are directories of the test, seeded from the image on first
use as Docker does), and its health check is the compose file's command, run the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

#: Where a service's standard output and error go, under the test's directory.
LOGS = "logs"


def compose_config(compose_dir: Path, env: dict[str, str]) -> dict[str, Any]:
    """The compose file as Docker Compose resolves it (env file merged, variables replaced)."""
    done = subprocess.run(
        ["docker-compose", "-f", str(compose_dir / "compose.yaml"), "config"],
        capture_output=True, text=True, timeout=60, env={**os.environ, **env},
    )  # fmt: skip
    assert done.returncode == 0, f"docker-compose config: {done.stderr}"
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


def image_config(image: str) -> dict[str, Any]:
    done = subprocess.run(
        ["podman", "image", "inspect", image], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"podman image inspect {image}: {done.stderr}"
    config: dict[str, Any] = json.loads(done.stdout)[0]["Config"]
    return config


def health_argv(test: list[str] | str) -> list[str]:
    """A compose health check's `test` as an argv."""
    if isinstance(test, str):
        return ["/bin/sh", "-c", test]
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", test[1]]
    assert test[0] == "CMD", test
    return list(test[1:])


@dataclass
class Service:
    """One service of the compose file, run in a chroot of its own container file system."""

    name: str
    spec: dict[str, Any]
    workdir: Path
    root: Path = Path("/nonexistent")
    process: subprocess.Popen[bytes] | None = None
    mounts: list[Path] = field(default_factory=list)
    image: dict[str, Any] = field(default_factory=dict)

    @property
    def container(self) -> str:
        return f"ivr-test-{os.getpid()}-{self.workdir.name}-{self.name}"

    @property
    def user(self) -> str:
        return str(self.spec.get("user") or self.image.get("User") or "root")

    @property
    def env(self) -> dict[str, str]:
        # A container engine's PATH for images that set none.
        values = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
        values.update(item.split("=", 1) for item in self.image.get("Env") or [])
        values.update({k: str(v) for k, v in (self.spec.get("environment") or {}).items()})
        return values

    @property
    def argv(self) -> list[str]:
        if "entrypoint" in self.spec:
            return list(self.spec["entrypoint"]) + list(self.spec.get("command") or [])
        command = self.spec.get("command") or self.image.get("Cmd") or []
        return list(self.image.get("Entrypoint") or []) + list(command)

    def create(self, volumes: Path) -> None:
        """The container's writable file system, its volumes and /dev and /proc mounted."""
        image = self.spec["image"]
        self.image = image_config(image)
        subprocess.run(["podman", "rm", "-f", self.container], capture_output=True, check=False)
        # A command, for images without one (a base image): nothing is ever run by podman.
        run("podman", "create", "--name", self.container, image, "true")
        self.root = Path(run("podman", "mount", self.container).strip())
        for volume in self.spec.get("volumes") or []:
            source, target = _volume(volume)
            if "/" not in source:
                source = str(volumes / source)
                _seed(Path(source), self.root / target.lstrip("/"))
            self._mount("--bind", source, target)
        self._mount("--bind", "/dev", "/dev")
        self._mount("-t", "proc", "proc", "/proc")

    def _mount(self, *args: str) -> None:
        target = self.root / args[-1].lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        run("mount", *args[:-1], str(target))
        self.mounts.append(target)

    def command(self, argv: list[str], env: dict[str, str] | None = None) -> list[str]:
        """`argv` as run inside this service: its root, user, environment, working directory."""
        values = {**self.env, **(env or {})}
        workdir = self.spec.get("working_dir") or self.image.get("WorkingDir") or "/"
        return [
            "chroot", f"--userspec={self.user}", str(self.root),
            "/usr/bin/env", "-i", "-C", workdir, *(f"{k}={v}" for k, v in values.items()), *argv,
        ]  # fmt: skip

    def start(self) -> None:
        log = self.workdir / LOGS / f"{self.name}.log"
        log.parent.mkdir(exist_ok=True)
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                self.command(self.argv), stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip

    def exec(
        self, *argv: str, timeout: float = 120, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(list(argv), env), capture_output=True, text=True, timeout=timeout
        )

    def health(self) -> subprocess.CompletedProcess[str]:
        """Run the compose file's health check once, as the container engine would."""
        check = self.spec["healthcheck"]
        timeout = _seconds(check.get("timeout", "30s"))
        return self.exec(*health_argv(check["test"]), timeout=timeout)

    def wait_healthy(self, deadline: float = 120) -> subprocess.CompletedProcess[str]:
        """Run the health check until it passes (as often as the engine would in its start
        period, but without its 30 s interval); fail with the last answer and the log."""
        end = time.monotonic() + deadline
        delay = 0.2
        while True:
            assert self.process is not None and self.process.poll() is None, (
                f"{self.name} exited ({self.process and self.process.returncode}):\n{self.log()}"
            )
            done = self.health()
            if done.returncode == 0:
                return done
            assert time.monotonic() < end, (
                f"{self.name} not healthy after {deadline} s: {done.stdout}{done.stderr}\n"
                f"{self.log()}"
            )
            time.sleep(delay)  # polling the health check, as the engine does
            delay = min(delay * 2, 2.0)

    def log(self) -> str:
        path = self.workdir / LOGS / f"{self.name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def kill(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)

    def stop(self) -> None:
        """Stop the process, release every mount and the container; never raises."""
        if self.process is not None:
            self.kill(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                self.process.wait(10)
        for target in reversed(self.mounts):
            if subprocess.run(["umount", str(target)], capture_output=True).returncode:
                subprocess.run(["umount", "-l", str(target)], capture_output=True)
        self.mounts.clear()
        subprocess.run(["podman", "umount", self.container], capture_output=True)
        subprocess.run(["podman", "rm", "-f", self.container], capture_output=True)


def run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{shlex.join(argv)}: {done.stderr}"
    return done.stdout


def _volume(spec: str | dict[str, Any]) -> tuple[str, str]:
    if isinstance(spec, dict):
        return str(spec["source"]), str(spec["target"])
    parts = spec.split(":")
    return parts[0], parts[1]


def _seed(volume: Path, image_path: Path) -> None:
    """A new named volume starts as a copy of the image's directory (owner and mode too)."""
    if volume.exists():
        return
    volume.parent.mkdir(parents=True, exist_ok=True)
    if image_path.is_dir():
        run("cp", "-a", "--no-target-directory", str(image_path), str(volume))
    else:
        volume.mkdir()


def _seconds(value: str | int | float) -> float:
    if isinstance(value, int | float):
        return float(value)
    total, number = 0.0, ""
    units = {"h": 3600, "m": 60, "s": 1}
    for char in value:
        if char.isdigit() or char == ".":
            number += char
        else:
            total += float(number) * units[char]
            number = ""
    return total + (float(number) if number else 0.0)
