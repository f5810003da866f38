"""Routing rule sets and rules for the organization being built, naming its site,
department, team and people (so a leak of any of them would show)."""

from __future__ import annotations

from tests.tenancy_seed import DomainSeed


def seed(domain: DomainSeed) -> None:
    client, marker, admin = domain.client, domain.marker, domain.admin
    sites = domain.ok(client.get("/api/sites", headers=admin))
    team = domain.made.get("team")
    rule_set = domain.ok(
        client.post(
            "/api/routing-rule-sets",
            json={"name": f"{marker} campus", "description": f"{marker} routing"},
            headers=admin,
        ),
        201,
    )
    actions: dict[str, object] = {"assignUserId": domain.users["technician"]["id"]}
    if team:
        actions["assignTeamId"] = team["id"]
    domain.ok(
        client.post(
            "/api/routing-rules",
            json={
                "name": f"{marker} site rule",
                "description": f"{marker} description",
                "ruleSetId": rule_set["id"],
                "conditions": {
                    "siteIds": [s["id"] for s in sites],
                    "departmentIds": [domain.department["id"]],
                    "keywords": [marker],
                },
                "actions": actions,
            },
            headers=admin,
        ),
        201,
    )
    domain.ok(
        client.post(
            "/api/routing-rules",
            json={
                "name": f"{marker} critical watchers",
                "ruleSet": f"{marker} watchers",
                "conditions": {"priorities": ["critical"]},
                "actions": {"addWatcherIds": [domain.users["agent"]["id"]], "addTags": [marker]},
            },
            headers=admin,
        ),
        201,
    )
