"""A stateful property test of sync (docs/sync-protocol.md, guarantees 3-11 and 13):
2-5 technicians and agents, each with a real replica file, a sync engine and a
signed-in client reaching the real server through a fault-injecting proxy
(``tests/sync_proxy.py``), work offline on shared tickets while the desk reassigns
and edits them online, and sync with the network misbehaving. After everyone has
synced until nothing is pending, twice:

- every replica equals the server's view of its scope (``POST /api/sync/verify``
  against ``replica.verify_digest``, table by table), holds exactly the tickets the
  same person lists through the API, and shows the server's values;
- every mutation got exactly one verdict on the server, the outbox is empty, and the
  rejections and conflicts each replica keeps are the server's;
- every comment written offline exists exactly once on the server (none when it was
  rejected), every ticket created offline once;
- the part's stock on the server is what was received minus every part use the
  server applied, each movement recorded once.

Runs ``RESOLVE_SYNC_EXAMPLES`` examples (default 10) of ``RESOLVE_SYNC_STEPS`` steps
(default 30): about 20 s here. ``RESOLVE_SYNC_SHRINK=0`` reports a failure unshrunk. The deep run:
``RESOLVE_SYNC_EXAMPLES=100 RESOLVE_SYNC_STEPS=60 make test-sqlite
PYTEST_ARGS=tests/test_sync_properties.py``.

A server restart cannot be done to the in-process server: "unreachable" closes the
proxy's listening socket (connections refused, open ones cut) and disposes the
server's database connection pool while it is down.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select

from common.enums import Role
from common.workflow import Capacity, TicketStatus, available
from server.core.engine import Database
from server.core.tenancy import ALL_TENANTS
from server.inventory.models import StockMovement
from server.sync.models import SyncMutation
from server.tickets.models import Ticket, TicketComment
from sync.engine import Outcome
from sync.replica import EditRefused
from tests.conftest import Account, World
from tests.sync_proxy import FaultProxy
from tests.test_sync import _api_list
from tests.test_sync_engine import Laptop
from tests.test_tickets import new_ticket

EXAMPLES = int(os.environ.get("RESOLVE_SYNC_EXAMPLES", "10"))
STEPS = int(os.environ.get("RESOLVE_SYNC_STEPS", "30"))
#: RESOLVE_SYNC_SHRINK=0: report the first failing example as found (shrinking a
#: failure of this machine can take minutes)
PHASES = (
    tuple(Phase)
    if os.environ.get("RESOLVE_SYNC_SHRINK", "1") != "0"
    else (
        Phase.explicit,
        Phase.reuse,
        Phase.generate,
    )
)
SHARED_TICKETS = 3
PRIORITIES = ("low", "medium", "high", "critical")
#: a person, a ticket, a status: picked by number, modulo what there is
PICK = st.integers(0, 63)
RECEIVED_PER_VAN = 20
SYNC_MODES = ("normal", "push_answer_lost", "pull_answer_lost", "push_sent_twice", "unreachable")
FAULTS = {
    "push_answer_lost": ("/api/sync/push", "drop_response"),
    "pull_answer_lost": ("/api/sync/pull", "drop_response"),
    "push_sent_twice": ("/api/sync/push", "duplicate"),
}
#: fields the replica must show as the API does once everything is synced
COMPARED = ("status", "priority", "title", "assigneeId", "teamId", "commentCount", "number")


class Person:
    """One client: an account, its laptop (replica + engine through the proxy), its van."""

    def __init__(self, account: Account, laptop: Laptop, van_id: str) -> None:
        self.account = account
        self.laptop = laptop
        self.van_id = van_id
        #: mutation ids queued by this replica, in order
        self.mutations: list[str] = []

    @property
    def replica(self) -> Any:
        return self.laptop.replica

    def __repr__(self) -> str:
        return f"<{self.account.role.value} {self.account.email}>"


def _server_verdicts(db: Database, device_id: str) -> dict[str, str]:
    with db.transaction(tenant=ALL_TENANTS) as session:
        rows = session.execute(
            select(SyncMutation.id, SyncMutation.verdict).where(
                SyncMutation.device_id == uuid.UUID(device_id)
            )
        )
        return {str(r[0]): str(r[1]) for r in rows}


def test_replicas_converge_on_the_server_whatever_the_network_does(
    world: World, client: httpx.Client, db: Database, server_url: str, tmp_path: Path
) -> None:
    proxy = FaultProxy(server_url)
    examples = itertools.count()
    #: what the run did, so a run that exercised nothing fails (printed with -s)
    tally: Counter[str] = Counter()

    class SyncWorld(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.n = next(examples)
            self.dir = tmp_path / f"example-{self.n}"
            self.people: list[Person] = []
            self.counter = itertools.count(1)
            self.comments: dict[str, tuple[str, str]] = {}  # mutation -> (comment id, body)
            self.uses: dict[str, tuple[str, int]] = {}  # mutation -> (movement id, quantity)
            self.created: dict[str, tuple[str, str]] = {}  # mutation -> (ticket id, title)
            self.received = 0

        # ------------------------------------------------------------- setup

        @initialize(
            roles=st.lists(st.sampled_from(["technician", "agent"]), min_size=2, max_size=5)
        )
        def setup(self, roles: list[str]) -> None:
            tenant = world.org()
            self.admin = tenant.admin
            self.desk = world.user(tenant.id, Role.AGENT)
            self.teacher = world.user(tenant.id, Role.REQUESTER)
            self.bystander = world.user(tenant.id, Role.TECHNICIAN)  # no laptop
            part = client.post(
                "/api/inventory/parts",
                json={"name": "Projector lamp", "partNumber": f"LAMP-{self.n}"},
                headers=self.admin.headers,
            )
            assert part.status_code == 201, part.text
            self.part_id = part.json()["data"]["id"]
            accounts = [
                world.user(tenant.id, Role.TECHNICIAN if r == "technician" else Role.AGENT)
                for r in roles
            ]
            self.technicians = [a for a in accounts if a.role is Role.TECHNICIAN] + [self.bystander]
            self.shared = [
                new_ticket(
                    client,
                    self.desk,
                    title=f"Shared {i}",
                    requesterId=str(self.teacher.id),
                    assigneeId=str(self.technicians[i % len(self.technicians)].id),
                    priority="medium",
                )["id"]
                for i in range(SHARED_TICKETS)
            ]
            for i, account in enumerate(accounts):
                van = client.post(
                    "/api/inventory/locations",
                    json={"name": f"Van {i}", "kind": "van", "holderUserId": str(account.id)},
                    headers=self.admin.headers,
                )
                assert van.status_code == 201, van.text
                van_id = van.json()["data"]["id"]
                received = client.post(
                    "/api/inventory/movements",
                    json={
                        "kind": "receive",
                        "partId": self.part_id,
                        "locationId": van_id,
                        "quantity": RECEIVED_PER_VAN,
                    },
                    headers=self.admin.headers,
                )
                assert received.status_code == 201, received.text
                self.received += RECEIVED_PER_VAN
                laptop = Laptop(self.dir / f"laptop-{i}", proxy.url, account)
                self.people.append(Person(account, laptop, van_id))
                assert laptop.engine.sync().ok

        # ------------------------------------------------------------- helpers

        # Draws never depend on what a replica holds (hypothesis replays and shrinks by
        # the shape of its draws): a person and a ticket are picked by a drawn number.

        def _ticket(self, pick: int, person: Person) -> dict[str, Any] | None:
            held = sorted(person.replica.tickets(limit=1000), key=lambda r: r.id)
            return dict(held[pick % len(held)].data) if held else None

        def _person(self, pick: int) -> Person:
            return self.people[pick % len(self.people)]

        def _queued(self, person: Person, changes: Any) -> None:
            assert changes.mutation_id is not None
            person.mutations.append(changes.mutation_id)

        # ------------------------------------------------------------- offline edits

        @rule(who=PICK, which=PICK, priority=st.sampled_from([None, *PRIORITIES]))
        def edit_a_field(self, who: int, which: int, priority: str | None) -> None:
            person = self._person(who)
            ticket = self._ticket(which, person)
            if ticket is None:
                return
            if priority is not None:
                change = {"priority": priority}
            else:
                change = {"title": f"Title {self.n}-{next(self.counter)}"}
            changes = person.replica.update_ticket(ticket["id"], change)
            if changes.mutation_id is not None:
                self._queued(person, changes)

        @rule(who=PICK, which=PICK, step=PICK)
        def move_status(self, who: int, which: int, step: int) -> None:
            person = self._person(who)
            ticket = self._ticket(which, person)
            if ticket is None:
                return
            me = str(person.account.id)
            capacities = {Capacity.AGENT} if person.account.role is Role.AGENT else set()
            if ticket.get("assigneeId") == me:
                capacities.add(Capacity.ASSIGNEE)
            if me in (ticket.get("requesterId"), ticket.get("createdById")):
                capacities.add(Capacity.REQUESTER)
            targets = sorted(
                {t.target.value for t in available(TicketStatus(ticket["status"]), capacities)}
            )
            if not targets:
                return
            to = targets[step % len(targets)]
            notes = "Replaced the lamp" if to == TicketStatus.RESOLVED.value else None
            try:
                changes = person.replica.transition_ticket(
                    ticket["id"], to, resolution_notes=notes, capacities=capacities
                )
            except EditRefused:
                return
            self._queued(person, changes)

        @rule(who=PICK, which=PICK, internal=st.booleans(), minutes=st.sampled_from([None, 15]))
        def comment(self, who: int, which: int, internal: bool, minutes: int | None) -> None:
            person = self._person(who)
            ticket = self._ticket(which, person)
            if ticket is None:
                return
            body = f"Comment {self.n}-{next(self.counter)}"
            changes = person.replica.add_comment(ticket["id"], body, internal, minutes)
            self._queued(person, changes)
            (comment_id,) = changes.written["ticket_comments"]
            self.comments[changes.mutation_id] = (comment_id, body)

        @rule(who=PICK, which=PICK, quantity=st.integers(1, 3))
        def use_a_part(self, who: int, which: int, quantity: int) -> None:
            person = self._person(who)
            ticket = self._ticket(which, person)
            if ticket is None:
                return
            changes = person.replica.use_part(ticket["id"], self.part_id, person.van_id, quantity)
            self._queued(person, changes)
            (movement_id,) = changes.written["stock_movements"]
            self.uses[changes.mutation_id] = (movement_id, quantity)

        @rule(who=PICK)
        def new_ticket_offline(self, who: int) -> None:
            person = self._person(who)
            title = f"New {self.n}-{next(self.counter)}"
            # the title may be edited later: the description names it for good
            changes = person.replica.create_ticket(title, f"Made offline: {title}", urgency="low")
            self._queued(person, changes)
            (ticket_id,) = changes.written["tickets"]
            self.created[changes.mutation_id] = (ticket_id, title)

        # ------------------------------------------------------------- the desk, online

        @rule(which=PICK, to_whom=PICK)
        def desk_reassigns(self, which: int, to_whom: int) -> None:
            ticket_id = self.shared[which % len(self.shared)]
            to = self.technicians[to_whom % len(self.technicians)]
            moved = client.patch(
                f"/api/tickets/{ticket_id}/assign",
                json={"assigneeId": str(to.id)},
                headers=self.desk.headers,
            )
            assert moved.status_code < 500, moved.text

        @rule(which=PICK, priority=st.sampled_from(PRIORITIES))
        def desk_edits(self, which: int, priority: str) -> None:
            ticket_id = self.shared[which % len(self.shared)]
            edited = client.patch(
                f"/api/tickets/{ticket_id}", json={"priority": priority}, headers=self.desk.headers
            )
            assert edited.status_code < 500, edited.text

        # ------------------------------------------------------------- sync

        @rule(who=PICK, mode=st.sampled_from(SYNC_MODES))
        def sync(self, who: int, mode: str) -> None:
            person = self._person(who)
            tally[f"sync {mode}"] += 1
            if mode == "unreachable":
                with proxy.down():
                    db.engine.dispose()  # as a restarted server: no connection survives
                    report = person.laptop.engine.sync(retry_now=True)
                assert report.outcome is Outcome.OFFLINE, report
                assert report.pending == len(person.replica.outbox())
                return
            if mode in FAULTS:
                proxy.fault(*FAULTS[mode])
            try:
                report = person.laptop.engine.sync(retry_now=True)
            finally:
                proxy.clear()
            allowed = (
                {Outcome.OK}
                if mode in ("normal", "push_sent_twice")
                else {
                    Outcome.OK,
                    Outcome.OFFLINE,
                }
            )
            assert report.outcome in allowed, (mode, report.outcome, report.errors)

        @rule(who=PICK)
        def sync_cleanly(self, who: int) -> None:
            """Syncs weigh as much as edits: a second rule for the plain one."""
            self.sync(who, "normal")

        # ------------------------------------------------------------- invariants

        @invariant()
        def nothing_typed_is_lost(self) -> None:
            """Every queued mutation is still in the outbox or judged by the server."""
            for person in self.people:
                waiting = {m.id for m in person.replica.outbox()}
                judged = _server_verdicts(db, person.replica.device_id)
                assert set(person.mutations) <= waiting | judged.keys(), person
                assert judged.keys() <= set(person.mutations), "judged, never queued"

        # ------------------------------------------------------------- the end

        def teardown(self) -> None:
            try:
                if self.people:
                    self._settle()
                    self._check()
            finally:
                for person in self.people:
                    person.laptop.close()

        def _settle(self) -> None:
            for _ in range(2):
                for person in self.people:
                    for _ in range(5):
                        report = person.laptop.engine.sync(retry_now=True)
                        assert report.ok, (person, report.errors)
                        if not person.replica.outbox():
                            break
                    assert person.replica.outbox() == [], person

        def _check(self) -> None:
            judged: dict[str, str] = {}
            for person in self.people:
                verdicts = _server_verdicts(db, person.replica.device_id)
                # one verdict per mutation: the server's record is keyed by mutation id
                assert sorted(verdicts) == sorted(person.mutations), person
                judged.update(verdicts)
                tally.update(f"verdict {v}" for v in verdicts.values())
                kept = {v.mutation_id: v.verdict.value for v in person.replica.verdicts()}
                assert kept == {
                    m: v for m, v in verdicts.items() if v in ("rejected", "conflict")
                }, person
                for stored in person.replica.verdicts():
                    if stored.verdict.value == "rejected":
                        assert stored.message and stored.code, stored
                self._check_replica(person)

            with db.transaction(tenant=ALL_TENANTS) as session:
                for mutation_id, (comment_id, body) in self.comments.items():
                    rows = session.execute(
                        select(TicketComment.id).where(TicketComment.body == body)
                    ).all()
                    expected = [] if judged[mutation_id] == "rejected" else [comment_id]
                    assert [str(r[0]) for r in rows] == expected, (body, judged[mutation_id])
                for mutation_id, (ticket_id, title) in self.created.items():
                    rows = session.execute(
                        select(Ticket.id).where(Ticket.description == f"Made offline: {title}")
                    ).all()
                    expected = [] if judged[mutation_id] == "rejected" else [ticket_id]
                    assert [str(r[0]) for r in rows] == expected, (title, judged[mutation_id])
                used = 0
                for mutation_id, (movement_id, quantity) in self.uses.items():
                    found = session.scalar(
                        select(func.count())
                        .select_from(StockMovement)
                        .where(StockMovement.id == uuid.UUID(movement_id))
                    )
                    applied = judged[mutation_id] != "rejected"
                    assert found == (1 if applied else 0), (movement_id, judged[mutation_id])
                    used += quantity if applied else 0
            stock = client.get(f"/api/inventory/parts/{self.part_id}", headers=self.admin.headers)
            assert stock.status_code == 200, stock.text
            assert stock.json()["data"]["currentStock"] == self.received - used

        def _check_replica(self, person: Person) -> None:
            replica, who = person.replica, person.account
            for _ in range(3):
                answer = client.post(
                    "/api/sync/verify",
                    json={
                        "protocolVersion": 1,
                        "deviceId": replica.device_id,
                        "cursor": replica.cursor,
                    },
                    headers=who.headers,
                )
                assert answer.status_code == 200, answer.text
                data = answer.json()["data"]
                if not data["stale"]:
                    break
                assert person.laptop.engine.sync().ok
            else:
                raise AssertionError(f"{person}: the server kept moving")
            for table in data["tables"]:
                name, expected = table["table"], (table["count"], table["sha256"])
                assert replica.verify_digest(name) == expected, (person, name)
            listed = _api_list(client, who, "/api/tickets")
            if who.role is Role.AGENT:  # a desk replica holds the open queue
                listed = [t for t in listed if t["statusCategory"] != "closed"]
            held = {row.id: row for row in replica.rows("tickets")}
            assert set(held) == {t["id"] for t in listed}, (person, "scope")
            for ticket in listed:
                row = held[ticket["id"]]
                assert not row.pending and row.synced, (person, row)
                for name in COMPARED:
                    assert row.data.get(name) == ticket.get(name), (person, name, ticket["id"])
            assert replica.pending_removals() == [] and replica.hydrate_queue() == []

    try:
        run_state_machine_as_test(
            SyncWorld,
            settings=settings(
                max_examples=EXAMPLES,
                stateful_step_count=STEPS,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
                print_blob=True,
                phases=PHASES,
            ),
        )
    finally:
        proxy.close()
    print(dict(sorted(tally.items())))
    assert tally["verdict applied"] > 0, tally
