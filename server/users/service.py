"""Managing the people of an organization."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from common.enums import AuditCategory, AuditSeverity, Role
from server.audit import service as audit
from server.auth import service as auth_service
from server.core.config import Settings
from server.core.db import flush_unique
from server.core.errors import (
    BusinessRuleViolation,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from server.core.listing import text_filter
from server.core.tenancy import Caller, soft_delete
from server.organizations.models import Department
from server.sites.models import Site
from server.users.models import User
from server.users.schemas import UserCreate, UserUpdate

SORT_FIELDS = {
    "email": User.email,
    "firstName": User.first_name,
    "lastName": User.last_name,
    "role": User.role,
    "createdAt": User.created_at,
    "lastLoginAt": User.last_login_at,
}


def get_user(session: Session, user_id: uuid.UUID) -> User:
    user = session.get(User, user_id)
    if user is None or user.deleted_at is not None:
        raise NotFound("User")
    return user


def query_users(
    *,
    q: str | None = None,
    role: Role | None = None,
    is_active: bool | None = None,
    department_id: uuid.UUID | None = None,
) -> Select[Any]:
    stmt = select(User)
    if q:
        stmt = stmt.where(text_filter(q, User.email, User.first_name, User.last_name))
    if role:
        stmt = stmt.where(User.role == role)
    if is_active is not None:
        stmt = stmt.where(User.is_active == is_active)
    if department_id:
        stmt = stmt.where(User.department_id == department_id)
    return stmt


def _check_references(session: Session, department_id: Any, site_id: Any) -> None:
    if department_id is not None and session.get(Department, department_id) is None:
        raise ValidationFailed("departmentId does not exist", details={"field": "departmentId"})
    if site_id is not None and session.get(Site, site_id) is None:
        raise ValidationFailed("siteId does not exist", details={"field": "siteId"})


def create_user(
    session: Session,
    *,
    settings: Settings,
    caller: Caller,
    organization_id: uuid.UUID,
    data: UserCreate,
) -> User:
    if data.role is Role.SUPER_ADMIN:
        raise PermissionDenied("Platform administrators are created with the server CLI")
    _check_references(session, data.department_id, data.site_id)
    user = User(
        organization_id=organization_id,
        email=str(data.email).lower(),
        first_name=data.first_name,
        last_name=data.last_name,
        role=data.role,
        department_id=data.department_id,
        site_id=data.site_id,
        job_title=data.job_title,
        phone=data.phone,
    )
    if data.password is not None:
        auth_service.set_password(user, data.password)
    session.add(user)
    flush_unique(session, message="A user with this email already exists", field="email")
    if data.password is None:
        auth_service.send_invitation(session, settings=settings, user=user, inviter=caller)
    audit.record(
        session,
        actor=caller,
        organization_id=organization_id,
        action="user.created",
        category=AuditCategory.USER_MANAGEMENT,
        entity_type="user",
        entity_id=user.id,
        message=f"{caller.email} created {user.email} as {user.role.value}"
        + ("" if data.password else " and sent an invitation"),
        details={"role": user.role.value},
    )
    return user


def _active_admins(session: Session, organization_id: uuid.UUID | None) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(User)
            .where(
                User.organization_id == organization_id,
                User.role == Role.ORG_ADMIN,
                User.is_active.is_(True),
            )
        )
        or 0
    )


def _guard_last_admin(session: Session, user: User, action: str) -> None:
    if (
        user.role is Role.ORG_ADMIN
        and user.is_active
        and _active_admins(session, user.organization_id) <= 1
    ):
        raise BusinessRuleViolation(
            f"Cannot {action} the last active administrator of the organization"
        )


def update_user(session: Session, *, caller: Caller, user: User, data: UserUpdate) -> User:
    changes = data.model_dump(exclude_unset=True)
    if "role" in changes and changes["role"] is None:
        raise ValidationFailed("role cannot be null", details={"field": "role"})
    if "email" in changes and changes["email"] is None:
        raise ValidationFailed("email cannot be null", details={"field": "email"})
    new_role = changes.get("role")
    if new_role is not None and new_role != user.role:
        if new_role is Role.SUPER_ADMIN:
            raise PermissionDenied("Platform administrators are created with the server CLI")
        if user.id == caller.user_id:
            raise BusinessRuleViolation("You cannot change your own role")
        _guard_last_admin(session, user, "demote")
    _check_references(session, changes.get("department_id"), changes.get("site_id"))
    before = {k: _plain(getattr(user, k)) for k in changes}
    for key, value in changes.items():
        if key == "email":
            value = str(value).lower()
        setattr(user, key, value)
    flush_unique(session, message="A user with this email already exists", field="email")
    after = {k: _plain(getattr(user, k)) for k in changes}
    diff = audit.field_changes(before, after)
    if diff:
        role_changed = "role" in diff
        audit.record(
            session,
            actor=caller,
            organization_id=user.organization_id,
            action="user.role_changed" if role_changed else "user.updated",
            category=AuditCategory.USER_MANAGEMENT,
            severity=AuditSeverity.WARNING if role_changed else AuditSeverity.INFO,
            entity_type="user",
            entity_id=user.id,
            message=f"{caller.email} changed {', '.join(sorted(diff))} of {user.email}",
            details={"changes": diff},
        )
    return user


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Role):
        return value.value
    return value


def set_active(session: Session, *, caller: Caller, user: User, active: bool) -> User:
    if active and user.locked_until is not None:
        # Activating is also how an admin lifts a sign-in lockout.
        user.locked_until = None
        user.failed_login_count = 0
        audit.record(
            session,
            actor=caller,
            organization_id=user.organization_id,
            action="user.unlocked",
            category=AuditCategory.SECURITY,
            severity=AuditSeverity.WARNING,
            entity_type="user",
            entity_id=user.id,
            message=f"{caller.email} lifted the sign-in lockout of {user.email}",
        )
    if user.is_active == active:
        session.flush()
        return user
    if not active:
        if user.id == caller.user_id:
            raise BusinessRuleViolation("You cannot deactivate yourself")
        _guard_last_admin(session, user, "deactivate")
        auth_service.revoke_all_sessions(session, user.id, "deactivated")
    user.is_active = active
    if active:
        user.locked_until = None
        user.failed_login_count = 0
    session.flush()
    audit.record(
        session,
        actor=caller,
        organization_id=user.organization_id,
        action="user.activated" if active else "user.deactivated",
        category=AuditCategory.USER_MANAGEMENT,
        severity=AuditSeverity.WARNING,
        entity_type="user",
        entity_id=user.id,
        message=f"{caller.email} {'activated' if active else 'deactivated'} {user.email}",
    )
    return user


def delete_user(session: Session, *, caller: Caller, user: User) -> None:
    if user.id == caller.user_id:
        raise BusinessRuleViolation("You cannot delete yourself")
    _guard_last_admin(session, user, "delete")
    auth_service.revoke_all_sessions(session, user.id, "deleted")
    soft_delete(user)
    user.is_active = False
    session.flush()
    audit.record(
        session,
        actor=caller,
        organization_id=user.organization_id,
        action="user.deleted",
        category=AuditCategory.USER_MANAGEMENT,
        severity=AuditSeverity.WARNING,
        entity_type="user",
        entity_id=user.id,
        message=f"{caller.email} deleted {user.email}",
    )
