from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Query

from common.enums import Role
from server.auth.deps import RequestContext, access
from server.core.errors import ValidationFailed
from server.core.listing import ListQuery, apply_sort, paginate
from server.core.routing import api_router
from server.core.schemas import DataResponse, ListResponse
from server.routing import service
from server.routing.engine import RoutingDecision, RuleMatch, TicketFacts
from server.routing.models import RoutingRule, RoutingRuleSet
from server.routing.schemas import (
    DecisionOut,
    FieldChange,
    ReplayedTicketOut,
    RoutingTest,
    RoutingTestOut,
    RuleCreate,
    RuleMatchOut,
    RuleMissOut,
    RuleOut,
    RuleReorder,
    RuleSetCreate,
    RuleSetOut,
    RuleSetSummary,
    RuleSetUpdate,
    RuleUpdate,
)

TAGS = ["Routing rules"]
rules = api_router(prefix="/api/routing-rules", tags=TAGS)
rule_sets = api_router(prefix="/api/routing-rule-sets", tags=TAGS)

# Help-desk agents read the rules and try them out; organization admins change them.
Reader = Annotated[RequestContext, access("tickets:read", Role.ORG_ADMIN, Role.AGENT)]
Admin = Annotated[RequestContext, access("tickets:write", Role.ORG_ADMIN)]


def _rule_out(rule: RoutingRule, rule_set: RoutingRuleSet) -> RuleOut:
    return RuleOut(
        id=rule.id,
        organization_id=rule.organization_id,
        rule_set_id=rule.rule_set_id,
        rule_set=RuleSetSummary.model_validate(rule_set),
        name=rule.name,
        description=rule.description,
        position=rule.position,
        active=rule.active,
        conditions=rule.conditions,
        actions=rule.actions,
        created_at=rule.created_at,
        updated_at=rule.updated_at,
    )


def _set_out(rule_set: RoutingRuleSet, count: int) -> RuleSetOut:
    out = RuleSetOut.model_validate(rule_set)
    out.rule_count = count
    return out


# ----------------------------------------------------------------------------- rules


@rules.get("", summary="List tenant-scoped routing and assignment automation rules.")
def list_rules(
    ctx: Reader,
    params: ListQuery,
    rule_set_id: Annotated[uuid.UUID | None, Query(alias="ruleSetId")] = None,
    active: bool | None = None,
) -> ListResponse[RuleOut]:
    stmt = service.query_rules(q=params.q, rule_set_id=rule_set_id, active=active)
    stmt = apply_sort(
        stmt, params.sort, service.RULE_SORT_FIELDS, service.EVALUATION_ORDER, RoutingRule.id
    )
    rows, pagination = paginate(ctx.session, stmt, params, scalars=False)
    return ListResponse(data=[_rule_out(r, s) for r, s in rows], pagination=pagination)


@rules.post("", status_code=201, summary="Create a routing automation rule.")
def create_rule(ctx: Admin, body: RuleCreate) -> DataResponse[RuleOut]:
    ctx.require_organization()
    rule = service.create_rule(ctx.session, caller=ctx.caller, data=body)
    return DataResponse(data=_rule_out(rule, service.get_rule_set(ctx.session, rule.rule_set_id)))


@rules.post(
    "/test",
    summary="Dry-run active routing rules against a sample ticket.",
    description='Body: `{"ticket": {...}}` to route a sample ticket, or '
    '`{"replayLast": N}` (1-500) to see what the rules would change on the last N '
    "tickets. Nothing is saved.",
)
def test_rules(ctx: Reader, body: RoutingTest) -> DataResponse[RoutingTestOut]:
    ctx.require_organization()
    if (body.ticket is None) == (body.replay_last is None):
        raise ValidationFailed(
            "Give either ticket (a sample ticket) or replayLast (a number of tickets)",
            details={"field": "ticket"},
        )
    if body.ticket is not None:
        run = service.dry_run(ctx.session, body.ticket)
        return DataResponse(
            data=RoutingTestOut(
                mode="sample",
                decision=_decision_out(run.decision, run.facts, run.names),
                replayed=0,
                would_change=1 if run.decision.changes(run.facts) else 0,
            )
        )
    assert body.replay_last is not None
    replayed, _names = service.replay(ctx.session, body.replay_last)
    tickets = [
        ReplayedTicketOut(
            ticket_id=r.ticket_id,
            number=r.number,
            title=r.title,
            created_at=r.created_at,
            matches=[_match_out(m) for m in r.decision.matches],
            changes=_changes_out(r.changes),
            explanation=r.decision.explanation,
        )
        for r in replayed
    ]
    return DataResponse(
        data=RoutingTestOut(
            mode="replay",
            tickets=tickets,
            replayed=len(tickets),
            would_change=sum(1 for t in tickets if t.changes),
        )
    )


@rules.post("/reorder", summary="Reorder the rules of one rule set.")
def reorder_rules(ctx: Admin, body: RuleReorder) -> DataResponse[list[RuleOut]]:
    ctx.require_organization()
    ordered = service.reorder_rules(ctx.session, caller=ctx.caller, data=body)
    rule_set = service.get_rule_set(ctx.session, ordered[0].rule_set_id)
    return DataResponse(data=[_rule_out(r, rule_set) for r in ordered])


@rules.get("/{id}", summary="View one routing rule.")
def get_rule(ctx: Reader, id: uuid.UUID) -> DataResponse[RuleOut]:
    rule = service.get_rule(ctx.session, id)
    return DataResponse(data=_rule_out(rule, service.get_rule_set(ctx.session, rule.rule_set_id)))


@rules.patch("/{id}", summary="Update a routing automation rule.")
def update_rule(ctx: Admin, id: uuid.UUID, body: RuleUpdate) -> DataResponse[RuleOut]:
    rule = service.update_rule(
        ctx.session, caller=ctx.caller, rule=service.get_rule(ctx.session, id), data=body
    )
    return DataResponse(data=_rule_out(rule, service.get_rule_set(ctx.session, rule.rule_set_id)))


@rules.delete("/{id}", status_code=204, summary="Delete a routing automation rule.")
def delete_rule(ctx: Admin, id: uuid.UUID) -> None:
    service.delete_rule(ctx.session, caller=ctx.caller, rule=service.get_rule(ctx.session, id))


# ------------------------------------------------------------------------- rule sets


@rule_sets.get("", summary="List routing rule sets in evaluation order.")
def list_rule_sets(
    ctx: Reader, params: ListQuery, active: bool | None = None
) -> ListResponse[RuleSetOut]:
    stmt = service.query_rule_sets(q=params.q, active=active)
    stmt = apply_sort(
        stmt,
        params.sort,
        service.RULE_SET_SORT_FIELDS,
        [RoutingRuleSet.position],
        RoutingRuleSet.id,
    )
    rows, pagination = paginate(ctx.session, stmt, params, scalars=False)
    return ListResponse(data=[_set_out(s, n) for s, n in rows], pagination=pagination)


@rule_sets.post("", status_code=201, summary="Create a routing rule set.")
def create_rule_set(ctx: Admin, body: RuleSetCreate) -> DataResponse[RuleSetOut]:
    ctx.require_organization()
    rule_set = service.create_rule_set(ctx.session, caller=ctx.caller, data=body)
    return DataResponse(data=_set_out(rule_set, 0))


@rule_sets.get("/{id}", summary="View one routing rule set.")
def get_rule_set(ctx: Reader, id: uuid.UUID) -> DataResponse[RuleSetOut]:
    rule_set, count = service.rule_set_with_count(ctx.session, id)
    return DataResponse(data=_set_out(rule_set, count))


@rule_sets.patch("/{id}", summary="Rename, reorder, switch on or off, or change the mode.")
def update_rule_set(ctx: Admin, id: uuid.UUID, body: RuleSetUpdate) -> DataResponse[RuleSetOut]:
    rule_set = service.update_rule_set(
        ctx.session, caller=ctx.caller, rule_set=service.get_rule_set(ctx.session, id), data=body
    )
    return DataResponse(data=_set_out(*service.rule_set_with_count(ctx.session, rule_set.id)))


@rule_sets.delete("/{id}", status_code=204, summary="Delete a rule set that has no rules left.")
def delete_rule_set(ctx: Admin, id: uuid.UUID) -> None:
    rule_set = service.get_rule_set(ctx.session, id)
    service.delete_rule_set(ctx.session, caller=ctx.caller, rule_set=rule_set)


# --------------------------------------------------------------------------- output


def _match_out(match: RuleMatch) -> RuleMatchOut:
    return RuleMatchOut(
        rule_id=match.rule_id,
        rule_name=match.rule_name,
        rule_set=match.rule_set,
        reasons=match.reasons,
        effects=match.effects,
    )


def _changes_out(changes: dict[str, dict[str, Any]]) -> list[FieldChange]:
    return [
        FieldChange.model_validate({"field": name, "from": c["from"], "to": c["to"]})
        for name, c in changes.items()
    ]


def _decision_out(
    decision: RoutingDecision, facts: TicketFacts, names: service.Names
) -> DecisionOut:
    return DecisionOut(
        assignee_id=decision.assignee_id,
        assignee_name=names.labels.get(decision.assignee_id) if decision.assignee_id else None,
        team_id=decision.team_id,
        team_name=names.labels.get(decision.team_id) if decision.team_id else None,
        priority=decision.priority,
        tags=decision.tags,
        watcher_ids=decision.watcher_ids,
        matches=[_match_out(m) for m in decision.matches],
        not_matched=[
            RuleMissOut(
                rule_id=m.rule_id, rule_name=m.rule_name, rule_set=m.rule_set, reasons=m.reasons
            )
            for m in decision.considered
        ],
        changes=_changes_out(decision.changes(facts)),
        explanation=decision.explanation,
    )
