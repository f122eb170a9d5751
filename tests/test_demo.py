"""`ivr demo`, the main job, end to end on the embedded default."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ivr.config import Config

pytestmark = pytest.mark.integration


def test_demo_prints_the_right_outcome_for_every_phone(sandbox_config: Config) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ivr", "demo", "--json"],
        capture_output=True, text=True, timeout=110,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True
    assert len(report["calls"]) >= 10
    for call in report["calls"]:
        assert call["outcome"] == call["expected"], call
    assert {c["expected"] for c in report["calls"]} >= {
        "available", "unavailable", "no_answer", "busy", "failed", "hung_up",
    }  # fmt: skip
