"""Ticket list, read and create throughput against a trivial FastAPI route.

For each ticket count given, makes a fresh database, seeds the demo district and
bulk-loads that many tickets into it (``resolve-server seed-demo --tickets N``),
starts the real server and a trivial ``async def`` FastAPI app with the same
number of workers, loads both with wrk, and prints requests/s, p50/p95 latency
and the ratio to the trivial route measured in the same run. With two counts it
also prints how much each endpoint's cost changed between them. Usage:

    .venv/bin/python bench/tickets_bench.py --tickets 10000,1000000 [--workers 2]
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.api_baseline import BIN, bench_env, measure, print_table, serving

DEMO_LOGIN = ("agent@maplewood.k12.example", "Resolve-demo-2026")


def run_once(args: argparse.Namespace, tickets: int) -> list[tuple[str, dict[str, float]]]:
    data_dir = Path(tempfile.mkdtemp(prefix="resolve-bench-"))
    env = bench_env(data_dir, args.database_url)
    started = time.monotonic()
    subprocess.run(
        [str(BIN / "resolve-server"), "migrate"], env=env, check=True, capture_output=True
    )
    subprocess.run(
        [
            str(BIN / "resolve-server"),
            "seed-demo",
            "--demo-tickets",
            "0",
            "--tickets",
            str(tickets),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    print(f"seeded {tickets:,} tickets in {time.monotonic() - started:.0f} s", flush=True)
    if args.database_url:
        # Statistics for the planner, and the load's dirty pages written out now rather
        # than by the checkpointer in the middle of a measurement.
        subprocess.run(
            [str(BIN / "python"), "-c",
             "from sqlalchemy import create_engine,text;import os;"
             "e=create_engine(os.environ['RESOLVE_DATABASE_URL'],isolation_level='AUTOCOMMIT');"
             "c=e.connect();c.execute(text('VACUUM ANALYZE'));c.execute(text('CHECKPOINT'))"],
            env=env, check=True,
        )  # fmt: skip
    try:
        with serving(env, args.workers, data_dir, floor=bool(args.database_url)) as servers:
            base = servers.base
            email, password = DEMO_LOGIN
            login = httpx.post(
                base + "/api/auth/login", json={"email": email, "password": password}
            )
            login.raise_for_status()
            token = login.json()["data"]["accessToken"]
            headers = {"Authorization": f"Bearer {token}"}
            page = httpx.get(
                base + "/api/tickets", params={"perPage": 50}, headers=headers, timeout=60
            )
            page.raise_for_status()
            middle = page.json()["data"][25]["id"]
            floor = [
                ("floor: FastAPI + psycopg SELECT 1, no ORM or auth", servers.floor, None, None)
            ]
            targets = [
                ("trivial async FastAPI route (reference)", servers.reference, None, None),
                *(floor if servers.floor else []),
                ("GET /api/tickets?perPage=50 (first page)", base + "/api/tickets?perPage=50", token, None),
                ("GET /api/tickets?statusCategory=open&perPage=50", base + "/api/tickets?statusCategory=open&perPage=50", token, None),
                ("GET /api/tickets/{id}", base + f"/api/tickets/{middle}", token, None),
                ("POST /api/tickets (routing, SLA, history, outbox)", base + "/api/tickets", token, "wrk_post.lua"),
            ]  # fmt: skip
            results = measure(targets, servers, args.duration, args.connections)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    db_kind = "PostgreSQL" if args.database_url else "SQLite"
    print_table(
        f"{db_kind}, {tickets:,} tickets in the organization, {args.workers} worker(s), "
        f"wrk -t1 -c{args.connections} -d{args.duration}s"
        + (" (server and wrk on separate cores)" if servers.pinned else ""),
        results,
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tickets", default="10000", help="comma-separated ticket counts")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--database-url", default=os.environ.get("RESOLVE_BENCH_DATABASE_URL"))
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    counts = [int(c) for c in args.tickets.split(",")]
    runs = [(n, run_once(args, n)) for n in counts]
    if len(runs) > 1:
        (small_n, small), (large_n, large) = runs[0], runs[-1]
        print(f"\ncost at {large_n:,} tickets relative to {small_n:,} (time per request, "
              "each normalised by the reference of its own run):")  # fmt: skip
        for (name, a), (_, b) in zip(small[1:], large[1:], strict=True):
            cost_small = small[0][1]["rps"] / a["rps"]
            cost_large = large[0][1]["rps"] / b["rps"]
            print(f"  {name:52} {100 * (cost_large / cost_small - 1):+6.1f} %")


if __name__ == "__main__":
    main()
