"""SLA: a default school-day calendar with holidays (one added, one removed, so a
tombstone exists), a site calendar, and rules that name the department, the site, the
calendar and an escalation contact.

``domain.made["sla"]`` has the calendar and the rules, for later modules (tickets made
after this get deadlines from these rules).
"""

from __future__ import annotations

from tests.tenancy_seed import DomainSeed


def seed(domain: DomainSeed) -> None:
    client, marker, admin = domain.client, domain.marker, domain.admin
    school_day = {d: [["07:30", "15:30"]] for d in ("mon", "tue", "wed", "thu", "fri")}
    calendar = domain.ok(
        client.post(
            "/api/business-calendars",
            json={
                "name": f"{marker} school day",
                "description": f"{marker} district office hours",
                "timezone": "America/Chicago",
                "hours": school_day,
                "isDefault": True,
                "holidays": [
                    {
                        "name": f"{marker} spring break",
                        "startDate": "2027-03-15",
                        "endDate": "2027-03-19",
                    }
                ],
            },
            headers=admin,
        ),
        201,
    )
    domain.ok(
        client.post(
            f"/api/business-calendars/{calendar['id']}/holidays",
            json={
                "name": f"{marker} winter break",
                "startDate": "2026-12-21",
                "endDate": "2027-01-01",
            },
            headers=admin,
        ),
        201,
    )
    snow_day = domain.ok(
        client.post(
            f"/api/business-calendars/{calendar['id']}/holidays",
            json={"name": f"{marker} snow day", "startDate": "2027-02-03"},
            headers=admin,
        ),
        201,
    )
    domain.ok(
        client.delete(
            f"/api/business-calendars/{calendar['id']}/holidays/{snow_day['id']}", headers=admin
        ),
        204,
    )
    sites = domain.ok(client.get("/api/sites", headers=admin))
    rules = []
    if sites:
        site_calendar = domain.ok(
            client.post(
                "/api/business-calendars",
                json={
                    "name": f"{marker} {sites[0]['name']} hours",
                    "siteId": sites[0]["id"],
                    "hours": {d: [["07:00", "11:30"], ["12:00", "16:00"]] for d in school_day},
                },
                headers=admin,
            ),
            201,
        )
        rules.append(
            domain.ok(
                client.post(
                    "/api/sla-rules",
                    json={
                        "name": f"{marker} critical at {sites[0]['name']}",
                        "priority": "critical",
                        "siteId": sites[0]["id"],
                        "calendarId": site_calendar["id"],
                        "responseMinutes": 30,
                        "resolutionMinutes": 240,
                        "dueSoonMinutes": 15,
                    },
                    headers=admin,
                ),
                201,
            )
        )
    rules.append(
        domain.ok(
            client.post(
                "/api/sla-rules",
                json={
                    "name": f"{marker} facilities",
                    "description": f"{marker} facilities requests",
                    "departmentId": domain.department["id"],
                    "calendarId": calendar["id"],
                    "responseMinutes": 240,
                    "resolutionMinutes": 1440,
                    "escalation": {
                        "raisePriority": True,
                        "notifyUserIds": [domain.users["agent"]["id"]],
                        "notifyRoles": ["org_admin"],
                    },
                },
                headers=admin,
            ),
            201,
        )
    )
    rules.append(
        domain.ok(
            client.post(
                "/api/sla-rules",
                json={
                    "name": f"{marker} everything else",
                    "responseMinutes": 480,
                    "resolutionMinutes": 2400,
                    "position": 99,
                },
                headers=admin,
            ),
            201,
        )
    )
    retired = domain.ok(
        client.post(
            "/api/sla-rules",
            json={"name": f"{marker} retired", "responseMinutes": 1, "resolutionMinutes": 2},
            headers=admin,
        ),
        201,
    )
    domain.ok(client.delete(f"/api/sla-rules/{retired['id']}", headers=admin), 204)
    domain.made["sla"] = {"calendar": calendar, "rules": rules}
