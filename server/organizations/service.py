"""Organizations (platform administrators) and departments (organization administrators)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, selectinload

from common.enums import AuditCategory, AuditSeverity, OrganizationStatus, Role
from common.errors import ErrorCode
from server.audit import service as audit
from server.auth import service as auth_service
from server.core.config import Settings
from server.core.db import flush_unique
from server.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from server.core.listing import text_filter
from server.core.tenancy import Caller, soft_delete
from server.organizations import provisioning
from server.organizations.models import Department, Organization, OrganizationDomain
from server.organizations.schemas import (
    DepartmentCreate,
    DepartmentUpdate,
    OrganizationCreate,
    OrganizationUpdate,
)
from server.users.models import User

ORG_SORT_FIELDS = {
    "name": Organization.name,
    "slug": Organization.slug,
    "status": Organization.status,
    "createdAt": Organization.created_at,
}
DEPARTMENT_SORT_FIELDS = {
    "name": Department.name,
    "code": Department.code,
    "createdAt": Department.created_at,
}


# --------------------------------------------------------------------------- organizations


def get_organization(session: Session, caller: Caller, org_id: uuid.UUID) -> Organization:
    """Super admins see every organization; anyone else only their own (else 404)."""
    if not caller.is_super_admin and org_id != caller.organization_id:
        raise NotFound("Organization")
    org = session.get(Organization, org_id)
    if org is None:
        raise NotFound("Organization")
    return org


def query_organizations(
    *, q: str | None = None, status: OrganizationStatus | None = None
) -> Select[Any]:
    stmt = select(Organization).options(selectinload(Organization.domain_rows))
    if q:
        stmt = stmt.where(text_filter(q, Organization.name, Organization.slug))
    if status:
        stmt = stmt.where(Organization.status == status)
    return stmt


def _set_domains(session: Session, org: Organization, domains: list[str]) -> None:
    wanted = sorted(set(domains))
    taken = session.scalars(
        select(OrganizationDomain.domain).where(
            OrganizationDomain.domain.in_(wanted), OrganizationDomain.organization_id != org.id
        )
    ).all()
    if taken:
        raise Conflict(
            f"Domain already belongs to another organization: {', '.join(taken)}",
            code=ErrorCode.DUPLICATE_RESOURCE,
            details={"field": "domains", "domains": list(taken)},
        )
    existing = {row.domain: row for row in org.domain_rows}
    org.domain_rows = [existing.get(d) or OrganizationDomain(domain=d) for d in wanted]


def create_organization(
    session: Session, *, settings: Settings, caller: Caller, data: OrganizationCreate
) -> Organization:
    if session.scalar(select(Organization.id).where(Organization.slug == data.slug)):
        raise Conflict(
            f"Slug '{data.slug}' is taken",
            code=ErrorCode.DUPLICATE_RESOURCE,
            details={"field": "slug"},
        )
    org = Organization(
        name=data.name,
        slug=data.slug,
        contact_email=str(data.contact_email) if data.contact_email else None,
        phone=data.phone,
        address=data.address,
        timezone=data.timezone,
        website=data.website,
        branding=data.branding.model_dump(exclude_none=True, by_alias=True)
        if data.branding
        else {},
        settings={"general": data.settings.model_dump(mode="json", by_alias=True)}
        if data.settings
        else {},
        domain_rows=[],
    )
    session.add(org)
    _set_domains(session, org, data.domains)
    flush_unique(session, message=f"Slug '{data.slug}' is taken", field="slug")
    audit.record(
        session,
        actor=caller,
        organization_id=org.id,
        action="organization.created",
        category=AuditCategory.ORGANIZATION,
        severity=AuditSeverity.WARNING,
        entity_type="organization",
        entity_id=org.id,
        message=f"{caller.email} created organization {org.name} ({org.slug})",
    )
    if data.admin is not None:
        admin = User(
            organization_id=org.id,
            email=str(data.admin.email).lower(),
            first_name=data.admin.first_name,
            last_name=data.admin.last_name,
            role=Role.ORG_ADMIN,
        )
        session.add(admin)
        flush_unique(session, message="A user with this email already exists", field="admin.email")
        auth_service.send_invitation(session, settings=settings, user=admin, inviter=caller)
        audit.record(
            session,
            actor=caller,
            organization_id=org.id,
            action="user.created",
            category=AuditCategory.USER_MANAGEMENT,
            entity_type="user",
            entity_id=admin.id,
            message=f"{caller.email} invited {admin.email} as org_admin",
            details={"role": Role.ORG_ADMIN.value},
        )
    provisioning.install_defaults(session, org)
    return org


def update_organization(
    session: Session, *, caller: Caller, org: Organization, data: OrganizationUpdate
) -> Organization:
    changes = data.model_dump(exclude_unset=True)
    if "status" in changes and not caller.is_super_admin:
        raise PermissionDenied("Only platform administrators change an organization's status")
    if "name" in changes and changes["name"] is None:
        raise ValidationFailed("name cannot be null", details={"field": "name"})
    if "timezone" in changes and changes["timezone"] is None:
        raise ValidationFailed("timezone cannot be null", details={"field": "timezone"})
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for key, value in changes.items():
        if key == "domains":
            before[key] = org.domains
            _set_domains(session, org, value or [])
            after[key] = org.domains
            continue
        if key == "branding":
            value = (
                data.branding.model_dump(exclude_none=True, by_alias=True) if data.branding else {}
            )
        elif key == "settings":
            general = data.settings.model_dump(mode="json", by_alias=True) if data.settings else {}
            value = {**(org.settings or {}), "general": general}
        elif key == "status":
            value = OrganizationStatus(value) if value is not None else org.status
        elif key == "contact_email" and value is not None:
            value = str(value)
        before[key], after[key] = _plain(getattr(org, key)), _plain(value)
        setattr(org, key, value)
    session.flush()
    diff = audit.field_changes(before, after)
    if diff:
        status_changed = "status" in diff
        audit.record(
            session,
            actor=caller,
            organization_id=org.id,
            action="organization.status_changed" if status_changed else "organization.updated",
            category=AuditCategory.ORGANIZATION,
            severity=AuditSeverity.CRITICAL if status_changed else AuditSeverity.INFO,
            entity_type="organization",
            entity_id=org.id,
            message=f"{caller.email} changed {', '.join(sorted(diff))} of {org.name}",
            details={"changes": diff},
        )
    return org


def _plain(value: Any) -> Any:
    if isinstance(value, OrganizationStatus):
        return value.value
    return value


def archive_organization(session: Session, *, caller: Caller, org: Organization) -> Organization:
    if org.status is OrganizationStatus.ARCHIVED:
        raise Conflict("Organization is already archived")
    return update_organization(
        session, caller=caller, org=org, data=OrganizationUpdate(status=OrganizationStatus.ARCHIVED)
    )


def match_domain(
    session: Session, *, email: str | None, domain: str | None
) -> tuple[Organization, str]:
    if email:
        domain = email.rsplit("@", 1)[-1].lower()
    if not domain:
        raise ValidationFailed("Give an email or a domain", details={"field": "email"})
    row = session.execute(
        select(Organization, OrganizationDomain.domain)
        .join(OrganizationDomain, OrganizationDomain.organization_id == Organization.id)
        .where(
            OrganizationDomain.domain == domain, Organization.status == OrganizationStatus.ACTIVE
        )
    ).first()
    if row is None:
        raise NotFound("Organization for this domain")
    return row[0], row[1]


# --------------------------------------------------------------------------- departments


def get_department(session: Session, department_id: uuid.UUID) -> Department:
    dept = session.get(Department, department_id)
    if dept is None or dept.deleted_at is not None:
        raise NotFound("Department")
    return dept


def query_departments(*, q: str | None = None) -> Select[Any]:
    stmt = select(Department)
    if q:
        stmt = stmt.where(text_filter(q, Department.name, Department.code))
    return stmt


def _check_department_name(session: Session, name: str, exclude: uuid.UUID | None = None) -> None:
    from sqlalchemy import func

    stmt = select(Department.id).where(func.lower(Department.name) == name.lower())
    if exclude is not None:
        stmt = stmt.where(Department.id != exclude)
    if session.scalar(stmt) is not None:
        raise Conflict(
            f"A department named '{name}' exists",
            code=ErrorCode.DUPLICATE_RESOURCE,
            details={"field": "name"},
        )


def _check_manager(session: Session, manager_id: uuid.UUID | None) -> None:
    if manager_id is not None:
        manager = session.get(User, manager_id)
        if manager is None or manager.deleted_at is not None:
            raise ValidationFailed("managerId does not exist", details={"field": "managerId"})


def create_department(
    session: Session, *, caller: Caller, organization_id: uuid.UUID, data: DepartmentCreate
) -> Department:
    _check_department_name(session, data.name)
    _check_manager(session, data.manager_id)
    dept = Department(
        organization_id=organization_id,
        name=data.name,
        code=data.code,
        description=data.description,
        email=str(data.email) if data.email else None,
        manager_id=data.manager_id,
    )
    session.add(dept)
    flush_unique(session, message=f"A department named '{data.name}' exists", field="name")
    audit.record(
        session,
        actor=caller,
        organization_id=organization_id,
        action="department.created",
        category=AuditCategory.ORGANIZATION,
        entity_type="department",
        entity_id=dept.id,
        message=f"{caller.email} created department {dept.name}",
    )
    return dept


def update_department(
    session: Session, *, caller: Caller, dept: Department, data: DepartmentUpdate
) -> Department:
    changes = data.model_dump(exclude_unset=True)
    if "name" in changes:
        if changes["name"] is None:
            raise ValidationFailed("name cannot be null", details={"field": "name"})
        _check_department_name(session, changes["name"], exclude=dept.id)
    if "manager_id" in changes:
        _check_manager(session, changes["manager_id"])
    for key, value in changes.items():
        setattr(dept, key, str(value) if key == "email" and value is not None else value)
    flush_unique(session, message="A department with this name exists", field="name")
    audit.record(
        session,
        actor=caller,
        organization_id=dept.organization_id,
        action="department.updated",
        category=AuditCategory.ORGANIZATION,
        entity_type="department",
        entity_id=dept.id,
        message=f"{caller.email} updated department {dept.name}",
        details={"fields": sorted(changes)},
    )
    return dept


def delete_department(session: Session, *, caller: Caller, dept: Department) -> None:
    soft_delete(dept)
    session.flush()
    audit.record(
        session,
        actor=caller,
        organization_id=dept.organization_id,
        action="department.deleted",
        category=AuditCategory.ORGANIZATION,
        severity=AuditSeverity.WARNING,
        entity_type="department",
        entity_id=dept.id,
        message=f"{caller.email} deleted department {dept.name}",
    )
