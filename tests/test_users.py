"""People management through the API: roles, filters, invitations and the rules that
keep an organization administrable."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from common.enums import Role
from server.core.tenancy import ALL_TENANTS
from server.mail.models import OutboxEmail
from tests.conftest import PASSWORD, World, assert_error


def _audit_actions(client: httpx.Client, headers: dict[str, str], **params: str) -> list[str]:
    response = client.get("/api/audit-logs", headers=headers, params={"perPage": 100, **params})
    assert response.status_code == 200, response.text
    return [e["action"] for e in response.json()["data"]]


def test_admin_creates_user_with_password_who_can_sign_in(
    world: World, client: httpx.Client
) -> None:
    tenant = world.org("alpha")
    response = client.post(
        "/api/users",
        headers=tenant.admin.headers,
        json={
            "email": "Priya.Raman@Alpha.example",
            "first_name": "Priya",  # snake_case is accepted on input
            "lastName": "Raman",
            "role": "technician",
            "password": PASSWORD,
        },
    )
    assert response.status_code == 201, response.text
    user = response.json()["data"]
    assert user["email"] == "priya.raman@alpha.example"
    assert user["fullName"] == "Priya Raman"
    assert user["organizationId"] == str(tenant.id)
    assert "passwordHash" not in user and "mfaSecret" not in user
    headers = world.login("priya.raman@alpha.example")
    me = client.get("/api/me", headers=headers).json()["data"]
    assert me["user"]["role"] == "technician"
    assert me["organization"]["slug"] == "alpha"
    assert "user.created" in _audit_actions(client, tenant.admin.headers, entityType="user")


def test_user_without_password_is_invited_by_email(world: World, client: httpx.Client, db) -> None:
    tenant = world.org("alpha")
    response = client.post(
        "/api/users",
        headers=tenant.admin.headers,
        json={"email": "new@alpha.example", "role": "agent"},
    )
    assert response.status_code == 201, response.text
    with db.transaction(tenant=ALL_TENANTS) as s:
        mails = s.scalars(
            select(OutboxEmail).where(OutboxEmail.to_address == "new@alpha.example")
        ).all()
        assert [m.kind for m in mails] == ["invitation"]
        assert "admin@alpha.example invited you" in mails[0].body_text
    # no password yet: sign-in fails like a wrong password
    failed = client.post(
        "/api/auth/login", json={"email": "new@alpha.example", "password": PASSWORD}
    )
    assert_error(failed, 401, "INVALID_CREDENTIALS")


def test_duplicate_email_is_a_conflict_even_across_organizations(
    world: World, client: httpx.Client
) -> None:
    alpha, bravo = world.org("alpha"), world.org("bravo")
    body = {"email": "shared@example.org", "role": "requester", "password": PASSWORD}
    assert client.post("/api/users", headers=alpha.admin.headers, json=body).status_code == 201
    error = assert_error(
        client.post("/api/users", headers=bravo.admin.headers, json=body), 409, "DUPLICATE_RESOURCE"
    )
    assert error["details"]["field"] == "email"


def test_list_filters_search_sort_and_pagination(world: World, client: httpx.Client) -> None:
    tenant = world.org("alpha")
    for i, role in enumerate([Role.AGENT, Role.TECHNICIAN, Role.TECHNICIAN, Role.REQUESTER]):
        world.user(tenant.id, role, email=f"u{i}@alpha.example", login=False, last_name=f"Zed{i}")
    get = lambda **p: client.get("/api/users", headers=tenant.admin.headers, params=p)
    techs = get(role="technician").json()
    assert {u["email"] for u in techs["data"]} == {"u1@alpha.example", "u2@alpha.example"}
    assert techs["pagination"]["total"] == 2
    assert [u["email"] for u in get(q="zed3").json()["data"]] == ["u3@alpha.example"]
    assert [u["email"] for u in get(search="ZED0").json()["data"]] == ["u0@alpha.example"]
    page = get(perPage=2, page=2, sort="email").json()
    assert [u["email"] for u in page["data"]] == ["u1@alpha.example", "u2@alpha.example"]
    assert page["pagination"] == {
        "page": 2,
        "perPage": 2,
        "total": 5,
        "totalPages": 3,
        "hasNext": True,
        "hasPrev": True,
        "totalCapped": False,
    }
    desc = get(sort="-email", perPage=1).json()["data"]
    assert desc[0]["email"] == "u3@alpha.example"
    assert_error(get(sort="passwordHash"), 422, "VALIDATION_ERROR")
    assert_error(get(role="wizard"), 422, "VALIDATION_ERROR")


def test_requesters_cannot_list_or_manage_users(world: World, client: httpx.Client) -> None:
    tenant = world.org("alpha")
    teacher = world.user(tenant.id, Role.REQUESTER)
    agent = world.user(tenant.id, Role.AGENT)
    assert_error(client.get("/api/users", headers=teacher.headers), 403, "PERMISSION_DENIED")
    assert client.get("/api/users", headers=agent.headers).status_code == 200
    body = {"email": "x@alpha.example", "role": "org_admin", "password": PASSWORD}
    assert_error(
        client.post("/api/users", headers=agent.headers, json=body), 403, "PERMISSION_DENIED"
    )


def test_patch_changes_role_and_audits_it(world: World, client: httpx.Client) -> None:
    tenant = world.org("alpha")
    tech = world.user(tenant.id, Role.TECHNICIAN, login=False)
    response = client.patch(
        f"/api/users/{tech.id}",
        headers=tenant.admin.headers,
        json={"role": "agent", "jobTitle": "Lead"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["role"] == "agent"
    assert response.json()["data"]["jobTitle"] == "Lead"
    events = client.get(
        "/api/audit-logs", headers=tenant.admin.headers, params={"action": "user.role_changed"}
    ).json()["data"]
    assert len(events) == 1
    assert events[0]["severity"] == "Warning"
    assert events[0]["details"]["changes"]["role"] == {"from": "technician", "to": "agent"}
    assert_error(
        client.patch(
            f"/api/users/{tech.id}", headers=tenant.admin.headers, json={"role": "super_admin"}
        ),
        422,
    )


def test_nobody_deactivates_or_demotes_themselves(world: World, client: httpx.Client) -> None:
    tenant = world.org("alpha")
    me = tenant.admin
    assert_error(
        client.post(f"/api/users/{me.id}/deactivate", headers=me.headers),
        422,
        "BUSINESS_RULE_VIOLATION",
    )
    assert_error(
        client.patch(f"/api/users/{me.id}", headers=me.headers, json={"role": "agent"}),
        422,
        "BUSINESS_RULE_VIOLATION",
    )
    assert_error(
        client.delete(f"/api/users/{me.id}", headers=me.headers), 422, "BUSINESS_RULE_VIOLATION"
    )
    assert client.get("/api/me", headers=me.headers).json()["data"]["user"]["isActive"] is True


def test_the_last_active_admin_cannot_be_removed_by_a_super_admin_either(
    world: World, client: httpx.Client
) -> None:
    tenant = world.org("alpha")
    root = world.super_admin()
    url = f"/api/users/{tenant.admin.id}/deactivate"
    assert_error(client.post(url, headers=root.headers), 422, "BUSINESS_RULE_VIOLATION")
    second = world.user(tenant.id, Role.ORG_ADMIN, login=False)
    assert client.post(url, headers=root.headers).status_code == 200
    assert_error(client.post(f"/api/users/{second.id}/deactivate", headers=root.headers), 422)


def test_deactivation_ends_sessions_and_activation_restores_sign_in(
    world: World, client: httpx.Client
) -> None:
    tenant = world.org("alpha")
    tech = world.user(tenant.id, Role.TECHNICIAN)
    assert client.get("/api/me", headers=tech.headers).status_code == 200
    response = client.post(f"/api/users/{tech.id}/deactivate", headers=tenant.admin.headers)
    assert response.json()["data"]["isActive"] is False
    assert_error(client.get("/api/me", headers=tech.headers), 401)
    login = client.post("/api/auth/login", json={"email": tech.email, "password": PASSWORD})
    assert_error(login, 403, "ACCOUNT_DISABLED")
    assert (
        client.post(f"/api/users/{tech.id}/activate", headers=tenant.admin.headers).status_code
        == 200
    )
    assert world.login(tech.email)
    actions = _audit_actions(client, tenant.admin.headers, entityType="user")
    assert "user.deactivated" in actions and "user.activated" in actions


def test_deleted_user_disappears_but_leaves_a_tombstone(
    world: World, client: httpx.Client, db
) -> None:
    from server.users.models import User

    tenant = world.org("alpha")
    tech = world.user(tenant.id, Role.TECHNICIAN)
    assert client.delete(f"/api/users/{tech.id}", headers=tenant.admin.headers).status_code == 204
    assert_error(
        client.get(f"/api/users/{tech.id}", headers=tenant.admin.headers), 404, "RESOURCE_NOT_FOUND"
    )
    assert tech.email not in {
        u["email"] for u in client.get("/api/users", headers=tenant.admin.headers).json()["data"]
    }
    assert_error(client.get("/api/me", headers=tech.headers), 401)
    with db.transaction(tenant=ALL_TENANTS) as s:
        stmt = select(func.count()).select_from(User).where(User.id == tech.id)
        assert s.scalar(stmt.execution_options(include_deleted=True)) == 1
    # the email is free again
    body = {"email": tech.email, "role": "technician", "password": PASSWORD}
    assert client.post("/api/users", headers=tenant.admin.headers, json=body).status_code == 201


def test_references_must_exist_in_the_same_organization(world: World, client: httpx.Client) -> None:
    alpha, bravo = world.org("alpha"), world.org("bravo")
    dept = client.post(
        "/api/departments", headers=bravo.admin.headers, json={"name": "Bravo IT"}
    ).json()["data"]
    body = {
        "email": "x@alpha.example",
        "role": "agent",
        "password": PASSWORD,
        "departmentId": dept["id"],
    }
    error = assert_error(client.post("/api/users", headers=alpha.admin.headers, json=body), 422)
    assert error["details"]["field"] == "departmentId"


def test_super_admin_must_name_the_organization_to_create_a_user(
    world: World, client: httpx.Client
) -> None:
    tenant = world.org("alpha")
    root = world.super_admin()
    body = {"email": "x@alpha.example", "role": "agent", "password": PASSWORD}
    assert_error(
        client.post("/api/users", headers=root.headers, json=body), 422, "VALIDATION_ERROR"
    )
    response = client.post(
        "/api/users", headers=root.headers, json={**body, "organizationId": str(tenant.id)}
    )
    assert response.status_code == 201, response.text
    assert response.json()["data"]["organizationId"] == str(tenant.id)
