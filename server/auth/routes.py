from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query, Request

from common.enums import Role
from server.auth import service
from server.auth.deps import PublicContext, RequestContext, access, public, throttle_login
from server.auth.models import ApiToken
from server.auth.schemas import (
    ApiTokenCreate,
    ApiTokenCreatedOut,
    ApiTokenOut,
    LoginIn,
    LogoutIn,
    MfaCodeIn,
    MfaEnrollmentOut,
    PasswordResetConfirmIn,
    PasswordResetRequestIn,
    RefreshIn,
    TokenOut,
)
from server.core.errors import NotFound, PermissionDenied
from server.core.listing import ListQuery, apply_sort, paginate
from server.core.routing import api_router
from server.core.schemas import DataResponse, ListResponse, MessageOut
from server.core.tenancy import ALL_TENANTS, bind_tenant
from server.organizations import service as org_service
from server.organizations.models import Organization
from server.organizations.schemas import DomainMatchIn, DomainMatchOut
from server.users.models import User
from server.users.schemas import UserOut

router = api_router(prefix="/api/auth", tags=["Authentication"])
tokens = api_router(prefix="/api/api-tokens", tags=["API tokens"])

Public = Annotated[PublicContext, public("auth")]
SignedIn = Annotated[RequestContext, access(None, allow_mfa_enrollment=True)]
TokenAdmin = Annotated[RequestContext, access("tokens:write", Role.ORG_ADMIN)]
TokenReader = Annotated[RequestContext, access("tokens:read", Role.ORG_ADMIN)]


def _tokens_out(issued: service.IssuedTokens) -> TokenOut:
    return TokenOut(
        access_token=issued.access_token,
        refresh_token=issued.refresh_token,
        expires_in=issued.expires_in,
        mfa_enrollment_required=issued.mfa_enrollment_required,
        user=UserOut.model_validate(issued.user),
    )


@router.post("/login", summary="Email/password login for API clients.")
def login(ctx: Public, request: Request, body: LoginIn) -> DataResponse[TokenOut]:
    throttle_login(request, email=str(body.email))
    issued = service.login(
        ctx.session,
        settings=ctx.settings,
        email=str(body.email),
        password=body.password,
        mfa_code=body.mfa_code,
        ip_address=ctx.client_ip,
        user_agent=ctx.user_agent,
    )
    return DataResponse(data=_tokens_out(issued))


@router.post("/refresh", summary="Exchange a refresh token for new tokens (rotation).")
def refresh(ctx: Public, body: RefreshIn) -> DataResponse[TokenOut]:
    issued = service.refresh(
        ctx.session,
        settings=ctx.settings,
        refresh_token=body.refresh_token,
        ip_address=ctx.client_ip,
    )
    return DataResponse(data=_tokens_out(issued))


@router.post("/logout", summary="Revoke a session (by refresh token, or the current one).")
def logout(ctx: Public, request: Request, body: LogoutIn | None = None) -> DataResponse[MessageOut]:
    caller = None
    refresh_token = body.refresh_token if body else None
    if not refresh_token:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            caller = service.authenticate(
                ctx.session, settings=ctx.settings, token=token.strip(), ip_address=ctx.client_ip
            )
    service.logout(ctx.session, refresh_token=refresh_token, caller=caller)
    return DataResponse(data=MessageOut(message="Signed out"))


@router.post("/google", summary="Resolve Google OAuth domain matching.")
def google_domain(ctx: Public, body: DomainMatchIn) -> DataResponse[DomainMatchOut]:
    org, domain = org_service.match_domain(
        ctx.session, email=str(body.email) if body.email else None, domain=body.domain
    )
    return DataResponse(
        data=DomainMatchOut(
            organization_id=org.id, organization_name=org.name, slug=org.slug, domain=domain
        )
    )


@router.post(
    "/password-reset/request",
    status_code=202,
    summary="Email a single-use password reset link (the answer is the same for unknown emails).",
)
def password_reset_request(
    ctx: Public, request: Request, body: PasswordResetRequestIn
) -> DataResponse[MessageOut]:
    throttle_login(request, email=str(body.email))
    # Only queued here, the same for every address; the outbox job sends the link.
    service.request_password_reset(ctx.session, email=str(body.email))
    return DataResponse(
        data=MessageOut(message="If an account exists for this email, a reset link was sent")
    )


@router.post("/password-reset/confirm", summary="Set a new password with a reset token.")
def password_reset_confirm(ctx: Public, body: PasswordResetConfirmIn) -> DataResponse[MessageOut]:
    service.confirm_password_reset(ctx.session, token=body.token, new_password=body.new_password)
    return DataResponse(data=MessageOut(message="Password changed; sign in with the new password"))


def _own_user(ctx: RequestContext) -> User:
    if ctx.caller.via_api_token:
        # Two-factor settings belong to the person, not to an integration acting for them.
        raise PermissionDenied("Two-factor sign-in is managed from a signed-in session")
    bind_tenant(ctx.session, ALL_TENANTS)  # the caller's own row, by primary key
    user = ctx.session.get(User, ctx.caller.user_id)
    if user is None:
        raise NotFound("User")
    return user


@router.post("/mfa/enable", summary="Start MFA enrolment: a TOTP secret and one-time backup codes.")
def mfa_enable(ctx: SignedIn) -> DataResponse[MfaEnrollmentOut]:
    enrollment = service.begin_mfa_enrollment(ctx.session, user=_own_user(ctx))
    return DataResponse(
        data=MfaEnrollmentOut(
            secret=enrollment.secret,
            otpauth_uri=enrollment.otpauth_uri,
            backup_codes=enrollment.backup_codes,
        )
    )


@router.post("/mfa/verify", summary="Finish MFA enrolment with a code from the authenticator.")
def mfa_verify(ctx: SignedIn, body: MfaCodeIn) -> DataResponse[MessageOut]:
    service.confirm_mfa(ctx.session, user=_own_user(ctx), caller=ctx.caller, code=body.code)
    return DataResponse(data=MessageOut(message="Two-factor sign-in is on"))


@router.post("/mfa/disable", summary="Turn MFA off (needs a current code or a backup code).")
def mfa_disable(ctx: SignedIn, body: MfaCodeIn) -> DataResponse[MessageOut]:
    user = _own_user(ctx)
    org = ctx.session.get(Organization, user.organization_id) if user.organization_id else None
    service.disable_mfa(ctx.session, user=user, caller=ctx.caller, code=body.code, org=org)
    return DataResponse(data=MessageOut(message="Two-factor sign-in is off"))


TOKEN_SORT_FIELDS = {"name": ApiToken.name, "createdAt": ApiToken.created_at}


@tokens.get("", summary="List organization API tokens without exposing token hashes.")
def list_tokens(
    ctx: TokenReader,
    params: ListQuery,
    include_revoked: Annotated[bool, Query(alias="includeRevoked")] = False,
) -> ListResponse[ApiTokenOut]:
    from sqlalchemy import select

    stmt = select(ApiToken)
    if not include_revoked:
        stmt = stmt.where(ApiToken.revoked_at.is_(None))
    stmt = apply_sort(
        stmt, params.sort, TOKEN_SORT_FIELDS, [ApiToken.created_at.desc()], ApiToken.id
    )
    rows, pagination = paginate(ctx.session, stmt, params)
    return ListResponse(data=[ApiTokenOut.model_validate(t) for t in rows], pagination=pagination)


@tokens.post(
    "",
    status_code=201,
    summary="Create a scoped bearer token for future clients and return the raw token once.",
)
def create_token(ctx: TokenAdmin, body: ApiTokenCreate) -> DataResponse[ApiTokenCreatedOut]:
    org_id = ctx.resolve_organization(body.organization_id)
    token, raw = service.create_api_token(
        ctx.session,
        caller=ctx.caller,
        organization_id=org_id,
        name=body.name,
        scopes=list(body.scopes),
        expires_at=body.expires_at,
    )
    out = ApiTokenOut.model_validate(token).model_dump()
    return DataResponse(data=ApiTokenCreatedOut(**out, token=raw))


@tokens.patch("/{id}/revoke", summary="Revoke an organization API token.")
def revoke_token(ctx: TokenAdmin, id: uuid.UUID) -> DataResponse[ApiTokenOut]:
    token = ctx.session.get(ApiToken, id)
    if token is None:
        raise NotFound("API token")
    return DataResponse(
        data=ApiTokenOut.model_validate(
            service.revoke_api_token(ctx.session, caller=ctx.caller, token=token)
        )
    )
