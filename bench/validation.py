"""Request validation speed: a campaign body checked by the hand-written checker this project
had until issue 12 ("before") and by `ivr.api.validate.Checker` (jsonschema-rs, "after"), side
by side in one run.

    .venv/bin/python bench/validation.py
    .venv/bin/python bench/validation.py --rounds 40 --calls 2000

"Before" is read from git history (`BEFORE_COMMIT:ivr/api/validate.py`), so the old code does
not live on in the tree; this needs a git checkout. Each round times `--calls` checks with each
implementation, in alternating order (the machine is shared: both see the same load); printed
are the median time per check over the rounds and the median of the per-round ratios
after / before (below 1: faster). The pure-Python reference `jsonschema`, when installed (it
comes with the dev dependencies), is timed alongside for comparison. Each body is also run
through both to check they agree: no problems for the valid one, the same fields for the other.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ivr.api import schemas
from ivr.api.validate import Checker

#: The last commit with the hand-written checker.
BEFORE_COMMIT = "ed81a7562996b86c3bfabd3044cbe456dc25b29e"
ROOT = Path(__file__).resolve().parents[1]

#: A campaign as the console sends it, every field used.
VALID = {
    "messages": {
        "fr": "Plan blanc déclenché au centre hospitalier. Merci de rejoindre votre service. " * 4,
        "en": "The hospital's crisis plan is active. Please come to your unit. " * 4,
    },
    "name": "Plan blanc - afflux massif",
    "roles": ["infirmier", "medecin", "anesthesiste", "aide_soignant"],
    "units": ["Urgences", "Réanimation", "Bloc opératoire"],
    "quotas": {"infirmier": 20, "medecin": 6, "anesthesiste": 2},
    "drill": False,
    "ring_timeout": 30,
    "attempts": 3,
    "retry_delay": 300,
    "escalate": True,
    "amd": True,
    "ask_eta": True,
    "callback_number": "01 23 45 67 89",
    "groups": [{"name": "renfort", "roles": ["brancardier"], "units": ["Urgences"]}],
}
#: Five problems: an empty message, an unknown language, a bad role key, a quota of 0, a type.
INVALID = {
    **VALID,
    "messages": {"fr": "", "de": "Alarm"},
    "quotas": {"Infirmier": 2, "medecin": 0},
    "attempts": "3",
}


def hand_written() -> Callable[[Any, Any], list[tuple[str, str]]]:
    """The old checker's `check`, loaded from git history."""
    try:
        source = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{BEFORE_COMMIT}:ivr/api/validate.py"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError) as exc:
        sys.exit(f"bench/validation.py needs the git history ({BEFORE_COMMIT[:10]}): {exc}")
    module = types.ModuleType("hand_written_validate")
    exec(compile(source, "hand_written_validate.py", "exec"), module.__dict__)
    check: Callable[[Any, Any], list[tuple[str, str]]] = module.check
    return check


def reference() -> Callable[[Any], list[Any]] | None:
    """The pure-Python `jsonschema` (Draft 2020-12, formats checked), if installed."""
    try:
        import jsonschema
    except ImportError:
        return None
    cls = jsonschema.Draft202012Validator
    validator = cls(schemas.CAMPAIGN, format_checker=cls.FORMAT_CHECKER)
    return lambda body: list(validator.iter_errors(body))


def per_call(fn: Callable[[], Any], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - started) / calls


def run(body: dict[str, Any], rounds: int, calls: int) -> dict[str, list[float]]:
    before = hand_written()
    after = Checker(schemas.CAMPAIGN)
    ref = reference()
    contenders: dict[str, Callable[[], Any]] = {
        "before": lambda: before(schemas.CAMPAIGN, body),
        "after": lambda: after.problems(body),
    }
    if ref is not None:
        contenders["jsonschema"] = lambda: ref(body)
    names = list(contenders)
    times: dict[str, list[float]] = {name: [] for name in names}
    for name in names:
        per_call(contenders[name], calls // 10)  # warm up (the old checker's regex cache...)
    for i in range(rounds):
        for name in names if i % 2 == 0 else reversed(names):
            times[name].append(per_call(contenders[name], calls))
    return times


def agree(body: dict[str, Any]) -> None:
    old = hand_written()(schemas.CAMPAIGN, body)
    new = Checker(schemas.CAMPAIGN).problems(body)
    assert [f for f, _ in old] == [f for f, _ in new], (old, new)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    for label, body in (("valid campaign body", VALID), ("invalid campaign body", INVALID)):
        agree(body)
        times = run(body, args.rounds, args.calls)
        ratios = [a / b for a, b in zip(times["after"], times["before"], strict=True)]
        print(f"{label} ({args.rounds} rounds x {args.calls} checks):")
        for name, samples in times.items():
            print(f"  {name:10} {statistics.median(samples) * 1e6:8.1f} µs per check (median)")
        print(
            f"  after / before: {statistics.median(ratios):.3f} "
            f"(rounds: {min(ratios):.3f} to {max(ratios):.3f})"
        )


if __name__ == "__main__":
    main()
