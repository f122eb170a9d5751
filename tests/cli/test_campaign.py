"""`ivr roster ...` and `ivr campaign ...` as an operator runs them, on a private redis-server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from ivr.campaign.estimate import estimate
from ivr.cli.progress import progress_line
from ivr.sandbox.redisserver import RedisServer

ROSTER = """\ufeffMatricule;Nom;Prénom;Fonction;Service;Portable;Domicile;Astreinte;Langue
A001;Martin;Claire;Infirmier;Urgences;06 11 00 00 01;;oui;fr
A002;Durand;Paul;Médecin;Urgences;06 11 00 00 02;01 11 00 00 02;non;fr
A003;Petit;Hugo;Anesthésiste;Bloc;06 11 00 00 03;;non;en
A004;Moreau;Emma;Infirmier;Réanimation;06 11 00 00 04;;non;fr
"""


def ivr(redis_url: str, *args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env.update(IVR_REDIS_URL=redis_url, IVR_AUDIO_DIR=str(tmp / "audio"))
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

    missing = ivr(redis_url, "campaign", "report", "42", tmp=tmp_path)
    assert missing.returncode == 2 and "campaign 42 not found" in missing.stderr


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


def test_progress_line() -> None:
    report = {
        "total": 10, "pending": 4, "available": 3, "unavailable": 1, "no_answer": 2, "busy": 0,
        "voicemail": 0, "failed": 0, "cancelled": 0, "in_flight": 2,
        "by_role": {"nurse": {"quota": 3, "available": 3, "met": True}},
    }  # fmt: skip
    line = progress_line(report, width=10)
    assert line.startswith("[######....] 6/10")
    assert "available 3" in line and "no answer 2" in line and "nurse 3/3 ok" in line
