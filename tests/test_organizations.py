"""Organizations (platform administrators) and departments (organization administrators)."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select

from common.enums import Role
from server.core.tenancy import ALL_TENANTS
from server.mail.models import OutboxEmail
from tests.conftest import PASSWORD, World, assert_error


def test_super_admin_creates_an_organization_with_its_first_admin(
    world: World, client: httpx.Client, db
) -> None:
    root = world.super_admin()
    response = client.post(
        "/api/organizations",
        headers=root.headers,
        json={
            "name": "Riverside Unified",
            "slug": "riverside",
            "domains": ["Riverside.K12.example"],
            "timezone": "America/Denver",
            "branding": {"primaryColor": "#123456"},
            "admin": {"email": "it-director@riverside.k12.example", "firstName": "Ana"},
        },
    )
    assert response.status_code == 201, response.text
    org = response.json()["data"]
    assert org["slug"] == "riverside"
    assert org["status"] == "active"
    assert org["domains"] == ["riverside.k12.example"]
    assert org["branding"] == {"primaryColor": "#123456"}
    with db.transaction(tenant=ALL_TENANTS) as s:
        invite = s.scalar(select(OutboxEmail).where(OutboxEmail.kind == "invitation"))
        assert invite is not None and invite.to_address == "it-director@riverside.k12.example"
    listed = client.get("/api/organizations", headers=root.headers, params={"q": "river"}).json()
    assert [o["slug"] for o in listed["data"]] == ["riverside"]
    # the domain now resolves to the organization for sign-in
    match = client.post("/api/auth/google", json={"email": "someone@riverside.k12.example"})
    assert match.status_code == 200 and match.json()["data"]["slug"] == "riverside"


def test_organization_input_is_validated(world: World, client: httpx.Client) -> None:
    root = world.super_admin()
    world.org("taken")
    bad = [
        ({"name": "X", "slug": "ok-slug"}, "name"),
        ({"name": "Good", "slug": "Bad Slug"}, "slug"),
        ({"name": "Good", "slug": "ok", "timezone": "Mars/Olympus"}, "timezone"),
        ({"name": "Good", "slug": "ok", "domains": ["not a domain"]}, "domains"),
        ({"name": "Good", "slug": "ok", "branding": {"primaryColor": "red"}}, "branding"),
    ]
    for body, field in bad:
        error = assert_error(
            client.post("/api/organizations", headers=root.headers, json=body), 422
        )
        assert any(field in (d.get("field") or "") for d in error["details"]), (field, error)
    assert_error(
        client.post(
            "/api/organizations", headers=root.headers, json={"name": "Dup", "slug": "taken"}
        ),
        409,
        "DUPLICATE_RESOURCE",
    )


def test_a_domain_belongs_to_one_organization(world: World, client: httpx.Client) -> None:
    root = world.super_admin()
    alpha, bravo = world.org("alpha"), world.org("bravo")
    ok = client.patch(
        f"/api/organizations/{alpha.id}", headers=root.headers, json={"domains": ["alpha.org"]}
    )
    assert ok.status_code == 200, ok.text
    clash = client.patch(
        f"/api/organizations/{bravo.id}", headers=root.headers, json={"domains": ["alpha.org"]}
    )
    assert_error(clash, 409, "DUPLICATE_RESOURCE")


def test_only_platform_admins_list_create_or_archive_organizations(
    world: World, client: httpx.Client
) -> None:
    tenant = world.org("alpha")
    headers = tenant.admin.headers
    assert_error(client.get("/api/organizations", headers=headers), 403, "PERMISSION_DENIED")
    assert_error(
        client.post("/api/organizations", headers=headers, json={"name": "Mine", "slug": "mine"}),
        403,
    )
    assert_error(client.delete(f"/api/organizations/{tenant.id}", headers=headers), 403)


def test_org_admin_reads_and_edits_own_profile_but_not_its_status(
    world: World, client: httpx.Client
) -> None:
    alpha, bravo = world.org("alpha"), world.org("bravo")
    headers = alpha.admin.headers
    assert (
        client.get(f"/api/organizations/{alpha.id}", headers=headers).json()["data"]["slug"]
        == "alpha"
    )
    assert_error(
        client.get(f"/api/organizations/{bravo.id}", headers=headers), 404, "RESOURCE_NOT_FOUND"
    )
    response = client.patch(
        f"/api/organizations/{alpha.id}",
        headers=headers,
        json={"phone": "+1 555 0199", "settings": {"locale": "es-US", "weekStartsOn": 1}},
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["phone"] == "+1 555 0199"
    assert data["settings"]["general"]["locale"] == "es-US"
    assert_error(
        client.patch(
            f"/api/organizations/{alpha.id}", headers=headers, json={"status": "suspended"}
        ),
        403,
        "PERMISSION_DENIED",
    )


def test_suspending_and_archiving_stop_sign_in_and_are_audited(
    world: World, client: httpx.Client
) -> None:
    root = world.super_admin()
    tenant = world.org("alpha")
    response = client.patch(
        f"/api/organizations/{tenant.id}", headers=root.headers, json={"status": "suspended"}
    )
    assert response.status_code == 200 and response.json()["data"]["status"] == "suspended"
    login = client.post("/api/auth/login", json={"email": tenant.admin.email, "password": PASSWORD})
    assert_error(login, 403, "ORGANIZATION_SUSPENDED")
    assert_error(client.get("/api/me", headers=tenant.admin.headers), 401, "ORGANIZATION_SUSPENDED")
    client.patch(f"/api/organizations/{tenant.id}", headers=root.headers, json={"status": "active"})
    archived = client.delete(f"/api/organizations/{tenant.id}", headers=root.headers)
    assert archived.status_code == 200 and archived.json()["data"]["status"] == "archived"
    assert_error(client.delete(f"/api/organizations/{tenant.id}", headers=root.headers), 409)
    events = client.get(
        "/api/audit-logs",
        headers=root.headers,
        params={"action": "organization.status_changed", "organizationId": str(tenant.id)},
    ).json()["data"]
    assert len(events) == 3
    assert {e["severity"] for e in events} == {"Critical"}


def test_departments_crud_with_unique_names(world: World, client: httpx.Client) -> None:
    tenant = world.org("alpha")
    headers = tenant.admin.headers
    created = client.post(
        "/api/departments", headers=headers, json={"name": "Technology", "code": "TECH"}
    )
    assert created.status_code == 201, created.text
    dept_id = created.json()["data"]["id"]
    assert_error(
        client.post("/api/departments", headers=headers, json={"name": "technology"}),
        409,
        "DUPLICATE_RESOURCE",
    )
    renamed = client.patch(
        f"/api/departments/{dept_id}", headers=headers, json={"name": "IT Services"}
    )
    assert renamed.json()["data"]["name"] == "IT Services"
    listing = client.get("/api/departments", headers=headers, params={"q": "serv"}).json()
    assert [d["name"] for d in listing["data"]] == ["IT Services"]
    assert client.delete(f"/api/departments/{dept_id}", headers=headers).status_code == 204
    assert_error(client.get(f"/api/departments/{dept_id}", headers=headers), 404)
    # the name is free again once the department is deleted
    assert (
        client.post("/api/departments", headers=headers, json={"name": "IT Services"}).status_code
        == 201
    )


def test_every_signed_in_user_reads_departments_but_only_admins_write(
    world: World, client: httpx.Client
) -> None:
    from common.enums import Role

    tenant = world.org("alpha")
    client.post("/api/departments", headers=tenant.admin.headers, json={"name": "Facilities"})
    teacher = world.user(tenant.id, Role.REQUESTER)
    assert [
        d["name"] for d in client.get("/api/departments", headers=teacher.headers).json()["data"]
    ] == ["Facilities"]
    assert_error(
        client.post("/api/departments", headers=teacher.headers, json={"name": "Mine"}), 403
    )


def test_a_new_district_works_on_day_one(world: World, client: httpx.Client) -> None:
    """An organization created through the API gets editable defaults: a school-day
    calendar in its time zone, SLA rules per priority on it, the ticket categories,
    asset types, and a help desk team that unmatched tickets fall to. Its first
    ticket therefore has SLA deadlines and lands in a queue."""
    root = world.super_admin()
    created = client.post(
        "/api/organizations",
        headers=root.headers,
        json={"name": "Cedar Falls Schools", "slug": "cedar-falls", "timezone": "America/Denver"},
    )
    assert created.status_code == 201, created.text
    org_id = uuid.UUID(created.json()["data"]["id"])
    admin = world.user(org_id, Role.ORG_ADMIN)
    teacher = world.user(org_id, Role.REQUESTER)

    calendars = client.get("/api/business-calendars", headers=admin.headers).json()["data"]
    assert [(c["timezone"], c["isDefault"]) for c in calendars] == [("America/Denver", True)]
    open_days = {day for day, spans in calendars[0]["hours"].items() if spans}
    assert open_days == {"mon", "tue", "wed", "thu", "fri"}
    rules = client.get("/api/sla-rules", headers=admin.headers).json()["data"]
    assert sorted(r["priority"] for r in rules) == ["critical", "high", "low", "medium"]
    assert all(r["responseMinutes"] < r["resolutionMinutes"] for r in rules)
    teams = client.get("/api/teams", headers=admin.headers).json()["data"]
    assert [t["name"] for t in teams] == ["Help desk"]
    categories = client.get("/api/ticket-settings", headers=admin.headers).json()["data"]
    assert "Devices" in [c["name"] for c in categories["categories"]]
    types = client.get("/api/asset-types", headers=admin.headers).json()["data"]
    assert "Chromebook" in [t["name"] for t in types]

    filed = client.post(
        "/api/tickets",
        headers=teacher.headers,
        json={"title": "Projector in room 12 shows no picture", "description": "Since Monday."},
    )
    assert filed.status_code == 201, filed.text
    staff_view = client.get(f"/api/tickets/{filed.json()['data']['id']}", headers=admin.headers)
    ticket = staff_view.json()["data"]
    assert ticket["responseDueAt"] and ticket["resolutionDueAt"], ticket
    assert ticket["teamId"] == teams[0]["id"]

    # the defaults are the district's to change
    rule = next(r for r in rules if r["priority"] == "medium")
    edited = client.patch(
        f"/api/sla-rules/{rule['id']}", headers=admin.headers, json={"responseMinutes": 60}
    )
    assert edited.status_code == 200 and edited.json()["data"]["responseMinutes"] == 60
