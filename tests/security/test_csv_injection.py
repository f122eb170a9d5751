"""CSV injection: staff named like spreadsheet formulas come out of every export as text.

The attack: a roster row whose name is `=HYPERLINK("http://x","y")` (or `+cmd`, `@SUM(1)`,
`-2+3`, a unit `=cmd`) is exported by `ivr roster export`, `GET /api/roster.csv`,
`ivr campaign report --csv` and `attempts.csv`, and a crisis manager opens the file in a
spreadsheet. Every cell that starts like a formula must come out prefixed with a quote.
"""

from __future__ import annotations

import csv
import io
import os

import pytest
from redis.asyncio import Redis

from ivr import spreadsheet
from ivr.campaign import report as reports
from ivr.campaign import store
from ivr.campaign.spec import CampaignSpec
from ivr.cli.main import main
from ivr.config import Config
from ivr.sandbox.redisserver import RedisServer
from ivr.staff.csvfile import export_csv, parse_roster
from ivr.staff.roster import RosterStore
from tests.api.test_http import start_api

EVIL = {
    "a1": '=HYPERLINK("http://x","y")',
    "a2": "+cmd",
    "a3": "@SUM(1)",
    "a4": "-2+3",
}
ROSTER = "id;name;role;unit;phone\n" + "".join(
    f'{pid};"{name.replace(chr(34), chr(34) * 2)}";nurse;{"=cmd" if pid == "a1" else "urg"};'
    f"+3361122334{i}\n"
    for i, (pid, name) in enumerate(EVIL.items())
)


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text), delimiter=";"))


def assert_neutralised(text: str) -> None:
    """No cell of `text` starts like a formula; each evil name is there, quoted."""
    cells = [cell for row in rows(text) for cell in row]
    assert not [c for c in cells if c.startswith(spreadsheet.FORMULA_START)], cells
    for name in EVIL.values():
        assert f"'{name}" in cells


def test_the_cell_rule() -> None:
    for value in ("=1", "+1", "-1", "@a", "\tx", "\rx"):
        assert spreadsheet.cell(value) == f"'{value}"
        assert spreadsheet.uncell(spreadsheet.cell(value)) == value
    assert spreadsheet.cell("Anne") == "Anne" and spreadsheet.cell(None) == ""
    assert spreadsheet.uncell("'quoted") == "'quoted", "a quote before plain text is kept"


def test_roster_export_is_neutralised_and_imports_back_unchanged() -> None:
    people = parse_roster(ROSTER.encode())
    exported = export_csv(people)
    assert_neutralised(exported)
    assert "'=cmd" in exported and "'+33611223340" in exported
    assert parse_roster(exported.encode()) == people


async def test_api_roster_csv_is_neutralised(db: Redis) -> None:
    api = await start_api(db, Config())
    try:
        await RosterStore(db).replace(parse_roster(ROSTER.encode()))
        reply = await api.call("GET", "/api/roster.csv", "viewer")
        assert reply.status == 200
        assert_neutralised(await reply.text())
    finally:
        await api.client.close()


async def test_attempts_csv_is_neutralised(db: Redis) -> None:
    cid = await store.create(db, CampaignSpec(messages={"fr": "x"}), parse_roster(ROSTER.encode()))
    assert_neutralised(await reports.attempts_csv(db, cid))


@pytest.mark.parametrize("command", [["roster", "export"], ["campaign", "report", "--csv"]])
def test_cli_exports_are_neutralised(
    redis_server: RedisServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
    tmp_path: os.PathLike[str],
) -> None:
    monkeypatch.setenv("IVR_REDIS_URL", redis_server.url)
    roster = f"{tmp_path}/roster.csv"
    with open(roster, "w", encoding="utf-8") as file:
        file.write(ROSTER)
    assert main(["roster", "import", roster]) == 0
    assert main(["campaign", "start", "-m", "Alerte."]) == 0
    capsys.readouterr()
    assert main(command) == 0
    assert_neutralised(capsys.readouterr().out)
