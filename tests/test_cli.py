"""``resolve-server`` as an operator uses it: real processes, a fresh data directory."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy

BIN = Path(sys.executable).parent / "resolve-server"


def _run(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(BIN), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RESOLVE_")}
    return {**clean, "RESOLVE_DATA_DIR": str(tmp_path / "data"), "RESOLVE_LOG_JSON": "false"}


def test_migrate_seed_and_create_from_the_command_line(env: dict[str, str], tmp_path: Path) -> None:
    assert "latest schema" in _run(env, "migrate").stdout
    seeded = _run(env, "seed-demo").stdout
    assert "admin@maplewood.k12.example" in seeded and "Resolve-demo-2026" in seeded
    assert _run(env, "seed-demo").returncode == 0, "seeding twice is harmless"
    assert (
        "created organization"
        in _run(env, "create-org", "--name", "Riverside", "--slug", "riverside").stdout
    )
    # the new district starts with its day-one defaults, as one created through the API
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'data' / 'resolve.db'}")
    with engine.connect() as connection:
        counts = connection.execute(
            sqlalchemy.text(
                "SELECT (SELECT count(*) FROM business_calendars c WHERE c.organization_id = o.id),"
                " (SELECT count(*) FROM sla_rules r WHERE r.organization_id = o.id),"
                " (SELECT count(*) FROM teams t WHERE t.organization_id = o.id)"
                " FROM organizations o WHERE o.slug = 'riverside'"
            )
        ).one()
    engine.dispose()
    assert tuple(counts) == (1, 4, 1)
    created = _run(
        env,
        "create-user",
        "--org",
        "riverside",
        "--email",
        "Boss@Riverside.example",
        "--password",
        "Long-enough-9",
        "--role",
        "org_admin",
        "--first-name",
        "Bo",
    )
    assert "created org_admin boss@riverside.example in riverside" in created.stdout
    root = _run(
        env,
        "create-user",
        "--email",
        "root@platform.example",
        "--password",
        "Long-enough-9",
        "--role",
        "super_admin",
    )
    assert "super admin" in root.stdout


def test_operator_errors_are_one_clear_line(env: dict[str, str]) -> None:
    _run(env, "migrate")
    cases = [
        (
            (
                "create-user",
                "--org",
                "nowhere",
                "--email",
                "a@b.org",
                "--password",
                "Long-enough-9",
                "--role",
                "agent",
            ),
            "no organization",
        ),
        (("create-org", "--name", "X", "--slug", "Bad Slug"), "slug"),
        (
            ("create-user", "--email", "a@b.org", "--password", "short", "--role", "super_admin"),
            "too weak",
        ),
    ]
    for args, words in cases:
        result = _run(env, *args, check=False)
        assert result.returncode == 2, result.stdout + result.stderr
        assert words in result.stderr
        assert "Traceback" not in result.stderr
    bad = _run({**env, "RESOLVE_DATABASE_URL": "mysql://x"}, "migrate", check=False)
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "RESOLVE_DATABASE_URL" in bad.stderr
    bad_limit = _run({**env, "RESOLVE_RATE_LIMIT_READ": "lots"}, "migrate", check=False)
    assert bad_limit.returncode == 2 and "RESOLVE_RATE_LIMIT_READ" in bad_limit.stderr


def test_outbox_lists_what_would_have_been_sent(env: dict[str, str]) -> None:
    _run(env, "migrate")
    assert "the outbox is empty" in _run(env, "outbox").stdout
    _run(env, "create-org", "--name", "Riverside", "--slug", "riverside")
    # a user created without a password is invited by email
    code = (
        "from server.cli import main; import sys; "
        "sys.exit(main(['create-user','--org','riverside','--email','x@riverside.example',"
        "'--password','Long-enough-9','--role','agent']))"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
    from server.auth.service import request_password_reset  # noqa: F401 - documents the path below

    reset = subprocess.run(
        [
            sys.executable,
            "-c",
            "from server.core.config import get_settings; from server.core.engine import Database;"
            "from server.core.tenancy import ALL_TENANTS; from server.auth.service import request_password_reset;"
            "s=get_settings(); db=Database(s.database_url)\n"
            "with db.transaction(tenant=ALL_TENANTS) as session: request_password_reset(session, email='x@riverside.example')",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert reset.returncode == 0, reset.stderr
    listed = _run(env, "outbox", "--body").stdout
    assert "password_reset to x@riverside.example" in listed
    assert "Reset your District Resolve password" in listed
    assert "reset-password?token=" in listed


def test_the_data_directory_and_database_are_private(env: dict[str, str], tmp_path: Path) -> None:
    """Under a common umask (022) the data directory is 0700 and the SQLite database
    with its WAL 0600; a database others can read makes the server say so."""
    import stat

    from sqlalchemy import text

    from server.core.engine import make_engine

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    old_umask = os.umask(0o022)
    try:
        _run(env, "migrate")
        data = tmp_path / "data"
        database = data / "resolve.db"
        assert mode(data) == 0o700 and mode(database) == 0o600
        engine = make_engine(f"sqlite:///{database}")
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE probe (x INTEGER)"))
            wal = data / "resolve.db-wal"
            assert wal.exists() and mode(wal) == 0o600
            assert mode(data / "resolve.db-shm") == 0o600
        engine.dispose()
        quiet = _run(env, "migrate")
        assert "warning" not in quiet.stderr
        database.chmod(0o644)
        loud = _run(env, "migrate")
        assert "other users of this machine can read" in loud.stderr
        assert f"{database} (mode 0644)" in loud.stderr
    finally:
        os.umask(old_umask)


def test_export_openapi_writes_the_schema(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "openapi.json"
    _run(env, "export-openapi", "--output", str(out))
    paths = json.loads(out.read_text())["paths"]
    for path in (
        "/api/auth/login",
        "/api/users",
        "/api/organizations/{id}",
        "/api/platform/health",
    ):
        assert path in paths


def test_migrate_then_serve_answers_health(env: dict[str, str], tmp_path: Path) -> None:
    _run(env, "migrate")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [str(BIN), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/api/platform/health", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        assert response.status_code == 200
        health = response.json()["data"]
        assert health["status"] == "ok"
        assert health["database"]["status"] == "ok"
        assert health["migrations"]["status"] == "ok"
        assert health["currentRevision"] == health["headRevision"]
        # the secret key was generated on first start and persisted privately
        key = tmp_path / "data" / "secret_key"
        assert key.exists() and oct(key.stat().st_mode & 0o777) == "0o600"
    finally:
        proc.terminate()
        proc.wait(10)


def test_several_workers_need_postgresql(env: dict[str, str]) -> None:
    result = _run(env, "serve", "--workers", "2", check=False)
    assert result.returncode == 2 and "PostgreSQL" in result.stderr


@pytest.mark.postgres_only
def test_several_workers_on_postgresql_share_key_and_budget(
    env: dict[str, str], scratch_url: str
) -> None:
    """A platform operator's setup: PostgreSQL, two worker processes. A token issued
    by one worker is accepted by the other, and without Redis each worker enforces
    its share of the rate limit, so the whole server stays within the budget."""
    env = {**env, "RESOLVE_DATABASE_URL": scratch_url, "RESOLVE_RATE_LIMIT_READ": "20/600"}
    _run(env, "migrate")
    _run(env, "seed-demo", "--demo-tickets", "20")  # only its logins matter here
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [str(BIN), "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/api/platform/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError("server with two workers did not come up")
            time.sleep(0.05)
        login = httpx.post(
            base + "/api/auth/login",
            json={"email": "agent@maplewood.k12.example", "password": "Resolve-demo-2026"},
        )
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['data']['accessToken']}"}
        statuses = []
        for _ in range(50):  # a new connection each time, so both workers answer
            response = httpx.get(base + "/api/me", headers=headers, timeout=10)
            assert response.status_code in (200, 429), response.text
            if response.status_code == 200:
                assert response.headers["x-ratelimit-limit"] == "20"
            statuses.append(response.status_code)
        allowed = statuses.count(200)
        assert 10 <= allowed <= 20, f"{allowed} of 50 allowed with a budget of 20 over 2 workers"
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=20)
    started = {
        line.split("[")[1].split("]")[0]
        for line in output.splitlines()
        if "Started server process" in line
    }
    assert len(started) == 2, output[-2000:]
