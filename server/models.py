"""Every table of the server, imported so Alembic and the tests see the whole schema."""

from server.assets.models import (
    Asset,
    AssetEvent,
    AssetStatusLabel,
    AssetType,
    Person,
    RoomAudit,
    RoomAuditScan,
    TicketAsset,
)
from server.audit.models import AuditEvent
from server.auth.models import (
    ApiToken,
    AuthSession,
    PasswordResetRequest,
    PasswordResetToken,
    RefreshToken,
)
from server.core.db import Base, ChangeCounter, JobLease
from server.inventory.models import Part, StockLevel, StockLocation, StockMovement
from server.inventory.vendor_models import (
    PurchaseOrder,
    PurchaseOrderLine,
    PurchaseOrderSequence,
    Vendor,
    VendorDepartment,
)
from server.mail.models import OutboxEmail
from server.notifications.models import Notification, NotificationPreference
from server.organizations.models import Department, Organization, OrganizationDomain
from server.routing.models import RoutingRule, RoutingRuleSet
from server.sites.models import Building, Room, Site
from server.sla.models import BusinessCalendar, Holiday, SlaRule
from server.sync.models import (
    SyncCheckpoint,
    SyncConflict,
    SyncDevice,
    SyncHorizon,
    SyncMutation,
    SyncScopeExit,
)
from server.teams.models import Team, TeamMember
from server.tickets.models import (
    Ticket,
    TicketAttachment,
    TicketComment,
    TicketEvent,
    TicketLink,
    TicketSequence,
)
from server.uploads.models import Upload
from server.users.models import User

__all__ = [
    "ApiToken",
    "Asset",
    "AssetEvent",
    "AssetStatusLabel",
    "AssetType",
    "AuditEvent",
    "AuthSession",
    "Base",
    "Building",
    "BusinessCalendar",
    "ChangeCounter",
    "Department",
    "Holiday",
    "JobLease",
    "Notification",
    "NotificationPreference",
    "Organization",
    "OrganizationDomain",
    "OutboxEmail",
    "Part",
    "PasswordResetRequest",
    "PasswordResetToken",
    "Person",
    "PurchaseOrder",
    "PurchaseOrderLine",
    "PurchaseOrderSequence",
    "RefreshToken",
    "Room",
    "RoomAudit",
    "RoomAuditScan",
    "RoutingRule",
    "RoutingRuleSet",
    "Site",
    "SlaRule",
    "StockLevel",
    "StockLocation",
    "StockMovement",
    "SyncCheckpoint",
    "SyncConflict",
    "SyncDevice",
    "SyncHorizon",
    "SyncMutation",
    "SyncScopeExit",
    "Team",
    "TeamMember",
    "Ticket",
    "TicketAsset",
    "TicketAttachment",
    "TicketComment",
    "TicketEvent",
    "TicketLink",
    "TicketSequence",
    "Upload",
    "User",
    "Vendor",
    "VendorDepartment",
]
