"""Sync rows for the organization being built: a replica device for the admin and
the technician (sync_devices), a judged edit that met another change
(sync_mutations, sync_conflicts), a ticket that left the technician's scope
(sync_scope_exits), and the retention job's checkpoint and horizon
(sync_checkpoints, sync_horizons)."""

from __future__ import annotations

from datetime import timedelta

from common.ids import uuid7
from server.core.db import utcnow
from server.sync import retention
from server.sync.models import SyncCheckpoint
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
    tech_device = str(uuid7())
    # assigned to the technician, who edits the title from a stale copy: a conflict
    domain.ok(
        client.patch(
            f"/api/tickets/{ticket['id']}/assign",
            json={"assigneeId": domain.users["technician"]["id"]},
            headers=domain.admin,
        )
    )
    pushed = domain.ok(
        client.post(
            "/api/sync/push",
            json={
                "protocolVersion": 1,
                "deviceId": tech_device,
                "mutations": [
                    {
                        "id": str(uuid7()),
                        "seq": 1,
                        "kind": "ticket.update",
                        "ticketId": ticket["id"],
                        "base": {"title": "an older title"},
                        "changes": {"title": f"{domain.marker} retitled offline"},
                    }
                ],
            },
            headers=domain.callers["technician"],
        )
    )
    assert pushed["results"][0]["verdict"] == "conflict", pushed
    for assignee in (domain.users["technician"]["id"], domain.users["agent"]["id"]):
        domain.ok(
            client.patch(
                f"/api/tickets/{ticket['id']}/assign",
                json={"assigneeId": assignee},
                headers=domain.admin,
            )
        )
    # the retention job today, with a checkpoint from a year ago at the first position
    # (so its horizon purges nothing the walk needs)
    with domain.db.transaction(tenant=domain.tenant_id) as session:
        session.add(
            SyncCheckpoint(
                organization_id=domain.tenant_id,
                position=1,
                taken_at=utcnow() - timedelta(days=400),
            )
        )
    with domain.db.transaction(tenant=domain.tenant_id) as session:
        assert retention.run(session, domain.tenant_id, utcnow(), keep_days=365).horizon == 1
