from __future__ import annotations

from common.enums import Role
from tests.conftest import World, assert_error


def test_admin_lists_users_of_own_organization(world: World, client) -> None:
    tenant = world.org("alpha")
    world.user(tenant.id, Role.AGENT, email="agent@alpha.example", login=False)
    response = client.get("/api/users", headers=tenant.admin.headers)
    assert response.status_code == 200, response.text
    emails = {u["email"] for u in response.json()["data"]}
    assert emails == {"admin@alpha.example", "agent@alpha.example"}
    assert response.json()["pagination"]["total"] == 2


def test_unauthenticated_request_is_refused(client) -> None:
    assert_error(client.get("/api/users"), 401, "AUTHENTICATION_REQUIRED")
