"""The smaller findings of the adversarial pass, each as its reproduction."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis.asyncio import Redis

from ivr.config import Config
from ivr.errors import InvalidNumberError
from ivr.keys import roster_people_prefix
from ivr.numbers import normalize_number
from ivr.sandbox import asterisk as sandbox
from ivr.staff.csvfile import parse_roster
from ivr.staff.roster import RosterError, RosterStore
from ivr.voice.tts import Speaker
from tests.api.test_http import start_api
from tests.campaigntools import person

HEADER = "id;name;role;unit;phone\n"


@pytest.mark.parametrize("char", ["\u202e", "\u200b", "\u2066", "\ufeff", "\x85"])
def test_format_characters_are_refused_in_names(char: str) -> None:
    """U+202E (right-to-left override) and its kin reorder or hide text on screen."""
    with pytest.raises(RosterError, match="invisible format character"):
        parse_roster(f"{HEADER}a1;Anne{char}Dupont;nurse;urg;0611223344\n".encode())


@pytest.mark.parametrize("raw", ["0612)", "(0612", "06(12", "06)12(34"])
def test_unbalanced_parentheses_are_refused(raw: str) -> None:
    with pytest.raises(InvalidNumberError, match="parentheses"):
        normalize_number(raw)
    assert normalize_number("+33 (0)6 12 34 56 78") == "+33612345678"


async def test_audio_files_are_not_world_readable(tmp_path: Path) -> None:
    async with Speaker(tmp_path) as speaker:
        wav = await speaker.render("Alerte.", "fr")
    assert wav.stat().st_mode & 0o777 == 0o640
    assert wav.parent.stat().st_mode & 0o007 == 0


async def test_a_revoked_token_is_not_named(db: Redis) -> None:
    api = await start_api(db, Config())
    try:
        body = await api.error("GET", "/api/campaigns", 401, "revoked_token", role="revoked")
        assert "gone" not in body["message"]
    finally:
        await api.client.close()


async def test_a_roster_left_half_written_is_removed_by_the_next_import(db: Redis) -> None:
    """Redis killed during an import could leave a version's hash without its expiry."""
    leftover = f"{roster_people_prefix}20260101T000000Z-dead"
    await db.hset(leftover, mapping={"x": "{}"})
    await RosterStore(db).replace([person("a", "nurse", "0611223344")])
    assert not await db.exists(leftover)
    assert await RosterStore(db).count() == 1


@pytest.mark.integration
def test_sandbox_env_exports_for_a_shell(sandbox_config: Config) -> None:
    script = f'eval "$({sys.executable} -m ivr sandbox env)"; echo "$IVR_AMI_PORT"'
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == str(sandbox_config.ami_port), done.stderr


@pytest.mark.integration
def test_sandbox_manager_conf_belongs_to_root(sandbox_config: Config) -> None:
    conf = sandbox.env_file().parent / "root" / "etc" / "asterisk" / "manager.conf"
    stat = conf.stat()
    assert (stat.st_uid, stat.st_gid, stat.st_mode & 0o777) == (0, 0, 0o600)


def test_the_speech_worker_dies_with_its_parent(tmp_path: Path) -> None:
    """A worker killed outright (SIGKILL) must not leave its speech worker running."""
    code = (
        "import asyncio, os, sys, pathlib\n"
        "from ivr.voice.tts import Speaker\n"
        "async def main():\n"
        f"    s = Speaker(pathlib.Path({str(tmp_path)!r}))\n"
        "    await s.render('Alerte.', 'fr')\n"
        "    print(s._proc.pid, flush=True)\n"
        "    await asyncio.sleep(600)\n"
        "asyncio.run(main())\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.stdout.close()
    parent.send_signal(signal.SIGKILL)
    parent.wait(10)
    deadline = time.monotonic() + 10
    while alive(child):
        assert time.monotonic() < deadline, "the speech worker outlived its parent"
        time.sleep(0.05)  # polling a process table, nothing to await


def alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it is not running)."""
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state


@pytest.mark.integration
@pytest.mark.parametrize("command", [["serve"], ["worker", "--name", "busy-agi"]])
def test_a_busy_port_is_one_clear_line(
    sandbox_config: Config, redis_server: object, command: list[str]
) -> None:
    """A second worker on the same AGI port, a console on a taken HTTP port: exit 2, no
    traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
        env.update(
            IVR_CONFIG=str(sandbox.env_file()),
            IVR_REDIS_URL=redis_server.url,  # type: ignore[attr-defined]
            IVR_HTTP_PORT=port,
            IVR_AGI_PORT=port,
        )
        done = subprocess.run(
            [sys.executable, "-m", "ivr", *command],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot" in lines[0] and port in lines[0], done.stderr
