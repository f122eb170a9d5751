"""The package's shape: the import layers hold and a broken one fails the check; modules and
functions stay small enough to read."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ivr"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def copy_of_the_package(tmp_path: Path) -> Path:
    shutil.copytree(PACKAGE, tmp_path / "ivr", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_layers_hold() -> None:
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 4 kept, 0 broken." in done.stdout


@pytest.mark.parametrize(
    ("module", "bad_import", "message"),
    [
        # The campaign engine reaching up into the dialer: an upward import.
        ("campaign/store.py", "from ivr.dialer import worker", "ivr.campaign is not allowed"),
        # Two siblings of one layer: the lines using the API.
        ("lines/trigger.py", "from ivr.api import schemas", "ivr.lines is not allowed"),
        # AMI outside the PBX adapter.
        ("campaign/ops.py", "import panoramisk", "ivr.campaign.ops -> panoramisk"),
        # HTTP outside the API.
        ("dialer/worker.py", "import aiohttp", "ivr.dialer.worker -> aiohttp"),
    ],
)
def test_a_broken_layer_fails_the_check(
    tmp_path: Path, module: str, bad_import: str, message: str
) -> None:
    tree = copy_of_the_package(tmp_path)
    target = tree / "ivr" / module
    target.write_text(target.read_text() + f"\n{bad_import}  # noqa\n")
    done = lint_imports(tree)
    assert done.returncode != 0
    assert "BROKEN" in done.stdout and message in done.stdout, done.stdout


def test_modules_and_functions_stay_small() -> None:
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        where = path.relative_to(ROOT)
        lines = len(text.splitlines())
        if lines > MAX_MODULE_LINES:
            too_long.append(f"{where}: {lines} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{where}:{node.lineno} {node.name}(): {length} lines")
    assert not too_long, "\n".join(too_long)
