"""The phone lines under test: a FastAGI server running the lines on a test's own Redis, audio
directory and observer, and the robot hub that dials them (tests/phonerobot.py)."""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from ivr.access import audit
from ivr.campaign.scenarios import load_scenarios
from ivr.config import Config
from ivr.lines.call import LineContext
from ivr.lines.server import Lines
from ivr.pbx.agiserver import AgiServer
from ivr.pbx.ami import AmiLink
from ivr.pbx.keys import KeyEvents
from ivr.staff.roster import RosterStore
from ivr.voice.tts import Speaker
from tests.campaigntools import person
from tests.phonerobot import On, RobotHub
from tests.sipp import Keys
from tests.teardown import bounded_close

PIN = "246810"
DIRECTOR = "0611223344"


@dataclass
class Phone:
    hub: RobotHub
    lines: Lines
    db: Redis
    config: Config
    ami: AmiLink
    temp_files: set[Path]

    async def roster(self) -> None:
        people = [person(f"n{i}", "nurse", f"1{i}11") for i in range(4)]
        people += [person(f"d{i}", "doctor", f"2{i}") for i in range(2)]
        people.append(person("4242", "nurse", "0677889900", tags=frozenset({"crisis_cell"})))
        await RosterStore(self.db).replace(people)

    def new_temp_files(self) -> set[Path]:
        """Recordings left in the incoming directory since the test started."""
        return set((self.config.audio_dir / "incoming").glob("*.wav")) - self.temp_files

    async def audit(self, action: str) -> list[dict[str, Any]]:
        return [e for e in await audit.entries(self.db) if e["action"] == action]


@contextlib.asynccontextmanager
async def serve_lines(
    sandbox_config: Config,
    redis_url: str,
    db: Redis,
    ami: AmiLink,
    *,
    speaker_class: type[Speaker] = Speaker,
) -> AsyncIterator[Phone]:
    """The lines served on `db` (the flows' Redis client), speaking with a `speaker_class`."""
    # An audio directory of the test's own, so the recordings it checks are its own (tests run
    # in parallel); it shares the rendered speech of the others (a relative link, which
    # Asterisk in its chroot follows too).
    own = f"t-{secrets.token_hex(4)}"
    (sandbox_config.audio_dir / "tts").mkdir(parents=True, exist_ok=True)
    (sandbox_config.audio_dir / own).mkdir()
    (sandbox_config.audio_dir / own / "tts").symlink_to("../tts")
    config = dataclasses.replace(
        sandbox_config,
        redis_url=redis_url,
        pin_lockout=120,
        audio_dir=sandbox_config.audio_dir / own,
        audio_dir_asterisk=sandbox_config.audio_dir_asterisk / own,
    )
    speaker = speaker_class(config.audio_dir, rate=config.tts_rate, timeout=config.tts_timeout)
    hub = RobotHub(ami, "")
    lines = Lines(LineContext(config, db, speaker, load_scenarios(), observer=hub.observe))
    server = AgiServer(lines.handlers(), port=0, keys=KeyEvents(ami))
    hub.agi_url = f"agi://127.0.0.1:{await server.start()}"
    try:
        before = set((config.audio_dir / "incoming").glob("*.wav"))
        yield Phone(hub, lines, db, config, ami, before)
    finally:
        await bounded_close("the lines' FastAGI server", server.close())
        await bounded_close("the lines' speaker", speaker.close())
        shutil.rmtree(config.audio_dir, ignore_errors=True)


def launch(scenario: str, *, drill: bool = False) -> list[On]:
    """The director's keys for a campaign with the prepared message."""
    return [
        On("pin", Keys(f"{PIN}#")),
        *([On("scenario", Keys("9"))] if drill else []),
        On("scenario", Keys(scenario)),
        On("confirm", Keys("1")),
    ]
