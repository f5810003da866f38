"""Enumerations shared by every layer. Values are the wire values of the API."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    SUPER_ADMIN = "super_admin"  # platform operator, belongs to no organization
    ORG_ADMIN = "org_admin"
    AGENT = "agent"  # help-desk staff
    TECHNICIAN = "technician"
    REQUESTER = "requester"

    @property
    def is_staff(self) -> bool:
        return self in {Role.SUPER_ADMIN, Role.ORG_ADMIN, Role.AGENT, Role.TECHNICIAN}

    @property
    def is_admin(self) -> bool:
        return self in {Role.SUPER_ADMIN, Role.ORG_ADMIN}


#: Roles an organization admin may hand out (super_admin is platform-only).
ORGANIZATION_ROLES = (Role.ORG_ADMIN, Role.AGENT, Role.TECHNICIAN, Role.REQUESTER)


class OrganizationStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    ARCHIVED = "archived"


class AuditSeverity(StrEnum):
    INFO = "Info"
    WARNING = "Warning"
    CRITICAL = "Critical"


class AuditCategory(StrEnum):
    AUTHENTICATION = "authentication"
    SECURITY = "security"
    USER_MANAGEMENT = "user_management"
    ORGANIZATION = "organization"
    CONFIGURATION = "configuration"
    DATA = "data"


class EmailStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
