"""The images of docker/, end to end: built by scripts/test-images (their tag is in
IVR_TEST_IMAGES), run from their file systems as docker/compose.yaml says (`tests.deploy.compose`),
on ports of this test's own: every service's health check passes, an alert call placed through
them is answered with key 1 by a simulated phone, `ivr health --selftest` calls one too; then
Asterisk is killed and the worker's health check turns CRITICAL."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.sandbox.redisserver import free_port
from tests.deploy.compose import Service, compose_config

ROOT = Path(__file__).resolve().parents[2]
TAG = os.environ.get("IVR_TEST_IMAGES", "")
#: Start order, as the compose file's depends_on has it.
ORDER = ("redis", "asterisk", "worker", "console")
ROSTER = "id;name;role;unit;mobile\nE001;Test Nurse;nurse;ER;1011\n"

pytestmark = pytest.mark.timeout(600)


def ports(count: int) -> list[int]:
    found: set[int] = set()
    while len(found) < count:
        found.add(free_port())
    return sorted(found)


def set_keys(env_file: Path, values: dict[str, str]) -> None:
    """Give keys of an env file new values, as an engineer editing it would."""
    lines = env_file.read_text().splitlines()
    for key, value in values.items():
        lines = [ln for ln in lines if not ln.startswith(f"{key}=")] + [f"{key}={value}"]
    env_file.write_text("\n".join(lines) + "\n")


def env_file(work: Path) -> None:
    """docker/ivr.env.example through scripts/secrets, then this test's ports and phones."""
    subprocess.run([ROOT / "scripts" / "secrets", work / "ivr.env"], check=True)
    ami, sip, agi, http, redis = ports(5)
    redis_url = next(
        ln.split("=", 1)[1] for ln in (work / "ivr.env").read_text().splitlines()
        if ln.startswith("IVR_REDIS_URL=")
    )  # fmt: skip
    rtp = random.randrange(40000, 60000, 100)
    set_keys(
        work / "ivr.env",
        {
            "IVR_AMI_PORT": str(ami),
            "IVR_SIP_BIND": f"127.0.0.1:{sip}",
            "IVR_RTP_PORTS": f"{rtp}-{rtp + 99}",
            "IVR_AGI_PORT": str(agi),
            "IVR_HTTP_PORT": str(http),
            "IVR_REDIS_URL": redis_url.replace(":6379/", f":{redis}/"),
            "IVR_SIMULATED_PHONES": "yes",
            "IVR_DIAL_TEMPLATE": "Local/{number}@ivr-sim",
            "IVR_SELFTEST_TARGETS": "Local/1011@ivr-sim",
            "IVR_RING_TIMEOUT": "10",
        },
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Service]]:
    work = tmp_path_factory.mktemp("compose")
    (work / "compose.yaml").write_text((ROOT / "docker" / "compose.yaml").read_text())
    env_file(work)
    config = compose_config(work, {"IVR_IMAGE_TAG": TAG})
    assert sorted(config["services"]) == sorted(ORDER)
    services = {name: Service(name, config["services"][name], work) for name in ORDER}
    try:
        for name in ORDER:
            services[name].create(work / "volumes")
            services[name].start()
            services[name].wait_healthy()
        yield services
    finally:
        for service in reversed(services.values()):
            service.stop()


def test_every_service_is_healthy(stack: dict[str, Service]) -> None:
    for name, service in stack.items():
        done = service.health()
        assert done.returncode == 0, f"{name}: {done.stdout}{done.stderr}"
    assert "fully booted, PJSIP transport-udp up" in stack["asterisk"].health().stdout
    assert stack["redis"].health().stdout.strip() == "redis: PONG"
    assert stack["worker"].health().stdout.startswith("IVR OK - ")


def test_redis_is_persistent_and_asks_for_its_password(stack: dict[str, Service]) -> None:
    redis = stack["redis"]
    port = redis.env["IVR_REDIS_URL"].rsplit(":", 1)[1].split("/")[0]
    anonymous = redis.exec("redis-cli", "-h", "127.0.0.1", "-p", port, "ping")
    assert "NOAUTH" in anonymous.stdout + anonymous.stderr
    files = {p.name for p in (Path(redis.root) / "var/lib/redis").iterdir()}
    assert "appendonlydir" in files


def test_an_alert_call_through_the_images(stack: dict[str, Service]) -> None:
    worker = stack["worker"]
    roster = Path(worker.root) / "tmp" / "roster.csv"
    roster.write_text(ROSTER)
    roster.chmod(0o644)
    imported = worker.exec("ivr", "roster", "import", "/tmp/roster.csv")
    assert imported.returncode == 0, imported.stderr
    started = time.monotonic()
    done = worker.exec(
        "ivr", "campaign", "start", "--message", "Exercice.", "--wait", "--json", timeout=180
    )
    assert done.returncode == 0, done.stderr + stack["worker"].log()
    report = json.loads(done.stdout)
    assert (report["total"], report["available"], report["status"]) == (1, 1, "done"), report
    assert time.monotonic() - started < 60
    # Asterisk played what the worker rendered: every audio file is readable by its user
    # (the shared volume's group), and by no other user.
    audio = stack["asterisk"].exec(
        "find", "/var/lib/ivr/sounds", "-name", "*.wav", "(", "!", "-readable", "-o", "-perm",
        "/o=r", ")", "-printf", "bad %p\n", "-o", "-name", "*.wav", "-printf", "ok\n",
    )  # fmt: skip
    assert "bad" not in audio.stdout and audio.stdout.count("ok") > 10, audio.stdout[-500:]


def test_redis_backup_and_restore(stack: dict[str, Service], tmp_path: Path) -> None:
    """README "Deploy": a snapshot taken from the host, Redis's data lost, the snapshot put
    back as dump.rdb: Redis starts from it and keeps its append-only file."""
    redis = stack["redis"]
    url = redis.env["IVR_REDIS_URL"]
    password, port = url.split(":")[2].split("@")[0], url.rsplit(":", 1)[1].split("/")[0]
    backup = tmp_path / "ivr.rdb"
    done = subprocess.run(
        ["redis-cli", "-p", port, "--rdb", str(backup)], env={"REDISCLI_AUTH": password},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0 and backup.stat().st_size > 0, done.stderr
    redis.kill(signal.SIGTERM)
    assert redis.process is not None and redis.process.wait(30) == 0
    data = redis.root / "var/lib/redis"
    owner = data.stat()
    for entry in data.iterdir():  # the disk lost
        subprocess.run(["rm", "-rf", str(entry)], check=True)
    shutil.copy(backup, data / "dump.rdb")
    os.chown(data / "dump.rdb", owner.st_uid, owner.st_gid)
    redis.start()
    redis.wait_healthy()
    assert "E001;Test Nurse" in stack["worker"].exec("ivr", "roster", "export").stdout
    assert (data / "appendonlydir").is_dir()


def test_ivr_health_with_a_test_call(stack: dict[str, Service]) -> None:
    done = stack["worker"].exec("ivr", "health", "--selftest", timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    line = done.stdout.strip()
    assert line.startswith("IVR OK - ") and "\n" not in line
    for part in ("ami: Asterisk 22", "redis: reachable", "agi: phone lines served",
                 "speech: voices render", "workers: 1 alive (worker-1)",
                 "selftest: Local/1011@ivr-sim ok"):  # fmt: skip
        assert part in line, line
    console = stack["console"].exec("ivr", "health", "--console")
    assert console.returncode == 0 and "(PBX link up, " in console.stdout, console.stdout
    port = stack["console"].env["IVR_HTTP_PORT"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=10) as answer:
        health = json.loads(answer.read())
    assert health["status"] == "ok", health


def test_asterisk_killed_turns_the_worker_critical(stack: dict[str, Service]) -> None:
    """Last: it leaves the stack without its PBX."""
    stack["asterisk"].kill(signal.SIGKILL)
    assert stack["asterisk"].process is not None
    stack["asterisk"].process.wait(10)
    deadline = time.monotonic() + 30
    while True:
        done = stack["worker"].health()
        if done.returncode != 0:
            break
        assert time.monotonic() < deadline, "the worker stayed healthy without Asterisk"
        time.sleep(0.5)  # polling the health check, as the engine does
    assert done.returncode == 1  # `|| exit 1`: what the engine reads as unhealthy
    assert done.stdout.startswith("IVR CRITICAL - worker: worker-1: its AMI link"), done.stdout
    assert stack["asterisk"].health().returncode == 1
    full = stack["worker"].exec("ivr", "health", "--check", "ami")
    assert full.returncode == 2 and "IVR CRITICAL - ami: " in full.stdout, full.stdout
