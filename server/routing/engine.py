"""Evaluating routing rules against a ticket: pure functions, no database.

``evaluate(rule_sets, facts)`` walks the active rule sets in position order. In a
``first_match`` set the first rule whose conditions all hold applies and the rest of
the set is skipped; in an ``apply_all`` set every matching rule applies, in order
(a later assignment overrides an earlier one, tags and watchers add up). Sets are
independent: every set gets its turn. A rule sees the priority an earlier rule set,
so "critical tickets get watchers" also catches a ticket a rule made critical.

Every decision explains itself in sentences a district admin can read: which rules
matched and why ("site is Lincoln Middle School", "title contains 'projector'"),
and why each other rule did not.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

FIRST_MATCH = "first_match"
APPLY_ALL = "apply_all"
MODES = (FIRST_MATCH, APPLY_ALL)

ROLE_LABELS = {
    "org_admin": "an organization admin",
    "agent": "a help-desk agent",
    "technician": "a technician",
    "requester": "a requester",
    "super_admin": "a platform administrator",
}


# ------------------------------------------------------------------------ the rules


@dataclass(frozen=True, slots=True)
class Conditions:
    """What a ticket must look like; every non-empty field must hold (an empty one is
    no condition). Within one field, any listed value will do."""

    ticket_types: tuple[str, ...] = ()
    priorities: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subcategories: tuple[str, ...] = ()
    department_ids: tuple[uuid.UUID, ...] = ()
    site_ids: tuple[uuid.UUID, ...] = ()
    building_ids: tuple[uuid.UUID, ...] = ()
    room_ids: tuple[uuid.UUID, ...] = ()
    requester_roles: tuple[str, ...] = ()
    #: whole words or phrases, case-insensitive, looked for in title and description
    keywords: tuple[str, ...] = ()
    #: "any": one keyword is enough; "all": every keyword must appear
    keywords_mode: str = "any"

    @property
    def empty(self) -> bool:
        return not any(
            (
                self.ticket_types,
                self.priorities,
                self.categories,
                self.subcategories,
                self.department_ids,
                self.site_ids,
                self.building_ids,
                self.room_ids,
                self.requester_roles,
                self.keywords,
            )
        )


@dataclass(frozen=True, slots=True)
class Actions:
    assign_user_id: uuid.UUID | None = None
    assign_team_id: uuid.UUID | None = None
    set_priority: str | None = None
    add_tags: tuple[str, ...] = ()
    add_watcher_ids: tuple[uuid.UUID, ...] = ()

    @property
    def empty(self) -> bool:
        return not (
            self.assign_user_id
            or self.assign_team_id
            or self.set_priority
            or self.add_tags
            or self.add_watcher_ids
        )


@dataclass(frozen=True, slots=True)
class Rule:
    id: uuid.UUID
    name: str
    conditions: Conditions = Conditions()
    actions: Actions = Actions()
    position: int = 0
    active: bool = True


@dataclass(frozen=True, slots=True)
class RuleSet:
    id: uuid.UUID
    name: str
    mode: str = FIRST_MATCH
    rules: tuple[Rule, ...] = ()
    position: int = 0
    active: bool = True


# ----------------------------------------------------------------------- the ticket


@dataclass(slots=True)
class TicketFacts:
    """What routing looks at, and (for replays) what the ticket has now."""

    ticket_type: str
    priority: str
    category: str | None = None
    subcategory: str | None = None
    department_id: uuid.UUID | None = None
    site_id: uuid.UUID | None = None
    building_id: uuid.UUID | None = None
    room_id: uuid.UUID | None = None
    requester_role: str | None = None
    title: str = ""
    description: str = ""
    assignee_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None
    tags: Sequence[str] = ()
    watcher_ids: Sequence[uuid.UUID] = ()


# ---------------------------------------------------------------------- the outcome


@dataclass(slots=True)
class RuleMatch:
    rule_id: uuid.UUID
    rule_name: str
    rule_set: str
    #: why it matched, one sentence per condition
    reasons: list[str]
    #: what it did ("assigns to team Help desk"), one sentence per action
    effects: list[str] = field(default_factory=list)

    @property
    def explanation(self) -> str:
        because = _and(self.reasons)
        does = _and(self.effects) if self.effects else "changes nothing"
        return f"Rule '{self.rule_name}' (set '{self.rule_set}') matched because {because}: {does}."


@dataclass(slots=True)
class RuleMiss:
    rule_id: uuid.UUID
    rule_name: str
    rule_set: str
    #: why it did not match (or was not evaluated)
    reasons: list[str]


@dataclass(slots=True)
class RoutingDecision:
    """The values the ticket ends up with (its current ones where no rule spoke)."""

    assignee_id: uuid.UUID | None
    team_id: uuid.UUID | None
    priority: str
    tags: list[str]
    watcher_ids: list[uuid.UUID]
    matches: list[RuleMatch] = field(default_factory=list)
    #: the rules that did not match, each with the reasons
    considered: list[RuleMiss] = field(default_factory=list)

    @property
    def matched(self) -> bool:
        return bool(self.matches)

    def changes(self, facts: TicketFacts) -> dict[str, dict[str, Any]]:
        """``{"teamId": {"from": ..., "to": ...}}`` for each field the rules would change
        (API names, JSON values)."""
        pairs: list[tuple[str, Any, Any]] = [
            ("assigneeId", _text(facts.assignee_id), _text(self.assignee_id)),
            ("teamId", _text(facts.team_id), _text(self.team_id)),
            ("priority", facts.priority, self.priority),
            ("tags", list(facts.tags), list(self.tags)),
            (
                "watcherIds",
                [str(w) for w in facts.watcher_ids],
                [str(w) for w in self.watcher_ids],
            ),
        ]
        return {name: {"from": old, "to": new} for name, old, new in pairs if old != new}

    @property
    def explanation(self) -> str:
        if not self.matches:
            return "No routing rule matched."
        return " ".join(match.explanation for match in self.matches)


def _text(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


# ------------------------------------------------------------------------ evaluating


def evaluate(
    rule_sets: Iterable[RuleSet],
    facts: TicketFacts,
    *,
    names: Mapping[uuid.UUID, str] | None = None,
) -> RoutingDecision:
    """Run the rules over ``facts``. ``names`` labels ids in the explanations (sites,
    rooms, teams, users...); an id without a name is shown as is."""
    label = _Labeler(names or {})
    decision = RoutingDecision(
        assignee_id=facts.assignee_id,
        team_id=facts.team_id,
        priority=facts.priority,
        tags=list(facts.tags),
        watcher_ids=list(facts.watcher_ids),
    )
    for rule_set in sorted(rule_sets, key=lambda s: (s.position, s.id)):
        rules = sorted(rule_set.rules, key=lambda r: (r.position, r.id))
        if not rule_set.active:
            for rule in rules:
                decision.considered.append(
                    _miss(rule, rule_set, [f"its rule set '{rule_set.name}' is switched off"])
                )
            continue
        stopped_by: str | None = None
        for rule in rules:
            if not rule.active:
                decision.considered.append(_miss(rule, rule_set, ["the rule is switched off"]))
                continue
            if stopped_by is not None:
                decision.considered.append(
                    _miss(
                        rule,
                        rule_set,
                        [f"not evaluated: rule '{stopped_by}' matched first in this set"],
                    )
                )
                continue
            holds, reasons = check(rule.conditions, facts, priority=decision.priority, label=label)
            if not holds:
                decision.considered.append(_miss(rule, rule_set, reasons))
                continue
            effects = _apply(rule.actions, decision, label)
            decision.matches.append(
                RuleMatch(rule.id, rule.name, rule_set.name, reasons, effects=effects)
            )
            if rule_set.mode == FIRST_MATCH:
                stopped_by = rule.name
    return decision


def _miss(rule: Rule, rule_set: RuleSet, reasons: list[str]) -> RuleMiss:
    return RuleMiss(rule.id, rule.name, rule_set.name, reasons)


def _apply(actions: Actions, decision: RoutingDecision, label: _Labeler) -> list[str]:
    effects: list[str] = []
    if actions.assign_user_id is not None:
        decision.assignee_id = actions.assign_user_id
        effects.append(f"assigns to {label(actions.assign_user_id)}")
    if actions.assign_team_id is not None:
        decision.team_id = actions.assign_team_id
        effects.append(f"assigns to team {label(actions.assign_team_id)}")
    if actions.set_priority is not None:
        decision.priority = actions.set_priority
        effects.append(f"sets priority to {actions.set_priority}")
    if actions.add_tags:
        have = {t.casefold() for t in decision.tags}
        for tag in actions.add_tags:
            if tag.casefold() not in have:
                decision.tags.append(tag)
                have.add(tag.casefold())
        noun = "tag" if len(actions.add_tags) == 1 else "tags"
        effects.append(f"adds {noun} {_or([repr(t) for t in actions.add_tags], 'and')}")
    if actions.add_watcher_ids:
        for watcher in actions.add_watcher_ids:
            if watcher not in decision.watcher_ids:
                decision.watcher_ids.append(watcher)
        noun = "watcher" if len(actions.add_watcher_ids) == 1 else "watchers"
        people = [label(w) for w in actions.add_watcher_ids]
        effects.append(f"adds {noun} {_or(people, 'and')}")
    return effects


# ------------------------------------------------------------------------ conditions


def check(
    conditions: Conditions,
    facts: TicketFacts,
    *,
    priority: str | None = None,
    label: _Labeler | None = None,
) -> tuple[bool, list[str]]:
    """Whether ``facts`` meet ``conditions``, with the reasons: every condition that
    holds when it matches, every one that fails when it does not."""
    label = label or _Labeler({})
    if conditions.empty:
        return True, ["the rule has no conditions, so it matches every ticket"]
    held: list[str] = []
    failed: list[str] = []

    def word(value: str) -> str:
        return value.replace("_", " ")

    def among(
        what: str,
        wanted: Sequence[Any],
        actual: Any,
        show: Any = str,
        same: Any = None,
    ) -> None:
        if not wanted:
            return
        if actual is None or actual == "":
            failed.append(f"no {what} given (the rule needs {_or([show(w) for w in wanted])})")
            return
        equal = same or (lambda a, b: a == b)
        if any(equal(actual, w) for w in wanted):
            held.append(f"{what} is {show(actual)}")
        else:
            failed.append(f"{what} is {show(actual)}, not {_or([show(w) for w in wanted])}")

    among("ticket type", conditions.ticket_types, facts.ticket_type, word)
    among("priority", conditions.priorities, priority or facts.priority)
    among("category", conditions.categories, facts.category, same=_same_text)
    among("subcategory", conditions.subcategories, facts.subcategory, same=_same_text)
    among("department", conditions.department_ids, facts.department_id, label)
    among("site", conditions.site_ids, facts.site_id, label)
    among("building", conditions.building_ids, facts.building_id, label)
    among("room", conditions.room_ids, facts.room_id, label)
    if conditions.requester_roles:
        role = facts.requester_role
        wanted = _or([ROLE_LABELS.get(r, r) for r in conditions.requester_roles])
        if role is None:
            failed.append(f"the requester's role is not known (the rule needs {wanted})")
        elif role in conditions.requester_roles:
            held.append(f"the requester is {ROLE_LABELS.get(role, role)}")
        else:
            failed.append(f"the requester is {ROLE_LABELS.get(role, role)}, not {wanted}")
    if conditions.keywords:
        _check_keywords(conditions, facts, held, failed)
    return (not failed, failed or held)


def _check_keywords(
    conditions: Conditions, facts: TicketFacts, held: list[str], failed: list[str]
) -> None:
    found: list[str] = []
    missing: list[str] = []
    for keyword in conditions.keywords:
        where = find_keyword(keyword, facts.title, facts.description)
        if where is None:
            missing.append(keyword)
        else:
            found.append(f"{where} contains {keyword.strip()!r}")
    if conditions.keywords_mode == "all":
        if missing:
            words = _or([repr(k.strip()) for k in missing])
            failed.append(f"neither title nor description contains {words}")
        else:
            held.extend(found)
    elif found:
        held.extend(found)
    else:
        words = _or([repr(k.strip()) for k in conditions.keywords])
        failed.append(f"neither title nor description contains {words}")


def find_keyword(keyword: str, title: str, description: str) -> str | None:
    """ "title" or "description" (the first that has ``keyword`` as a whole word or
    phrase, case-insensitive), or None."""
    pattern = _keyword_pattern(keyword)
    if pattern is None:
        return None
    if pattern.search(title or ""):
        return "title"
    if pattern.search(description or ""):
        return "description"
    return None


@lru_cache(maxsize=2048)
def _keyword_pattern(keyword: str) -> re.Pattern[str] | None:
    words = keyword.split()
    if not words:
        return None
    # Words of a phrase may be separated by any whitespace; a keyword is whole when no
    # letter or digit touches either end ("wi-fi" and "c++" work, "projectors" is not
    # "projector").
    body = r"\s+".join(re.escape(w) for w in words)
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


def _same_text(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


# ------------------------------------------------------------------------- sentences


class _Labeler:
    def __init__(self, names: Mapping[uuid.UUID, str]) -> None:
        self.names = names

    def __call__(self, value: Any) -> str:
        if isinstance(value, uuid.UUID):
            return self.names.get(value) or str(value)
        return str(value)


def _or(items: Sequence[str], word: str = "or") -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {word} {items[-1]}"


def _and(items: Sequence[str]) -> str:
    return _or(items, "and")
