"""Shared fixtures: a migrated database (SQLite, or PostgreSQL when
RESOLVE_TEST_DATABASE_URL names one), a real uvicorn server on loopback, and
helpers to make organizations, users and signed-in clients."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from common.enums import Role
from server.app import create_app
from server.core.config import Settings
from server.core.engine import Database
from server.core.ratelimit import RateLimiter
from server.core.tenancy import ALL_TENANTS
from server.migrations import upgrade
from server.models import Base

PASSWORD = "Correct-horse-42"
POSTGRES_URL = os.environ.get("RESOLVE_TEST_DATABASE_URL")


def pytest_report_header(config: pytest.Config) -> str:
    return f"database: {'PostgreSQL ' + POSTGRES_URL if POSTGRES_URL else 'SQLite'}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if POSTGRES_URL:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (runs in the PostgreSQL suite)")
    for item in items:
        if "postgres_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def scratch_url(tmp_path: Path) -> Iterator[str]:
    """An empty database of the suite's kind, not the one the other tests share."""
    with scratch_database(tmp_path) as url:
        yield url


@contextmanager
def scratch_database(directory: Path) -> Iterator[str]:
    """An empty database of the suite's kind (a file in ``directory``, or a new
    PostgreSQL database dropped afterwards), for a fixture of any scope."""
    if not POSTGRES_URL:
        yield f"sqlite:///{directory / 'scratch.db'}"
        return
    name = f"scratch_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("resolve-data")


@pytest.fixture(scope="session")
def database_url(data_dir: Path) -> str:
    url = (
        _own_postgres_database(POSTGRES_URL)
        if POSTGRES_URL
        else f"sqlite:///{data_dir / 'test.db'}"
    )
    if os.environ.get("RESOLVE_TEST_CREATE_ALL"):
        # While a domain's models are in flux and its migration is not written yet.
        db = Database(url)
        Base.metadata.create_all(db.engine)
        db.dispose()
    else:
        upgrade(url)
    return url


def _own_postgres_database(cluster_url: str) -> str:
    """A new, empty database on the cluster for this test process (each pytest-xdist
    worker gets its own; SQLite files are per process already, under ``data_dir``)."""
    name = f"resolve_test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    admin = create_engine(cluster_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(cluster_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def settings(database_url: str, data_dir: Path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=data_dir,
        environment="test",
        background_jobs=False,
        # Real argon2id at a test-only cost: the suite signs in thousands of times, and
        # each production-cost check takes a quarter of a second (test_auth proves
        # the production figures are the default).
        password_time_cost=1,
        password_memory_kib=8,
        password_parallelism=1,
        log_json=False,
        rate_limit_read="100000/3600",
        rate_limit_write="100000/3600",
        rate_limit_auth="100000/60",
        rate_limit_login_account="100000/60",
        rate_limit_login_address="100000/60",
        rate_limit_search="100000/3600",
        rate_limit_reports="100000/3600",
        rate_limit_upload="100000/3600",
    )


@pytest.fixture(scope="session")
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings.database_url)
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def app(settings: Settings, db: Database) -> Any:
    return create_app(settings, database=db)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def server_url(app: Any) -> Iterator[str]:
    """A real uvicorn server on loopback, shared by the whole session."""
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _truncate_all(db: Database) -> None:
    """Empty every table a test wrote to. Asking which tables hold rows first costs one
    cheap statement and spares PostgreSQL a TRUNCATE of every table after every test."""
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    probe = " UNION ALL ".join(
        f"SELECT '{name}' WHERE EXISTS (SELECT 1 FROM \"{name}\")" for name in tables
    )
    with db.engine.begin() as conn:
        filled = {row[0] for row in conn.exec_driver_sql(probe)}
        if not filled:
            return
        if db.is_sqlite:
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            for name in tables:
                if name in filled:
                    conn.exec_driver_sql(f'DELETE FROM "{name}"')
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        else:
            names = ", ".join(f'"{n}"' for n in tables if n in filled)
            conn.exec_driver_sql(f"TRUNCATE {names} CASCADE")


@pytest.fixture(autouse=True)
def clean_state(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test starts with empty tables and fresh rate-limit counters."""
    yield
    if "db" in request.fixturenames or "server_url" in request.fixturenames:
        db = request.getfixturevalue("db")
        _truncate_all(db)
        if "app" in request.fixturenames:
            app = request.getfixturevalue("app")
            app.state.rate_limiter = RateLimiter(app.state.settings)


@pytest.fixture
def client(server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url, timeout=30) as c:
        yield c


@dataclass
class Account:
    id: uuid.UUID
    email: str
    password: str
    role: Role
    organization_id: uuid.UUID | None
    headers: dict[str, str]


@dataclass
class Tenant:
    id: uuid.UUID
    slug: str
    admin: Account


_HASHES: dict[str, str] = {}


class World:
    """Builds organizations and users straight through the services, and signs in over HTTP."""

    def __init__(self, db: Database, settings: Settings, client: httpx.Client) -> None:
        self.db = db
        self.settings = settings
        self.client = client

    def org(self, slug: str | None = None, **fields: Any) -> Tenant:
        from server.organizations.models import Organization

        slug = slug or f"org-{uuid.uuid4().hex[:8]}"
        with self.db.transaction(tenant=ALL_TENANTS) as session:
            org = Organization(
                name=fields.pop("name", slug.title()), slug=slug, settings={}, **fields
            )
            session.add(org)
            session.flush()
            org_id = org.id
        admin = self.user(org_id, Role.ORG_ADMIN, email=f"admin@{slug}.example")
        return Tenant(id=org_id, slug=slug, admin=admin)

    def user(
        self,
        organization_id: uuid.UUID | None,
        role: Role,
        *,
        email: str | None = None,
        password: str = PASSWORD,
        login: bool = True,
        **fields: Any,
    ) -> Account:
        from server.core.security import hash_password
        from server.users.models import User

        email = (email or f"{role.value}-{uuid.uuid4().hex[:8]}@example.org").lower()
        if password not in _HASHES:  # argon2 is slow on purpose; hash each password once
            _HASHES[password] = hash_password(password)
        with self.db.transaction(tenant=ALL_TENANTS) as session:
            user = User(organization_id=organization_id, email=email, role=role, **fields)
            user.password_hash = _HASHES[password]
            session.add(user)
            session.flush()
            user_id = user.id
        headers = self.login(email, password) if login else {}
        return Account(user_id, email, password, role, organization_id, headers)

    def login(self, email: str, password: str = PASSWORD, **extra: Any) -> dict[str, str]:
        response = self.client.post(
            "/api/auth/login", json={"email": email, "password": password, **extra}
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['data']['accessToken']}"}

    def super_admin(self) -> Account:
        return self.user(
            None, Role.SUPER_ADMIN, email=f"root-{uuid.uuid4().hex[:6]}@platform.example"
        )


@pytest.fixture
def world(db: Database, settings: Settings, client: httpx.Client) -> World:
    return World(db, settings, client)


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is an error of the documented shape (and, optionally, code)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert {"code", "message", "details", "requestId"} <= set(error), error
    assert error["requestId"] == response.headers["x-request-id"]
    if code is not None:
        assert error["code"] == code, error
    return error
