from __future__ import annotations

from typing import Annotated

from fastapi import Request

from common.enums import Role
from server.auth.deps import RequestContext, access, client_ip
from server.core.middleware import security_headers_for
from server.core.routing import api_router
from server.core.schemas import DataResponse
from server.organizations.models import Organization
from server.security import service
from server.security.schemas import SecurityPolicyUpdate, SecuritySettingsOut

router = api_router(prefix="/api/security", tags=["Security"])

Reader = Annotated[RequestContext, access("security:read", Role.ORG_ADMIN)]
Writer = Annotated[RequestContext, access("security:write", Role.ORG_ADMIN)]


def _out(org: Organization) -> SecuritySettingsOut:
    return SecuritySettingsOut(
        organization_id=str(org.id),
        policy=service.policy_of(org),
        security_headers=security_headers_for("/api/"),
    )


@router.get(
    "/settings",
    summary="Read tenant-scoped security posture, upload policy, security headers, "
    "and compliance settings.",
)
def get_settings(ctx: Reader) -> DataResponse[SecuritySettingsOut]:
    return DataResponse(data=_out(ctx.organization()))


@router.patch(
    "/settings",
    summary="Update organization security and compliance policy settings and write an audit event.",
)
def update_settings(
    ctx: Writer, request: Request, body: SecurityPolicyUpdate
) -> DataResponse[SecuritySettingsOut]:
    org = ctx.organization(body.organization_id)
    service.update_policy(
        ctx.session, caller=ctx.caller, org=org, changes=body, caller_address=client_ip(request)
    )
    return DataResponse(data=_out(org))
