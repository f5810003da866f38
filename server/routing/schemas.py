from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from common.tickets import Priority, TicketType
from server.core.schemas import ApiInput, ApiModel

Mode = Literal["first_match", "apply_all"]
KeywordsMode = Literal["any", "all"]
RequesterRole = Literal["org_admin", "agent", "technician", "requester"]

Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]
Keyword = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Position = Annotated[int, Field(ge=0, le=100_000)]

MAX_IDS = 200


# --------------------------------------------------------------- conditions, actions


class _ConditionFields(ApiModel):
    ticket_types: list[TicketType] | None = Field(default=None, max_length=10)
    priorities: list[Priority] | None = Field(default=None, max_length=10)
    categories: list[Label] | None = Field(default=None, max_length=50)
    subcategories: list[Label] | None = Field(default=None, max_length=50)
    department_ids: list[uuid.UUID] | None = Field(default=None, max_length=MAX_IDS)
    site_ids: list[uuid.UUID] | None = Field(default=None, max_length=MAX_IDS)
    building_ids: list[uuid.UUID] | None = Field(default=None, max_length=MAX_IDS)
    room_ids: list[uuid.UUID] | None = Field(default=None, max_length=MAX_IDS)
    requester_roles: list[RequesterRole] | None = Field(default=None, max_length=10)
    keywords: list[Keyword] | None = Field(
        default=None,
        max_length=50,
        description="Whole words or phrases, case-insensitive, looked for in the title "
        "and the description",
    )
    keywords_mode: KeywordsMode = Field(
        default="any", description="any: one keyword is enough; all: every keyword must appear"
    )


class _ActionFields(ApiModel):
    assign_user_id: uuid.UUID | None = Field(
        default=None, description="A technician, agent or admin of the organization"
    )
    assign_team_id: uuid.UUID | None = None
    set_priority: Priority | None = None
    add_tags: list[Tag] | None = Field(default=None, max_length=20)
    add_watcher_ids: list[uuid.UUID] | None = Field(default=None, max_length=20)


class RuleConditions(ApiInput, _ConditionFields):
    """Every condition given must hold; a missing or empty one is no condition."""


class RuleActions(ApiInput, _ActionFields):
    """At least one action."""


class RuleConditionsOut(_ConditionFields):
    pass


class RuleActionsOut(_ActionFields):
    pass


# ------------------------------------------------------------------------ rule sets


class RuleSetOut(ApiModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    description: str | None
    mode: str
    position: int
    active: bool
    rule_count: int = 0
    created_at: datetime
    updated_at: datetime


class RuleSetSummary(ApiModel):
    id: uuid.UUID
    name: str
    mode: str
    position: int
    active: bool


class RuleSetCreate(ApiInput):
    name: str = Field(min_length=1, max_length=120)
    description: str | None = Field(default=None, max_length=1000)
    mode: Mode = Field(
        default="first_match",
        description="first_match: the first matching rule applies and the set stops; "
        "apply_all: every matching rule applies in order",
    )
    position: Position | None = Field(default=None, description="Leave out to add it last")
    active: bool = True


class RuleSetUpdate(ApiInput):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    description: str | None = Field(default=None, max_length=1000)
    mode: Mode | None = None
    position: Position | None = None
    active: bool | None = None


# ---------------------------------------------------------------------------- rules


class RuleOut(ApiModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    rule_set_id: uuid.UUID
    rule_set: RuleSetSummary
    name: str
    description: str | None
    position: int
    active: bool
    conditions: RuleConditionsOut
    actions: RuleActionsOut
    created_at: datetime
    updated_at: datetime


class RuleCreate(ApiInput):
    name: str = Field(min_length=1, max_length=120)
    description: str | None = Field(default=None, max_length=1000)
    rule_set_id: uuid.UUID | None = Field(default=None, description="The set to add it to")
    rule_set: str | None = Field(
        default=None,
        min_length=1,
        max_length=120,
        description="Or the set's name; a missing set is created (first_match). "
        "Without either, the rule goes to the set named 'Default'.",
    )
    position: Position | None = Field(default=None, description="Leave out to add it last")
    active: bool = True
    conditions: RuleConditions = Field(default_factory=RuleConditions)
    actions: RuleActions


class RuleUpdate(ApiInput):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    description: str | None = Field(default=None, max_length=1000)
    rule_set_id: uuid.UUID | None = Field(default=None, description="Move it to another set")
    position: Position | None = None
    active: bool | None = None
    conditions: RuleConditions | None = Field(default=None, description="Replaces them all")
    actions: RuleActions | None = Field(default=None, description="Replaces them all")


class RuleReorder(ApiInput):
    ids: list[uuid.UUID] = Field(
        min_length=1,
        max_length=500,
        description="Rules of one set in their new order; the set's other rules follow",
    )


# ------------------------------------------------------------------------- dry runs


class TicketSample(ApiInput):
    """A ticket as routing sees it; nothing is saved."""

    ticket_type: TicketType = TicketType.INCIDENT
    priority: Priority = Priority.MEDIUM
    category: str | None = Field(default=None, max_length=80)
    subcategory: str | None = Field(default=None, max_length=80)
    department_id: uuid.UUID | None = None
    site_id: uuid.UUID | None = None
    building_id: uuid.UUID | None = None
    room_id: uuid.UUID | None = Field(
        default=None, description="Its building and site are filled in when left out"
    )
    requester_role: RequesterRole | None = None
    requester_id: uuid.UUID | None = Field(
        default=None, description="Or the requester, whose role is looked up"
    )
    title: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=20_000)
    assignee_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None
    tags: list[Tag] | None = Field(default=None, max_length=50)
    watcher_ids: list[uuid.UUID] | None = Field(default=None, max_length=50)


class RoutingTest(ApiInput):
    ticket: TicketSample | None = Field(default=None, description="A sample ticket to route")
    replay_last: int | None = Field(
        default=None,
        ge=1,
        le=500,
        description="Or: what the rules would do to the organization's last N tickets",
    )


class RuleMatchOut(ApiModel):
    rule_id: uuid.UUID
    rule_name: str
    rule_set: str
    reasons: list[str]
    effects: list[str] = []


class RuleMissOut(ApiModel):
    rule_id: uuid.UUID
    rule_name: str
    rule_set: str
    reasons: list[str]


class FieldChange(ApiModel):
    field: str
    from_: Any = Field(alias="from")
    to: Any


class DecisionOut(ApiModel):
    assignee_id: uuid.UUID | None
    assignee_name: str | None = None
    team_id: uuid.UUID | None
    team_name: str | None = None
    priority: str
    tags: list[str]
    watcher_ids: list[uuid.UUID]
    matches: list[RuleMatchOut]
    not_matched: list[RuleMissOut]
    changes: list[FieldChange]
    explanation: str


class ReplayedTicketOut(ApiModel):
    ticket_id: uuid.UUID
    number: str
    title: str
    created_at: datetime
    matches: list[RuleMatchOut]
    changes: list[FieldChange] = Field(
        description="What the rules would set that differs from the ticket now"
    )
    explanation: str


class RoutingTestOut(ApiModel):
    mode: Literal["sample", "replay"]
    decision: DecisionOut | None = None
    tickets: list[ReplayedTicketOut] | None = None
    replayed: int = 0
    would_change: int = 0
