"""`ivr demo`, the main job, end to end on the embedded default."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.config import Config
from ivr.outcomes import Outcome

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def test_demo_runs_a_mass_campaign_to_the_end(sandbox_config: Config, tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    done = subprocess.run(
        [sys.executable, "-m", "ivr", "demo", "--json", "--html", str(html)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["status"] == "done" and report["pending"] == 0
    assert report["total"] >= 250
    assert sum(report[o] for o in Outcome) == report["total"]
    # Which of the rarer behaviours get dialled before their role's quota is met depends on
    # timing; the common ones always show.
    for outcome in ("available", "unavailable", "no_answer", "busy", "voicemail", "cancelled"):
        assert report[outcome] > 0, f"the demo shows {outcome}"
    assert report["failed"] + report["hung_up"] > 0
    for role in ("nurse", "anaesthetist"):
        assert report["by_role"][role]["met"], f"{role} quota met"
    assert report["forecast"]["+30"] > 0
    # Voice, SMS, voice: some staff the calls missed answer by SMS, counted once each.
    sms = report["sms"]
    assert sms["sent"] > 0 and sms["delivered"] == sms["sent"]
    assert 0 < sms["answered"] <= sms["sent"]
    # The after-action report: one page that needs nothing from outside, with the curve.
    page = html.read_text(encoding="utf-8")
    assert f"Campaign {report['campaign']}" in page and "<polyline" in page
    assert "Delivery plan: voice → sms → voice." in page and "<td>SMS reply</td>" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "opens offline"
    assert f"after-action report: {html}" in done.stderr
