"""Asset lookups and the asset list at 100,000 assets, against a trivial FastAPI route.

Like ``bench/api_baseline.py``: starts the real server (``resolve-server serve``) and
a trivial ``async def`` FastAPI app under uvicorn with the same number of workers,
loads both with wrk (pinned to its own core where the machine has two), and prints
requests/s, p50 and p95 latency, and each endpoint's ratio to the trivial route
measured in the same run.

The database is the demo district (``server.seed``) with ``--assets`` demo assets
(``server.assets.demo.seed_demo``: the rooms furnished, the rest as stock in the
storage rooms, mostly Chromebooks, with their history), plus a second district with a tenth as many, so the indexes
hold other tenants' rows too. Usage:

    .venv/bin/python bench/assets_bench.py [--assets 100000] [--workers 1]
        [--database-url postgresql+psycopg://...] [--duration 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.api_baseline import BIN, bench_env, measure, print_table, serving  # noqa: E402


def seed(assets: int) -> None:
    """Runs in a subprocess with the bench's environment (``--seed N``)."""
    import random

    from sqlalchemy import select

    import server.models  # noqa: F401 - the whole schema, so foreign keys resolve
    from server.assets.demo import seed_demo
    from server.core.config import get_settings
    from server.core.engine import Database
    from server.core.tenancy import ALL_TENANTS
    from server.models import Base
    from server.organizations.models import Organization
    from server.seed import seed_demo as seed_district
    from server.sites.models import Building, Room, Site
    from server.users.models import User

    db = Database(get_settings().database_url)
    # Tables whose migration is not written yet (a no-op once it is).
    Base.metadata.create_all(db.engine)
    started = time.perf_counter()
    with db.transaction(tenant=ALL_TENANTS) as session:
        org, _logins, _created = seed_district(session)
        rooms = list(session.scalars(select(Room).where(Room.organization_id == org.id)))
        users = list(session.scalars(select(User).where(User.organization_id == org.id)))
        seed_demo(session, org, rooms, users, random.Random(2026), assets)
        other = Organization(name="Other District", slug="other", settings={})
        session.add(other)
        session.flush()
        site = Site(organization_id=other.id, name="Other High")
        session.add(site)
        session.flush()
        building = Building(organization_id=other.id, site_id=site.id, name="Main")
        session.add(building)
        session.flush()
        other_rooms = [
            Room(organization_id=other.id, building_id=building.id, number=str(100 + n))
            for n in range(20)
        ]
        session.add_all(other_rooms)
        session.flush()
        seed_demo(session, other, other_rooms, [], random.Random(7), max(1, assets // 10))
    print(
        f"seeded {assets} + {max(1, assets // 10)} assets in {time.perf_counter() - started:.0f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--assets", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--database-url", default=os.environ.get("RESOLVE_BENCH_DATABASE_URL"))
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed is not None:
        seed(args.seed)
        return
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install -y wrk")

    data_dir = Path(tempfile.mkdtemp(prefix="resolve-assets-bench-"))
    env = bench_env(data_dir, args.database_url)
    subprocess.run(
        [str(BIN / "resolve-server"), "migrate"], env=env, check=True, capture_output=True
    )
    subprocess.run(
        [str(BIN / "python"), str(Path(__file__).resolve()), "--seed", str(args.assets)],
        env=env,
        check=True,
        cwd=ROOT,
    )

    try:
        with serving(env, args.workers, data_dir) as servers:
            base = servers.base
            from server.seed import DEMO_PASSWORD

            login = httpx.post(
                base + "/api/auth/login",
                json={"email": "admin@maplewood.k12.example", "password": DEMO_PASSWORD},
            )
            login.raise_for_status()
            token = login.json()["data"]["accessToken"]
            headers = {"Authorization": f"Bearer {token}"}
            tag = f"MPS-{args.assets // 2:06d}"
            found = httpx.get(base + "/api/assets", params={"tag": tag}, headers=headers).json()
            asset = found["data"][0]
            first_page = httpx.get(base + "/api/assets", headers=headers).json()
            total = first_page["pagination"]["total"]

            targets = [
                ("trivial async FastAPI route (reference)", servers.reference, None, None),
                (f"GET /api/assets?tag={tag}", base + f"/api/assets?tag={tag}", token, None),
                (
                    "GET /api/assets?serial=…",
                    base + f"/api/assets?serial={asset['serialNumber']}",
                    token,
                    None,
                ),
                ("GET /api/assets (first page of 25)", base + "/api/assets", token, None),
                ("GET /api/assets?perPage=100", base + "/api/assets?perPage=100", token, None),
                ("GET /api/assets/{id}", base + f"/api/assets/{asset['id']}", token, None),
            ]
            results = measure(targets, servers, args.duration, args.connections)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    db_kind = "PostgreSQL" if args.database_url else "SQLite"
    print_table(
        f"{db_kind}, {total} assets in the organization (+{args.assets // 10} in another), "
        f"{args.workers} worker(s), wrk -t1 -c{args.connections} -d{args.duration}s"
        + (" (server and wrk on separate cores)" if servers.pinned else ""),
        results,
    )


if __name__ == "__main__":
    main()
