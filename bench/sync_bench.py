"""The sync protocol under load (issue 15's benchmarks; docs/performance.md, "Sync").

Builds the demo district in a scratch database, bulk-loads one technician's scope
(tickets with comments, home-site assets, the parts catalogue) and the rest of the
organization with SQLAlchemy Core inserts, serves the real application in process
(uvicorn on a thread, as the tests do: every request's server time and SQL
statements are counted), and measures, each client in a subprocess of its own:

1. the initial download of the technician's scope: ``POST /api/sync/pull`` pages,
   gzip on, applied into a real ``sync.replica.Replica``, against two floors
   measured in the same run from the same rows saved to a local file (the rows
   inserted with ``Replica.apply_page``, and plain ``executemany`` into SQLite);
2. a sync after many changes by other technicians, none in this scope, against a
   no-op sync (server time, bytes, statements);
3. a no-op sync when the organization holds a small and a large number of tickets;
4. pushing queued mutations from the replica, and catching up after server changes
   in the scope;
5. simulated technicians syncing at once against a server process (PostgreSQL with
   two workers when ``--postgres`` is given, else SQLite with one).

Usage (``--scale 0.02`` is the smoke run, under a minute)::

    .venv/bin/python bench/sync_bench.py [--scale 1] [--postgres URL] [--profile]
        [--big-tickets N] [--technicians N] [--skip-concurrent]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import math
import os
import pstats
import random
import resource
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TECH_EMAIL = "tech@maplewood.k12.example"
PASSWORD = "Resolve-demo-2026"  # the demo district's password (server.seed)
BATCH = 10_000


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def maxrss_mib() -> float:
    """This process's peak resident memory. VmHWM, not ``ru_maxrss``: Linux keeps the
    latter across exec, so a child of a large parent would report the parent's."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- building the data -------------------------------------------------------------


class Builder:
    """Bulk rows for the demo district, through Core ``insert()`` in big batches, each
    batch's change positions reserved with one ``allocate_change_positions`` call (a
    child's position below its ticket's, as the session hook keeps it)."""

    def __init__(self, db: Any, org_id: uuid.UUID) -> None:
        from sqlalchemy import select

        from server.assets.models import AssetStatusLabel, AssetType
        from server.sites.models import Building, Room, Site
        from server.users.models import User

        self.db = db
        self.org_id = org_id
        self.rng = random.Random(15)
        self.now = datetime.now(UTC)
        with db.transaction(tenant=org_id) as session:
            self.tech = session.scalar(select(User).where(User.email == TECH_EMAIL))
            self.tech_id = self.tech.id
            self.site_id = self.tech.site_id
            people = list(session.execute(select(User.id, User.email, User.role)))
            self.requesters = [p.id for p in people if p.role.value == "requester"]
            self.others = [
                p.id for p in people if p.role.value == "technician" and p.id != self.tech_id
            ]
            self.agent_id = next(p.id for p in people if p.role.value == "agent")
            self.places = list(
                session.execute(
                    select(Room.id, Room.building_id, Building.site_id).join(Building)
                ).all()
            )
            self.home_rooms = [p for p in self.places if p.site_id == self.site_id]
            self.other_site = session.scalar(
                select(Site.id).where(Site.id != self.site_id).order_by(Site.code)
            )
            self.asset_type = session.scalar(select(AssetType.id))
            self.status_label = session.scalar(select(AssetStatusLabel.id))
        self.asset_serial = 0
        self.part_serial = 0

    def _positions(self, session: Any, count: int) -> int:
        """The first of ``count`` new positions."""
        from server.core.tenancy import allocate_change_positions

        return allocate_change_positions(session, self.org_id, count) - count + 1

    def tickets(self, count: int, *, assignees: list[uuid.UUID], comments_each: int = 0) -> None:
        from sqlalchemy import insert

        from common.ids import uuid7
        from server.tickets.demo import _reserve_numbers
        from server.tickets.models import Ticket, TicketComment

        done = 0
        per_batch = max(1, BATCH // (1 + comments_each))
        while done < count:
            size = min(per_batch, count - done)
            with self.db.transaction(tenant=self.org_id) as session:
                first_number = _reserve_numbers(session, self.org_id, "INC", size)
                position = self._positions(session, size * (1 + comments_each))
                comments: list[dict[str, Any]] = []
                tickets: list[dict[str, Any]] = []
                for i in range(size):
                    ticket_id = uuid7()
                    created = self.now - timedelta(minutes=3 * (count - done - i))
                    for c in range(comments_each):
                        comments.append(
                            self._comment(ticket_id, position, created + timedelta(minutes=c))
                        )
                        position += 1
                    place = self.rng.choice(self.places)
                    tickets.append(
                        {
                            "id": ticket_id,
                            "organization_id": self.org_id,
                            "change_position": 0,
                            "number": f"INC-{first_number + i:06d}",
                            "ticket_type": "incident",
                            "title": self.rng.choice(TITLES),
                            "description": self.rng.choice(DESCRIPTIONS),
                            "status": "in_progress",
                            "status_category": "open",
                            "status_changed_at": created,
                            "priority": self.rng.choice(["low", "medium", "high"]),
                            "urgency": "medium",
                            "impact": "medium",
                            "category": "Hardware",
                            "subcategory": "Laptop",
                            "source": "web",
                            "room_id": place.id,
                            "building_id": place.building_id,
                            "site_id": place.site_id,
                            "requester_id": self.rng.choice(self.requesters),
                            "created_by_id": self.agent_id,
                            "assignee_id": self.rng.choice(assignees),
                            "watcher_ids": [],
                            "tags": [],
                            "custom_fields": {},
                            "response_due_at": created + timedelta(hours=8),
                            "resolution_due_at": created + timedelta(days=3),
                            "comment_count": comments_each,
                            "created_at": created,
                            "updated_at": created,
                        }
                    )
                for ticket in tickets:  # above their children
                    ticket["change_position"] = position
                    position += 1
                session.execute(insert(Ticket.__table__), tickets)
                if comments:
                    session.execute(insert(TicketComment.__table__), comments)
            done += size

    def _comment(self, ticket_id: uuid.UUID, position: int, at: datetime) -> dict[str, Any]:
        from common.ids import uuid7

        return {
            "id": uuid7(),
            "organization_id": self.org_id,
            "change_position": position,
            "ticket_id": ticket_id,
            "author_id": self.tech_id,
            "body": self.rng.choice(COMMENTS),
            "is_internal": self.rng.random() < 0.3,
            "mention_ids": [],
            "minutes_worked": 15,
            "created_at": at,
            "updated_at": at,
        }

    def comments_on(self, ticket_ids: list[uuid.UUID], count: int) -> None:
        """``count`` new comments spread over ``ticket_ids``, each moving its ticket."""
        from sqlalchemy import bindparam, insert, update

        from server.tickets.models import Ticket, TicketComment

        t = Ticket.__table__.c
        move = (
            update(Ticket.__table__)
            .where(t.id == bindparam("tid"))
            .values(
                change_position=bindparam("pos"),
                comment_count=t.comment_count + bindparam("added"),
                updated_at=bindparam("at"),
            )
        )
        done = 0
        while done < count:
            size = min(BATCH, count - done)
            targets = [ticket_ids[(done + i) % len(ticket_ids)] for i in range(size)]
            added: dict[uuid.UUID, int] = {}
            for target in targets:
                added[target] = added.get(target, 0) + 1
            with self.db.transaction(tenant=self.org_id) as session:
                position = self._positions(session, size + len(added))
                rows = []
                for target in targets:
                    rows.append(self._comment(target, position, self.now))
                    position += 1
                session.execute(insert(TicketComment.__table__), rows)
                moves = []
                for target, n in added.items():
                    moves.append({"tid": target, "pos": position, "added": n, "at": self.now})
                    position += 1
                session.execute(move, moves)
            done += size

    def assets(self, count: int, rooms: list[Any]) -> None:
        from sqlalchemy import insert

        from common.ids import uuid7
        from server.assets.models import Asset

        done = 0
        while done < count:
            size = min(BATCH, count - done)
            with self.db.transaction(tenant=self.org_id) as session:
                position = self._positions(session, size)
                rows = []
                for i in range(size):
                    self.asset_serial += 1
                    room = self.rng.choice(rooms)
                    rows.append(
                        {
                            "id": uuid7(),
                            "organization_id": self.org_id,
                            "change_position": position + i,
                            "asset_tag": f"BENCH-{self.asset_serial:07d}",
                            "serial_number": f"SN-BENCH-{self.asset_serial:09d}",
                            "name": "Chromebook 3100",
                            "asset_type_id": self.asset_type,
                            "manufacturer": "Dell",
                            "model": "Chromebook 3100",
                            "site_id": room.site_id,
                            "building_id": room.building_id,
                            "room_id": room.id,
                            "status_label_id": self.status_label,
                            "purchase_date": (self.now - timedelta(days=400)).date(),
                            "purchase_cost_cents": 27_900,
                            "custom_fields": {},
                            "created_at": self.now,
                            "updated_at": self.now,
                        }
                    )
                session.execute(insert(Asset.__table__), rows)
            done += size

    def parts(self, count: int) -> None:
        from sqlalchemy import insert

        from common.ids import uuid7
        from server.inventory.models import Part

        with self.db.transaction(tenant=self.org_id) as session:
            position = self._positions(session, count)
            rows = []
            for i in range(count):
                self.part_serial += 1
                rows.append(
                    {
                        "id": uuid7(),
                        "organization_id": self.org_id,
                        "change_position": position + i,
                        "name": f"Replacement part {self.part_serial}",
                        "part_number": f"BP-{self.part_serial:06d}",
                        "manufacturer": "Acme",
                        "category": "Laptop parts",
                        "description": "A spare kept for field repairs",
                        "unit_cost_cents": 1_250,
                        "compatible_models": ["Chromebook 3100"],
                        "reorder_point": 5,
                        "reorder_quantity": 20,
                        "status": "active",
                        "on_hand": 0,
                        "created_at": self.now,
                        "updated_at": self.now,
                    }
                )
            session.execute(insert(Part.__table__), rows)

    def technicians(self, count: int, site_id: uuid.UUID | None) -> list[tuple[uuid.UUID, str]]:
        """``count`` more technicians with the demo password (one hash for all)."""
        from sqlalchemy import insert, select

        from common.enums import Role
        from common.ids import uuid7
        from server.users.models import User

        with self.db.transaction(tenant=self.org_id) as session:
            password_hash = session.scalar(
                select(User.password_hash).where(User.id == self.tech_id)
            )
            position = self._positions(session, count)
            rows = []
            made = []
            for i in range(count):
                user_id, email = uuid7(), f"bench-tech-{i:04d}@maplewood.k12.example"
                made.append((user_id, email))
                rows.append(
                    {
                        "id": user_id,
                        "organization_id": self.org_id,
                        "change_position": position + i,
                        "email": email,
                        "first_name": "Bench",
                        "last_name": f"Technician {i}",
                        "role": Role.TECHNICIAN,
                        "is_active": True,
                        "site_id": site_id,
                        "password_hash": password_hash,
                        "password_changed_at": self.now,
                        "failed_login_count": 0,
                        "mfa_enabled": False,
                        "mfa_backup_codes": [],
                        "created_at": self.now,
                        "updated_at": self.now,
                    }
                )
            session.execute(insert(User.__table__), rows)
        return made

    def ticket_ids(self, assignee: uuid.UUID | None = None, *, others: bool = False) -> list[Any]:
        from sqlalchemy import select

        from server.tickets.models import Ticket

        t = Ticket.__table__.c
        stmt = select(t.id).where(t.organization_id == self.org_id)
        if others:
            stmt = stmt.where(t.assignee_id != self.tech_id)
        elif assignee is not None:
            stmt = stmt.where(t.assignee_id == assignee)
        with self.db.engine.connect() as conn:
            return list(conn.execute(stmt).scalars())

    def ticket_count(self) -> int:
        from sqlalchemy import func, select

        from server.tickets.models import Ticket

        with self.db.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(Ticket.__table__)).scalar())


TITLES = [
    "Projector in room 101 will not turn on",
    "Chromebook screen cracked",
    "Printer jams on every second page",
    "Wi-Fi drops in the library",
    "Smartboard pen not calibrated",
    "Teacher laptop will not boot",
]
DESCRIPTIONS = [
    "Started this morning before first period. Tried a restart, no change.",
    "A student dropped it in the hallway; the hinge is loose as well.",
    "Happens with every tray. The display shows no error.",
    "",
]
COMMENTS = [
    "On my way, about 20 minutes.",
    "Replaced the lamp; lamp hours were at 4,900.",
    "Ordered a replacement screen from the depot.",
    "Reseated the cable in the IDF closet; testing with the teacher now.",
    "Could not reproduce. Leaving it open until Friday in case it happens again.",
    "Swapped the unit with a loaner from tech storage.",
]


# --- the server in process ---------------------------------------------------------


class Timed:
    """ASGI wrapper: each HTTP request's time in the server (until its last byte is
    handed to the socket) and its SQL statements."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.statements = 0
        self.requests: list[tuple[str, float, int]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        before = self.statements
        started = time.perf_counter()
        await self.app(scope, receive, send)
        self.requests.append(
            (scope["path"], time.perf_counter() - started, self.statements - before)
        )


@contextlib.contextmanager
def serving_in_process(app: Any) -> Iterator[str]:
    import uvicorn

    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise SystemExit("the server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def login(base: str, email: str) -> str:
    answer = httpx.post(
        base + "/api/auth/login", json={"email": email, "password": PASSWORD}, timeout=60
    )
    answer.raise_for_status()
    return str(answer.json()["data"]["accessToken"])


# --- clients (each run in a subprocess of its own: ``--client TASK``) ---------------


def _http(url: str, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=url,
        headers={"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"},
        timeout=600,
    )


def _row_count(data: dict[str, Any]) -> int:
    return sum(len(change["rows"]) for change in data["changes"])


def client_pull(task: dict[str, Any]) -> dict[str, Any]:
    """Pull until ``hasMore`` is false, applying every page into the replica at
    ``task['replica']`` (made when missing); with ``pages_out``, each answer's body is
    also written to that file (one JSON document a line), outside the timing."""
    from sync.replica import Replica

    path = Path(task["replica"])
    replica = Replica.open(path, server_url=task["url"], user_id=task["user_id"])
    baseline = maxrss_mib()
    saved = open(task["pages_out"], "wb") if task.get("pages_out") else None  # noqa: SIM115
    figures = dict(pages=0, rows=0, wire=0, raw=0, request=0.0, parse=0.0, apply=0.0, save=0.0)
    cursor = replica.cursor
    started = time.perf_counter()
    with _http(task["url"], task["token"]) as http:
        while True:
            body = {
                "protocolVersion": 1,
                "deviceId": replica.device_id,
                "cursor": cursor,
                "limit": task["limit"],
            }
            t0 = time.perf_counter()
            answer = http.post("/api/sync/pull", json=body)
            content = answer.content
            t1 = time.perf_counter()
            if answer.status_code != 200:
                raise SystemExit(f"pull: {answer.status_code} {content[:300]!r}")
            data = json.loads(content)["data"]
            t2 = time.perf_counter()
            replica.apply_page(data)
            t3 = time.perf_counter()
            if saved is not None:
                saved.write(content + b"\n")
            t4 = time.perf_counter()
            figures["request"] += t1 - t0
            figures["parse"] += t2 - t1
            figures["apply"] += t3 - t2
            figures["save"] += t4 - t3
            figures["pages"] += 1
            figures["rows"] += _row_count(data)
            figures["wire"] += answer.num_bytes_downloaded
            figures["raw"] += len(content)
            cursor = data["cursor"]
            if not data["hasMore"]:
                break
        hydrate = replica.hydrate_queue()
        figures["hydrate_queued"] = len(hydrate)
    figures["wall"] = time.perf_counter() - started - figures["save"]
    figures["peak_rss_mib"] = maxrss_mib()
    figures["baseline_rss_mib"] = baseline
    figures["cursor"] = cursor
    figures["device"] = replica.device_id
    replica.close()
    if saved is not None:
        saved.close()
    return figures


def client_floor(task: dict[str, Any]) -> dict[str, Any]:
    """The same rows from the local file: into a fresh replica with ``apply_page``,
    and with plain ``executemany`` into a fresh SQLite file (id, position, JSON)."""
    from sync.replica import Replica

    pages_file = Path(task["pages"])
    work = Path(task["workdir"])
    started = time.perf_counter()
    with pages_file.open("rb") as fh:
        pages = [json.loads(line)["data"] for line in fh]
    parse = time.perf_counter() - started

    replica = Replica.open(work / "floor-replica.sqlite3", server_url="http://floor", user_id="x")
    t0 = time.perf_counter()
    for page in pages:
        replica.apply_page(page)
    apply = time.perf_counter() - t0
    replica.close()

    t0 = time.perf_counter()
    with pages_file.open("rb") as fh:
        pages = [json.loads(line)["data"] for line in fh]
    conn = sqlite3.connect(work / "floor-plain.sqlite3", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("BEGIN")
    made: set[str] = set()
    for page in pages:
        for change in page["changes"]:
            table = change["table"]
            if table not in made:
                conn.execute(
                    f'CREATE TABLE "{table}" (id TEXT PRIMARY KEY, change_position INTEGER, '
                    "data TEXT NOT NULL)"
                )
                made.add(table)
            conn.executemany(
                f'INSERT OR REPLACE INTO "{table}" VALUES (?, ?, ?)',
                [(r["id"], r["changePosition"], json.dumps(r)) for r in change["rows"]],
            )
    conn.execute("COMMIT")
    conn.close()
    plain = time.perf_counter() - t0
    return {"parse": parse, "apply": apply, "plain": plain, "pages": len(pages)}


def client_push(task: dict[str, Any]) -> dict[str, Any]:
    """Queue ``count`` local edits (half comments, half priority changes), then push
    the outbox 100 at a time, recording each answer, until it is empty."""
    from sync.replica import Replica

    replica = Replica.open(Path(task["replica"]))
    rows = replica.tickets(limit=task["count"], sort="number")
    priorities = ["low", "medium", "high", "critical"]
    t0 = time.perf_counter()
    for i in range(task["count"]):
        ticket = rows[i % len(rows)]
        if i % 2:
            current = ticket.data.get("priority")
            new = priorities[(priorities.index(current) + 1) % 4 if current in priorities else 0]
            replica.update_ticket(ticket.id, {"priority": new})
        else:
            replica.add_comment(ticket.id, f"Bench note {i}", minutes_worked=5)
    edits = time.perf_counter() - t0
    verdicts: dict[str, int] = {}
    pushes = 0
    t0 = time.perf_counter()
    with _http(task["url"], task["token"]) as http:
        while (request := replica.push_request(limit=100)) is not None:
            answer = http.post("/api/sync/push", json=request)
            if answer.status_code != 200:
                raise SystemExit(f"push: {answer.status_code} {answer.text[:300]}")
            data = answer.json()["data"]
            for result in data["results"]:
                verdicts[result["verdict"]] = verdicts.get(result["verdict"], 0) + 1
                if result["verdict"] == "rejected":
                    print(result.get("code"), result.get("message"), file=sys.stderr)
            replica.record_results(data)
            pushes += 1
    push = time.perf_counter() - t0
    left = len(replica.outbox())
    replica.close()
    return {"edits": edits, "push": push, "pushes": pushes, "verdicts": verdicts, "left": left}


def client_load(task: dict[str, Any]) -> dict[str, Any]:
    """Simulated technicians, one thread each: a first download (pages read, not
    stored), then ``rounds`` of one comment pushed and a pull to the end."""
    from common.ids import uuid7

    def pull_all(http: httpx.Client, device: str, cursor: str | None, lat: list[float]) -> str:
        while True:
            t0 = time.perf_counter()
            answer = http.post(
                "/api/sync/pull",
                json={"protocolVersion": 1, "deviceId": device, "cursor": cursor, "limit": 500},
            )
            lat.append(time.perf_counter() - t0)
            if answer.status_code != 200:
                raise RuntimeError(f"pull {answer.status_code}")
            data = answer.json()["data"]
            cursor = data["cursor"]
            if not data["hasMore"]:
                return str(cursor)

    barrier = threading.Barrier(len(task["techs"]))
    results: list[dict[str, Any]] = []
    lock = threading.Lock()

    def technician(tech: dict[str, Any]) -> None:
        first: list[float] = []
        steady: list[float] = []
        errors = 0
        seq = 0
        device = str(uuid7())
        cursor = None
        with _http(task["url"], tech["token"]) as http:
            barrier.wait()
            t_first = time.perf_counter()
            try:
                cursor = pull_all(http, device, None, first)
            except (RuntimeError, httpx.HTTPError) as exc:
                print(f"error: {exc!r}", file=sys.stderr)
                errors += 1
            t_first = time.perf_counter() - t_first
            barrier.wait()
            t_steady = time.perf_counter()
            for i in range(task["rounds"]):
                seq += 1
                mutation = {
                    "id": str(uuid7()),
                    "seq": seq,
                    "kind": "ticket.comment",
                    "at": datetime.now(UTC).isoformat(),
                    "commentId": str(uuid7()),
                    "ticketId": tech["tickets"][i % len(tech["tickets"])],
                    "body": f"Round {i}: checked on site",
                    "internal": False,
                    "minutesWorked": 5,
                }
                try:
                    t0 = time.perf_counter()
                    answer = http.post(
                        "/api/sync/push",
                        json={
                            "protocolVersion": 1,
                            "deviceId": device,
                            "sentAt": datetime.now(UTC).isoformat(),
                            "mutations": [mutation],
                        },
                    )
                    steady.append(time.perf_counter() - t0)
                    verdict = answer.json()["data"]["results"][0]["verdict"]
                    if answer.status_code != 200 or verdict != "applied":
                        print(answer.text[:500], file=sys.stderr)
                        errors += 1
                    cursor = pull_all(http, device, cursor, steady)
                except (RuntimeError, httpx.HTTPError, KeyError) as exc:
                    print(f"error: {exc!r}", file=sys.stderr)
                    errors += 1
            t_steady = time.perf_counter() - t_steady
        with lock:
            results.append(
                {
                    "first": first,
                    "steady": steady,
                    "errors": errors,
                    "t_first": t_first,
                    "t_steady": t_steady,
                }
            )

    threads = [threading.Thread(target=technician, args=(t,)) for t in task["techs"]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"results": results}


CLIENT_TASKS = {
    "pull": client_pull,
    "floor": client_floor,
    "push": client_push,
    "load": client_load,
}


def run_client(name: str, task: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Run a client task in a fresh Python process; its figures come back as JSON."""
    task_file = workdir / f"task-{name}-{uuid.uuid4().hex[:6]}.json"
    task_file.write_text(json.dumps(task))
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--client", name, str(task_file)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise SystemExit(f"client {name} failed:\n{done.stderr[-3000:]}")
    if done.stderr:
        log(f"client {name} said:\n{done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# --- measuring ---------------------------------------------------------------------


def pull_once(http: httpx.Client, timed: Timed, device: str, cursor: str | None) -> dict[str, Any]:
    """One pull: the server's time and statements, the bytes on the wire."""
    before = len(timed.requests)
    answer = http.post(
        "/api/sync/pull",
        json={"protocolVersion": 1, "deviceId": device, "cursor": cursor, "limit": 500},
    )
    answer.raise_for_status()
    _, seconds, statements = timed.requests[before]
    data = answer.json()["data"]
    return {
        "server_ms": seconds * 1e3,
        "statements": statements,
        "wire": answer.num_bytes_downloaded,
        "raw": len(answer.content),
        "rows": _row_count(data),
        "cursor": data["cursor"],
        "has_more": data["hasMore"],
    }


def pull_figures(
    http: httpx.Client, timed: Timed, device: str, cursor: str | None, repeat: int
) -> dict[str, Any]:
    """The same pull ``repeat`` times (a pull does not move the cursor it is given):
    the median server time, and the bytes and statements of one."""
    pull_once(http, timed, device, cursor)  # warm
    runs = [pull_once(http, timed, device, cursor) for _ in range(repeat)]
    figures = dict(runs[-1])
    figures["server_ms"] = statistics.median(r["server_ms"] for r in runs)
    return figures


def gzip_cost(pages_file: Path) -> float:
    """What compressing the download's bodies costs the server (level 6, as served)."""
    import gzip

    with pages_file.open("rb") as fh:
        bodies = [line.rstrip(b"\n") for line in fh]
    started = time.perf_counter()
    for body in bodies:
        gzip.compress(body, compresslevel=6)
    return time.perf_counter() - started


@contextlib.contextmanager
def profiled_endpoints() -> Iterator[cProfile.Profile]:
    """cProfile every endpoint's unit of work (it runs in the thread pool)."""
    import server.core.routing

    original = server.core.routing.run_in_threadpool
    profile = cProfile.Profile()

    async def wrapped(func: Any, *args: Any, **kwargs: Any) -> Any:
        return await original(profile.runcall, func, *args, **kwargs)

    server.core.routing.run_in_threadpool = wrapped  # type: ignore[assignment]
    try:
        yield profile
    finally:
        server.core.routing.run_in_threadpool = original  # type: ignore[assignment]


def top_functions(profile: cProfile.Profile, lines: int, where: str = "/server/") -> str:
    import io

    buffer = io.StringIO()
    stats = pstats.Stats(profile, stream=buffer)
    stats.sort_stats("cumulative").print_stats(where, lines)
    return buffer.getvalue()


def profile_download(
    app: Any, token: str, cursors: list[str | None], device: str, gzip_seconds: float
) -> str:
    """Replay the download's pulls through the ASGI app on this thread (endpoints run
    inline, not in the thread pool): once with clocks around the service's ``pull``
    and the wire projection, which splits the time without a profiler's overhead,
    then once under cProfile for the functions that cost most."""
    import io

    import server.core.routing
    import server.sync.service
    import server.sync.wire
    from bench.request_cost import call

    headers = [
        (b"authorization", f"Bearer {token}".encode()),
        (b"content-type", b"application/json"),
        (b"accept-encoding", b"gzip"),
    ]

    async def replay(device: str) -> None:
        for cursor in cursors:
            body = {"protocolVersion": 1, "deviceId": device, "cursor": cursor, "limit": 500}
            status, _ = await call(
                app, "POST", "/api/sync/pull", headers, json.dumps(body).encode()
            )
            assert status == 200, status

    async def inline(func: Any, *args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    clocks = {"pull": 0.0, "rows": 0.0}

    def clocked(name: str, func: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            if name == "rows":  # fetch (and convert types) outside the projection's clock
                args = (args[0], list(args[1]))
            started = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                clocks[name] += time.perf_counter() - started

        return run

    service, projection = server.sync.service, server.sync.wire.Projection
    originals = (server.core.routing.run_in_threadpool, service.pull, projection.rows)
    server.core.routing.run_in_threadpool = inline  # type: ignore[assignment]
    try:
        service.pull = clocked("pull", service.pull)  # type: ignore[assignment]
        projection.rows = clocked("rows", projection.rows)  # type: ignore[method-assign]
        started = time.perf_counter()
        asyncio.run(replay(device))
        total = time.perf_counter() - started
        service.pull, projection.rows = originals[1:]  # type: ignore[method-assign]
        profile = cProfile.Profile()
        profile.enable()
        asyncio.run(replay(str(uuid.uuid4())))
        profile.disable()
    finally:
        server.core.routing.run_in_threadpool = originals[0]  # type: ignore[assignment]
        service.pull, projection.rows = originals[1:]  # type: ignore[method-assign]
    parts = [
        ("queries: statements, fetching, type conversion", clocks["pull"] - clocks["rows"]),
        ("wire projection (Python values to camelCase dicts)", clocks["rows"]),
        ("gzip level 6 (timed apart, on the same bodies)", gzip_seconds),
        ("the rest: response model, JSON encoding, auth", total - clocks["pull"] - gzip_seconds),
    ]
    out = [f"server time of the download's {len(cursors)} pulls, replayed ({total:.2f} s):"]
    for name, seconds in parts:
        out.append(f"  {name:50} {seconds:7.2f} s {100 * seconds / total:5.1f} %")
    buffer = io.StringIO()
    pstats.Stats(profile, stream=buffer).sort_stats("tottime").print_stats(20)
    out.append(buffer.getvalue())
    return "\n".join(out)


# --- the run -----------------------------------------------------------------------


def fmt_bytes(n: float) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.2f} kB"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every row count")
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL database to empty and use")
    parser.add_argument("--limit", type=int, default=500, help="tickets a pull page")
    parser.add_argument(
        "--others", type=int, help="out-of-scope comment inserts (default 100,000 x scale)"
    )
    parser.add_argument(
        "--big-tickets", type=int, help="the large organization (default 1,000,000 x scale)"
    )
    parser.add_argument(
        "--technicians", type=int, help="simulated at once (default 100 x scale, at least 2)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="push+pull rounds each")
    parser.add_argument("--workers", type=int, help="server processes for the concurrent run")
    parser.add_argument("--repeat", type=int, default=30, help="repeats of each small pull")
    parser.add_argument("--profile", action="store_true", help="cProfile the download's pulls")
    parser.add_argument(
        "--analyze", action="store_true", help="run ANALYZE on the SQLite server after loading"
    )
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--skip-concurrent", action="store_true")
    parser.add_argument("--only-concurrent", action="store_true", help="only measurement 5")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--client", nargs=2, metavar=("TASK", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        task = json.loads(Path(args.client[1]).read_text())
        print(json.dumps(CLIENT_TASKS[args.client[0]](task)))
        return
    workdir = Path(tempfile.mkdtemp(prefix="resolve-sync-bench-"))
    try:
        run(args, workdir)
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def scaled(args: argparse.Namespace, n: int) -> int:
    return max(1, round(n * args.scale))


def run(args: argparse.Namespace, workdir: Path) -> None:
    os.environ.setdefault("RESOLVE_ENVIRONMENT", "test")
    from sqlalchemy import event

    import server.models  # noqa: F401 - the whole schema, so foreign keys resolve
    from server.app import create_app
    from server.core.config import Settings
    from server.core.engine import Database
    from server.core.security import configure_password_hashing
    from server.core.tenancy import ALL_TENANTS
    from server.migrations import upgrade
    from server.seed import populate_demo, seed_demo

    url = args.postgres or f"sqlite:///{workdir / 'server.db'}"
    if args.postgres:
        from sqlalchemy import create_engine, text

        engine = create_engine(args.postgres)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    settings = Settings(
        database_url=url,
        data_dir=workdir,
        environment="test",
        background_jobs=False,
        password_time_cost=1,
        password_memory_kib=8,
        password_parallelism=1,
        rate_limit_enabled=False,
        log_json=False,
        log_level="WARNING",
    )
    configure_password_hashing(settings.password_cost)
    kind = "PostgreSQL" if args.postgres else "SQLite"
    n_tickets, n_comments = scaled(args, 5_000), scaled(args, 50_000)
    n_assets, n_parts = scaled(args, 20_000), scaled(args, 2_000)
    n_others = args.others if args.others is not None else scaled(args, 100_000)
    n_big = args.big_tickets if args.big_tickets is not None else scaled(args, 1_000_000)
    n_small = scaled(args, 10_000)
    started = time.monotonic()
    upgrade(url)
    db = Database(url)
    with db.transaction(tenant=ALL_TENANTS) as session:
        org, _, _ = seed_demo(session)
        org_id = org.id
    populate_demo(db, org_id, demo_tickets=0)
    build = Builder(db, org_id)
    build.tickets(n_tickets, assignees=[build.tech_id], comments_each=n_comments // n_tickets)
    build.assets(n_assets, build.home_rooms)
    build.parts(n_parts)
    # the rest of the organization: other technicians' tickets, to n_small in all
    build.tickets(max(0, n_small - build.ticket_count()), assignees=build.others)
    log(
        f"{kind}: built the district in {time.monotonic() - started:.0f} s "
        f"({build.ticket_count():,} tickets)"
    )

    analyze(db, args)
    timed = Timed(create_app(settings, database=db))

    @event.listens_for(db.engine, "before_cursor_execute")
    def _count(*_: Any) -> None:
        timed.statements += 1

    figures: dict[str, Any] = {"kind": kind, "scale": args.scale}
    if not args.only_concurrent:
        with serving_in_process(timed) as base:
            token = login(base, TECH_EMAIL)
            common = {
                "url": base,
                "token": token,
                "user_id": str(build.tech_id),
                "limit": args.limit,
            }

            # 1. the initial download, and its floors (after one small pull of another
            # device, so the server has compiled its statements as a running one has)
            with _http(base, token) as http:
                http.post(
                    "/api/sync/pull",
                    json={"protocolVersion": 1, "deviceId": str(uuid.uuid4()), "limit": 1},
                ).raise_for_status()
            replica = workdir / "tech.sqlite3"
            pages_file = workdir / "pages.jsonl"
            before = len(timed.requests)
            download = run_client(
                "pull", {**common, "replica": str(replica), "pages_out": str(pages_file)}, workdir
            )
            served = timed.requests[before:]
            download["server"] = sum(s for _, s, _ in served)
            download["limit"] = args.limit
            download["statements"] = sum(n for _, _, n in served)
            assert download["hydrate_queued"] == 0, "a first download needs no hydration"
            floor = run_client(
                "floor", {"pages": str(pages_file), "workdir": str(workdir)}, workdir
            )
            figures["download"], figures["floor"] = download, floor
            report_download(download, floor)
            if args.profile:
                cursors: list[str | None] = [None]
                with pages_file.open("rb") as fh:
                    cursors += [json.loads(line)["data"]["cursor"] for line in fh][:-1]
                seconds = gzip_cost(pages_file)
                report = profile_download(timed.app, token, cursors, str(uuid.uuid4()), seconds)
                print(report, flush=True)

            # 2. a sync after many changes by others, none in this scope, and a no-op sync
            with _http(base, token) as http:
                device = download["device"]
                others = build.ticket_ids(others=True)
                started = time.monotonic()
                build.comments_on(others, n_others)
                log(f"{n_others:,} out-of-scope comments in {time.monotonic() - started:.0f} s")
                after_many = pull_figures(http, timed, device, download["cursor"], args.repeat)
                noop = pull_figures(http, timed, device, after_many["cursor"], args.repeat)
                build.comments_on(others[:1], 1)
                after_one = pull_figures(http, timed, device, noop["cursor"], args.repeat)
                figures["others"] = {"noop": noop, "one": after_one, "many": after_many}
                report_others(n_others, noop, after_one, after_many)

            # 4. pushing queued mutations, then catching up after server changes in scope
            n_push = scaled(args, 1_000)
            before = len(timed.requests)
            pushed = run_client(
                "push", {**common, "replica": str(replica), "count": n_push}, workdir
            )
            pushed["server"] = sum(s for _, s, _ in timed.requests[before:])
            pushed["statements"] = sum(n for _, _, n in timed.requests[before:])
            if args.profile:
                with profiled_endpoints() as profile:
                    task = {**common, "replica": str(replica), "count": max(2, n_push // 5)}
                    run_client("push", task, workdir)
                print("\nserver profile of a push of", task["count"], "mutations:")
                print(top_functions(profile, 45), flush=True)
            mine = build.ticket_ids(build.tech_id)
            n_catch = scaled(args, 10_000)
            build.comments_on(mine, n_catch)
            before = len(timed.requests)
            catchup = run_client("pull", {**common, "replica": str(replica)}, workdir)
            catchup["server"] = sum(s for _, s, _ in timed.requests[before:])
            figures["push"], figures["catchup"] = pushed, catchup
            report_push(n_push, pushed, n_catch, catchup)

            # 3. a no-op sync in a small and a large organization; the first page of a
            # first download; a sync after the organization grew, none of it in scope
            with _http(base, token) as http:
                small_count = build.ticket_count()
                small = pull_figures(http, timed, device, catchup["cursor"], args.repeat)
                first_small = pull_figures(http, timed, str(uuid.uuid4()), None, 3)
                if not args.skip_big:
                    started = time.monotonic()
                    build.tickets(max(0, n_big - small_count), assignees=build.others)
                    big_count = build.ticket_count()
                    log(f"grew to {big_count:,} tickets in {time.monotonic() - started:.0f} s")
                    analyze(db, args)
                    grown = pull_figures(http, timed, device, small["cursor"], 3)
                    big = pull_figures(http, timed, device, grown["cursor"], args.repeat)
                    first_big = pull_figures(http, timed, str(uuid.uuid4()), None, 3)
                    figures["sizes"] = {
                        "small": (small_count, small, first_small),
                        "big": (big_count, big, first_big, grown),
                    }
                    report_sizes(small_count, small, first_small, big_count, big, first_big, grown)

    # 5. technicians at once, against a server process
    if not args.skip_concurrent:
        figures["load"] = concurrent(args, build, settings, workdir)
    (workdir / "figures.json").write_text(json.dumps(figures, default=str, indent=1))
    if args.keep:
        log(f"figures in {workdir / 'figures.json'}")


def analyze(db: Any, args: argparse.Namespace) -> None:
    """Planner statistics: PostgreSQL always (autovacuum would get there), SQLite only
    with ``--analyze`` (the server never runs ANALYZE on its own SQLite file)."""
    if args.postgres:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    elif args.analyze:
        with db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()


def concurrent(args: argparse.Namespace, build: Builder, settings: Any, workdir: Path) -> Any:
    n = args.technicians if args.technicians is not None else max(2, scaled(args, 100))
    workers = args.workers or (2 if args.postgres else 1)
    techs = build.technicians(n, build.other_site)
    per_tech = 20
    for user_id, _ in techs:
        build.tickets(per_tech, assignees=[user_id], comments_each=5)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "RESOLVE_DATABASE_URL": settings.database_url,
        "RESOLVE_DATA_DIR": str(workdir),
        "RESOLVE_ENVIRONMENT": "test",
        "RESOLVE_RATE_LIMIT_ENABLED": "false",
        "RESOLVE_BACKGROUND_JOBS": "false",
        "RESOLVE_LOG_LEVEL": "WARNING",
        "RESOLVE_PASSWORD_TIME_COST": "1",
        "RESOLVE_PASSWORD_MEMORY_KIB": "8",
        "RESOLVE_PASSWORD_PARALLELISM": "1",
    }
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server_log = (workdir / "server.log").open("wb")
    proc = subprocess.Popen(
        # this tree's code (the installed ``resolve-server`` may point at another)
        [sys.executable, "-m", "server", "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=server_log,
        stderr=server_log,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base + "/api/platform/health", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("the server process did not start") from None
                time.sleep(0.2)
        task = {"url": base, "rounds": args.rounds, "techs": []}
        for user_id, email in techs:
            tickets = [str(t) for t in build.ticket_ids(user_id)]
            task["techs"].append({"token": login(base, email), "tickets": tickets})
        load = run_client("load", task, workdir)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(20)
        server_log.close()
    results = load["results"]
    kind = "PostgreSQL" if args.postgres else "SQLite"
    print(f"\n5. {n} technicians at once, {kind}, {workers} worker(s)", flush=True)
    for phase, label in (("first", "first downloads"), ("steady", "push 1 comment + pull")):
        latencies = sorted(x for r in results for x in r[phase])
        wall = max(r[f"t_{phase}"] for r in results)
        p95 = latencies[max(0, math.ceil(0.95 * len(latencies)) - 1)] if latencies else 0.0
        p50 = latencies[max(0, math.ceil(0.5 * len(latencies)) - 1)] if latencies else 0.0
        print(
            f"  {label:24} {len(latencies):6d} requests in {wall:6.2f} s: "
            f"{len(latencies) / wall:7.1f} req/s, p50 {p50 * 1e3:7.1f} ms, "
            f"p95 {p95 * 1e3:7.1f} ms"
        )
    errors = sum(r["errors"] for r in results)
    print(f"  errors: {errors}", flush=True)
    if errors:
        logged = (workdir / "server.log").read_text(errors="replace").splitlines()
        for line in [line for line in logged if '"ERROR"' in line][:3]:
            log(f"server: {line[:600]}")
    return load


def report_download(d: dict[str, Any], f: dict[str, Any]) -> None:
    plain = f["parse"] + f["plain"]
    replica = f["parse"] + f["apply"]
    print(
        f"\n1. initial download: {d['rows']:,} rows in {d['pages']} pages "
        f"(limit {d['limit']} tickets a page)",
        flush=True,
    )
    print(f"  wall time            {d['wall']:8.2f} s   ({d['rows'] / d['wall']:,.0f} rows/s)")
    print(f"    request+transfer   {d['request']:8.2f} s   (server {d['server']:.2f} s)")
    print(f"    JSON parse         {d['parse']:8.2f} s")
    print(f"    Replica.apply_page {d['apply']:8.2f} s")
    print(
        f"  bytes on the wire    {fmt_bytes(d['wire']):>10}  (uncompressed {fmt_bytes(d['raw'])})"
    )
    print(
        f"  client peak RSS      {d['peak_rss_mib']:8.0f} MiB (after imports and open: "
        f"{d['baseline_rss_mib']:.0f} MiB)"
    )
    print(f"  server statements    {d['statements']:8d}")
    print(f"  floor, plain executemany from the file  {plain:6.2f} s (parse {f['parse']:.2f} s)")
    print(f"  floor, Replica.apply_page from the file {replica:6.2f} s")
    print(f"  ratio download / plain floor            {d['wall'] / plain:6.2f}  (goal: 3)")
    print(f"  ratio download / replica floor          {d['wall'] / replica:6.2f}", flush=True)


def _pull_row(name: str, r: dict[str, Any], reference: dict[str, Any]) -> str:
    return (
        f"  {name:44} {r['server_ms']:8.2f} ms {r['wire']:7d} B {r['statements']:4d} stmts "
        f"{r['server_ms'] / reference['server_ms']:6.2f}x"
    )


def report_others(n: int, noop: Any, one: Any, many: Any) -> None:
    print("\n2. a sync after changes by others outside the scope (median server time)")
    print(_pull_row("no-op sync (reference)", noop, noop))
    print(_pull_row("after 1 out-of-scope change", one, noop))
    print(_pull_row(f"after {n:,} out-of-scope changes", many, noop), flush=True)


def report_push(n: int, p: dict[str, Any], n_catch: int, c: dict[str, Any]) -> None:
    print("\n4. push and catch-up")
    print(f"  {n:,} local edits queued   {p['edits']:7.2f} s")
    print(
        f"  pushed in {p['pushes']} requests    {p['push']:7.2f} s  ({n / p['push']:,.0f} "
        f"mutations/s; verdicts {p['verdicts']}; left in outbox {p['left']})"
    )
    print(f"    server time {p['server']:.2f} s, {p['statements']:,} statements")
    print(
        f"  catch-up after {n_catch:,} server changes in scope: {c['wall']:.2f} s, "
        f"{c['pages']} pages, {c['rows']:,} rows, {fmt_bytes(c['wire'])} on the wire, "
        f"server {c['server']:.2f} s, hydrations queued {c['hydrate_queued']}",
        flush=True,
    )


def report_sizes(
    small_n: int, small: Any, first_small: Any, big_n: int, big: Any, first_big: Any, grown: Any
) -> None:
    print("\n3. by the organization's size (median server time)")
    print(_pull_row(f"no-op sync, {small_n:,} tickets (reference)", small, small))
    print(_pull_row(f"no-op sync, {big_n:,} tickets", big, small))
    print(_pull_row(f"first download's first page, {small_n:,} tickets", first_small, small))
    print(_pull_row(f"first download's first page, {big_n:,} tickets", first_big, small))
    print(
        _pull_row(f"sync after {big_n - small_n:,} tickets added, none in scope", grown, small),
        flush=True,
    )


if __name__ == "__main__":
    main()
