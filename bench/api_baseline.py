"""Throughput of the foundation's read endpoints against a trivial FastAPI route.

Starts the real server (``resolve-server serve``) and a trivial ``async def``
FastAPI app under uvicorn with the same number of workers, loads both with wrk
(pinned to its own core where the machine has two), and prints requests/s, p50
and p95 latency, and each endpoint's ratio to the trivial route measured in the
same run. Usage:

    .venv/bin/python bench/api_baseline.py [--users 10000] [--workers 1]
        [--database-url postgresql+psycopg://...] [--duration 10]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PASSWORD = "Bench-password-2026"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early ({proc.returncode})")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def seed(env: dict[str, str], users: int) -> None:
    """Bulk-insert an organization with ``users`` users (one password hash for all)."""
    code = f"""
import server.models  # noqa: F401 - the whole schema, so foreign keys resolve
from sqlalchemy import insert
from common.enums import Role
from common.ids import uuid7
from server.core.config import get_settings
from server.core.db import Database, utcnow
from server.core.security import hash_password
from server.core.tenancy import ALL_TENANTS
from server.organizations.models import Organization
from server.users.models import User
s = get_settings(); db = Database(s.database_url)
h = hash_password({PASSWORD!r}); now = utcnow()
with db.transaction(tenant=ALL_TENANTS) as session:
    org = Organization(name="Bench District", slug="bench", settings={{}}); session.add(org); session.flush()
    session.add(User(organization_id=org.id, email="admin@bench.example", role=Role.ORG_ADMIN,
                     password_hash=h, first_name="Bench", last_name="Admin"))
    other = Organization(name="Other District", slug="other", settings={{}}); session.add(other); session.flush()
    rows = []
    for i in range({users}):
        rows.append(dict(id=uuid7(), organization_id=org.id if i % 10 else other.id,
            email=f"user{{i}}@bench.example", first_name=f"First{{i}}", last_name=f"Last{{i}}",
            role=[Role.AGENT, Role.TECHNICIAN, Role.REQUESTER][i % 3], is_active=True,
            password_hash=h, failed_login_count=0, mfa_enabled=False, mfa_backup_codes=[],
            created_at=now, updated_at=now, change_position=i + 1))
        if len(rows) == 5000:
            session.execute(insert(User), rows); rows = []
    if rows:
        session.execute(insert(User), rows)
"""
    subprocess.run([str(BIN / "python"), "-c", code], env=env, check=True, cwd=ROOT)


def wrk(
    url: str,
    token: str | None,
    duration: int,
    connections: int,
    pin: str | None,
    *,
    script: str | None = None,
) -> dict[str, float]:
    cmd = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        "-s",
        str(ROOT / "bench" / (script or "wrk_report.lua")),
    ]
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    cmd.append(url)
    if pin:
        cmd = ["taskset", "-c", pin, *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    match = re.search(r"RESULT (.*)", out)
    if not match:
        raise SystemExit(out)
    return {k: float(v) for k, v in (part.split("=") for part in match.group(1).split())}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--database-url", default=os.environ.get("RESOLVE_BENCH_DATABASE_URL"))
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install -y wrk")

    data_dir = Path(tempfile.mkdtemp(prefix="resolve-bench-"))
    env = {
        **os.environ,
        "RESOLVE_DATA_DIR": str(data_dir),
        "RESOLVE_RATE_LIMIT_ENABLED": "false",
        "RESOLVE_BACKGROUND_JOBS": "false",
    }
    if args.database_url:
        env["RESOLVE_DATABASE_URL"] = args.database_url
        subprocess.run(
            [
                str(BIN / "python"),
                "-c",
                "from sqlalchemy import create_engine,text;import os;"
                "e=create_engine(os.environ['RESOLVE_DATABASE_URL']);"
                "c=e.connect();c.execute(text('DROP SCHEMA public CASCADE'));"
                "c.execute(text('CREATE SCHEMA public'));c.commit()",
            ],
            env=env,
            check=True,
        )
    subprocess.run(
        [str(BIN / "resolve-server"), "migrate"], env=env, check=True, capture_output=True
    )
    seed(env, args.users)

    cpus = os.cpu_count() or 1
    server_pin, load_pin = ("1", "0") if cpus >= 2 and args.workers == 1 else (None, None)
    procs = []
    try:
        port = free_port()
        server_cmd = [
            str(BIN / "resolve-server"),
            "serve",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
        ]
        ref_port = free_port()
        ref_cmd = [
            str(BIN / "uvicorn"),
            "bench.trivial_app:app",
            "--port",
            str(ref_port),
            "--workers",
            str(args.workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        if server_pin:
            server_cmd = ["taskset", "-c", server_pin, *server_cmd]
            ref_cmd = ["taskset", "-c", server_pin, *ref_cmd]
        log = open(data_dir / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
        procs.append(subprocess.Popen(server_cmd, env=env, stdout=log, stderr=log, cwd=ROOT))
        procs.append(subprocess.Popen(ref_cmd, env=env, cwd=ROOT))
        base = f"http://127.0.0.1:{port}"
        wait_up(base + "/api/platform/health", procs[0])
        wait_up(f"http://127.0.0.1:{ref_port}/ping", procs[1])
        login = httpx.post(
            base + "/api/auth/login", json={"email": "admin@bench.example", "password": PASSWORD}
        )
        login.raise_for_status()
        token = login.json()["data"]["accessToken"]
        some_user = httpx.get(
            base + "/api/users",
            params={"perPage": 1, "q": "user5"},
            headers={"Authorization": f"Bearer {token}"},
        ).json()["data"][0]["id"]

        targets = [
            ("trivial async FastAPI route (reference)", f"http://127.0.0.1:{ref_port}/ping", None),
            ("GET /api/users?perPage=50 (first page)", base + "/api/users?perPage=50", token),
            ("GET /api/users/{id}", base + f"/api/users/{some_user}", token),
            ("GET /api/me", base + "/api/me", token),
            ("GET /api/departments", base + "/api/departments", token),
        ]
        results = []
        for name, url, tok in targets:
            wrk(url, tok, 2, args.connections, load_pin)  # warm-up
            results.append((name, wrk(url, tok, args.duration, args.connections, load_pin)))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(20)
        shutil.rmtree(data_dir, ignore_errors=True)

    reference = results[0][1]["rps"]
    db_kind = "PostgreSQL" if args.database_url else "SQLite"
    print(
        f"\n{db_kind}, {args.users} users in the organization, {args.workers} worker(s), "
        f"wrk -t1 -c{args.connections} -d{args.duration}s"
        + (" (server and wrk on separate cores)" if server_pin else "")
    )
    print(f"{'endpoint':45} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'ratio':>7} {'errors':>7}")
    for name, r in results:
        print(
            f"{name:45} {r['rps']:9.0f} {r['p50_ms']:8.2f} {r['p95_ms']:8.2f} "
            f"{r['rps'] / reference:7.2f} {int(r['errors'] + r['non2xx']):7d}"
        )


if __name__ == "__main__":
    main()
