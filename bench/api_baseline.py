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
import contextlib
import dataclasses
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
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
from server.core.db import utcnow
from server.core.engine import Database
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


def bench_env(data_dir: Path, database_url: str | None) -> dict[str, str]:
    """The servers' environment: a scratch data directory, no rate limits or jobs,
    and, for PostgreSQL, an emptied database."""
    env = {
        **os.environ,
        "RESOLVE_DATA_DIR": str(data_dir),
        "RESOLVE_RATE_LIMIT_ENABLED": "false",
        "RESOLVE_BACKGROUND_JOBS": "false",
    }
    if database_url:
        env["RESOLVE_DATABASE_URL"] = database_url
        code = (
            "from sqlalchemy import create_engine,text;import os;"
            "e=create_engine(os.environ['RESOLVE_DATABASE_URL']);"
            "c=e.connect();c.execute(text('DROP SCHEMA public CASCADE'));"
            "c.execute(text('CREATE SCHEMA public'));c.commit()"
        )
        subprocess.run([str(BIN / "python"), "-c", code], env=env, check=True)
    return env


@contextlib.contextmanager
def serving(
    env: dict[str, str], workers: int, data_dir: Path, *, floor: bool = False
) -> Iterator[Serving]:
    """The real server and the trivial reference app, each with ``workers`` processes.

    With ``floor`` (PostgreSQL only) also ``bench/floor_app.py``, the cheapest route
    that queries the database. With two or more cores and one worker, the servers run
    on core 1 and wrk on core 0, so the load generator does not eat the cores it
    measures."""
    cpus = os.cpu_count() or 1
    server_pin, load_pin = ("1", "0") if cpus >= 2 and workers == 1 else (None, None)
    port, ref_port = free_port(), free_port()
    server_cmd = [str(BIN / "resolve-server"), "serve", "--port", str(port),
                  "--workers", str(workers)]  # fmt: skip

    def uvicorn(app: str, port: int) -> list[str]:
        cmd = [str(BIN / "uvicorn"), app, "--port", str(port), "--workers", str(workers),
               "--log-level", "warning", "--no-access-log"]  # fmt: skip
        return ["taskset", "-c", server_pin, *cmd] if server_pin else cmd

    ref_cmd = uvicorn("bench.trivial_app:app", ref_port)
    if server_pin:
        server_cmd = ["taskset", "-c", server_pin, *server_cmd]
    procs = []
    try:
        log = open(data_dir / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
        procs.append(subprocess.Popen(server_cmd, env=env, stdout=log, stderr=log, cwd=ROOT))
        procs.append(subprocess.Popen(ref_cmd, env=env, cwd=ROOT))
        base, reference = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{ref_port}/ping"
        floor_url = None
        if floor:
            floor_port = free_port()
            procs.append(
                subprocess.Popen(uvicorn("bench.floor_app:app", floor_port), env=env, cwd=ROOT)
            )
            floor_url = f"http://127.0.0.1:{floor_port}/db"
        wait_up(base + "/api/platform/health", procs[0])
        wait_up(reference, procs[1])
        if floor_url:
            wait_up(floor_url, procs[2])
        yield Serving(
            base=base,
            reference=reference,
            load_pin=load_pin,
            pinned=bool(server_pin),
            floor=floor_url,
        )
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:  # workers still draining a queue of requests
                proc.kill()
                proc.wait(20)


@dataclasses.dataclass(frozen=True)
class Serving:
    base: str
    #: the trivial route's address
    reference: str
    #: the core wrk runs on, when the servers are pinned to the other
    load_pin: str | None
    pinned: bool
    #: the floor route's address (``bench/floor_app.py``), when asked for
    floor: str | None = None


def measure(
    targets: list[tuple[str, str, str | None, str | None]],
    serving: Serving,
    duration: int,
    connections: int,
) -> list[tuple[str, dict[str, float]]]:
    """wrk each (name, url, token, lua script) after a short warm-up."""
    results = []
    for name, url, token, script in targets:
        wrk(url, token, 2, connections, serving.load_pin, script=script)
        results.append(
            (name, wrk(url, token, duration, connections, serving.load_pin, script=script))
        )
    return results


def print_table(title: str, results: list[tuple[str, dict[str, float]]]) -> None:
    """The figures, each endpoint's ratio to the first row (the reference)."""
    reference = results[0][1]["rps"]
    width = max(len(name) for name, _ in results) + 2
    print(f"\n{title}")
    print(
        f"{'endpoint':{width}} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'ratio':>7} {'errors':>7}"
    )
    for name, r in results:
        print(
            f"{name:{width}} {r['rps']:9.0f} {r['p50_ms']:8.2f} {r['p95_ms']:8.2f} "
            f"{r['rps'] / reference:7.2f} {int(r['errors'] + r['non2xx']):7d}"
        )


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
    env = bench_env(data_dir, args.database_url)
    subprocess.run(
        [str(BIN / "resolve-server"), "migrate"], env=env, check=True, capture_output=True
    )
    seed(env, args.users)

    try:
        with serving(env, args.workers, data_dir) as servers:
            base = servers.base
            login = httpx.post(
                base + "/api/auth/login",
                json={"email": "admin@bench.example", "password": PASSWORD},
            )
            login.raise_for_status()
            token = login.json()["data"]["accessToken"]
            some_user = httpx.get(
                base + "/api/users",
                params={"perPage": 1, "q": "user5"},
                headers={"Authorization": f"Bearer {token}"},
            ).json()["data"][0]["id"]
            targets = [
                ("trivial async FastAPI route (reference)", servers.reference, None, None),
                ("GET /api/users?perPage=50 (first page)", base + "/api/users?perPage=50", token, None),
                ("GET /api/users/{id}", base + f"/api/users/{some_user}", token, None),
                ("GET /api/me", base + "/api/me", token, None),
                ("GET /api/departments", base + "/api/departments", token, None),
            ]  # fmt: skip
            results = measure(targets, servers, args.duration, args.connections)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    db_kind = "PostgreSQL" if args.database_url else "SQLite"
    print_table(
        f"{db_kind}, {args.users} users in the organization, {args.workers} worker(s), "
        f"wrk -t1 -c{args.connections} -d{args.duration}s"
        + (" (server and wrk on separate cores)" if servers.pinned else ""),
        results,
    )


if __name__ == "__main__":
    main()
