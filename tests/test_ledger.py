"""The stock ledger: every movement's arithmetic, the materialised on-hand figures
against a replay of the ledger, negative stock, transfers, low-stock crossings, and
(PostgreSQL) many technicians consuming the same part at once."""

from __future__ import annotations

import threading
import uuid
from collections import defaultdict

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from common.enums import Role
from server.core.db import utcnow
from server.core.engine import Database
from server.core.errors import BusinessRuleViolation, NotFound, ValidationFailed
from server.inventory import ledger
from server.inventory.models import Part, StockLevel, StockLocation, StockMovement
from server.notifications.models import Notification
from tests.conftest import World


def _part(db: Database, org_id: uuid.UUID, **fields) -> uuid.UUID:
    with db.transaction(tenant=org_id) as session:
        part = Part(
            name=fields.pop("name", f"Part {uuid.uuid4().hex[:6]}"),
            unit_cost_cents=fields.pop("unit_cost_cents", 1250),
            **fields,
        )
        session.add(part)
        session.flush()
        return part.id


def _location(db: Database, org_id: uuid.UUID, name: str | None = None, **fields) -> uuid.UUID:
    with db.transaction(tenant=org_id) as session:
        location = StockLocation(
            name=name or f"Shelf {uuid.uuid4().hex[:6]}",
            kind=fields.pop("kind", "warehouse"),
            **fields,
        )
        session.add(location)
        session.flush()
        return location.id


def _levels(db: Database, org_id: uuid.UUID, part_id: uuid.UUID) -> dict[uuid.UUID, int]:
    with db.transaction(tenant=org_id) as session:
        rows = session.execute(
            select(StockLevel.location_id, StockLevel.quantity).where(StockLevel.part_id == part_id)
        ).all()
        return {location: quantity for location, quantity in rows}


def _on_hand(db: Database, org_id: uuid.UUID, part_id: uuid.UUID) -> tuple[int, str]:
    with db.transaction(tenant=org_id) as session:
        part = session.get(Part, part_id)
        assert part is not None
        return part.on_hand, part.status


def _replay(db: Database, org_id: uuid.UUID, part_id: uuid.UUID) -> dict[uuid.UUID, int]:
    """On hand per location recomputed from the ledger alone."""
    with db.transaction(tenant=org_id) as session:
        rows = session.execute(
            select(StockMovement.location_id, func.sum(StockMovement.quantity))
            .where(StockMovement.part_id == part_id)
            .group_by(StockMovement.location_id)
        ).all()
        return {location: int(total) for location, total in rows}


@pytest.fixture
def org(world: World) -> uuid.UUID:
    return world.org("ledger").id


def test_every_kind_of_movement_adds_up(db: Database, org: uuid.UUID, world: World) -> None:
    actor = world.user(org, Role.AGENT, login=False).id
    part = _part(db, org, reorder_point=0)
    shelf, van = _location(db, org, "Warehouse"), _location(db, org, "Van 1", kind="van")

    with db.transaction(tenant=org) as session:
        received = ledger.receive(
            session, part_id=part, location_id=shelf, quantity=10, actor_id=actor,
            source_type="purchase_order", source_id=uuid.uuid4(), unit_cost_cents=1100,
        )  # fmt: skip
        assert (received.kind, received.quantity, received.balance_after) == ("receive", 10, 10)
        assert received.unit_cost_cents == 1100, "a receipt keeps the price paid"
        used = ledger.consume(session, part_id=part, location_id=shelf, quantity=3, actor_id=actor)
        assert (used.kind, used.quantity, used.balance_after) == ("consume", -3, 7)
        assert used.unit_cost_cents == 1250, "a consumption is costed at the catalogue price"
        back = ledger.return_unused(
            session, part_id=part, location_id=shelf, quantity=1, actor_id=actor,
            returns_movement_id=used.id,
        )  # fmt: skip
        assert (back.kind, back.quantity, back.related_movement_id) == ("return", 1, used.id)
        out, into = ledger.transfer(
            session, part_id=part, from_location_id=shelf, to_location_id=van, quantity=5,
            actor_id=actor, note="restock van",
        )  # fmt: skip
        assert (out.kind, out.quantity, out.location_id) == ("transfer_out", -5, shelf)
        assert (into.kind, into.quantity, into.location_id) == ("transfer_in", 5, van)
        assert out.transfer_id == into.transfer_id is not None
        fixed = ledger.adjust(
            session, part_id=part, location_id=van, delta=-2, reason="two cracked", actor_id=actor
        )
        assert (fixed.kind, fixed.quantity, fixed.balance_after, fixed.reason) == (
            "adjust", -2, 3, "two cracked",
        )  # fmt: skip
        assert not any(m.flagged_negative for m in (received, used, back, out, into, fixed))

    assert _levels(db, org, part) == {shelf: 3, van: 3}
    assert _on_hand(db, org, part)[0] == 6
    assert _replay(db, org, part) == {shelf: 3, van: 3}


def test_bad_movements_are_refused_and_change_nothing(
    db: Database, org: uuid.UUID, world: World
) -> None:
    part = _part(db, org)
    shelf = _location(db, org)
    closed = _location(db, org, active=False)
    refusals = [
        (ValidationFailed, dict(fn=ledger.receive, quantity=0)),
        (ValidationFailed, dict(fn=ledger.consume, quantity=-2)),
        (ValidationFailed, dict(fn=ledger.receive, quantity=ledger.MAX_QUANTITY + 1)),
        (ValidationFailed, dict(fn=ledger.adjust, delta=3, reason="  ")),
        (ValidationFailed, dict(fn=ledger.adjust, delta=0, reason="count")),
        (ValidationFailed, dict(fn=ledger.receive, quantity=1, source_type="gift")),
        (NotFound, dict(fn=ledger.receive, quantity=1, part_id=uuid.uuid4())),
        (NotFound, dict(fn=ledger.receive, quantity=1, location_id=uuid.uuid4())),
        (BusinessRuleViolation, dict(fn=ledger.receive, quantity=1, location_id=closed)),
    ]
    for error, kwargs in refusals:
        fn = kwargs.pop("fn")
        kwargs.setdefault("part_id", part)
        kwargs.setdefault("location_id", shelf)
        with pytest.raises(error), db.transaction(tenant=org) as session:
            fn(session, actor_id=None, **kwargs)
    with pytest.raises(ValidationFailed), db.transaction(tenant=org) as session:
        ledger.transfer(
            session, part_id=part, from_location_id=shelf, to_location_id=shelf, quantity=1,
            actor_id=None,
        )  # fmt: skip
    # stock may still leave an inactive location
    with db.transaction(tenant=org) as session:
        ledger.consume(session, part_id=part, location_id=closed, quantity=1, actor_id=None)
    assert _levels(db, org, part) == {closed: -1}
    assert _on_hand(db, org, part)[0] == -1


def test_another_organizations_part_or_location_is_not_found(
    db: Database, org: uuid.UUID, world: World
) -> None:
    other = world.org("other-ledger").id
    mine, theirs = _part(db, org), _part(db, other)
    my_shelf, their_shelf = _location(db, org), _location(db, other)
    for part, location in ((theirs, my_shelf), (mine, their_shelf)):
        with pytest.raises(NotFound), db.transaction(tenant=org) as session:
            ledger.receive(session, part_id=part, location_id=location, quantity=1, actor_id=None)


def test_negative_stock_is_recorded_and_flagged_not_refused(db: Database, org: uuid.UUID) -> None:
    part = _part(db, org)
    van = _location(db, org, kind="van")
    with db.transaction(tenant=org) as session:
        ledger.receive(session, part_id=part, location_id=van, quantity=2, actor_id=None)
        fine = ledger.consume(session, part_id=part, location_id=van, quantity=2, actor_id=None)
        short = ledger.consume(session, part_id=part, location_id=van, quantity=3, actor_id=None)
        shorter = ledger.consume(session, part_id=part, location_id=van, quantity=1, actor_id=None)
        assert (fine.balance_after, fine.flagged_negative, fine.review_status) == (0, False, None)
        assert (short.balance_after, short.flagged_negative, short.review_status) == (
            -3, True, "open",
        )  # fmt: skip
        assert (shorter.balance_after, shorter.flagged_negative) == (-4, True)
        # putting stock back into a negative location is not itself a problem
        back = ledger.return_unused(
            session, part_id=part, location_id=van, quantity=1, actor_id=None
        )
        assert (back.balance_after, back.flagged_negative) == (-3, False)
    assert _levels(db, org, part) == {van: -3}
    assert _replay(db, org, part) == {van: -3}
    assert _on_hand(db, org, part)[0] == -3


# --------------------------------------------------------------- replay (hypothesis)

operation = st.one_of(
    st.tuples(st.just("receive"), st.integers(0, 2), st.integers(1, 40)),
    st.tuples(st.just("consume"), st.integers(0, 2), st.integers(1, 40)),
    st.tuples(st.just("return"), st.integers(0, 2), st.integers(1, 40)),
    st.tuples(st.just("transfer"), st.integers(0, 2), st.integers(1, 40), st.integers(0, 2)),
    st.tuples(st.just("adjust"), st.integers(0, 2), st.integers(-40, 40).filter(bool)),
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=st.lists(operation, min_size=1, max_size=25), reorder_point=st.integers(0, 30))
def test_materialised_stock_equals_a_replay_of_the_ledger(
    db: Database, org: uuid.UUID, operations: list[tuple], reorder_point: int
) -> None:
    part = _part(db, org, reorder_point=reorder_point)
    places = [_location(db, org) for _ in range(3)]
    expected: dict[uuid.UUID, int] = defaultdict(int)
    flagged = 0
    with db.transaction(tenant=org) as session:
        for op in operations:
            kind, where, amount = op[0], places[op[1]], op[2]
            if kind == "receive":
                ledger.receive(
                    session, part_id=part, location_id=where, quantity=amount, actor_id=None
                )
                expected[where] += amount
            elif kind == "consume":
                moved = ledger.consume(
                    session, part_id=part, location_id=where, quantity=amount, actor_id=None
                )
                expected[where] -= amount
                flagged += expected[where] < 0
                assert moved.flagged_negative == (expected[where] < 0)
            elif kind == "return":
                ledger.return_unused(
                    session, part_id=part, location_id=where, quantity=amount, actor_id=None
                )
                expected[where] += amount
            elif kind == "transfer":
                target = places[op[3]]
                if target == where:
                    target = places[(op[1] + 1) % 3]
                ledger.transfer(
                    session, part_id=part, from_location_id=where, to_location_id=target,
                    quantity=amount, actor_id=None,
                )  # fmt: skip
                expected[where] -= amount
                expected[target] += amount
                flagged += expected[where] < 0
            else:
                ledger.adjust(
                    session,
                    part_id=part,
                    location_id=where,
                    delta=amount,
                    reason="count",
                    actor_id=None,
                )
                expected[where] += amount
                flagged += amount < 0 and expected[where] < 0
    levels = _levels(db, org, part)
    assert levels == _replay(db, org, part), "materialised levels differ from the ledger"
    assert levels == {k: v for k, v in expected.items()}
    total, status = _on_hand(db, org, part)
    assert total == sum(expected.values())
    assert status == ("low_stock" if total <= reorder_point else "active")
    with db.transaction(tenant=org) as session:
        moves = session.scalars(
            select(StockMovement).where(StockMovement.part_id == part).order_by(StockMovement.id)
        ).all()
        assert sum(m.flagged_negative for m in moves) == flagged
        running: dict[uuid.UUID, int] = defaultdict(int)
        for move in moves:  # UUIDv7 ids are in the order the movements were recorded
            running[move.location_id] += move.quantity
            assert move.balance_after == running[move.location_id]


# ------------------------------------------------------------------- low stock


def _low_stock_notes(db: Database, org: uuid.UUID, user_id: uuid.UUID) -> list[Notification]:
    with db.transaction(tenant=org) as session:
        return list(
            session.scalars(
                select(Notification).where(
                    Notification.user_id == user_id, Notification.event == "low_stock"
                )
            )
        )


def test_falling_to_the_reorder_point_notifies_the_owner_once_per_crossing(
    db: Database, org: uuid.UUID, world: World
) -> None:
    owner = world.user(org, Role.AGENT, login=False).id
    tech = world.user(org, Role.TECHNICIAN, login=False).id
    part = _part(
        db, org, name="Chromebook 3100 charger", part_number="CB-CHG-45W", reorder_point=5,
        reorder_quantity=20, owner_user_id=owner,
    )  # fmt: skip
    shelf = _location(db, org)

    def move(fn, quantity: int) -> tuple[int, str]:
        with db.transaction(tenant=org) as session:
            fn(session, part_id=part, location_id=shelf, quantity=quantity, actor_id=tech)
        return _on_hand(db, org, part)

    assert move(ledger.receive, 10) == (10, "active")
    assert move(ledger.consume, 4) == (6, "active")
    assert _low_stock_notes(db, org, owner) == []
    assert move(ledger.consume, 1) == (5, "low_stock"), "at the reorder point is low"
    notes = _low_stock_notes(db, org, owner)
    assert len(notes) == 1
    assert "CB-CHG-45W" in notes[0].title
    assert "5 on hand" in notes[0].body and "20" in notes[0].body
    assert move(ledger.consume, 2) == (3, "low_stock")
    assert len(_low_stock_notes(db, org, owner)) == 1, "no second notice while still low"
    assert move(ledger.receive, 20) == (23, "active"), "restocked"
    assert move(ledger.consume, 18) == (5, "low_stock")
    assert len(_low_stock_notes(db, org, owner)) == 2, "a new crossing is a new notice"


def test_owner_who_moved_the_stock_is_not_told_and_status_rules(
    db: Database, org: uuid.UUID, world: World
) -> None:
    owner = world.user(org, Role.AGENT, login=False).id
    shelf = _location(db, org)
    part = _part(db, org, reorder_point=2, owner_user_id=owner)
    with db.transaction(tenant=org) as session:
        ledger.receive(session, part_id=part, location_id=shelf, quantity=3, actor_id=owner)
        ledger.consume(session, part_id=part, location_id=shelf, quantity=2, actor_id=owner)
    assert _on_hand(db, org, part) == (1, "low_stock")
    assert _low_stock_notes(db, org, owner) == [], "nobody is told of their own action"

    assert ledger.next_status("discontinued", 0, 5) == "discontinued"
    assert ledger.next_status("discontinued", 50, 5) == "discontinued"
    assert ledger.next_status("backordered", 1, 5) == "backordered"
    assert ledger.next_status("backordered", 6, 5) == "active", "a receipt clears backorder"
    assert ledger.next_status("active", 5, 5) == "low_stock"
    assert ledger.next_status("low_stock", 6, 5) == "active"


def test_part_without_owner_notifies_the_organizations_admins(
    db: Database, org: uuid.UUID, world: World
) -> None:
    with db.transaction(tenant=org) as session:
        from server.users.models import User

        admin_id = session.scalar(select(User.id).where(User.role == Role.ORG_ADMIN))
    shelf = _location(db, org)
    part = _part(db, org, reorder_point=1)
    with db.transaction(tenant=org) as session:
        ledger.receive(session, part_id=part, location_id=shelf, quantity=2, actor_id=None)
        ledger.consume(session, part_id=part, location_id=shelf, quantity=1, actor_id=None)
    assert len(_low_stock_notes(db, org, admin_id)) == 1


# ------------------------------------------------------------ concurrency (PostgreSQL)


@pytest.mark.postgres_only
def test_concurrent_consumption_loses_no_movement(
    world: World, client: httpx.Client, db: Database, server_url: str
) -> None:
    tenant = world.org("rush")
    admin = tenant.admin.headers
    techs = [world.user(tenant.id, Role.TECHNICIAN) for _ in range(4)]
    shelf = client.post(
        "/api/inventory/locations", headers=admin, json={"name": "Closet", "kind": "closet"}
    ).json()["data"]
    part = client.post(
        "/api/inventory/parts",
        headers=admin,
        json={"name": "Patch cord 3ft", "unitCost": 2.5, "reorderPoint": 10,
              "currentStock": 30, "locationId": shelf["id"]},
    ).json()["data"]  # fmt: skip
    ticket = client.post(
        "/api/tickets", headers=admin, json={"title": "Lab 204 re-cabling"}
    ).json()["data"]
    per_thread, threads = 10, 8
    failures: list[str] = []

    def worker(n: int) -> None:
        headers = techs[n % len(techs)].headers if n % 2 else admin
        with httpx.Client(base_url=server_url, timeout=60) as c:
            for _ in range(per_thread):
                if n % 2:
                    r = c.post(
                        "/api/inventory/movements",
                        headers=headers,
                        json={"kind": "consume", "partId": part["id"],
                              "locationId": shelf["id"], "quantity": 1},
                    )  # fmt: skip
                else:
                    r = c.post(
                        f"/api/tickets/{ticket['id']}/parts",
                        headers=headers,
                        json={"partId": part["id"], "locationId": shelf["id"], "quantity": 1},
                    )
                if r.status_code != 201:
                    failures.append(f"{r.status_code} {r.text[:200]}")

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not failures, failures[:5]
    used = per_thread * threads
    part_id, shelf_id = uuid.UUID(part["id"]), uuid.UUID(shelf["id"])
    assert _levels(db, tenant.id, part_id) == {shelf_id: 30 - used}
    assert _replay(db, tenant.id, part_id) == {shelf_id: 30 - used}
    total, status = _on_hand(db, tenant.id, part_id)
    assert (total, status) == (30 - used, "low_stock")
    with db.transaction(tenant=tenant.id) as session:
        moves = session.scalars(
            select(StockMovement).where(
                StockMovement.part_id == part_id, StockMovement.kind == "consume"
            )
        ).all()
    assert len(moves) == used
    assert sorted(m.balance_after for m in moves) == list(range(30 - used, 30)), (
        "every consumption saw the one before it"
    )
    assert sum(m.flagged_negative for m in moves) == used - 30
    cost = client.get(f"/api/tickets/{ticket['id']}", headers=admin).json()["data"]
    assert cost["partsCostCents"] == 250 * per_thread * (threads // 2)
    admins_told = client.get("/api/notifications", headers=admin).json()["data"]
    assert sum(n["event"] == "low_stock" for n in admins_told) <= 1


# ------------------------------------------------------------------------------ demo


def test_demo_inventory_is_a_consistent_ledger(db: Database, world: World) -> None:
    import random

    from server.core.tenancy import ALL_TENANTS
    from server.inventory.demo import CATALOGUE, seed_demo
    from server.organizations.models import Department, Organization
    from server.sites.models import Building, Site
    from server.tickets.models import Ticket
    from server.users.models import User

    tenant = world.org("demo-inv")
    techs = [
        world.user(tenant.id, Role.TECHNICIAN, login=False, first_name=n)
        for n in ("Priya", "Jorge")
    ]
    with db.transaction(tenant=ALL_TENANTS) as session:
        org = session.get(Organization, tenant.id)
        depts = {
            n: Department(organization_id=tenant.id, name=n) for n in ("Technology", "Facilities")
        }
        session.add_all(depts.values())
        sites, buildings = [], []
        for code, names in (("MHS", ["Main", "Science"]), ("DO", ["Warehouse", "Admin"])):
            site = Site(organization_id=tenant.id, name=f"Site {code}", code=code)
            session.add(site)
            session.flush()
            sites.append(site)
            for name in names:
                building = Building(organization_id=tenant.id, site_id=site.id, name=name)
                session.add(building)
                buildings.append(building)
        session.flush()
        users = [session.get(User, t.id) for t in techs]
        ticket = Ticket(
            organization_id=tenant.id, number="INC-000001", ticket_type="incident", title="Screen",
            status="open", status_category="open", status_changed_at=utcnow(), priority="medium",
            requester_id=tenant.admin.id,
        )  # fmt: skip
        session.add(ticket)
        session.flush()
        made = seed_demo(
            session, organization=org, buildings=buildings, sites=sites, technicians=users,
            rng=random.Random(7), departments=depts, tickets=[ticket],
        )  # fmt: skip
        assert len(made.parts) == len(CATALOGUE) >= 40
        assert made.warehouse is not None and made.warehouse.building_id is not None
        assert len(made.closets) == 3 and [v.holder_user_id for v in made.vans] == [
            t.id for t in techs
        ]
        part_ids = [p.id for p in made.parts]
        ticket_cost = ticket.parts_cost_cents
    assert ticket_cost > 0
    for part_id in part_ids:
        assert _levels(db, tenant.id, part_id) == {
            k: v for k, v in _replay(db, tenant.id, part_id).items()
        }
        total, _ = _on_hand(db, tenant.id, part_id)
        assert total == sum(_replay(db, tenant.id, part_id).values())
    with db.transaction(tenant=tenant.id) as session:
        statuses = [p.status for p in session.scalars(select(Part))]
    assert statuses.count("low_stock") >= 4
