from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import Base, IdMixin, ReplicatedMixin, TimestampMixin, live_unique


class Site(IdMixin, TimestampMixin, ReplicatedMixin, Base):
    """A campus: a school, the district office, a warehouse."""

    __tablename__ = "sites"
    __extra_table_args__ = (live_unique("uq_sites_org_name", "organization_id", "name"),)

    name: Mapped[str] = mapped_column(String(160))
    code: Mapped[str | None] = mapped_column(String(32))
    site_type: Mapped[str] = mapped_column(String(40), default="school")
    address: Mapped[str | None] = mapped_column(Text)
    #: None means the organization's time zone
    timezone: Mapped[str | None] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(40))


class Building(IdMixin, TimestampMixin, ReplicatedMixin, Base):
    __tablename__ = "buildings"
    __extra_table_args__ = (live_unique("uq_buildings_site_name", "site_id", "name"),)

    site_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sites.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(160))
    code: Mapped[str | None] = mapped_column(String(32))
    floors: Mapped[int | None] = mapped_column(Integer)


class Room(IdMixin, TimestampMixin, ReplicatedMixin, Base):
    __tablename__ = "rooms"
    __extra_table_args__ = (live_unique("uq_rooms_building_number", "building_id", "number"),)

    building_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("buildings.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[str] = mapped_column(String(40))
    name: Mapped[str | None] = mapped_column(String(160))
    floor: Mapped[str | None] = mapped_column(String(20))
    room_type: Mapped[str] = mapped_column(String(40), default="classroom")
    capacity: Mapped[int | None] = mapped_column(Integer)
