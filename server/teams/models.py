from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import Base, IdMixin, ReplicatedMixin, TimestampMixin, live_unique


class Team(IdMixin, TimestampMixin, ReplicatedMixin, Base):
    """A group that tickets can be assigned to: "North campus techs", "Network"."""

    __tablename__ = "teams"
    __extra_table_args__ = (live_unique("uq_teams_org_name", "organization_id", "name"),)

    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str | None] = mapped_column(Text)
    department_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("departments.id", ondelete="SET NULL")
    )
    lead_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class TeamMember(IdMixin, TimestampMixin, ReplicatedMixin, Base):
    __tablename__ = "team_members"
    __extra_table_args__ = (live_unique("uq_team_members_team_user", "team_id", "user_id"),)

    team_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
