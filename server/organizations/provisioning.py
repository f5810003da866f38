"""What a new organization starts with, so a district works on its first day.

Each domain offers its own editable defaults; this module only calls them:
- SLA: a school-day business calendar in the district's time zone and a response
  and resolution rule per priority (``server.sla.defaults``);
- routing: a "Help desk" team that tickets no rule matched fall to
  (``server.routing.defaults``);
- assets: the default asset types and status labels (``server.assets.service``).
The default ticket categories are part of the ticket settings' defaults
(``server.tickets.schemas.TicketSettings``) and need no rows.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from server.assets import service as assets
from server.organizations.models import Organization
from server.routing import defaults as routing_defaults
from server.sla import defaults as sla_defaults


def install_defaults(session: Session, organization: Organization) -> None:
    """Give a new organization its defaults; each step leaves existing data alone."""
    sla_defaults.install_defaults(session, organization)
    routing_defaults.install_defaults(session, organization)
    assets.ensure_defaults(session, organization.id)
