"""The audit log: filters, CSV export, tenant boundaries."""

from __future__ import annotations

import csv
import io

import httpx

from common.enums import AuditCategory, AuditSeverity, Role
from server.audit import service as audit
from server.core.tenancy import ALL_TENANTS
from tests.conftest import World, assert_error


def _record(db, org_id, message: str, **kw) -> None:
    with db.transaction(tenant=ALL_TENANTS) as s:
        audit.record(
            s,
            action=kw.pop("action", "test.event"),
            category=kw.pop("category", AuditCategory.DATA),
            organization_id=org_id,
            actor_email="tester@example.org",
            message=message,
            **kw,
        )


def test_filters_by_severity_category_entity_and_text(
    world: World, client: httpx.Client, db
) -> None:
    tenant = world.org("alpha")
    _record(db, tenant.id, "routine thing", severity=AuditSeverity.INFO, entity_type="asset")
    _record(
        db,
        tenant.id,
        "projector stolen",
        severity=AuditSeverity.CRITICAL,
        category=AuditCategory.SECURITY,
    )
    get = lambda **p: client.get("/api/audit-logs", headers=tenant.admin.headers, params=p).json()[
        "data"
    ]
    assert [e["message"] for e in get(severity="Critical")] == ["projector stolen"]
    assert [e["message"] for e in get(entityType="asset")] == ["routine thing"]
    assert [e["message"] for e in get(category="security", action="test.event")] == [
        "projector stolen"
    ]
    assert [e["message"] for e in get(q="PROJECTOR")] == ["projector stolen"]
    logins = get(action="auth.login_succeeded")
    assert logins and logins[0]["ipAddress"] == "127.0.0.1" and logins[0]["requestId"]
    assert_error(
        client.get(
            "/api/audit-logs", headers=tenant.admin.headers, params={"severity": "Catastrophic"}
        ),
        422,
    )


def test_csv_export_is_scoped_and_safe_for_spreadsheets(
    world: World, client: httpx.Client, db
) -> None:
    alpha, bravo = world.org("alpha"), world.org("bravo")
    _record(db, alpha.id, '=HYPERLINK("http://evil")')
    _record(db, bravo.id, "bravo only")
    response = client.get("/api/audit-logs", headers=alpha.admin.headers, params={"format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    messages = [r["message"] for r in rows]
    assert "bravo only" not in messages
    assert '\'=HYPERLINK("http://evil")' in messages, "formula cells are neutralised"
    assert {r["organizationId"] for r in rows} == {str(alpha.id)}


def test_only_admins_read_the_audit_log(world: World, client: httpx.Client) -> None:
    tenant = world.org("alpha")
    agent = world.user(tenant.id, Role.AGENT)
    assert_error(client.get("/api/audit-logs", headers=agent.headers), 403, "PERMISSION_DENIED")


def test_super_admin_sees_platform_events_and_can_narrow_to_one_organization(
    world: World, client: httpx.Client, db
) -> None:
    alpha, bravo = world.org("alpha"), world.org("bravo")
    root = world.super_admin()
    _record(db, None, "platform maintenance")
    _record(db, alpha.id, "alpha event")
    everything = client.get(
        "/api/audit-logs", headers=root.headers, params={"action": "test.event"}
    ).json()
    assert {e["message"] for e in everything["data"]} == {"platform maintenance", "alpha event"}
    only_alpha = client.get(
        "/api/audit-logs",
        headers=root.headers,
        params={"action": "test.event", "organizationId": str(alpha.id)},
    ).json()
    assert [e["message"] for e in only_alpha["data"]] == ["alpha event"]
    assert bravo  # bravo exists but has no test events
