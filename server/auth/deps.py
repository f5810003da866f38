"""The request context every route receives: session, caller, tenant, limits.

One generator dependency opens the session, authenticates, resolves which
organization the request acts on, binds the session to it, counts the request
against its rate limit, checks role and scope, and finally commits or rolls back.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from sqlalchemy.orm import Session

from common.enums import Role
from common.errors import ErrorCode
from common.scopes import MFA_ENROLLMENT_SCOPE, scope_grants
from server.auth import service as auth_service
from server.core.config import Settings
from server.core.context import organization_id_var, user_id_var
from server.core.db import Database
from server.core.errors import (
    ApiError,
    AuthenticationRequired,
    NotFound,
    PermissionDenied,
    RateLimited,
    ValidationFailed,
)
from server.core.ratelimit import RateLimiter, classify
from server.core.tenancy import ALL_TENANTS, Caller, bind_tenant
from server.organizations.models import Organization

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(slots=True)
class RequestContext:
    session: Session
    settings: Settings
    caller: Caller
    #: the organization this request acts on; None when a super admin acts platform-wide
    organization_id: uuid.UUID | None

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


@dataclass(slots=True)
class PublicContext:
    session: Session
    settings: Settings
    client_ip: str | None
    user_agent: str | None


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
        if session.get(Organization, org_id) is None:
            raise NotFound("Organization")
        return
    if org_id != caller.organization_id:
        raise PermissionDenied("You may only act on your own organization")


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _open(request: Request) -> tuple[Database, Settings, RateLimiter]:
    state = request.app.state
    return state.db, state.settings, state.rate_limiter


def _finish(session: Session, exc: BaseException | None) -> None:
    if exc is None or (isinstance(exc, ApiError) and exc.keep_changes):
        session.commit()
    else:
        session.rollback()


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


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationRequired()
    return token.strip()


def access(scope: str | None = None, *roles: Role, allow_mfa_enrollment: bool = False) -> Any:
    """A dependency for an authenticated route.

    ``scope``: what an API token must carry (``users:write``); ``roles``: who may call
    (super admins always may); without roles any signed-in user may.
    """
    allowed_roles = frozenset(roles)

    def dependency(
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
    ) -> Iterator[RequestContext]:
        db, settings, limiter = _open(request)
        session = db.session(write=request.method not in SAFE_METHODS)
        error: BaseException | None = None
        try:
            bind_tenant(session, ALL_TENANTS)  # identity lookups span tenants
            token = _bearer(request)
            caller = auth_service.authenticate(
                session, settings=settings, token=token, ip_address=client_ip(request)
            )
            request.state.caller = caller
            user_id_var.set(str(caller.user_id))
            subject = f"token:{caller.token_id}" if caller.token_id else f"user:{caller.user_id}"
            _limit(request, limiter, classify(request.method, request.url.path), subject)
            _authorize(caller, scope, allowed_roles, allow_mfa_enrollment)
            target: uuid.UUID | None
            if organization_id:
                target = _parse_org_id(organization_id)
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
            yield RequestContext(
                session=session, settings=settings, caller=caller, organization_id=target
            )
        except BaseException as exc:
            error = exc
            raise
        finally:
            try:
                _finish(session, error)
            finally:
                session.close()

    # scope="function": commit before the response is sent, so a client that reads
    # right after a write always sees it.
    return Depends(dependency, scope="function")


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
    """A dependency for a route that needs no sign-in (login, refresh, reset, health)."""

    def dependency(request: Request) -> Iterator[PublicContext]:
        db, settings, limiter = _open(request)
        session = db.session(write=request.method not in SAFE_METHODS)
        error: BaseException | None = None
        try:
            bind_tenant(session, ALL_TENANTS)
            ip = client_ip(request)
            _limit(request, limiter, rate_name, f"ip:{ip}")
            yield PublicContext(
                session=session,
                settings=settings,
                client_ip=ip,
                user_agent=request.headers.get("user-agent"),
            )
        except BaseException as exc:
            error = exc
            raise
        finally:
            try:
                _finish(session, error)
            finally:
                session.close()

    return Depends(dependency, scope="function")


def throttle_login(request: Request, *, email: str) -> None:
    """Per-account and per-address sign-in throttles on top of the endpoint class."""
    limiter: RateLimiter = request.app.state.rate_limiter
    _limit(request, limiter, "login_account", f"acct:{email.strip().lower()}")
    _limit(request, limiter, "login_address", f"ip:{client_ip(request)}")


Ctx = RequestContext
