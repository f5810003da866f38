from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy.orm import Session

from common.enums import AuditCategory, AuditSeverity
from server.audit import service as audit
from server.core.errors import BusinessRuleViolation
from server.core.tenancy import Caller
from server.organizations.models import Organization
from server.security.schemas import SecurityPolicy, SecurityPolicyUpdate

SETTINGS_KEY = "security"


def policy_of(org: Organization) -> SecurityPolicy:
    return SecurityPolicy.model_validate((org.settings or {}).get(SETTINGS_KEY, {}))


def address_allowed(allowlist: list[str], address: str | None) -> bool:
    """Whether a client address is inside an allowlist (an empty list allows every address)."""
    if not allowlist:
        return True
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d
    for entry in allowlist:
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def update_policy(
    session: Session,
    *,
    caller: Caller,
    org: Organization,
    changes: SecurityPolicyUpdate,
    caller_address: str | None = None,
) -> SecurityPolicy:
    current = policy_of(org)
    patch: dict[str, Any] = changes.model_dump(
        exclude_unset=True, exclude={"organization_id"}, by_alias=False
    )
    if "ip_allowlist" in patch and patch["ip_allowlist"] is not None:
        patch["ip_allowlist"] = [str(net) for net in patch["ip_allowlist"]]
    patch = {k: v for k, v in patch.items() if v is not None}
    updated = current.model_copy(update=patch)
    if (
        not caller.is_super_admin
        and "ip_allowlist" in patch
        and not address_allowed(updated.ip_allowlist, caller_address)
    ):
        raise BusinessRuleViolation(
            "The IP allowlist would lock you out: it does not include your address "
            f"{caller_address}",
            details={"field": "ipAllowlist", "address": caller_address},
        )
    SecurityPolicy.model_validate(updated.model_dump())  # re-check bounds after merge
    before = current.model_dump()
    after = updated.model_dump()
    changed = {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
    org.settings = {**(org.settings or {}), SETTINGS_KEY: after}
    session.flush()
    if changed:
        audit.record(
            session,
            actor=caller,
            organization_id=org.id,
            action="security.settings_updated",
            category=AuditCategory.SECURITY,
            severity=AuditSeverity.WARNING,
            entity_type="organization",
            entity_id=org.id,
            message=f"Security settings changed: {', '.join(sorted(changed))}",
            details={"changes": changed},
        )
    return updated
