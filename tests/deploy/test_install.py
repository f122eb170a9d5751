"""scripts/install on a fresh Debian 12 (a chroot of the debian:bookworm-slim image, with an
"existing Asterisk": its group and configuration directory): everything in place as the README
says, a second run changes nothing, an upgrade swaps the virtualenv and keeps the previous one,
the installed units pass `systemd-analyze verify`, the service's user renders speech. Run by
scripts/test-images (the base image and the Debian mirror)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.campaign.scenarios import load_scenarios
from tests.deploy.compose import Service

ROOT = Path(__file__).resolve().parents[2]
BASE = "docker.io/library/debian:bookworm-slim"
#: What the installation writes, compared between runs.
WATCHED = (
    "etc/ivr", "etc/systemd/system", "usr/local/bin/ivr", "etc/asterisk", "etc/redis/redis.conf",
    "var/lib/ivr",
)  # fmt: skip

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def machine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    work = tmp_path_factory.mktemp("install")
    box = Service("debian", {"image": BASE}, work)
    try:
        box.create(work / "volumes")
        # The hospital's Asterisk: its group and its configuration directory.
        assert box.exec("groupadd", "--system", "asterisk").returncode == 0
        (box.root / "etc/asterisk/manager.d").mkdir(parents=True)
        yield box
    finally:
        box.stop()


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheelhouse a hospital brings: for Debian 12's Python (the default)."""
    out = tmp_path_factory.mktemp("wheels")
    subprocess.run([ROOT / "scripts" / "images", "--wheels-only", out], check=True, timeout=600)
    return out


def install(machine: Service, wheels: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [ROOT / "scripts" / "install", "--wheels", wheels],
        env={**os.environ, "IVR_INSTALL_ROOT": str(machine.root)},
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done


def snapshot(root: Path) -> dict[str, tuple[str, int, int, int]]:
    """Every watched file: content digest (or link target), mode, owner, modification time."""
    seen: dict[str, tuple[str, int, int, int]] = {}
    for watched in WATCHED:
        base = root / watched
        for path in [base, *base.rglob("*")] if base.is_dir() else [base]:
            stat = path.lstat()
            if path.is_symlink():
                what = "-> " + os.readlink(path)
            elif path.is_file():
                what = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                what = "dir"
            seen[str(path.relative_to(root))] = (what, stat.st_mode, stat.st_uid, stat.st_mtime_ns)
    seen["opt/ivr"] = (os.readlink(root / "opt/ivr"), 0, 0, 0)
    return seen


def settings(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return dict(ln.split("=", 1) for ln in lines if "=" in ln and not ln.startswith("#"))


def test_install_then_again_changes_nothing(machine: Service, wheels: Path) -> None:
    root = machine.root
    first = install(machine, wheels)
    assert "nothing to do" not in first.stderr and "systemctl enable --now" in first.stderr
    before = snapshot(root)
    second = install(machine, wheels)
    assert "nothing to do: ivr is installed and up to date" in second.stderr, second.stderr
    assert snapshot(root) == before

    env = root / "etc/ivr/ivr.env"
    uid = int(machine.exec("id", "-u", "ivr").stdout)
    assert (env.stat().st_mode & 0o777, env.stat().st_uid) == (0o600, uid)
    secret = settings(env)["IVR_AMI_SECRET"]
    assert len(secret) == 48
    manager = root / "etc/asterisk/manager.d/ivr.conf"
    assert manager.read_text().startswith("[ivr]\nsecret = " + secret + "\n")
    assert manager.stat().st_mode & 0o777 == 0o640 and "${" not in manager.read_text()
    assert (root / "etc/asterisk/ivr/ivr-alert.conf").exists()
    assert "\nappendonly yes\n" in (root / "etc/redis/redis.conf").read_text()
    asterisk_gid = int(machine.exec("getent", "group", "asterisk").stdout.split(":")[2])
    for where, mode in (("sounds", 0o2750), ("sounds/incoming", 0o2770)):
        stat = (root / "var/lib/ivr" / where).stat()
        assert (stat.st_mode & 0o7777, stat.st_uid, stat.st_gid) == (mode, uid, asterisk_gid)

    # The service's user reads its settings through the wrapper; the secret is not printed.
    shown = subprocess.run(
        ["chroot", "--userspec=ivr:ivr", root, "/usr/local/bin/ivr", "config"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "ami_secret = (set)" in shown.stdout and secret not in shown.stdout
    # The scenarios IVR_SCENARIOS names are there and valid; the voices render as the service's
    # user, into its audio directory.
    assert load_scenarios(root / "etc/ivr/scenarios.toml")
    speech = subprocess.run(
        ["chroot", "--userspec=ivr:ivr", root, "/usr/local/bin/ivr", "health", "--check", "speech"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert speech.returncode == 0 and "speech: voices render" in speech.stdout, speech.stdout


def test_installed_units_verify(machine: Service) -> None:
    # systemd-analyze resolves the units they refer to (sysinit.target...) under the root.
    units = machine.root / "lib/systemd/system"
    shutil.copytree("/lib/systemd/system", units, symlinks=True, dirs_exist_ok=True)
    for unit in ("ivr-console.service", "ivr-worker@pbx1.service"):
        done = subprocess.run(
            ["systemd-analyze", "verify", f"--root={machine.root}", unit],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert (done.returncode, done.stdout + done.stderr) == (0, ""), unit
        security = subprocess.run(
            ["systemd-analyze", "security", "--offline=true", f"--root={machine.root}", unit],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        exposure = float(security.stdout.split("Overall exposure level for")[1].split()[1])
        assert exposure < 3.0, security.stdout[-300:]


def test_upgrade_swaps_the_virtualenv_and_keeps_the_previous(
    machine: Service, wheels: Path, tmp_path: Path
) -> None:
    root = machine.root
    old = os.readlink(root / "opt/ivr")
    newer = tmp_path / "wheels"
    shutil.copytree(wheels, newer)
    # The same version with a build tag: another set of wheels, as a new release would be.
    (own,) = newer.glob("ivr-*.whl")
    own.rename(own.with_name(own.name.replace("-py3-", "-1-py3-")))
    done = install(machine, newer)
    assert "installed ivr-" in done.stderr
    new = os.readlink(root / "opt/ivr")
    assert new != old and (root / old.lstrip("/")).is_dir(), "the previous one stays"
    version = machine.exec("/usr/local/bin/ivr", "--version")
    assert version.returncode == 0 and version.stdout.startswith("ivr "), version.stderr
