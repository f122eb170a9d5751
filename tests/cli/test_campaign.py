"""`ivr roster ...` and `ivr campaign ...` as an operator runs them, on a private redis-server."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from ivr.campaign import store
from ivr.campaign.estimate import estimate
from ivr.campaign.spec import CampaignSpec
from ivr.cli import progress
from ivr.db import connect
from ivr.sandbox.redisserver import RedisServer
from ivr.staff.csvfile import parse_roster

ROSTER = """\ufeffMatricule;Nom;Prénom;Fonction;Service;Portable;Domicile;Astreinte;Langue
A001;Martin;Claire;Infirmier;Urgences;06 11 00 00 01;;oui;fr
A002;Durand;Paul;Médecin;Urgences;06 11 00 00 02;01 11 00 00 02;non;fr
A003;Petit;Hugo;Anesthésiste;Bloc;06 11 00 00 03;;non;en
A004;Moreau;Emma;Infirmier;Réanimation;06 11 00 00 04;;non;fr
"""


def ivr(redis_url: str, *args: str, tmp: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env.update(IVR_REDIS_URL=redis_url, IVR_AUDIO_DIR=str(tmp / "audio"), **extra)
    return subprocess.run(
        [sys.executable, "-m", "ivr", *args], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def redis_url(redis_factory: Callable[..., RedisServer]) -> str:
    return redis_factory(appendonly=False).url


def test_roster_import_export_and_bad_file_changes_nothing(redis_url: str, tmp_path: Path) -> None:
    good = tmp_path / "roster.csv"
    good.write_text(ROSTER, encoding="utf-8")
    done = ivr(redis_url, "roster", "import", str(good), tmp=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "4 staff imported" in done.stdout
    assert "3 staff have a single number (one phone to reach them): A001, A003, A004" in done.stdout
    before = ivr(redis_url, "roster", "export", tmp=tmp_path).stdout
    assert "A003" in before and "anesthesiste" in before

    bad = tmp_path / "bad.csv"
    bad.write_text(
        ROSTER + "A005;X;Y;Infirmier;Urgences;06&11;;non;fr\nA001;Dup;Z;Médecin;U;0611;;;\n"
    )
    done = ivr(redis_url, "roster", "import", str(bad), tmp=tmp_path)
    assert done.returncode == 2
    assert f"{bad}:6:" in done.stderr and "'&'" in done.stderr
    assert f"{bad}:7:" in done.stderr and "A001" in done.stderr
    assert ivr(redis_url, "roster", "export", tmp=tmp_path).stdout == before, "nothing changed"


def test_campaign_lifecycle_without_workers(redis_url: str, tmp_path: Path) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER, encoding="utf-8")
    assert ivr(redis_url, "roster", "import", str(roster), tmp=tmp_path).returncode == 0

    est = ivr(redis_url, "campaign", "start", "-m", "Alerte.", "--quota", "infirmier=1",
              "--estimate", "--lines", "10", tmp=tmp_path)  # fmt: skip
    assert est.returncode == 0, est.stderr
    assert "calls on 10 lines" in est.stdout and "infirmier" in est.stdout

    bad = ivr(redis_url, "campaign", "start", "-m", "x", "--quota", "nurse", tmp=tmp_path)
    assert bad.returncode == 2 and "ROLE=N" in bad.stderr

    started = ivr(redis_url, "campaign", "start", "-m", "Alerte.", "--drill", "--quota",
                  "infirmier=1", "--json", tmp=tmp_path)  # fmt: skip
    assert started.returncode == 0, started.stderr
    report = json.loads(started.stdout)
    assert report["campaign"] == "1" and report["total"] == 4 and report["pending"] == 4
    assert report["drill"] is True

    assert "stopped" in ivr(redis_url, "campaign", "stop", "1", tmp=tmp_path).stdout
    final = json.loads(ivr(redis_url, "campaign", "report", "1", "--json", tmp=tmp_path).stdout)
    for key in ("campaign", "total", "available", "unavailable", "no_answer", "busy",
                "voicemail", "failed", "cancelled", "pending", "by_role", "drill",
                "started_at", "finished_at"):  # fmt: skip
        assert key in final
    assert final["status"] == "stopped"
    assert final["by_role"]["infirmier"]["quota"] == 1
    csv = ivr(redis_url, "campaign", "report", "1", "--csv", tmp=tmp_path).stdout.splitlines()
    assert csv[0].startswith("id;name;role") and len(csv) == 5
    text = ivr(redis_url, "campaign", "report", "1", tmp=tmp_path).stdout
    assert "  plan: voice -> voice -> voice, 0 call(s) placed" in text.splitlines(), text
    assert "SMS:" not in text, "no SMS line for a voice-only plan"

    missing = ivr(redis_url, "campaign", "report", "42", tmp=tmp_path)
    assert missing.returncode == 2 and "campaign 42 not found" in missing.stderr


def test_delivery_plan_options(redis_url: str, tmp_path: Path) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER, encoding="utf-8")
    assert ivr(redis_url, "roster", "import", str(roster), tmp=tmp_path).returncode == 0
    sms = {"IVR_SMS_SIP_TO": "pjsip:gsm/sip:{number}@192.168.10.20"}

    bad = ivr(redis_url, "campaign", "start", "-m", "x", "--plan", "voice,fax", tmp=tmp_path)
    assert bad.returncode == 2 and "step 2 of the delivery plan is 'fax'" in bad.stderr
    first = ivr(redis_url, "campaign", "start", "-m", "x", "--plan", "sms", tmp=tmp_path, **sms)
    assert first.returncode == 2 and "must start with voice" in first.stderr
    none = ivr(redis_url, "campaign", "start", "-m", "x", "--plan", "voice,sms", tmp=tmp_path)
    assert none.returncode == 2 and "no SMS transport is configured" in none.stderr

    est = ivr(redis_url, "campaign", "start", "-m", "Alerte plan blanc, venez à l'hôpital.",
              "--plan", "voice+sms,voice", "--retry-delay", "120", "--estimate", tmp=tmp_path,
              **sms)  # fmt: skip
    assert est.returncode == 0, est.stderr
    assert "plan: voice+sms,voice, 120 s apart; 4 of 4 staff have a number for SMS" in est.stdout
    # "hôpital" is not GSM 03.38: UCS-2, 70 characters a part, and this text is longer.
    assert "SMS text (fr): 2 SMS each (UCS2)" in est.stdout
    assert "SMS text (en): " in est.stdout

    started = ivr(redis_url, "campaign", "start", "-m", "Alerte.", "--json", tmp=tmp_path, **sms)
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout)["plan"] == ["voice", "sms", "voice"], "the default"
    voice = ivr(redis_url, "campaign", "start", "-m", "Alerte.", "--json", tmp=tmp_path)
    assert json.loads(voice.stdout)["plan"] == ["voice", "voice", "voice"], "--attempts rounds"


def test_estimate_figures() -> None:
    plan = estimate(Counter(nurse=200, doctor=50), {"nurse": 20}, lines=40,
                    message_seconds=20, ring_timeout=30)  # fmt: skip
    # 60% answered x (8 + 20 + 16 s) + 40% x 30 s = 38.4 s of line time per call.
    assert plan.seconds_per_call == pytest.approx(38.4)
    people, quota, calls, minutes = plan.roles["nurse"]
    assert (people, quota, calls) == (200, 20, 56)  # 20 / 0.36 rounded up
    assert plan.calls == 56 + 50
    assert minutes is not None and minutes <= plan.total_minutes
    short = estimate(Counter(anaesthetist=5), {"anaesthetist": 4}, lines=10,
                     message_seconds=10, ring_timeout=30)  # fmt: skip
    assert short.roles["anaesthetist"][3] is None and short.warnings


REPORT = {
    "total": 10, "pending": 4, "available": 3, "unavailable": 1, "no_answer": 2, "busy": 0,
    "voicemail": 0, "failed": 0, "cancelled": 0, "in_flight": 2, "status": "running",
    "by_role": {"nurse": {"quota": 3, "available": 3, "met": True}},
}  # fmt: skip


def test_status_line() -> None:
    line = progress.status_line(REPORT)  # type: ignore[arg-type]
    assert line.startswith("6/10 done  available 3  unavailable 1  no answer 2  in flight 2")
    assert line.endswith("nurse 3/3 ok") and "busy" not in line
    out = io.StringIO()
    progress.print_status("7", REPORT, out)  # type: ignore[arg-type]
    assert out.getvalue() == f"campaign 7 (running): {line}\n", "plain: not a terminal"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("tty", [True, False])
async def test_follow_draws_a_bar_on_a_terminal_and_plain_lines_elsewhere(
    redis_url: str, tty: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "TERM"):
        monkeypatch.delenv(name, raising=False)
    people = parse_roster(ROSTER.encode())
    db = connect(redis_url)
    try:
        cid = await store.create(db, CampaignSpec(messages={"fr": "Alerte."}), people)
        # Stopped before any call: the four people are cancelled, not left pending.
        await store.stop(db, cid)
        out = Terminal() if tty else io.StringIO()
        report = await progress.follow(db, cid, out)
    finally:
        await db.aclose()
    assert report["status"] == "stopped"
    text = out.getvalue()
    if tty:
        # rich's bar (its own glyphs), counts in colour (ANSI escapes), the elapsed time.
        assert f"campaign {cid}" in text and "━" in text and "\x1b[" in text, repr(text)
        assert "4/4" in text and "0:00:0" in text and "cancelled 4" in text
    else:
        assert text == "4/4 done  cancelled 4  in flight 0\n"
