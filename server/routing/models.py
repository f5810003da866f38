"""Routing rules: who a new ticket goes to, what priority, tags and watchers it gets.

Rules live in ordered rule sets. A set either stops at its first matching rule
(``first_match``) or applies every matching rule in order (``apply_all``). The
conditions and actions of a rule are JSON in the API's shape (camelCase keys):
``server.routing.schemas`` validates them and ``server.routing.engine`` evaluates them.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import Base, IdMixin, ReplicatedMixin, TimestampMixin, live_unique


class RoutingRuleSet(IdMixin, TimestampMixin, ReplicatedMixin, Base):
    """An ordered group of rules, evaluated in ``position`` order among the sets."""

    __tablename__ = "routing_rule_sets"
    __extra_table_args__ = (
        live_unique("uq_routing_rule_sets_org_name", "organization_id", "name"),
    )

    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str | None] = mapped_column(Text)
    #: "first_match" (stop at the first matching rule) or "apply_all"
    mode: Mapped[str] = mapped_column(String(16), default="first_match")
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(default=True)


class RoutingRule(IdMixin, TimestampMixin, ReplicatedMixin, Base):
    __tablename__ = "routing_rules"
    __extra_table_args__ = (
        live_unique("uq_routing_rules_set_name", "rule_set_id", "name"),
        Index("ix_routing_rules_set_position", "rule_set_id", "position"),
    )

    rule_set_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("routing_rule_sets.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str | None] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(default=True)
    #: all must hold; see schemas.RuleConditions (camelCase keys, empty lists left out)
    conditions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: see schemas.RuleActions
    actions: Mapped[dict[str, Any]] = mapped_column(default=dict)
