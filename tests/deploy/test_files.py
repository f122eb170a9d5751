"""The deployment files agree with each other and with the code: the env examples list every
key read, the Asterisk templates get every value they need, the compose file's services are on
the host network with health checks, the units verify, the scripts parse, scripts/mirror reads
apt's sources. (scripts/test-images builds and runs the images, and runs scripts/install.)"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ivr.config import load_config
from ivr.envfile import read_env_file
from tests.conftest import unavailable

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
SCRIPTS = [
    *(ROOT / "scripts").glob("*"),
    DOCKER / "apt-install",
    DOCKER / "asterisk" / "ivr-asterisk",
    DOCKER / "asterisk" / "ivr-asterisk-health",
    DOCKER / "service" / "ivr-redis",
]


def keys_of(example: Path) -> set[str]:
    return set(read_env_file(example))


def config_keys() -> set[str]:
    return set(re.findall(r'take\("(IVR_[A-Z_]+)"', (ROOT / "ivr" / "config.py").read_text()))


def test_docs_example_lists_every_key_the_service_reads() -> None:
    assert config_keys() - keys_of(ROOT / "docs" / "ivr.env.example") == set()


def test_docker_example_keys_are_read_by_someone_and_load() -> None:
    start = (DOCKER / "asterisk" / "ivr-asterisk").read_text()
    redis = (DOCKER / "service" / "ivr-redis").read_text()
    deployment = {k for k in keys_of(DOCKER / "ivr.env.example") if k not in config_keys()}
    assert deployment, "the Asterisk settings"
    for key in deployment:
        assert key in start or key in redis, f"{key}: read by nobody"
    # Every setting the start script reads is documented in the example.
    read = set(re.findall(r'"\$\{(IVR_[A-Z_]+):=', start)) - {"IVR_TRUNK_CONTEXT"}
    assert read - keys_of(DOCKER / "ivr.env.example") == set()
    values = read_env_file(DOCKER / "ivr.env.example")
    config = load_config({**values, "IVR_AMI_SECRET": "0" * 48})
    assert config.audio_dir == config.audio_dir_asterisk == Path("/var/lib/ivr/sounds")


def test_templates_get_every_value_they_need() -> None:
    start = (DOCKER / "asterisk" / "ivr-asterisk").read_text()
    provided = set(re.findall(r"\$\{(IVR_[A-Z_]+):=", start)) | {"IVR_TRUNK_CONTEXT"}
    for template in ("manager.conf.example", "pjsip-trunk.conf.example"):
        text = (ROOT / "docs" / template).read_text()
        needed = set(re.findall(r"\$\{(IVR_[A-Z0-9_]+)\}", text))
        assert needed and needed <= provided, (template, needed - provided)
    assert "; --- The trunk" in (ROOT / "docs" / "pjsip-trunk.conf.example").read_text()


def test_compose_services_on_the_host_network_with_health_checks() -> None:
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    assert sorted(services) == ["asterisk", "console", "redis", "worker"]
    for name, service in services.items():
        assert service["network_mode"] == "host", name
        assert service["env_file"] == "ivr.env", name
        assert service["restart"] == "unless-stopped", name
        check = service["healthcheck"]
        assert check["retries"] >= 3 and check["start_period"], name
    assert services["worker"]["depends_on"]["asterisk"]["condition"] == "service_healthy"
    assert {"/var/lib/ivr/sounds"} <= {v.split(":")[1] for v in services["asterisk"]["volumes"]}
    assert all(v["name"].startswith("ivr-") for v in compose["volumes"].values())


def test_units_verify_and_are_hardened(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        unavailable("systemd-analyze is not installed")
    root = tmp_path / "root"
    shutil.copytree("/lib/systemd/system", root / "lib/systemd/system", symlinks=True)
    shutil.copytree(ROOT / "systemd", root / "etc/systemd/system")
    ivr = root / "opt/ivr/bin/ivr"
    ivr.parent.mkdir(parents=True)
    ivr.write_text("#!/bin/sh\n")
    ivr.chmod(0o755)

    def analyze(*args: str) -> str:
        done = subprocess.run(
            ["systemd-analyze", *args, f"--root={root}"], capture_output=True, text=True
        )
        return done.stdout + done.stderr

    for unit in ("ivr-console.service", "ivr-worker@pbx1.service"):
        assert analyze("verify", unit) == "", unit
        exposure = analyze("security", "--offline=true", unit).split("exposure level for")[1]
        assert float(exposure.split()[1]) < 3.0, exposure
    # The check can fail: a wrong value is reported.
    hardening = root / "etc/systemd/system/ivr-.service.d/hardening.conf"
    hardening.write_text(hardening.read_text().replace("ProtectHome=yes", "ProtectHome=maybe"))
    assert "protect home value" in analyze("verify", "ivr-console.service")


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_scripts_parse(script: Path) -> None:
    if script.suffix == ".py" or script.is_dir():
        return
    shell = "sh" if script.read_text().startswith("#!/bin/sh") else "bash"
    done = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def mirror(apt: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ROOT / "scripts" / "mirror", *args],
        env={"PATH": "/usr/bin:/bin", "IVR_APT_DIR": str(apt), **env},
        capture_output=True, text=True,
    )  # fmt: skip


def test_mirror_is_read_from_apt_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n\n"
        "Types: deb\n# a comment\nURIs: http://mirror.hospital.example/debian/\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.hospital.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n"
    )
    assert mirror(tmp_path).stdout == "http://mirror.hospital.example/debian\n"
    assert mirror(tmp_path, "security").stdout == "http://mirror.hospital.example/debian-security\n"
    assert (
        mirror(tmp_path, IVR_DEBIAN_MIRROR="http://other/debian").stdout == "http://other/debian\n"
    )

    (tmp_path / "sources.list.d" / "debian.sources").unlink()
    (tmp_path / "sources.list").write_text(
        "# deb http://old.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian bookworm main\n"
    )
    assert mirror(tmp_path).stdout == "http://one.example/debian\n"
    assert mirror(tmp_path, "security").stdout == ""

    # Ubuntu: no Debian mirror to build sid from; say what to set.
    (tmp_path / "sources.list").write_text(
        "deb http://archive.ubuntu.com/ubuntu/ noble main\n"
        "deb http://security.ubuntu.com/ubuntu noble-security main\n"
    )
    done = mirror(tmp_path)
    assert done.returncode == 1 and "IVR_DEBIAN_MIRROR" in done.stderr
    assert mirror(tmp_path, "security").stdout == ""


def test_no_mirror_host_written_in_the_project() -> None:
    hosts = re.compile(r"(deb\.debian\.org|archive\.ubuntu\.com|ftp\.[a-z.]*debian\.org)")
    for path in [*(ROOT / "scripts").rglob("*"), *DOCKER.rglob("*")]:
        if path.is_file():
            assert not hosts.search(path.read_text(errors="replace")), path
