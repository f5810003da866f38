"""Every list and read endpoint runs a fixed number of SQL statements, however many
rows there are: an N+1 shows up here as a count that grows."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import uuid4

import httpx
import pytest
from sqlalchemy import event

from common.enums import Role
from server.core.engine import Database
from tests.conftest import PASSWORD, World


@contextmanager
def count_statements(db: Database) -> Iterator[list[str]]:
    statements: list[str] = []
    lock = threading.Lock()

    def before(conn, cursor, statement, parameters, context, executemany):
        with lock:
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", before)


def _grow(world: World, client: httpx.Client, tenant, n: int) -> None:
    for i in range(n):
        world.user(tenant.id, Role.AGENT, login=False)
        client.post(
            "/api/departments",
            headers=tenant.admin.headers,
            json={"name": f"Dept {i} {id(tenant)}"},
        )
        client.post(
            "/api/api-tokens",
            headers=tenant.admin.headers,
            json={"name": f"t{i}", "scopes": ["users:read"]},
        )


@pytest.mark.parametrize(
    "path",
    [
        "/api/users",
        "/api/departments",
        "/api/audit-logs",
        "/api/api-tokens",
        "/api/me",
        "/api/security/settings",
        "/api/sites",
        "/api/rooms",
        "/api/organizations",
        "/api/users/{admin}",
        "/api/organizations/{org}",
    ],
)
def test_statement_count_does_not_grow_with_rows(
    world: World, client: httpx.Client, db: Database, path: str
) -> None:
    tenant = world.org("alpha")
    root = world.super_admin()
    headers = root.headers if path == "/api/organizations" else tenant.admin.headers
    url = path.format(admin=tenant.admin.id, org=tenant.id)

    def measure() -> int:
        client.get(url, headers=headers)  # warm caches (mappers, compiled statements)
        with count_statements(db) as statements:
            response = client.get(
                url, headers=headers, params={"perPage": 100} if "{" not in path else None
            )
        assert response.status_code == 200, response.text
        return len(statements)

    _grow(world, client, tenant, 2)
    world.org("bravo")
    few = measure()
    _grow(world, client, tenant, 12)
    for _ in range(3):
        world.org()
    many = measure()
    assert many == few, f"{path}: {few} statements with few rows, {many} with many"
    assert few <= 8, f"{path} runs {few} statements"


def test_sign_in_costs_a_fixed_number_of_statements(
    world: World, client: httpx.Client, db: Database
) -> None:
    tenant = world.org("alpha")
    world.login(tenant.admin.email)
    with count_statements(db) as statements:
        world.login(tenant.admin.email, PASSWORD)
    assert len(statements) <= 12, statements


def test_room_lists_name_building_and_site_without_a_query_per_room(
    world: World, client: httpx.Client, db: Database
) -> None:
    """Each room in a list names its building and site: joined, not fetched per room."""
    tenant = world.org("alpha")
    admin = tenant.admin.headers

    def grow(n: int) -> str:
        site = client.post("/api/sites", headers=admin, json={"name": f"School {uuid4().hex}"})
        site_id = site.json()["data"]["id"]
        building = client.post(
            f"/api/sites/{site_id}/buildings", headers=admin, json={"name": "Main Building"}
        ).json()["data"]["id"]
        for i in range(n):
            response = client.post(
                f"/api/buildings/{building}/rooms", headers=admin, json={"number": f"1{i:02d}"}
            )
            assert response.status_code == 201, response.text
        return building

    def measure(url: str, **params: str) -> int:
        client.get(url, headers=admin, params=params)
        with count_statements(db) as statements:
            response = client.get(url, headers=admin, params={"perPage": "100", **params})
        assert response.status_code == 200, response.text
        assert all(r["siteName"].startswith("School") for r in response.json()["data"])
        return len(statements)

    building = grow(2)
    urls = [
        ("/api/rooms", {}),
        ("/api/rooms", {"q": "School 10"}),
        (f"/api/buildings/{building}/rooms", {}),
    ]
    few = [measure(url, **params) for url, params in urls]
    for _ in range(3):
        grow(8)
    building_many = grow(12)
    many = [measure(url, **params) for url, params in urls[:2]]
    many.append(measure(f"/api/buildings/{building_many}/rooms"))
    assert many == few, f"{few} statements with few rooms, {many} with many"
    assert max(few) <= 8, few
