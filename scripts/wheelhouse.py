"""Download the wheels of REQUIREMENTs and their dependencies for another Python than this one
(the service image's), so that `pip install --no-index --find-links OUT ivr` works offline there.

    python scripts/wheelhouse.py OUT --python-version 3.11.2 --platform manylinux_2_36_x86_64 \
        [--constraint FILE] REQUIREMENT...

`pip download --python-version` picks wheels for the target Python but evaluates environment
markers against the Python running pip (a pip limitation): a dependency the target needs and
this host does not is left out (redis needs async-timeout below Python 3.11.3, Debian 12 has
3.11.2, a build host may have 3.11.7). So after pip's download, the dependencies are walked
again with the target's markers and whatever is missing is fetched, until nothing is. And pip
takes `--platform` literally: every manylinux tag the target's C library runs is given.
Run by scripts/images with a Python that has pip.
"""

from __future__ import annotations

import argparse
import email.parser
import re
import subprocess
import sys
import zipfile
from pathlib import Path

try:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
except ImportError:  # pip always carries a copy
    from pip._vendor.packaging.requirements import Requirement  # type: ignore[no-redef]
    from pip._vendor.packaging.utils import canonicalize_name  # type: ignore[no-redef]


def target_markers(version: str, platform: str) -> dict[str, str]:
    """The marker environment of CPython `version` on Linux `platform`."""
    machine = re.sub(r"^(many|musl)linux_\d+_\d+_", "", platform)
    return {
        "implementation_name": "cpython",
        "implementation_version": version,
        "os_name": "posix",
        "platform_machine": machine,
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": "Linux",
        "platform_version": "",
        "python_full_version": version,
        "python_version": ".".join(version.split(".")[:2]),
        "sys_platform": "linux",
        "extra": "",
    }


def requirements(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.parser.BytesParser().parsebytes(archive.read(name))
    return [Requirement(line) for line in metadata.get_all("Requires-Dist") or []]


def missing(out: Path, markers: dict[str, str]) -> list[str]:
    """Requirements of the wheels in `out`, for the target, that no wheel in `out` provides."""
    present = {canonicalize_name(w.name.split("-")[0]) for w in out.glob("*.whl")}
    wanted: dict[str, str] = {}
    for wheel in out.glob("*.whl"):
        for req in requirements(wheel):
            if req.marker is not None and not req.marker.evaluate(markers):
                continue
            if canonicalize_name(req.name) not in present:
                wanted[canonicalize_name(req.name)] = f"{req.name}{req.specifier}"
    return sorted(wanted.values())


def platforms(platform: str) -> list[str]:
    """`manylinux_2_36_x86_64` and every older manylinux tag a C library 2.36 also runs: pip
    takes `--platform` literally, and most binary wheels say manylinux_2_17 (manylinux2014)."""
    found = re.fullmatch(r"manylinux_(\d+)_(\d+)_(\w+)", platform)
    if not found:
        return [platform]
    major, minor, machine = int(found[1]), int(found[2]), found[3]
    tags = [f"manylinux_{major}_{m}_{machine}" for m in range(minor, 4, -1)]
    return tags + [f"manylinux{legacy}_{machine}" for legacy in ("2014", "2010", "1")]


def download(args: argparse.Namespace, specs: list[str], *, deps: bool) -> None:
    command = [
        sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
        "--only-binary=:all:", "--implementation", "cp",
        "--python-version", args.python_version, "-d", str(args.out),
    ]  # fmt: skip
    for tag in platforms(args.platform):
        command += ["--platform", tag]
    if args.constraint:
        command += ["-c", str(args.constraint)]
    if not deps:
        command.append("--no-deps")
    subprocess.run(command + specs, check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("requirements", nargs="+")
    parser.add_argument("--python-version", required=True)
    parser.add_argument("--platform", required=True)
    parser.add_argument("--constraint", type=Path)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    download(args, args.requirements, deps=True)
    markers = target_markers(args.python_version, args.platform)
    for _ in range(10):
        needed = missing(args.out, markers)
        if not needed:
            return 0
        print(f"wheelhouse: also needed by Python {args.python_version}: {', '.join(needed)}")
        download(args, needed, deps=False)
    print("wheelhouse: dependencies still missing after 10 rounds", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
