"""Sync rows for the organization being built: a replica device for the admin and
the technician (sync_devices), and a ticket that left the technician's scope
(sync_scope_exits)."""

from __future__ import annotations

from common.ids import uuid7
from tests.tenancy_seed import DomainSeed


def seed(domain: DomainSeed) -> None:
    client = domain.client
    for caller in ("org_admin", "technician"):
        domain.ok(
            client.post(
                "/api/sync/pull",
                json={"protocolVersion": 1, "deviceId": str(uuid7())},
                headers=domain.callers[caller],
            )
        )
    ticket = domain.made["tickets"][0]
    for assignee in (domain.users["technician"]["id"], domain.users["agent"]["id"]):
        domain.ok(
            client.patch(
                f"/api/tickets/{ticket['id']}/assign",
                json={"assigneeId": assignee},
                headers=domain.admin,
            )
        )
