"""Uploads: a finished one (its bytes sent to the signed URL) and a pending one.

``domain.made["uploads"]`` has the finished upload (``storageKey``, uploaded by the
agent for TICKET_ATTACHMENT) for a later module to attach to a ticket.
"""

from __future__ import annotations

from tests.tenancy_seed import DomainSeed


def seed(domain: DomainSeed) -> None:
    client, marker = domain.client, domain.marker
    body = f"{marker} router log\nport 12 flapping\n".encode()
    finished = domain.ok(
        client.post(
            "/api/uploads/presign",
            json={
                "fileName": f"{marker}-router.log",
                "mimeType": "text/plain",
                "sizeBytes": len(body),
                "purpose": "TICKET_ATTACHMENT",
            },
            headers=domain.callers["agent"],
        ),
        201,
    )
    done = domain.ok(
        client.put(finished["uploadUrl"], content=body, headers={"Content-Type": "text/plain"})
    )
    assert done["status"] == "complete", done
    domain.ok(
        client.post(
            "/api/uploads/presign",
            json={
                "fileName": f"{marker}-inventory.csv",
                "mimeType": "text/csv",
                "sizeBytes": 2048,
                "purpose": "IMPORT_FILE",
            },
            headers=domain.admin,
        ),
        201,
    )
    domain.made["uploads"] = [finished]
