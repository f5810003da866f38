"""Notifications a user reads in the app, and how each user wants each event delivered."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import Base, IdMixin, ReplicatedMixin, TimestampMixin, live_unique


class Notification(IdMixin, TimestampMixin, ReplicatedMixin, Base):
    """One in-app message to one user. Unread while ``read_at`` is empty."""

    __tablename__ = "notifications"
    __extra_table_args__ = (
        # "my unread, newest first" and "my notifications, newest first"
        Index("ix_notifications_user_read_created", "user_id", "read_at", "created_at"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    #: one of server.notifications.events.ALL_EVENTS
    event: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    ticket_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), index=True
    )
    #: where the app opens it: a path such as /tickets/<id>, or a full URL
    link: Mapped[str | None] = mapped_column(String(500))
    #: who caused it; None for the system's own jobs
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    read_at: Mapped[datetime | None] = mapped_column(default=None)


class NotificationPreference(IdMixin, TimestampMixin, ReplicatedMixin, Base):
    """A user's choice for one event. No row: the defaults of ``events``."""

    __tablename__ = "notification_preferences"
    __extra_table_args__ = (
        live_unique("uq_notification_preferences_user_event", "user_id", "event"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(40))
    in_app: Mapped[bool] = mapped_column(Boolean, default=True)
    email: Mapped[bool] = mapped_column(Boolean, default=False)
