"""The request context every route receives: session, caller, tenant, limits.

``access()`` and ``public()`` are cheap async dependencies: they check that a bearer
token is present and well-formed (so a stranger gets 401 before any body
validation) and return a context that is not yet open. ``UnitOfWorkRoute`` opens
it in the endpoint's worker thread: it opens the session, authenticates against
the database, counts the request against its rate limit, checks role and scope,
resolves and binds the organization the request acts on; after the endpoint it
commits or rolls back in the same thread. One thread-pool hop per request.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from sqlalchemy.orm import Session

from common.enums import Role
from common.errors import ErrorCode
from common.scopes import MFA_ENROLLMENT_SCOPE, scope_grants
from server.auth import service as auth_service
from server.core.config import Settings
from server.core.context import organization_id_var, user_id_var
from server.core.engine import Database
from server.core.errors import (
    ApiError,
    AuthenticationRequired,
    NotFound,
    PermissionDenied,
    RateLimited,
    ValidationFailed,
)
from server.core.ratelimit import RateLimiter, classify
from server.core.routing import UnitOfWork
from server.core.security import TokenError, decode_access_token, looks_like_api_token
from server.core.tenancy import ALL_TENANTS, Caller, bind_tenant
from server.organizations.models import Organization
from server.security.service import policy_of

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class _Unit(UnitOfWork):
    """Session handling shared by both contexts."""

    request: Request
    db: Database
    settings: Settings
    limiter: RateLimiter
    session: Session

    def _open_session(self) -> Session:
        self.session = self.db.session(write=self.request.method not in SAFE_METHODS)
        bind_tenant(self.session, ALL_TENANTS)  # identity lookups span tenants
        return self.session

    def finish(self, error: BaseException | None) -> None:
        session = getattr(self, "session", None)
        if session is None:
            return
        try:
            if error is None or (isinstance(error, ApiError) and error.keep_changes):
                session.commit()
            else:
                session.rollback()
        finally:
            session.close()


@dataclass(eq=False)
class RequestContext(_Unit):
    request: Request
    db: Database
    settings: Settings
    limiter: RateLimiter
    token: str
    required_scope: str | None
    roles: frozenset[Role]
    allow_mfa_enrollment: bool
    requested_organization: str | None
    session: Session = field(init=False)
    caller: Caller = field(init=False)
    #: the organization this request acts on; None when a super admin acts platform-wide
    organization_id: uuid.UUID | None = field(init=False, default=None)

    def open(self) -> None:
        session = self._open_session()
        request = self.request
        caller = auth_service.authenticate(
            session, settings=self.settings, token=self.token, ip_address=client_ip(request)
        )
        self.caller = caller
        request.state.caller = caller
        user_id_var.set(str(caller.user_id))
        subject = f"token:{caller.token_id}" if caller.token_id else f"user:{caller.user_id}"
        _limit(request, self.limiter, classify(request.method, request.url.path), subject)
        _authorize(caller, self.required_scope, self.roles, self.allow_mfa_enrollment)
        target: uuid.UUID | None
        if self.requested_organization:
            target = _parse_org_id(self.requested_organization)
            _check_may_act_on(session, caller, target)
        else:
            target = caller.organization_id
        # Rows loaded while identifying the caller were read across tenants; drop them
        # so every later read goes through the tenant filter.
        session.flush()
        session.expunge_all()
        bind_tenant(session, target if target is not None else ALL_TENANTS)
        organization_id_var.set(str(target) if target else None)
        request.state.organization_id = target
        self.organization_id = target

    def require_organization(self) -> uuid.UUID:
        if self.organization_id is None:
            raise ValidationFailed(
                "organizationId is required for platform administrators",
                details={"field": "organizationId"},
            )
        return self.organization_id

    def resolve_organization(self, requested: str | uuid.UUID | None) -> uuid.UUID:
        """An organization named in a request body, checked like the query parameter."""
        if requested is None or requested == "":
            return self.require_organization()
        org_id = _parse_org_id(requested)
        _check_may_act_on(self.session, self.caller, org_id)
        return org_id

    def organization(self, requested: str | uuid.UUID | None = None) -> Organization:
        """The organization the request acts on (see ``resolve_organization``), loaded."""
        org = self.session.get(Organization, self.resolve_organization(requested))
        assert org is not None  # resolve_organization checked that it exists
        return org


@dataclass(eq=False)
class PublicContext(_Unit):
    request: Request
    db: Database
    settings: Settings
    limiter: RateLimiter
    rate_name: str
    client_ip: str | None
    user_agent: str | None
    session: Session = field(init=False)

    def open(self) -> None:
        self._open_session()
        _limit(self.request, self.limiter, self.rate_name, f"ip:{self.client_ip}")


def _parse_org_id(value: str | uuid.UUID) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise ValidationFailed(
            "organizationId must be a UUID", details={"field": "organizationId"}
        ) from exc


def _check_may_act_on(session: Session, caller: Caller, org_id: uuid.UUID) -> None:
    if caller.is_super_admin:
        org = session.get(Organization, org_id)
        if org is None:
            raise NotFound("Organization")
        if not caller.mfa_enabled and policy_of(org).require_mfa_for_super_admins:
            raise PermissionDenied(
                "This organization requires platform administrators to use two-factor "
                "sign-in: enrol at /api/auth/mfa/enable",
                code=ErrorCode.MFA_ENROLLMENT_REQUIRED,
            )
        return
    if org_id != caller.organization_id:
        raise PermissionDenied("You may only act on your own organization")


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _limit(request: Request, limiter: RateLimiter, rate_name: str, subject: str) -> None:
    result = limiter.hit(rate_name, subject)
    # The response middleware copies these headers onto the response.
    request.state.rate_limit = result
    if not result.allowed:
        raise RateLimited(
            "Rate limit exceeded; try again later",
            headers=result.headers(),
            details={"limit": result.limit, "retryAfter": int(result.headers()["Retry-After"])},
        )


def _bearer(request: Request, settings: Settings) -> str:
    """The bearer token, refused early when it cannot be valid (no database needed)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationRequired()
    if not looks_like_api_token(token):
        try:
            decode_access_token(token, key=settings.signing_key())
        except TokenError as exc:
            expired = exc.reason == "expired"
            raise AuthenticationRequired(
                "Access token expired" if expired else "Access token is not valid",
                code=ErrorCode.TOKEN_EXPIRED if expired else ErrorCode.TOKEN_INVALID,
            ) from exc
    return token


def access(scope: str | None = None, *roles: Role, allow_mfa_enrollment: bool = False) -> Any:
    """A dependency for an authenticated route.

    ``scope``: what an API token must carry (``users:write``); ``roles``: who may call
    (super admins always may); without roles any signed-in user may.
    """
    allowed_roles = frozenset(roles)

    async def dependency(
        request: Request,
        organization_id: Annotated[
            str | None,
            Query(
                alias="organizationId",
                max_length=64,
                description="Organization to act on. Non-super-admin users may only "
                "name their own organization.",
            ),
        ] = None,
    ) -> RequestContext:
        state = request.app.state
        return RequestContext(
            request=request,
            db=state.db,
            settings=state.settings,
            limiter=state.rate_limiter,
            token=_bearer(request, state.settings),
            required_scope=scope,
            roles=allowed_roles,
            allow_mfa_enrollment=allow_mfa_enrollment,
            requested_organization=organization_id,
        )

    return Depends(dependency)


def _authorize(
    caller: Caller, scope: str | None, roles: frozenset[Role], allow_mfa_enrollment: bool
) -> None:
    if MFA_ENROLLMENT_SCOPE in caller.scopes and not allow_mfa_enrollment:
        raise PermissionDenied(
            "Your organization requires two-factor sign-in for administrators: "
            "enrol at /api/auth/mfa/enable before using the API",
            code=ErrorCode.MFA_ENROLLMENT_REQUIRED,
        )
    if roles and not caller.is_super_admin and caller.role not in roles:
        raise PermissionDenied()
    if scope and caller.via_api_token and not scope_grants(caller.scopes, scope):
        raise PermissionDenied(
            f"This API token lacks the '{scope}' scope",
            code=ErrorCode.INSUFFICIENT_SCOPE,
            details={"requiredScope": scope},
        )


def public(rate_name: str = "auth") -> Any:
    """A dependency for a route that needs no sign-in (login, refresh, reset)."""

    async def dependency(request: Request) -> PublicContext:
        state = request.app.state
        return PublicContext(
            request=request,
            db=state.db,
            settings=state.settings,
            limiter=state.rate_limiter,
            rate_name=rate_name,
            client_ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
        )

    return Depends(dependency)


def throttle_login(request: Request, *, email: str) -> None:
    """Per-account and per-address sign-in throttles on top of the endpoint class."""
    limiter: RateLimiter = request.app.state.rate_limiter
    _limit(request, limiter, "login_account", f"acct:{email.strip().lower()}")
    _limit(request, limiter, "login_address", f"ip:{client_ip(request)}")
