"""Every table of the server, imported so Alembic and the tests see the whole schema."""

from server.audit.models import AuditEvent
from server.auth.models import ApiToken, AuthSession, PasswordResetToken, RefreshToken
from server.core.db import Base, ChangeCounter, JobLease
from server.mail.models import OutboxEmail
from server.organizations.models import Department, Organization, OrganizationDomain
from server.sites.models import Building, Room, Site
from server.sla.models import SlaRule
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
    "AuditEvent",
    "AuthSession",
    "Base",
    "Building",
    "ChangeCounter",
    "Department",
    "JobLease",
    "Organization",
    "OrganizationDomain",
    "OutboxEmail",
    "PasswordResetToken",
    "RefreshToken",
    "Room",
    "Site",
    "SlaRule",
    "Team",
    "TeamMember",
    "Ticket",
    "TicketAttachment",
    "TicketComment",
    "TicketEvent",
    "TicketLink",
    "TicketSequence",
    "Upload",
    "User",
]
