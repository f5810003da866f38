"""The sync engine against the real server on loopback: first download, offline edits,
scope changes with hydration, resync, upgrade, remote wipe, push verdicts and replays."""

from __future__ import annotations

import hashlib
import socket
import sqlite3
import stat
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from common.enums import Role
from server.core.db import utcnow
from server.core.engine import Database
from server.core.tenancy import ALL_TENANTS
from server.sync import retention
from server.sync.models import SyncDevice
from sync import wire
from sync.client import ApiClient, Tokens
from sync.engine import Outcome, SyncEngine
from sync.replica import Replica, replica_path
from tests.conftest import PASSWORD, Account, World
from tests.test_tickets import new_ticket

LATER = 3600.0  # an engine whose clock runs an hour ahead: every retry delay is over


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class Laptop:
    """A technician's replica with an engine signed in to the server."""

    def __init__(self, tmp_path: Path, server_url: str, account: Account) -> None:
        self.server_url = server_url
        self.account = account
        self.tokens_seen: list[Tokens | None] = []
        self.client = ApiClient(server_url, on_tokens=self.tokens_seen.append)
        self.client.login(account.email, PASSWORD)
        self.path = replica_path(tmp_path, server_url, str(account.id))
        self.replica = Replica.open(self.path, server_url=server_url, user_id=str(account.id))
        self.engine = SyncEngine(self.replica, self.client)

    def later(self) -> SyncEngine:
        """The same replica and sign-in, an hour later (retry delays have passed)."""
        return SyncEngine(self.replica, self.client, clock=lambda: time.time() + LATER)

    def offline(self) -> SyncEngine:
        """The same replica and sign-in, but the server cannot be reached."""
        client = ApiClient(closed_port_url())
        client.tokens = self.client.tokens
        return SyncEngine(self.replica, client)

    def close(self) -> None:
        if self.path.exists():
            self.replica.close()
        self.client.close()


@pytest.fixture
def laptops(tmp_path: Path, server_url: str) -> Iterator[Any]:
    opened: list[Laptop] = []

    def make(account: Account) -> Laptop:
        laptop = Laptop(tmp_path / f"laptop-{len(opened)}", server_url, account)
        opened.append(laptop)
        return laptop

    yield make
    for laptop in opened:
        laptop.close()


def _people(world: World) -> tuple[Account, Account, Account, Account]:
    tenant = world.org()
    agent = world.user(tenant.id, Role.AGENT)
    tech = world.user(tenant.id, Role.TECHNICIAN)
    other_tech = world.user(tenant.id, Role.TECHNICIAN)
    teacher = world.user(tenant.id, Role.REQUESTER)
    return agent, tech, other_tech, teacher


def _comment(client: httpx.Client, who: Account, ticket_id: str, body: str) -> None:
    response = client.post(
        f"/api/tickets/{ticket_id}/comments", json={"body": body}, headers=who.headers
    )
    assert response.status_code == 201, response.text


def _assign(client: httpx.Client, agent: Account, ticket_id: str, to: Account) -> None:
    moved = client.patch(
        f"/api/tickets/{ticket_id}/assign", json={"assigneeId": str(to.id)}, headers=agent.headers
    )
    assert moved.status_code == 200, moved.text


def _server_ticket(client: httpx.Client, who: Account, ticket_id: str) -> dict[str, Any]:
    response = client.get(f"/api/tickets/{ticket_id}", headers=who.headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def _server_comments(client: httpx.Client, who: Account, ticket_id: str) -> list[str]:
    response = client.get(f"/api/tickets/{ticket_id}/comments", headers=who.headers)
    assert response.status_code == 200, response.text
    return [c["body"] for c in response.json()["data"]]


def _comments(replica: Replica, ticket_id: str) -> list[str]:
    detail = replica.ticket(ticket_id)
    assert detail is not None
    return [e.row.data["body"] for e in detail.timeline if e.kind == "comment"]


# --------------------------------------------------------------------------- pull


def test_first_download_brings_exactly_the_technicians_tickets_with_comments(
    world: World, client: httpx.Client, laptops: Any
) -> None:
    agent, tech, other_tech, teacher = _people(world)
    mine = [
        new_ticket(
            client,
            agent,
            title=f"Projector {i}",
            requesterId=str(teacher.id),
            assigneeId=str(tech.id),
        )
        for i in range(3)
    ]
    new_ticket(
        client, agent, title="Not mine", requesterId=str(teacher.id), assigneeId=str(other_tech.id)
    )
    _comment(client, agent, mine[0]["id"], "The lamp is at 4,900 hours")
    _comment(client, tech, mine[1]["id"], "On my way")

    laptop = laptops(tech)
    laptop.engine.pull_limit = 2  # three tickets: two pages
    seen: list[tuple[str, int, int | None]] = []
    report = laptop.engine.sync(progress=lambda *a: seen.append(a))
    assert report.ok, report.errors
    assert report.pages == 2 and report.hydrated == 0 and report.pushed == 0
    assert {r.id for r in laptop.replica.tickets()} == {t["id"] for t in mine}
    assert _comments(laptop.replica, mine[0]["id"]) == ["The lamp is at 4,900 hours"]
    assert _comments(laptop.replica, mine[1]["id"]) == ["On my way"]
    assert [phase for phase, _, _ in seen] == ["pull", "pull"]
    assert seen[-1][1] == report.pulled_rows > 0
    assert laptop.replica.status().last_sync_at is not None
    assert "Synced: received" in report.summary()

    again = laptop.engine.sync()
    assert again.ok and again.pulled_rows == 0 and again.pages == 1
    assert again.summary() == "Synced: nothing new."
    assert laptop.engine.next_retry_at() is None


def test_a_ticket_reassigned_to_me_arrives_with_its_whole_history(
    world: World, client: httpx.Client, laptops: Any
) -> None:
    agent, tech, other_tech, teacher = _people(world)
    arriving = new_ticket(client, agent, requesterId=str(teacher.id), assigneeId=str(other_tech.id))
    _comment(client, agent, arriving["id"], "Old history")
    _comment(client, other_tech, arriving["id"], "Tried a new lamp")
    laptop = laptops(tech)
    assert laptop.engine.sync().ok
    assert laptop.replica.tickets() == []

    _assign(client, agent, arriving["id"], tech)
    report = laptop.engine.sync()
    assert report.ok, report.errors
    assert report.hydrated == 1
    assert _comments(laptop.replica, arriving["id"]) == ["Old history", "Tried a new lamp"]
    assert laptop.replica.hydrate_queue() == []


def test_a_ticket_reassigned_away_is_removed(
    world: World, client: httpx.Client, laptops: Any
) -> None:
    agent, tech, other_tech, teacher = _people(world)
    leaving = new_ticket(client, agent, requesterId=str(teacher.id), assigneeId=str(tech.id))
    staying = new_ticket(client, agent, requesterId=str(teacher.id), assigneeId=str(tech.id))
    _comment(client, agent, leaving["id"], "Bring a ladder")
    laptop = laptops(tech)
    assert laptop.engine.sync().ok
    assert {r.id for r in laptop.replica.tickets()} == {leaving["id"], staying["id"]}

    _assign(client, agent, leaving["id"], other_tech)
    report = laptop.engine.sync()
    assert report.ok, report.errors
    assert {r.id for r in laptop.replica.tickets()} == {staying["id"]}
    assert laptop.replica.rows("ticket_comments") == []
    assert report.changes.removed["tickets"] == {leaving["id"]}


def test_resync_required_downloads_everything_again_and_keeps_the_outbox(
    world: World, client: httpx.Client, laptops: Any, db: Database
) -> None:
    """A laptop away longer than the retention: the exit of a ticket it held was purged
    with the tombstones, so no removal will ever come; the 410 makes it download its
    scope again, the ticket goes, and its queued edit stays."""
    agent, tech, other_tech, teacher = _people(world)
    ticket = new_ticket(client, agent, requesterId=str(teacher.id), assigneeId=str(tech.id))
    gone = new_ticket(client, agent, requesterId=str(teacher.id), assigneeId=str(tech.id))
    _comment(client, agent, gone["id"], "Ladder needed")
    laptop = laptops(tech)
    assert laptop.engine.sync().ok
    # an edit waiting out a retry delay, so the push step leaves it in the outbox
    edit = laptop.replica.update_ticket(ticket["id"], {"title": "Lamp, room 204"})
    assert edit.seq is not None
    laptop.replica.record_failure([edit.seq], "test", retry_after=3600)
    _assign(client, agent, gone["id"], other_tech)
    organization_id = agent.organization_id
    assert organization_id is not None
    long_ago = utcnow() - timedelta(days=200)
    with db.transaction(tenant=organization_id) as session:
        assert retention.run(session, organization_id, long_ago, keep_days=90).horizon is None
    with db.transaction(tenant=organization_id) as session:
        assert retention.run(session, organization_id, utcnow(), keep_days=90).horizon

    report = laptop.engine.sync()
    assert report.ok, report.errors
    assert report.resynced and report.pages >= 1
    assert {r.id for r in laptop.replica.tickets()} == {ticket["id"]}
    assert laptop.replica.rows("ticket_comments") == [], "the gone ticket's comment too"
    (pending,) = laptop.replica.outbox()
    assert pending.seq == edit.seq
    shown = laptop.replica.row("tickets", ticket["id"])
    assert shown is not None and shown.data["title"] == "Lamp, room 204"
    assert report.pending == 1 and report.retry_at is not None

    # a cursor the server has never reached (a server restored from a backup): the same
    laptop.replica.apply_page({"cursor": "p999999999", "hasMore": False, "changes": []})
    report = laptop.engine.sync()
    assert report.ok and report.resynced, report.errors
    assert laptop.replica.cursor not in (None, "p999999999")
    assert [m.seq for m in laptop.replica.outbox()] == [edit.seq]


def test_an_unknown_cursor_is_a_resync_too(
    world: World, client: httpx.Client, laptops: Any
) -> None:
    agent, tech, _, teacher = _people(world)
    ticket = new_ticket(client, agent, requesterId=str(teacher.id), assigneeId=str(tech.id))
    laptop = laptops(tech)
    laptop.replica.apply_page({"cursor": "garbage", "hasMore": False, "changes": []})
    report = laptop.engine.sync()
    assert report.ok and report.resynced, report.errors
    assert [r.id for r in laptop.replica.tickets()] == [ticket["id"]]


def test_upgrade_required_stops_cleanly_and_keeps_everything(
    world: World, client: httpx.Client, laptops: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent, tech, _, teacher = _people(world)
    ticket = new_ticket(client, agent, requesterId=str(teacher.id), assigneeId=str(tech.id))
    laptop = laptops(tech)
    assert laptop.engine.sync().ok
    cursor = laptop.replica.cursor
    laptop.replica.add_comment(ticket["id"], "Replaced the lamp")

    monkeypatch.setattr(wire, "PROTOCOL_VERSION", 99)
    report = laptop.engine.sync()
    assert report.outcome is Outcome.UPGRADE_REQUIRED
    (text,) = [e for e in report.errors if "update District Resolve" in e]
    assert "Nothing was lost" in text
    assert laptop.replica.cursor == cursor
    assert len(laptop.replica.outbox()) == 1 and report.pending == 1
    assert _comments(laptop.replica, ticket["id"]) == ["Replaced the lamp"]
    assert _server_comments(client, agent, ticket["id"]) == []


def test_a_remote_wipe_deletes_the_replica_and_the_sign_in(
    world: World, client: httpx.Client, laptops: Any, db: Database
) -> None:
    agent, tech, _, teacher = _people(world)
    new_ticket(client, agent, requesterId=str(teacher.id), assigneeId=str(tech.id))
    laptop = laptops(tech)
    assert laptop.engine.sync().ok
    device_id = uuid.UUID(laptop.replica.device_id)
    with db.transaction(tenant=ALL_TENANTS) as session:
        session.execute(
            update(SyncDevice).where(SyncDevice.id == device_id).values(wipe_requested_at=utcnow())
        )

    report = laptop.engine.sync()
    assert report.outcome is Outcome.WIPED and report.wiped
    assert "removed this computer's copy" in report.errors[0]
    assert not laptop.path.exists()
    assert not Path(f"{laptop.path}-wal").exists()
    assert laptop.tokens_seen[-1] is None, "the stored sign-in is forgotten"
    assert not laptop.client.signed_in
    assert laptop.engine.sync().outcome is Outcome.WIPED, "a wiped engine does nothing"
    assert laptop.engine.next_retry_at() is None
    with db.transaction(tenant=ALL_TENANTS) as session:
        wiped_at = session.execute(
            select(SyncDevice.wiped_at).where(SyncDevice.id == device_id)
        ).scalar_one()
    assert wiped_at is not None


def test_an_ended_session_stops_sync_and_keeps_the_replica(
    world: World, client: httpx.Client, laptops: Any
) -> None:
    agent, tech, _, teacher = _people(world)
    ticket = new_ticket(client, agent, requesterId=str(teacher.id), assigneeId=str(tech.id))
    laptop = laptops(tech)
    assert laptop.engine.sync().ok
    laptop.replica.add_comment(ticket["id"], "Waiting for parts")
    # the session is ended elsewhere (signed out, revoked): the refresh token is spent
    tokens = laptop.client.tokens
    assert tokens is not None
    ended = client.post("/api/auth/logout", json={"refreshToken": tokens.refresh_token})
    assert ended.status_code in (200, 204), ended.text
    laptop.client.tokens = Tokens(access_token=None, refresh_token=tokens.refresh_token)

    report = laptop.engine.sync()
    assert report.outcome is Outcome.SIGNED_OUT, report.errors
    assert "sign in again" in report.errors[0]
    assert laptop.path.exists() and len(laptop.replica.outbox()) == 1
    assert _comments(laptop.replica, ticket["id"]) == ["Waiting for parts"]


# --------------------------------------------------------------------------- offline


def test_an_offline_edit_is_queued_then_synced_when_the_server_is_back(
    world: World, client: httpx.Client, laptops: Any
) -> None:
    agent, tech, _, teacher = _people(world)
    ticket = new_ticket(client, agent, requesterId=str(teacher.id), assigneeId=str(tech.id))
    laptop = laptops(tech)
    assert laptop.engine.sync().ok

    laptop.replica.update_ticket(ticket["id"], {"priority": "high"})
    laptop.replica.add_comment(ticket["id"], "Lamp ordered", minutes_worked=15)
    offline = laptop.offline()
    report = offline.sync()
    assert report.outcome is Outcome.OFFLINE
    assert "Cannot reach the server" in report.errors[0] and "kept" in report.errors[0]
    assert report.pending == 2 and report.retry_scheduled
    assert [m.attempts for m in laptop.replica.outbox()] == [1, 1]
    retry_at = offline.next_retry_at()
    assert retry_at is not None and time.time() < retry_at <= time.time() + 2
    assert "2 change(s) wait to be sent" in report.summary()
    shown = laptop.replica.row("tickets", ticket["id"])
    assert shown is not None and shown.data["priority"] == "high"

    back = laptop.later().sync()
    assert back.ok, back.errors
    assert (back.pushed, back.applied) == (2, 2)
    assert laptop.replica.outbox() == []
    assert _server_ticket(client, agent, ticket["id"])["priority"] == "high"
    assert _server_comments(client, agent, ticket["id"]) == ["Lamp ordered"]
    synced = laptop.replica.row("tickets", ticket["id"])
    assert synced is not None and synced.data["priority"] == "high" and not synced.pending


# --------------------------------------------------------------------------- push


def test_a_replayed_push_reaches_the_server_exactly_once(
    world: World, client: httpx.Client, laptops: Any
) -> None:
    agent, tech, _, teacher = _people(world)
    ticket = new_ticket(client, agent, requesterId=str(teacher.id), assigneeId=str(tech.id))
    laptop = laptops(tech)
    assert laptop.engine.sync().ok
    laptop.replica.update_ticket(ticket["id"], {"title": "Projector lamp, room 204"})
    laptop.replica.add_comment(ticket["id"], "Replaced the lamp")

    # the push reaches the server, but its answer is lost on the way back
    body = laptop.replica.push_request()
    assert body is not None
    lost = laptop.client.request("POST", "/api/sync/push", json=body)
    assert [r["verdict"] for r in lost["results"]] == ["applied", "applied"]
    assert len(laptop.replica.outbox()) == 2

    report = laptop.engine.sync()  # sends the same mutations again
    assert report.ok, report.errors
    assert report.pushed == 2 and report.rejected == 0
    assert laptop.replica.outbox() == []
    assert _server_comments(client, agent, ticket["id"]) == ["Replaced the lamp"]
    assert _server_ticket(client, agent, ticket["id"])["title"] == "Projector lamp, room 204"
    assert _comments(laptop.replica, ticket["id"]) == ["Replaced the lamp"]
    shown = laptop.replica.row("tickets", ticket["id"])
    assert shown is not None and shown.data["commentCount"] == 1


def test_a_rejected_mutation_does_not_block_the_next(
    world: World, client: httpx.Client, laptops: Any
) -> None:
    agent, tech, _, teacher = _people(world)
    closing = new_ticket(client, agent, requesterId=str(teacher.id), assigneeId=str(tech.id))
    other = new_ticket(client, agent, requesterId=str(teacher.id), assigneeId=str(tech.id))
    laptop = laptops(tech)
    assert laptop.engine.sync().ok
    # offline, the technician starts work; meanwhile the desk cancels the ticket
    laptop.replica.transition_ticket(closing["id"], "in_progress")
    laptop.replica.add_comment(other["id"], "Cable replaced")
    cancelled = client.post(
        f"/api/tickets/{closing['id']}/cancel", json={"note": "Duplicate"}, headers=agent.headers
    )
    assert cancelled.status_code == 200, cancelled.text

    report = laptop.engine.sync()
    assert report.pushed == 2 and report.rejected == 1 and report.applied == 1, report
    assert report.ok, report.errors
    assert laptop.replica.outbox() == []
    (verdict,) = laptop.replica.verdicts()
    assert verdict.verdict.value == "rejected" and verdict.message
    assert report.rejections == [verdict.message]
    assert _server_comments(client, agent, other["id"]) == ["Cable replaced"]
    shown = laptop.replica.row("tickets", closing["id"])
    assert shown is not None and shown.data["status"] == "cancelled"


def test_a_conflict_is_kept_for_the_user_and_resolving_it_reaches_the_server(
    world: World, client: httpx.Client, laptops: Any
) -> None:
    agent, tech, _, teacher = _people(world)
    ticket = new_ticket(
        client, agent, requesterId=str(teacher.id), assigneeId=str(tech.id), priority="medium"
    )
    laptop = laptops(tech)
    assert laptop.engine.sync().ok
    laptop.replica.update_ticket(ticket["id"], {"priority": "high", "title": "Lamp, room 204"})
    changed = client.patch(
        f"/api/tickets/{ticket['id']}", json={"priority": "critical"}, headers=agent.headers
    )
    assert changed.status_code == 200, changed.text

    report = laptop.engine.sync()
    assert report.ok, report.errors
    assert (report.pushed, report.conflicts) == (1, 1)
    assert "priority" in report.rejections[0]
    shown = laptop.replica.row("tickets", ticket["id"])
    assert shown is not None
    assert (shown.data["priority"], shown.data["title"]) == ("critical", "Lamp, room 204")
    (conflict,) = [
        r for r in laptop.replica.rows("sync_conflicts") if r.data.get("resolvedAt") is None
    ]
    assert (conflict.data["field"], conflict.data["mine"]) == ("priority", "high")
    assert laptop.replica.status().open_conflicts == 1

    laptop.replica.resolve_conflict(conflict.id, "mine")
    report = laptop.engine.sync()
    assert report.ok and report.pushed == 1 and report.conflicts == 0, report
    assert _server_ticket(client, agent, ticket["id"])["priority"] == "high"
    assert laptop.replica.status().open_conflicts == 0
    shown = laptop.replica.row("tickets", ticket["id"])
    assert shown is not None and shown.data["priority"] == "high" and not shown.pending


def test_a_cancelled_sync_leaves_a_consistent_replica_and_the_next_one_carries_on(
    world: World, client: httpx.Client, laptops: Any
) -> None:
    agent, tech, _, teacher = _people(world)
    tickets = [
        new_ticket(client, agent, requesterId=str(teacher.id), assigneeId=str(tech.id))
        for _ in range(3)
    ]
    laptop = laptops(tech)
    laptop.engine.pull_limit = 1
    asked = 0

    def cancelled() -> bool:
        nonlocal asked
        asked += 1
        return asked > 1  # stop after the first page

    report = laptop.engine.sync(cancelled=cancelled)
    assert report.outcome is Outcome.CANCELLED and report.pages == 1
    assert len(laptop.replica.tickets()) == 1
    assert laptop.replica.cursor is not None

    report = laptop.engine.sync()
    assert report.ok and report.pages == 2, report
    assert {r.id for r in laptop.replica.tickets()} == {t["id"] for t in tickets}


def test_more_than_one_push_batch_goes_in_order(
    world: World, client: httpx.Client, laptops: Any
) -> None:
    agent, tech, _, teacher = _people(world)
    ticket = new_ticket(client, agent, requesterId=str(teacher.id), assigneeId=str(tech.id))
    laptop = laptops(tech)
    assert laptop.engine.sync().ok
    for i in range(5):
        laptop.replica.add_comment(ticket["id"], f"Note {i}")
    laptop.engine.push_limit = 2  # the protocol's 100, in small
    seen: list[tuple[str, int, int | None]] = []
    report = laptop.engine.sync(progress=lambda *a: seen.append(a))
    assert report.ok, report.errors
    assert report.pushed == report.applied == 5
    assert [a for a in seen if a[0] == "push"] == [("push", 2, 5), ("push", 4, 5), ("push", 5, 5)]
    assert _server_comments(client, agent, ticket["id"]) == [f"Note {i}" for i in range(5)]


def test_a_busy_server_delays_the_outbox_as_retry_after_says(tmp_path: Path) -> None:
    """No real server answers 429 on demand here: a transport stands in for one."""
    calls: list[str] = []

    def busy(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path == "/api/auth/refresh":
            return httpx.Response(
                200, json={"data": {"accessToken": "a", "refreshToken": "r2", "expiresIn": 900}}
            )
        body = {
            "error": {
                "code": "RATE_LIMIT_EXCEEDED",
                "message": "Slow down",
                "details": {"retryAfter": 120},
                "requestId": "x",
            }
        }
        return httpx.Response(429, json=body, headers={"Retry-After": "120"})

    client = ApiClient("http://sync.test", transport=httpx.MockTransport(busy))
    client.resume("r1")
    path = tmp_path / "replica.sqlite3"
    with Replica.open(path, server_url="http://sync.test", user_id="u1") as replica:
        ticket = {
            "id": "t1",
            "changePosition": 1,
            "deletedAt": None,
            "title": "Lamp",
            "status": "in_progress",
            "commentCount": 0,
        }
        replica.apply_page(
            {"cursor": "p1", "hasMore": False, "changes": [{"table": "tickets", "rows": [ticket]}]}
        )
        replica.add_comment("t1", "On my way")
        engine = SyncEngine(replica, client)
        before = time.time()
        report = engine.sync()
        assert report.outcome is Outcome.SERVER_BUSY
        assert "slow down" in report.errors[0]
        assert calls == ["/api/auth/refresh", "/api/sync/push"], "no pull after a 429"
        assert report.retry_at is not None and report.retry_at >= before + 120
        (pending,) = replica.outbox()
        assert pending.attempts == 1 and pending.next_attempt_at >= before + 120
        assert engine.next_retry_at() == pytest.approx(pending.next_attempt_at)
        calls.clear()
        assert engine.sync().outcome is Outcome.SERVER_BUSY  # the pull, this time
        assert calls == ["/api/sync/pull"], "the outbox waits; the pull is tried"
    client.close()


def test_parts_used_count_once_when_the_push_answer_was_lost(
    world: World, client: httpx.Client, laptops: Any
) -> None:
    """The server applied the part use but its answer never came back: the next pull
    says so (``lastSequence``), so the van's stock is not lowered twice on screen."""
    agent, tech, _, teacher = _people(world)
    ticket = new_ticket(client, agent, requesterId=str(teacher.id), assigneeId=str(tech.id))
    tenant_admin = agent.headers
    van = client.post(
        "/api/inventory/locations",
        json={"name": "Dana's van", "kind": "van", "holderUserId": str(tech.id)},
        headers=tenant_admin,
    )
    assert van.status_code == 201, van.text
    part = client.post(
        "/api/inventory/parts",
        json={"name": "Projector lamp", "partNumber": "LAMP-1"},
        headers=tenant_admin,
    )
    assert part.status_code == 201, part.text
    van_id, part_id = van.json()["data"]["id"], part.json()["data"]["id"]
    stocked = client.post(
        "/api/inventory/movements",
        json={"kind": "receive", "partId": part_id, "locationId": van_id, "quantity": 10},
        headers=tenant_admin,
    )
    assert stocked.status_code == 201, stocked.text
    laptop = laptops(tech)
    assert laptop.engine.sync().ok
    level = laptop.replica.stock_level(part_id, van_id)
    assert level is not None and level.data["quantity"] == 10

    laptop.replica.use_part(ticket["id"], part_id, van_id, 3)
    body = laptop.replica.push_request()
    assert body is not None
    lost = laptop.client.request("POST", "/api/sync/push", json=body)
    assert [r["verdict"] for r in lost["results"]] == ["applied"]
    (pending,) = laptop.replica.outbox()
    # the retry is not due yet, so this sync only pulls
    laptop.replica.record_failure([pending.seq], "answer lost", retry_after=3600)
    report = laptop.engine.sync()
    assert report.ok and report.pushed == 0, report
    level = laptop.replica.stock_level(part_id, van_id)
    assert level is not None and level.data["quantity"] == 7, "lowered once, not twice"

    report = laptop.later().sync()  # the replay gets the stored verdict
    assert report.ok and report.pushed == 1 and report.applied == 1, report
    assert laptop.replica.outbox() == []
    level = laptop.replica.stock_level(part_id, van_id)
    assert level is not None and level.data["quantity"] == 7
    stock = client.get(f"/api/inventory/parts/{part_id}", headers=tenant_admin)
    assert stock.json()["data"]["currentStock"] == 7
    assert len(laptop.replica.rows("stock_movements")) >= 1


def test_verify_finds_a_damaged_replica_and_repairs_it(
    world: World, client: httpx.Client, laptops: Any
) -> None:
    agent, tech, _, teacher = _people(world)
    ticket = new_ticket(client, agent, requesterId=str(teacher.id), assigneeId=str(tech.id))
    _comment(client, agent, ticket["id"], "Bring a ladder")
    laptop = laptops(tech)
    assert laptop.engine.sync().ok
    clean = laptop.engine.sync(verify=True)
    assert clean.ok and clean.verified and clean.mismatched == [], clean
    assert "it matches" in clean.summary()

    # damage: a comment lost, a ticket the server never had, a user row too old
    (comment,) = laptop.replica.rows("ticket_comments")
    with sqlite3.connect(laptop.path) as conn:
        conn.execute("DELETE FROM ticket_comments WHERE id = ?", (comment.id,))
        conn.execute(
            "INSERT INTO tickets (id, change_position, data, fts_id) VALUES (?, 1, ?, 999)",
            ("0190aaaa-0000-7000-8000-000000000001", '{"title": "ghost"}'),
        )
        conn.execute("UPDATE users SET change_position = 0")
    report = laptop.engine.sync(verify=True)
    assert report.ok, report.errors
    assert {"ticket_comments", "tickets", "users"} <= set(report.mismatched)
    assert report.still_mismatched == []
    assert [r.id for r in laptop.replica.tickets()] == [ticket["id"]]
    assert _comments(laptop.replica, ticket["id"]) == ["Bring a ladder"]
    assert laptop.engine.sync(verify=True).mismatched == []


# --------------------------------------------------------------------------- files and devices


class FlakyUploads(ApiClient):
    """Sends the first ``fail`` uploads to a closed port (the storage cannot be reached),
    the rest where the server said."""

    def __init__(self, base_url: str, fail: int = 1) -> None:
        super().__init__(base_url)
        self.fail = fail
        self.uploads: list[str] = []

    def upload(self, url: str, content: Any, **kwargs: Any) -> Any:
        self.uploads.append(url)
        if self.fail > 0:
            self.fail -= 1
            parts = httpx.URL(url)
            closed = httpx.URL(closed_port_url())
            url = str(parts.copy_with(port=closed.port))
        return super().upload(url, content, **kwargs)


def _flaky(laptop: Laptop, fail: int = 1, *, later: bool = False) -> SyncEngine:
    client = FlakyUploads(laptop.server_url, fail)
    client.tokens = laptop.client.tokens
    clock = (lambda: time.time() + LATER) if later else time.time
    return SyncEngine(laptop.replica, client, clock=clock)


def _server_attachments(client: httpx.Client, who: Account, ticket_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/tickets/{ticket_id}/attachments", headers=who.headers)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def _download(client: httpx.Client, who: Account, ticket_id: str, attachment_id: str) -> bytes:
    response = client.get(
        f"/api/tickets/{ticket_id}/attachments/{attachment_id}/download", headers=who.headers
    )
    assert response.status_code == 200, response.text
    return response.content


def test_a_photo_attached_offline_reaches_the_server_once_even_if_the_first_upload_fails(
    world: World, client: httpx.Client, laptops: Any
) -> None:
    from tests.test_uploads import PNG

    agent, tech, _, teacher = _people(world)
    ticket = new_ticket(client, agent, requesterId=str(teacher.id), assigneeId=str(tech.id))
    laptop = laptops(tech)
    assert laptop.engine.sync().ok

    laptop.replica.add_comment(ticket["id"], "Photo of the lamp follows")
    attached = laptop.replica.attach_file(ticket["id"], PNG, "projector.png")
    laptop.replica.add_comment(ticket["id"], "See the photo")
    attachment_id = next(iter(attached.written["ticket_attachments"]))
    assert laptop.replica.attachment_path(attachment_id) is not None  # local at once

    first = _flaky(laptop)
    report = first.sync()
    assert report.outcome is Outcome.OFFLINE and report.uploaded == 0, report
    assert "could not be uploaded" in report.summary()
    # the comment before the photo went; the photo and what follows it wait in order
    assert report.pushed == 1 and _server_comments(client, agent, ticket["id"]) == [
        "Photo of the lamp follows"
    ]
    assert [m.kind for m in laptop.replica.outbox()] == ["ticket.attach", "ticket.comment"]
    (job,) = laptop.replica.uploads()
    assert job.state == "waiting" and job.attempts == 1 and job.last_error
    assert report.retry_at is not None and first.next_retry_at() is not None
    assert _server_attachments(client, agent, ticket["id"]) == []

    retry = _flaky(laptop, fail=0, later=True)
    report = retry.sync()
    assert report.ok and report.uploaded == 1 and report.pushed == 2, report
    assert report.applied == 2 and laptop.replica.outbox() == []
    assert laptop.replica.uploads() == []
    (on_server,) = _server_attachments(client, agent, ticket["id"])
    assert on_server["id"] == attachment_id
    assert on_server["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert _download(client, agent, ticket["id"], attachment_id) == PNG
    row = laptop.replica.row("ticket_attachments", attachment_id)
    assert row is not None and row.synced and row.data["sha256"] == on_server["sha256"]
    assert _server_comments(client, agent, ticket["id"])[-1] == "See the photo"

    again = retry.sync()
    assert again.ok and again.uploaded == 0 and again.pushed == 0
    assert len(_server_attachments(client, agent, ticket["id"])) == 1
    assert len(retry.client.uploads) == 1  # type: ignore[attr-defined]


def test_a_file_on_a_ticket_created_offline_goes_after_the_ticket(
    world: World, client: httpx.Client, laptops: Any
) -> None:
    from tests.test_uploads import PNG

    agent, tech, _, _ = _people(world)
    laptop = laptops(tech)
    assert laptop.engine.sync().ok
    created = laptop.replica.create_ticket("Smartboard pen missing")
    (ticket_id,) = created.written["tickets"]
    laptop.replica.attach_file(ticket_id, PNG, "board.png")
    # nothing can be uploaded for a ticket the server does not know yet: the file
    # waits for the ticket's push, which is what a scheduler is told to wait for
    assert [m["kind"] for m in laptop.replica.pending_mutations()] == ["ticket.create"]
    waiting = laptop.replica.status()
    assert waiting.uploads_waiting == 1 and waiting.next_upload_at is None
    offline = laptop.offline().sync()
    assert offline.outcome is Outcome.OFFLINE and laptop.replica.uploads()[0].attempts == 0
    assert laptop.engine.next_retry_at() == laptop.replica.status().next_attempt_at

    report = laptop.later().sync()
    assert report.ok and report.uploaded == 1, report
    assert report.pushed == 2 and report.applied == 2 and report.rejected == 0
    detail = laptop.replica.ticket(ticket_id)
    assert detail is not None and detail.ticket.data["number"]
    (attachment,) = detail.attachments
    assert attachment.synced and detail.ticket.data["attachmentCount"] == 1
    (on_server,) = _server_attachments(client, agent, ticket_id)
    assert on_server["fileName"] == "board.png" and on_server["id"] == attachment.id


def test_an_attachment_is_downloaded_when_opened_into_the_content_store(
    world: World, client: httpx.Client, laptops: Any
) -> None:
    from tests.test_uploads import PNG, _intent, _put

    agent, tech, _, teacher = _people(world)
    ticket = new_ticket(client, agent, requesterId=str(teacher.id), assigneeId=str(tech.id))
    intent = _intent(client, agent.headers, ticketId=ticket["id"])
    assert _put(client, intent, PNG).status_code == 200
    added = client.post(
        f"/api/tickets/{ticket['id']}/attachments",
        json={"storageKey": intent["storageKey"]},
        headers=agent.headers,
    )
    assert added.status_code == 201, added.text
    attachment_id = added.json()["data"]["id"]
    laptop = laptops(tech)
    assert laptop.engine.sync().ok
    assert laptop.replica.attachment_path(attachment_id) is None  # metadata only

    path = laptop.engine.fetch_attachment(attachment_id)
    assert path.read_bytes() == PNG and path.name == hashlib.sha256(PNG).hexdigest()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert laptop.replica.attachment_path(attachment_id) == path
    assert laptop.offline().fetch_attachment(attachment_id) == path  # no server needed now


def test_devices_are_linked_and_unlinked_offline(
    world: World, client: httpx.Client, laptops: Any
) -> None:
    from tests.test_assets import build_campus, make_asset

    campus = build_campus(client, world, slug=f"lnk{uuid.uuid4().hex[:6]}")
    agent = world.user(campus.tenant.id, Role.AGENT)
    tech = world.user(campus.tenant.id, Role.TECHNICIAN)
    ticket = new_ticket(client, agent, assigneeId=str(tech.id))
    panel = make_asset(client, campus, "MPS-PANEL-7", type="Projector")
    cart = make_asset(client, campus, "CART-3")
    laptop = laptops(tech)
    assert laptop.engine.sync().ok

    def linked_here() -> list[str]:
        detail = laptop.replica.ticket(ticket["id"])
        assert detail is not None
        return sorted(str(r.data["assetId"]) for r in detail.asset_links)

    def linked_there() -> list[str]:
        found = []
        for asset in (panel, cart):
            listed = client.get(f"/api/assets/{asset['id']}/tickets", headers=agent.headers)
            assert listed.status_code == 200, listed.text
            if any(t["id"] == ticket["id"] for t in listed.json()["data"]):
                found.append(asset["id"])
        return sorted(found)

    assert laptop.replica.link_asset(ticket["id"], panel["id"])
    assert not laptop.replica.link_asset(ticket["id"], panel["id"])  # already: nothing queued
    assert linked_here() == [panel["id"]]
    report = laptop.engine.sync()
    assert report.ok and report.applied == 1, report
    assert linked_there() == [panel["id"]] and linked_here() == [panel["id"]]
    (link,) = laptop.replica.ticket(ticket["id"]).asset_links  # type: ignore[union-attr]
    assert link.synced  # the server's row replaced the one made here

    laptop.replica.unlink_asset(ticket["id"], panel["id"])
    laptop.replica.link_asset(ticket["id"], cart["id"])
    assert linked_here() == [cart["id"]]
    report = laptop.engine.sync()
    assert report.ok and report.applied == 2, report
    assert linked_there() == [cart["id"]] and linked_here() == [cart["id"]]
    assert len(laptop.replica.rows("ticket_assets")) == 1
