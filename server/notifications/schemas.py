from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator

from server.core.schemas import ApiInput, ApiModel

EventName = Literal[
    "ticket_assigned",
    "ticket_status_changed",
    "ticket_commented",
    "mentioned",
    "sla_due_soon",
    "sla_breached",
    "approval_requested",
    "waiting_reminder",
    "low_stock",
    "purchase_order_approval",
]


class NotificationOut(ApiModel):
    id: uuid.UUID
    event: str
    event_label: str
    title: str
    body: str
    ticket_id: uuid.UUID | None
    #: the ticket's human number (INC-000042), when the notification is about one
    ticket_number: str | None
    link: str | None
    actor_id: uuid.UUID | None
    is_read: bool
    read_at: datetime | None
    created_at: datetime


class UnreadCountOut(ApiModel):
    unread: int


class ReadAllOut(ApiModel):
    #: how many notifications this request marked read
    updated: int
    unread: int


class PreferenceOut(ApiModel):
    event: str
    label: str
    in_app: bool
    email: bool
    #: True while the user has not chosen for this event (the values are the defaults)
    is_default: bool


class PreferenceIn(ApiInput):
    event: EventName
    in_app: bool
    email: bool


class PreferencesUpdate(ApiInput):
    preferences: list[PreferenceIn] = Field(min_length=1, max_length=50)

    @field_validator("preferences")
    @classmethod
    def _one_per_event(cls, value: list[PreferenceIn]) -> list[PreferenceIn]:
        seen: set[str] = set()
        for item in value:
            if item.event in seen:
                raise ValueError(f"event '{item.event}' is listed twice")
            seen.add(item.event)
        return value
