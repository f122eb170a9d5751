"""Roster import speed and Redis memory, on a realistic HR export.

    .venv/bin/python bench/roster_import.py
    .venv/bin/python bench/roster_import.py --rows 200000

Generates a French HR export in memory (BOM, `;`, French headers, "06 12 34 56 78" numbers,
1-3 phone columns filled, 10% on call, some backups and tags), then times `parse_roster` and
`RosterStore.replace` into a private redis-server (append-only off) and a `load` back. Printed:
rows/s for each step, Redis memory per person (INFO used_memory before and after), the total.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path

import redis.asyncio as aioredis

from ivr.sandbox.redisserver import RedisServer
from ivr.staff.csvfile import parse_roster
from ivr.staff.roster import Person, RosterStore

HEADER = (
    "Matricule;Nom;Prénom;Fonction;Service;Téléphone portable;Téléphone domicile;"
    "Téléphone travail;Langue;Astreinte;Suppléant;Tags;Date d'entrée"
)
ROLES = [
    ("Infirmier", 30),
    ("Infirmière", 30),
    ("Aide-soignant", 20),
    ("Médecin", 10),
    ("Anesthésiste", 3),
    ("Interne", 4),
    ("Sage-femme", 2),
    ("Brancardier", 4),
    ("Cadre de santé", 1),
]
UNITS = ["Urgences", "Réanimation", "Bloc opératoire", "Pédiatrie", "Maternité", "Cardiologie",
         "Médecine interne", "Chirurgie viscérale", "SSR", "Imagerie", "Pharmacie"]  # fmt: skip
LAST = ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
        "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David", "Bertrand", "Roux",
        "N'Diaye", "Nguyen", "Le Goff", "Da Silva"]  # fmt: skip
FIRST = ["Marie", "Hélène", "Jean", "Anaïs", "Léa", "Chloé", "Zoé", "Noël", "François",
         "Inès", "Jérôme", "Maëlle", "Céline", "Loïc", "Thibault", "Nadia", "Karim"]  # fmt: skip


def _number(rng: random.Random, first: str) -> str:
    digits = f"0{first}{rng.randrange(10**8):08d}"
    return " ".join(digits[i : i + 2] for i in range(0, 10, 2))


def export(rows: int, seed: int = 1) -> bytes:
    """A roster of `rows` people as an HR department's spreadsheet would save it."""
    rng = random.Random(seed)
    roles = [r for r, weight in ROLES for _ in range(weight)]
    lines = [HEADER]
    for i in range(rows):
        mobile = _number(rng, rng.choice("67"))
        home = _number(rng, rng.choice("12345")) if rng.random() < 0.4 else ""
        work = _number(rng, rng.choice("12345")).replace(" ", ".") if rng.random() < 0.2 else ""
        backup = f"M{rng.randrange(rows):06d}" if rng.random() < 0.1 else ""
        if backup == f"M{i:06d}":
            backup = ""
        lines.append(
            ";".join(
                (
                    f"M{i:06d}",
                    rng.choice(LAST).upper(),
                    rng.choice(FIRST),
                    rng.choice(roles),
                    rng.choice(UNITS),
                    mobile,
                    home,
                    work,
                    "Anglais" if rng.random() < 0.05 else "Français",
                    "oui" if rng.random() < 0.1 else "non",
                    backup,
                    "cellule_crise" if rng.random() < 0.01 else "",
                    f"{rng.randrange(1, 29):02d}/{rng.randrange(1, 13):02d}/2015",
                )
            )
        )
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8")


async def store(people: list[Person], url: str) -> dict[str, float]:
    db = aioredis.from_url(url, decode_responses=True)
    try:
        await db.ping()
        before = int((await db.info("memory"))["used_memory"])
        started = time.perf_counter()
        await RosterStore(db).replace(people)
        replace_s = time.perf_counter() - started
        after = int((await db.info("memory"))["used_memory"])
        started = time.perf_counter()
        loaded = await RosterStore(db).load()
        load_s = time.perf_counter() - started
        assert len(loaded) == len(people)
        return {"replace": replace_s, "load": load_s, "memory": after - before}
    finally:
        await db.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()

    data = export(args.rows)
    started = time.perf_counter()
    people = parse_roster(data)
    parse_s = time.perf_counter() - started
    json_bytes = sum(len(p.to_json().encode()) for p in people) / len(people)

    with (
        tempfile.TemporaryDirectory(prefix="ivr-bench-") as tmp,
        RedisServer(Path(tmp), appendonly=False) as server,
    ):
        figures = asyncio.run(store(people, server.url))

    n = len(people)
    print(f"roster: {n} rows, {len(data) / 1e6:.1f} MB of CSV")
    print(f"parse_roster:         {parse_s:6.2f} s  {n / parse_s:9,.0f} rows/s")
    replace_s = figures["replace"]
    print(f"RosterStore.replace:  {replace_s:6.2f} s  {n / replace_s:9,.0f} rows/s")
    print(f"RosterStore.load:     {figures['load']:6.2f} s  {n / figures['load']:9,.0f} rows/s")
    print(f"total (parse+replace):{parse_s + replace_s:6.2f} s")
    print(
        f"redis memory: {figures['memory'] / 1e6:.1f} MB, {figures['memory'] / n:.0f} bytes/person"
        f" (JSON {json_bytes:.0f} bytes/person)"
    )


if __name__ == "__main__":
    main()
