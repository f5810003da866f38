"""A team with members (team_members) for the organization being built."""

from __future__ import annotations

from tests.tenancy_seed import DomainSeed


def seed(domain: DomainSeed) -> None:
    client, marker, admin = domain.client, domain.marker, domain.admin
    team = domain.ok(
        client.post(
            "/api/teams",
            json={
                "name": f"{marker} field technicians",
                "description": f"{marker} north campus",
                "departmentId": domain.department["id"],
                "leadId": domain.users["agent"]["id"],
                "memberIds": [domain.users["technician"]["id"]],
            },
            headers=admin,
        ),
        201,
    )
    domain.ok(
        client.post(
            f"/api/teams/{team['id']}/members",
            json={"userId": domain.users["agent"]["id"]},
            headers=admin,
        ),
        201,
    )
    domain.made["team"] = team
