"""The offline replica store (``sync/replica.py``) on real SQLite files, fed hand-made
wire pages shaped as in ``docs/sync-protocol.md``."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from common.errors import ErrorCode
from sync.replica import (
    BACKOFF_MAX,
    SCHEMA_VERSION,
    EditRefused,
    Replica,
    ReplicaError,
    ReplicaVersionError,
    backoff_delay,
    migrate,
)
from sync.wire import WireError

ROOT = Path(__file__).resolve().parents[1]
SERVER = "https://resolve.example.org"
ME = "0190aaaa-0000-7000-8000-000000000001"
OTHER = "0190aaaa-0000-7000-8000-000000000002"
PART = "0190bbbb-0000-7000-8000-000000000001"
VAN = "0190bbbb-0000-7000-8000-000000000002"


def tid(n: int) -> str:
    return f"0190cccc-0000-7000-8000-{n:012d}"


def ticket(n: int, position: int, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": tid(n),
        "changePosition": position,
        "deletedAt": None,
        "number": f"INC-{n:04d}",
        "title": f"Projector {n} flickers",
        "description": "The lamp in room 101 flickers during class",
        "status": "in_progress",
        "statusCategory": "open",
        "priority": "medium",
        "assigneeId": ME,
        "teamId": None,
        "requesterId": OTHER,
        "buildingId": None,
        "commentCount": 0,
        "internalNoteCount": 0,
        "minutesWorked": 0,
        "createdAt": f"2026-12-01T08:{n % 60:02d}:00Z",
        "updatedAt": f"2026-12-01T09:{n % 60:02d}:00Z",
    }
    row.update(fields)
    return row


def child(table: str, n: int, ticket_n: int, position: int, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": f"0190dddd-{table[7:11]:0>4}-7000-8000-{n:012d}".replace("_", "0"),
        "ticketId": tid(ticket_n),
        "changePosition": position,
        "deletedAt": None,
        "createdAt": f"2026-12-01T10:{n % 60:02d}:00Z",
    }
    row.update(fields)
    return row


def page(
    cursor: str | None,
    *tables: tuple[str, list[dict[str, Any]]],
    removals: list[tuple[str, list[str]]] = (),  # type: ignore[assignment]
    scope: list[str] | None = None,
    has_more: bool = False,
    wipe: bool = False,
) -> dict[str, Any]:
    return {
        "cursor": cursor,
        "hasMore": has_more,
        "changes": [{"table": t, "rows": rows} for t, rows in tables],
        "removals": [{"table": t, "ids": ids} for t, ids in removals],
        "scope": {"tickets": scope} if scope is not None else None,
        "wipe": wipe,
        "serverTime": "2026-12-06T09:00:00Z",
    }


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "client" / "replica.sqlite3"


@pytest.fixture
def replica(path: Path) -> Any:
    store = Replica.open(path, server_url=SERVER, user_id=ME)
    yield store
    store.close()


def synced(replica: Replica, *rows: dict[str, Any], cursor: str = "c1") -> None:
    """A replica that did its first download (cursor null) with these tickets."""
    replica.apply_page(page(cursor, ("tickets", list(rows))))


def shown(replica: Replica, n: int) -> dict[str, Any]:
    row = replica.row("tickets", tid(n))
    assert row is not None
    return dict(row.data)


def answer(mutation: dict[str, Any], verdict: str, *rows: dict[str, Any], **extra: Any) -> dict:
    result = {"id": mutation["id"], "seq": mutation["seq"], "verdict": verdict, **extra}
    if rows:
        result["rows"] = [{"table": "tickets", "rows": list(rows)}]
    return result


# ------------------------------------------------------------------------ the file


def test_replica_file_is_private_and_keeps_its_device_id(path: Path) -> None:
    with Replica.open(path, server_url=SERVER, user_id=ME) as replica:
        synced(replica, ticket(1, 5))
        device = replica.device_id
        assert uuid.UUID(device).version == 7
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        wal = Path(f"{path}-wal")
        assert wal.exists()
        assert stat.S_IMODE(wal.stat().st_mode) == 0o600
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    with Replica.open(path) as again:
        assert again.device_id == device
        assert again.status().user_id == ME
    with pytest.raises(ReplicaError, match="user id"):
        Replica.open(path, user_id=OTHER)


def test_file_of_a_newer_client_is_refused_untouched(path: Path) -> None:
    Replica.open(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(ReplicaVersionError, match="newer"):
        Replica.open(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1


def test_migration_from_version_1_keeps_the_outbox_and_indexes_old_tickets(path: Path) -> None:
    path.parent.mkdir(mode=0o700)
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, target=1) == 1
    # what a version-1 client left behind: a synced ticket and an edit waiting to go
    conn.execute(
        "INSERT INTO sync_state (id, device_id, cursor, next_seq, protocol_version) "
        "VALUES (1, 'dev-1', 'c9', 8, 1)"
    )
    conn.execute(
        "INSERT INTO tickets (id, change_position, data) VALUES (?, 9, ?)",
        (
            tid(1),
            json.dumps({"id": tid(1), "number": "INC-0001", "title": "Broken chromebook hinge"}),
        ),
    )
    conn.execute(
        "INSERT INTO outbox (seq, id, device_id, kind, ticket_id, at, payload) "
        "VALUES (7, 'm-7', 'dev-1', 'ticket.comment', ?, '2026-12-06T08:00:00Z', ?)",
        (tid(1), json.dumps({"commentId": "c", "ticketId": tid(1), "body": "On my way"})),
    )
    conn.close()

    with Replica.open(path) as replica:
        assert [m["id"] for m in replica.pending_mutations(now=0)] == ["m-7"]
        assert replica.pending_mutations(now=0)[0]["body"] == "On my way"
        assert [t.id for t in replica.tickets(search="chromebook")] == [tid(1)]
        assert replica.cursor == "c9"
        synced(replica, ticket(2, 10), cursor="c10")
        replica.add_comment(tid(2), "next")
        assert [m["seq"] for m in replica.pending_mutations(now=0)] == [7, 8]


# --------------------------------------------------------------- pages and cursor


def test_a_page_and_its_cursor_apply_together_or_not_at_all(
    replica: Replica, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced(replica, ticket(1, 5), ticket(2, 5))
    second = page(
        "c2",
        ("tickets", [ticket(1, 6, title="Renamed"), ticket(2, 6, title="Renamed"), ticket(3, 6)]),
        ("ticket_comments", [child("ticket_comments", 1, 1, 6, body="hi")]),
    )
    calls = {"n": 0}
    original = Replica._write_server_row

    def crash_on_third(self: Replica, *args: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("power cut")
        original(self, *args)

    monkeypatch.setattr(Replica, "_write_server_row", crash_on_third)
    with pytest.raises(RuntimeError, match="power cut"):
        replica.apply_page(second)
    assert replica.cursor == "c1"
    assert {t.data["title"] for t in replica.tickets()} == {
        "Projector 1 flickers",
        "Projector 2 flickers",
    }
    assert replica.hydrate_queue() == []

    monkeypatch.setattr(Replica, "_write_server_row", original)
    replica.apply_page(second)  # the page is fetched again
    assert replica.cursor == "c2"
    assert {t.data["title"] for t in replica.tickets()} == {"Renamed", "Projector 3 flickers"}


CHILD_SCRIPT = textwrap.dedent(
    """
    import sys
    from sync.replica import Replica

    replica = Replica.open(sys.argv[1])
    k = 0
    while True:
        k += 1
        rows = [
            {"id": f"t{i:03d}", "changePosition": k, "title": f"page {k}",
             "number": f"INC-{i:04d}", "description": "x" * 200, "status": "open",
             "updatedAt": f"2026-12-01T09:00:{k % 60:02d}Z"}
            for i in range(40)
        ]
        rows.append({"id": f"n{k:06d}", "changePosition": k, "title": f"new {k}",
                     "status": "open"})
        replica.apply_page({"cursor": f"c{k}", "hasMore": True,
                            "changes": [{"table": "tickets", "rows": rows}]})
        print(k, flush=True)
    """
)


def test_killed_between_pages_the_cursor_and_the_rows_agree(path: Path) -> None:
    Replica.open(path).close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for kill_after in (3, 11):
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD_SCRIPT, str(path)],
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert proc.stdout is not None
        reported = 0
        while reported < kill_after:
            line = proc.stdout.readline()
            assert line, "the child stopped on its own"
            reported = int(line)
        proc.send_signal(signal.SIGKILL)  # mid-page, most likely
        proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL

        with Replica.open(path) as replica:
            cursor = replica.cursor
            assert cursor is not None
            k = int(cursor[1:])
            assert k >= reported  # every page the child saw committed is there
            titles = {r.id: r.data["title"] for r in replica.rows("tickets")}
            assert {titles[f"t{i:03d}"] for i in range(40)} == {f"page {k}"}
            assert sorted(i for i in titles if i.startswith("n")) == [
                f"n{j:06d}" for j in range(1, k + 1)
            ]
            assert len(replica.tickets(search="INC-0007", limit=5)) == 1
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            conn.execute("INSERT INTO tickets_fts (tickets_fts) VALUES ('integrity-check')")


def test_the_same_page_twice_changes_nothing(replica: Replica) -> None:
    synced(replica, ticket(1, 5))
    second = page(
        "c2",
        ("tickets", [ticket(1, 7, priority="high"), ticket(2, 7)]),
        ("ticket_comments", [child("ticket_comments", 1, 1, 7, body="Lamp ordered")]),
        ("users", [{"id": OTHER, "changePosition": 7, "firstName": "Ana"}]),
    )

    def snapshot() -> Any:
        return (
            replica.cursor,
            [(t.id, dict(t.data), t.change_position) for t in replica.tickets()],
            [dict(r.data) for r in replica.rows("ticket_comments")],
            [dict(r.data) for r in replica.rows("users")],
            replica.hydrate_queue(),
            [t.id for t in replica.tickets(search="projector")],
        )

    replica.apply_page(second)
    before = snapshot()
    replica.apply_page(second)
    assert snapshot() == before
    # an older copy of a row (a crossing answer) never replaces a newer one
    replica.apply_page(page("c2", ("tickets", [ticket(1, 6, priority="low")])))
    assert shown(replica, 1)["priority"] == "high"


def test_tombstones_delete_rows_and_a_deleted_ticket_takes_its_children(replica: Replica) -> None:
    replica.apply_page(
        page(
            "c1",
            ("tickets", [ticket(1, 5), ticket(2, 5)]),
            (
                "ticket_comments",
                [child("ticket_comments", 1, 1, 5), child("ticket_comments", 2, 1, 5)],
            ),
            ("ticket_events", [child("ticket_events", 3, 1, 5, kind="created")]),
        )
    )
    comment = child("ticket_comments", 2, 1, 8, deletedAt="2026-12-06T08:00:00Z")
    applied = replica.apply_page(page("c2", ("ticket_comments", [comment])))
    assert applied.changes.removed == {"ticket_comments": {comment["id"]}}
    detail = replica.ticket(tid(1))
    assert detail is not None
    assert len(detail.timeline) == 2

    gone = ticket(1, 9, deletedAt="2026-12-06T08:30:00Z")
    applied = replica.apply_page(page("c3", ("tickets", [gone])))
    assert replica.ticket(tid(1)) is None
    assert replica.rows("ticket_comments") == []
    assert replica.rows("ticket_events") == []
    assert applied.changes.touches("ticket_events")
    assert [t.id for t in replica.tickets()] == [tid(2)]
    assert replica.tickets(search="INC-0001") == []
    assert replica.hydrate_queue() == []  # a tombstone is no ticket to fetch


def test_removal_waits_while_an_edit_of_the_ticket_is_pending(replica: Replica) -> None:
    replica.apply_page(
        page(
            "c1",
            ("tickets", [ticket(1, 5), ticket(2, 5)]),
            (
                "ticket_comments",
                [child("ticket_comments", 1, 1, 5), child("ticket_comments", 2, 2, 5)],
            ),
        )
    )
    replica.update_ticket(tid(1), {"priority": "high"})
    replica.apply_page(page("c2", removals=[("tickets", [tid(1), tid(2)])]))

    assert replica.ticket(tid(2)) is None  # nothing pending: gone with its comment
    assert [r.data["ticketId"] for r in replica.rows("ticket_comments")] == [tid(1)]
    kept = replica.ticket(tid(1))
    assert kept is not None and kept.ticket.data["priority"] == "high"
    assert replica.pending_removals() == [tid(1)]

    (mutation,) = replica.pending_mutations(now=0)
    changes = replica.record_results([answer(mutation, "applied")])
    assert replica.ticket(tid(1)) is None
    assert replica.rows("ticket_comments") == []
    assert replica.pending_removals() == []
    assert changes.removed["tickets"] == {tid(1)}


def test_a_removed_ticket_that_comes_back_is_not_removed_later(replica: Replica) -> None:
    synced(replica, ticket(1, 5))
    replica.update_ticket(tid(1), {"priority": "high"})
    replica.apply_page(page("c2", removals=[("tickets", [tid(1)])]))
    replica.apply_page(page("c3", ("tickets", [ticket(1, 9)])))  # reassigned back to me
    (mutation,) = replica.pending_mutations(now=0)
    replica.record_results([answer(mutation, "applied", ticket(1, 10, priority="high"))])
    assert shown(replica, 1)["priority"] == "high"


# -------------------------------------------------------------------- hydration


def test_unknown_tickets_are_queued_for_hydration_and_cleared_by_it(replica: Replica) -> None:
    first = replica.apply_page(page("c1", ("tickets", [ticket(1, 5)])))
    # a first download (from no cursor) carries every child: nothing to hydrate
    assert first.hydrate_queued == 0 and replica.hydrate_queue() == []

    replica.create_ticket("Smartboard dead", requester_id=OTHER)
    (create,) = replica.pending_mutations(now=0)
    mine = create["ticket"]["id"]
    replica.record_results([answer(create, "applied")])

    applied = replica.apply_page(
        page(
            "c2",
            ("tickets", [ticket(1, 8), ticket(2, 8), {**ticket(3, 8), "id": mine}]),
            ("ticket_comments", [child("ticket_comments", 9, 2, 8, body="only the newest")]),
        )
    )
    assert applied.hydrate_queued == 1
    assert replica.hydrate_queue() == [tid(2)]  # not the one I made, not the one I held
    assert replica.status().hydrate_queued == 1

    changes = replica.apply_hydration(
        {
            "changes": [
                {"table": "tickets", "rows": [ticket(2, 8)]},
                {
                    "table": "ticket_comments",
                    "rows": [
                        child("ticket_comments", 7, 2, 3, body="from last year"),
                        child("ticket_comments", 9, 2, 8, body="only the newest"),
                    ],
                },
            ]
        },
        [tid(2)],
    )
    assert changes.touches("ticket_comments")
    assert replica.hydrate_queue() == []
    detail = replica.ticket(tid(2))
    assert detail is not None
    assert [e.row.data["body"] for e in detail.timeline] == ["from last year", "only the newest"]


def test_scope_change_removes_tickets_no_longer_listed_and_hydrates_new_ones(
    replica: Replica,
) -> None:
    synced(replica, ticket(1, 5), ticket(2, 5), ticket(3, 5))
    replica.create_ticket("Made offline", requester_id=OTHER)
    local = replica.pending_mutations(now=0)[0]["ticket"]["id"]
    replica.add_comment(tid(2), "still working on it")

    applied = replica.apply_page(page("c2", scope=[tid(1), tid(4)]))
    held = {t.id for t in replica.tickets()}
    assert held == {tid(1), tid(2), local}  # 3 left; 2 waits for its comment's verdict
    assert replica.pending_removals() == [tid(2)]
    assert applied.hydrate_queued == 1
    assert replica.hydrate_queue() == [tid(4)]


# ---------------------------------------------------------------- pending edits


def test_a_pending_edit_stays_shown_over_pulled_rows_and_bases_on_the_server_copy(
    replica: Replica,
) -> None:
    synced(replica, ticket(1, 5, priority="medium"))
    replica.update_ticket(tid(1), {"priority": "high"})

    # someone else renamed the ticket meanwhile
    replica.apply_page(page("c2", ("tickets", [ticket(1, 6, priority="medium", title="Lamp")])))
    row = replica.tickets()[0]
    assert row.data["title"] == "Lamp"
    assert row.data["priority"] == "high"
    assert row.pending

    # the server's priority moves on; a second edit names what the server sent last
    replica.apply_page(page("c3", ("tickets", [ticket(1, 7, priority="low", title="Lamp")])))
    assert shown(replica, 1)["priority"] == "high"
    replica.update_ticket(tid(1), {"priority": "critical", "title": "Lamp (room 101)"})
    first, second = replica.pending_mutations(now=0)
    assert first["base"] == {"priority": "medium"} and first["changes"] == {"priority": "high"}
    assert second["base"] == {"priority": "low", "title": "Lamp"}
    assert second["changes"] == {"priority": "critical", "title": "Lamp (room 101)"}
    assert replica.tickets(priority="critical")[0].id == tid(1)  # the list filters what is shown

    # the first is judged a conflict: the second stays shown on top of the server's row
    replica.record_results(
        [
            answer(
                first,
                "conflict",
                ticket(1, 8, priority="low", title="Lamp"),
                conflicts=[
                    {
                        "id": "k1",
                        "field": "priority",
                        "base": "medium",
                        "mine": "high",
                        "server": "low",
                    }
                ],
            )
        ]
    )
    assert shown(replica, 1)["priority"] == "critical"
    assert shown(replica, 1)["title"] == "Lamp (room 101)"
    (verdict,) = replica.verdicts()
    assert verdict.verdict == "conflict" and verdict.conflicts[0]["server"] == "low"
    assert replica.status().conflicts == 1

    replica.record_results([answer(second, "rejected", code="PERMISSION_DENIED", message="No")])
    assert shown(replica, 1)["priority"] == "low"  # the rejected edit is taken back
    assert shown(replica, 1)["title"] == "Lamp"
    assert not replica.tickets()[0].pending


def test_an_applied_edit_stays_shown_until_the_servers_row_arrives(replica: Replica) -> None:
    synced(replica, ticket(1, 5))
    replica.update_ticket(tid(1), {"assigneeId": OTHER, "priority": "high"})
    (mutation,) = replica.pending_mutations(now=0)
    replica.record_results(
        [
            answer(
                mutation,
                "conflict",
                conflicts=[
                    {
                        "id": "k",
                        "field": "priority",
                        "base": "medium",
                        "mine": "high",
                        "server": "low",
                    }
                ],
            )
        ]
    )
    assert shown(replica, 1)["assigneeId"] == OTHER  # applied although another field conflicted
    assert shown(replica, 1)["priority"] == "medium"  # the server kept its value


def test_transitions_follow_the_workflow_locally(replica: Replica) -> None:
    synced(
        replica,
        ticket(1, 5, status="in_progress"),
        ticket(2, 5, status="closed", statusCategory="closed"),
    )
    with pytest.raises(EditRefused) as closed:
        replica.transition_ticket(tid(2), "resolved")
    assert closed.value.code == ErrorCode.TICKET_ALREADY_CLOSED
    with pytest.raises(EditRefused) as invalid:
        replica.transition_ticket(tid(1), "new")
    assert invalid.value.code == ErrorCode.INVALID_STATUS_TRANSITION
    assert replica.status().pending == 0

    replica.transition_ticket(tid(1), "resolved", note="Done", resolution_notes="New lamp")
    row = shown(replica, 1)
    assert (row["status"], row["statusCategory"], row["resolutionNotes"]) == (
        "resolved",
        "resolved",
        "New lamp",
    )
    (mutation,) = replica.pending_mutations(now=0)
    assert mutation["kind"] == "ticket.transition"
    assert (mutation["from"], mutation["to"], mutation["note"]) == (
        "in_progress",
        "resolved",
        "Done",
    )
    assert [t.id for t in replica.tickets(status="resolved")] == [tid(1)]
    # the server says someone closed it first: rejected, shown as the server has it
    replica.record_results(
        [
            answer(
                mutation,
                "rejected",
                ticket(1, 9, status="closed", statusCategory="closed"),
                code="TICKET_ALREADY_CLOSED",
                message="Ticket INC-0001 was closed by Marcus Lee at 10:14",
            )
        ]
    )
    assert shown(replica, 1)["status"] == "closed"
    (verdict,) = replica.verdicts()
    assert verdict.message == "Ticket INC-0001 was closed by Marcus Lee at 10:14"
    assert verdict.mutation["to"] == "resolved"
    replica.dismiss_verdict(verdict.mutation_id)
    assert replica.verdicts() == [] and replica.status().rejections == 0


def test_a_ticket_created_offline_gets_its_number_on_the_same_row(replica: Replica) -> None:
    synced(replica, ticket(1, 5))
    changes = replica.create_ticket(
        "Smartboard dead", "No picture", urgency="high", building_id="b1", asset_ids=["a1"]
    )
    (new_id,) = changes.written["tickets"]
    row = replica.row("tickets", new_id)
    assert row is not None and not row.synced
    assert row.display_number == "New (not yet synced)"
    assert row.data["requesterId"] == ME and row.data["status"] == "new"
    assert uuid.UUID(new_id).version == 7
    replica.add_comment(new_id, "Tried another cable")

    create, comment = replica.pending_mutations(now=0)
    assert create["kind"] == "ticket.create"
    assert create["ticket"]["id"] == new_id
    assert create["ticket"]["assetIds"] == ["a1"] and create["ticket"]["urgency"] == "high"
    assert comment["ticketId"] == new_id

    arrived = {**ticket(9, 20), "id": new_id, "title": "Smartboard dead", "number": "INC-0042"}
    replica.record_results([answer(create, "applied", arrived)])
    row = replica.row("tickets", new_id)
    assert row is not None and row.synced and row.display_number == "INC-0042"
    assert row.data["commentCount"] == 1  # the comment still pending is counted on top
    assert len(replica.tickets()) == 2
    assert [t.id for t in replica.tickets(search="INC-0042")] == [new_id]


def test_a_rejected_creation_disappears_and_is_kept_as_a_verdict(replica: Replica) -> None:
    replica.create_ticket("Printer jam", requester_id=OTHER)
    (create,) = replica.pending_mutations(now=0)
    replica.record_results([answer(create, "rejected", code="VALIDATION_ERROR", message="No site")])
    assert replica.tickets() == []
    assert replica.verdicts()[0].mutation["ticket"]["title"] == "Printer jam"


def test_comments_show_at_once_and_become_the_servers_row(replica: Replica) -> None:
    replica.apply_page(
        page(
            "c1",
            ("tickets", [ticket(1, 5)]),
            (
                "ticket_events",
                [child("ticket_events", 1, 1, 5, kind="created", createdAt="2026-12-01T08:00:00Z")],
            ),
        )
    )
    changes = replica.add_comment(tid(1), "Replaced the lamp.", minutes_worked=20)
    assert changes.touches("ticket_comments") and changes.seq == 1 and changes.mutation_id
    detail = replica.ticket(tid(1))
    assert detail is not None
    assert [e.kind for e in detail.timeline] == ["event", "comment"]
    local = detail.timeline[1].row
    assert local.data["body"] == "Replaced the lamp." and not local.synced and local.pending
    assert detail.ticket.data["commentCount"] == 1 and detail.ticket.data["minutesWorked"] == 20

    (mutation,) = replica.pending_mutations(now=0)
    assert mutation == {
        "id": changes.mutation_id,
        "seq": 1,
        "kind": "ticket.comment",
        "at": mutation["at"],
        "commentId": local.id,
        "ticketId": tid(1),
        "body": "Replaced the lamp.",
        "internal": False,
        "minutesWorked": 20,
    }
    server_comment = {
        **child("ticket_comments", 0, 1, 30, body="Replaced the lamp."),
        "id": local.id,
    }
    replica.record_results(
        [
            {
                "id": mutation["id"],
                "seq": 1,
                "verdict": "applied",
                "rows": [
                    {"table": "tickets", "rows": [ticket(1, 30, commentCount=1, minutesWorked=20)]},
                    {"table": "ticket_comments", "rows": [server_comment]},
                ],
            }
        ]
    )
    rows = replica.rows("ticket_comments")
    assert len(rows) == 1 and rows[0].synced and not rows[0].pending
    assert shown(replica, 1)["commentCount"] == 1  # not counted twice


# ---------------------------------------------------------------- parts, conflicts


def test_parts_used_lower_the_stock_shown_until_judged(replica: Replica) -> None:
    level = {"id": "lvl-1", "changePosition": 3, "partId": PART, "locationId": VAN, "quantity": 10}
    replica.apply_page(page("c1", ("tickets", [ticket(1, 5)]), ("stock_levels", [level])))
    replica.use_part(tid(1), PART, VAN, 3)
    assert replica.stock_level(PART, VAN).data["quantity"] == 7  # type: ignore[union-attr]
    detail = replica.ticket(tid(1))
    assert detail is not None and detail.part_movements[0].data["quantity"] == -3

    # a pull before the verdict still shows the local use on the server's level
    replica.apply_page(
        page("c2", ("stock_levels", [{**level, "changePosition": 4, "quantity": 12}]))
    )
    assert replica.stock_level(PART, VAN).data["quantity"] == 9  # type: ignore[union-attr]

    (mutation,) = replica.pending_mutations(now=0)
    assert (mutation["kind"], mutation["quantity"]) == ("part.use", 3)
    replica.record_results(
        [answer(mutation, "rejected", code="INSUFFICIENT_STOCK", message="Van empty")]
    )
    assert replica.stock_level(PART, VAN).data["quantity"] == 12  # type: ignore[union-attr]
    assert replica.rows("stock_movements") == []
    with pytest.raises(EditRefused):
        replica.use_part(tid(1), PART, VAN, 0)


def test_a_pull_that_says_the_server_applied_an_edit_stops_replaying_it(
    replica: Replica,
) -> None:
    """The push answer was lost: the pulled rows already hold the edit (``lastSequence``),
    so the part used counts once, and the later replayed verdict changes nothing."""
    level = {"id": "lvl-1", "changePosition": 3, "partId": PART, "locationId": VAN, "quantity": 10}
    replica.apply_page(page("c1", ("tickets", [ticket(1, 5)]), ("stock_levels", [level])))
    replica.use_part(tid(1), PART, VAN, 3)
    replica.update_ticket(tid(1), {"priority": "high"})
    (used, updated) = replica.pending_mutations(now=0)

    # the server applied the part use only; its level already went down by 3
    settled = page("c2", ("stock_levels", [{**level, "changePosition": 6, "quantity": 7}]))
    settled["lastSequence"] = used["seq"]
    replica.apply_page(settled)
    assert replica.stock_level(PART, VAN).data["quantity"] == 7  # type: ignore[union-attr]
    assert shown(replica, 1)["priority"] == "high", "the later edit is still shown"
    assert [m["seq"] for m in replica.pending_mutations(now=0)] == [used["seq"], updated["seq"]]

    replica.record_results([answer(used, "applied"), answer(updated, "applied")])
    assert replica.stock_level(PART, VAN).data["quantity"] == 7  # type: ignore[union-attr]
    assert len(replica.rows("stock_movements")) == 1
    assert replica.outbox() == []

    # a rejected mutation the pull settled is taken back and its local row goes
    replica.add_comment(tid(1), "On my way")
    (comment,) = replica.pending_mutations(now=0)
    settled = page("c3")
    settled["lastSequence"] = comment["seq"]
    replica.apply_page(settled)
    assert shown(replica, 1)["commentCount"] == 0, "the server's copy has no such comment"
    replica.record_results([answer(comment, "rejected", code="PERMISSION_DENIED", message="No")])
    assert replica.rows("ticket_comments") == []


def test_retain_only_drops_what_a_full_download_did_not_bring_back(replica: Replica) -> None:
    replica.apply_page(
        page(
            "c1",
            ("tickets", [ticket(1, 5), ticket(2, 6), ticket(3, 7)]),
            (
                "ticket_comments",
                [child("ticket_comments", 1, 1, 5), child("ticket_comments", 2, 1, 5)],
            ),
            (
                "users",
                [{"id": "u-gone", "changePosition": 2}, {"id": "u-kept", "changePosition": 3}],
            ),
        )
    )
    replica.update_ticket(tid(2), {"priority": "high"})  # pending: waits for its verdict
    replica.create_ticket("Made here")  # never sent back: stays
    kept_comment = child("ticket_comments", 1, 1, 5)["id"]
    changes = replica.retain_only(
        {"tickets": [tid(1)], "ticket_comments": [kept_comment], "users": ["u-kept"]}
    )
    assert changes.removed["tickets"] == {tid(3)}
    assert {r.id for r in replica.rows("ticket_comments")} == {kept_comment}
    assert [r.id for r in replica.rows("users")] == ["u-kept"]
    assert replica.pending_removals() == [tid(2)], "removed once its edit is judged"
    assert {r.data["title"] for r in replica.tickets()} == {
        "Projector 1 flickers",
        "Projector 2 flickers",
        "Made here",
    }


def test_resolving_a_conflict_shows_the_kept_value(replica: Replica) -> None:
    conflict = {
        "id": "k-1",
        "changePosition": 6,
        "ticketId": tid(1),
        "field": "priority",
        "base": "medium",
        "mine": "high",
        "server": "low",
        "resolvedAt": None,
    }
    replica.apply_page(
        page("c1", ("tickets", [ticket(1, 6, priority="low")]), ("sync_conflicts", [conflict]))
    )
    assert replica.status().open_conflicts == 1
    detail = replica.ticket(tid(1))
    assert detail is not None and [c.id for c in detail.open_conflicts] == ["k-1"]

    replica.resolve_conflict("k-1", "mine")
    assert shown(replica, 1)["priority"] == "high"
    assert replica.status().open_conflicts == 0
    (mutation,) = replica.pending_mutations(now=0)
    assert {k: mutation[k] for k in ("kind", "conflictId", "keep")} == {
        "kind": "conflict.resolve",
        "conflictId": "k-1",
        "keep": "mine",
    }
    with pytest.raises(EditRefused):
        replica.resolve_conflict("k-1", "server")  # already resolved here
    with pytest.raises(EditRefused):
        replica.resolve_conflict("k-404", "mine")


def test_conflicts_lists_the_open_ones_and_those_resolved_here_until_judged(
    replica: Replica,
) -> None:
    def conflict(n: int, resolved: str | None = None) -> dict[str, object]:
        return {
            "id": f"k-{n}",
            "changePosition": 6,
            "ticketId": tid(1),
            "field": "priority",
            "base": "medium",
            "mine": "high",
            "server": "low",
            "createdAt": f"2026-12-0{n}T09:00:00.000000Z",
            "resolvedAt": resolved,
        }

    replica.apply_page(
        page(
            "c1",
            ("tickets", [ticket(1, 6, priority="low")]),
            ("sync_conflicts", [conflict(2), conflict(1), conflict(3, "2026-12-04T09:00:00Z")]),
        )
    )
    assert [(r.id, r.pending) for r in replica.conflicts()] == [("k-1", False), ("k-2", False)]
    changes = replica.resolve_conflict("k-1", "server")
    listed = replica.conflicts()
    assert [(r.id, r.pending) for r in listed] == [("k-1", True), ("k-2", False)]
    assert listed[0].data["resolvedAt"] is not None and listed[0].data["resolution"] == "server"
    (mutation,) = replica.pending_mutations(now=0)
    replica.record_results(
        [{"id": mutation["id"], "seq": mutation["seq"], "verdict": "applied", "rows": []}]
    )
    assert changes.mutation_id == mutation["id"]
    assert [r.id for r in replica.conflicts()] == ["k-2"]


# ------------------------------------------------------------------- outbox


def test_sequence_numbers_have_no_gaps_and_survive_reopening(path: Path) -> None:
    with Replica.open(path, user_id=ME) as replica:
        synced(replica, ticket(1, 5))
        replica.add_comment(tid(1), "one")
        replica.update_ticket(tid(1), {"priority": "high"})
        replica.update_ticket(tid(1), {"priority": "high"})  # nothing to change: nothing queued
        with pytest.raises(EditRefused):
            replica.update_ticket(tid(1), {"number": "INC-9"})
        first = replica.pending_mutations(now=0)
        replica.record_results([answer(first[0], "applied")])
    with Replica.open(path) as replica:
        replica.add_comment(tid(1), "three")
        replica.transition_ticket(tid(1), "on_hold")
        mutations = replica.pending_mutations(now=0)
        assert [m["seq"] for m in mutations] == [2, 3, 4]
        ids = [m["id"] for m in [*first, *mutations[1:]]]
        assert ids == sorted(ids) and len(set(ids)) == 4
        assert all(uuid.UUID(i).version == 7 for i in ids)
        body = replica.push_request(now=0)
        assert body is not None
        assert body["deviceId"] == replica.device_id and body["protocolVersion"] == 1
        assert [m["seq"] for m in body["mutations"]] == [2, 3, 4]


def test_failed_pushes_back_off_and_retry_without_a_new_edit(replica: Replica) -> None:
    replica.rng = random.Random(7)
    synced(replica, ticket(1, 5))
    replica.add_comment(tid(1), "a")
    replica.add_comment(tid(1), "b")
    now = 1_000_000.0
    delays = []
    for _ in range(11):
        due = replica.record_failure([1, 2], "Cannot reach the server", now=now)
        assert due is not None
        delays.append(due - now)
        assert replica.pending_mutations(now=due - 0.01) == []
        assert [m["seq"] for m in replica.pending_mutations(now=due)] == [1, 2]
        now = due
    for attempt, delay in enumerate(delays, start=1):
        nominal = min(BACKOFF_MAX, 2 ** (attempt - 1))
        assert 0.8 * nominal <= delay <= min(BACKOFF_MAX, 1.2 * nominal)
    assert delays[-1] > 200
    assert replica.status().last_error == "Cannot reach the server"
    assert replica.outbox()[0].attempts == 11

    # a 429's Retry-After is honoured; a later mutation never overtakes an earlier one
    due = replica.record_failure([1], "Too many requests", now=now, retry_after=900)
    assert due == now + 900
    assert replica.pending_mutations(now=now + 899) == []
    assert backoff_delay(1, random.Random(1)) <= 1.2


def test_results_remove_judged_mutations_and_keep_the_rest(replica: Replica) -> None:
    replica.apply_page(page("c1", ("tickets", [ticket(1, 5), ticket(2, 5)])))
    replica.add_comment(tid(1), "first")
    replica.add_comment(tid(2), "second")
    replica.update_ticket(tid(2), {"title": "third"})
    one, two, three = replica.pending_mutations(now=0)
    assert len(replica.pending_mutations(limit=2, now=0)) == 2
    changes = replica.record_results(
        {
            "lastSequence": 2,
            "results": [
                answer(one, "applied"),
                answer(two, "rejected", code="TICKET_ALREADY_CLOSED", message="Closed at 10:14"),
            ],
        }
    )
    assert changes.outbox and changes.verdicts
    assert [m["id"] for m in replica.pending_mutations(now=0)] == [three["id"]]
    comments = {r.data["body"] for r in replica.rows("ticket_comments")}
    assert comments == {"first"}  # the rejected comment never reached the server
    assert shown(replica, 2)["title"] == "third"
    status = replica.status()
    assert (status.pending, status.rejections) == (1, 1)
    # the same answer again (a retried push) changes nothing
    assert not replica.record_results([answer(one, "applied"), answer(two, "rejected")])
    with pytest.raises(WireError):
        replica.record_results([{"id": three["id"], "verdict": "maybe"}])
    assert replica.status().pending == 1


# ------------------------------------------------------------------- reads


def test_search_finds_number_title_and_description_as_they_change(replica: Replica) -> None:
    synced(
        replica,
        ticket(1, 5, title="Chromebook hinge broken", description="Cart 3, student device"),
        ticket(2, 5, title="Projector lamp", description="Room 101 café"),
        ticket(42, 5, title="Wi-Fi down", description="Access point offline"),
    )
    assert [t.id for t in replica.tickets(search="chrome")] == [tid(1)]
    assert [t.id for t in replica.tickets(search="cafe")] == [tid(2)]  # diacritics folded
    assert [t.id for t in replica.tickets(search="INC-0042")] == [tid(42)]
    assert [t.id for t in replica.tickets(search='room "101')] == [tid(2)]
    assert replica.count_tickets(search="projector lamp") == 1

    replica.update_ticket(tid(1), {"title": "Laptop screen"})
    assert replica.tickets(search="chromebook") == []
    assert [t.id for t in replica.tickets(search="laptop")] == [tid(1)]
    replica.apply_page(page("c2", removals=[("tickets", [tid(2)])]))
    assert replica.tickets(search="projector") == []


def test_the_ticket_list_filters_and_sorts_through_indexes(replica: Replica) -> None:
    synced(
        replica,
        *[
            ticket(
                n,
                5,
                status=("in_progress", "on_hold", "new")[n % 3],
                priority=("low", "medium", "high", "critical")[n % 4],
                buildingId=f"b{n % 2}",
                assigneeId=ME if n % 2 else OTHER,
            )
            for n in range(1, 41)
        ],
    )
    assert len(replica.tickets(status="on_hold", limit=100)) == 14
    assert replica.count_tickets(status=["on_hold", "new"]) == 27
    top = replica.tickets(sort="-priority", limit=3)
    assert {t.data["priority"] for t in top} == {"critical"}
    page_2 = replica.tickets(assignee_id=ME, sort="updatedAt", limit=5, offset=5)
    assert [t.data["updatedAt"] for t in page_2] == sorted(t.data["updatedAt"] for t in page_2)
    assert len(replica.tickets(building_id="b1", limit=100)) == 20

    cases = [
        {"sort": "-updatedAt"},
        {"status": "in_progress", "sort": "-updatedAt"},
        {"status_category": "open", "sort": "-updatedAt"},
        {"assignee_id": ME, "sort": "-updatedAt"},
        {"team_id": "t1", "sort": "updatedAt"},
        {"building_id": "b1", "sort": "-updatedAt"},
        {"sort": "-priority"},
        {"sort": "resolutionDueAt"},
        {"sort": "number"},
        {"status": "new", "sort": "-status"},
        {"sort": "buildingId"},
        {"sort": "-buildingId"},
    ]
    with sqlite3.connect(replica.path) as conn:
        for filters in cases:
            sql, params = replica.ticket_list_sql(**filters)
            plan = " | ".join(r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            assert (
                "USING INDEX ix_tickets_" in plan or "USING COVERING INDEX ix_tickets_" in plan
            ), (
                filters,
                plan,
            )
            assert "TEMP B-TREE" not in plan, (filters, plan)
            assert not re.search(r"SCAN tickets(?! USING)", plan), (filters, plan)
    with pytest.raises(ValueError, match="cannot sort"):
        replica.tickets(sort="title; DROP TABLE tickets")


def test_the_ticket_list_filters_by_sla_and_groups_by_building(replica: Replica) -> None:
    synced(
        replica,
        ticket(1, 5, buildingId="b2", resolutionDueAt="2026-12-01T10:00:00.000000Z"),
        ticket(
            2,
            5,
            buildingId="b1",
            resolutionDueAt="2026-12-01T08:00:00.000000Z",
            resolutionBreachedAt="2026-12-01T08:00:00.000000Z",
        ),
        ticket(3, 5, buildingId="b1", responseBreachedAt="2026-12-01T07:00:00.000000Z"),
        ticket(4, 5, buildingId=None, resolutionDueAt="2026-12-03T10:00:00.000000Z"),
    )
    assert {t.id for t in replica.tickets(breached=True)} == {tid(2), tid(3)}
    assert {t.id for t in replica.tickets(breached=False)} == {tid(1), tid(4)}
    due = replica.tickets(due_before="2026-12-02T00:00:00.000000Z", breached=False)
    assert [t.id for t in due] == [tid(1)]
    assert replica.count_tickets(due_before="2026-12-02T00:00:00.000000Z") == 2
    grouped = [t.data["buildingId"] for t in replica.tickets(sort="buildingId")]
    assert grouped == [None, "b1", "b1", "b2"]
    assert replica.tickets(sort="-buildingId")[0].data["buildingId"] == "b2"


def test_unknown_tables_are_kept_not_refused(replica: Replica) -> None:
    applied = replica.apply_page(
        page(
            "c1",
            ("work_orders", [{"id": "w1", "changePosition": 4, "title": "Replace ballast"}]),
            ("tickets", [ticket(1, 5)]),
        )
    )
    assert applied.changes.touches("work_orders")
    row = replica.row("work_orders", "w1")
    assert row is not None and row.data["title"] == "Replace ballast"
    assert replica.verify_digest("work_orders")[0] == 1
    replica.apply_page(
        page("c2", ("work_orders", [{"id": "w1", "changePosition": 6, "deletedAt": "x"}]))
    )
    assert replica.rows("work_orders") == []
    assert replica.cursor == "c2"


def test_malformed_pages_change_nothing(replica: Replica) -> None:
    synced(replica, ticket(1, 5))
    for bad in (
        {"cursor": "c2", "changes": [{"table": "tickets", "rows": [{"title": "no id"}]}]},
        {"cursor": "c2", "changes": "tickets"},
        {"cursor": 5, "changes": []},
        {"cursor": "c2", "changes": [], "scope": {"tickets": "all"}},
    ):
        with pytest.raises(WireError):
            replica.apply_page(bad)
    assert replica.cursor == "c1"


def test_a_wipe_page_applies_nothing_and_wipe_deletes_the_file(
    replica: Replica, path: Path
) -> None:
    synced(replica, ticket(1, 5))
    applied = replica.apply_page(page("c9", ("tickets", [ticket(2, 9)]), wipe=True))
    assert applied.wipe and replica.cursor == "c1" and len(replica.tickets()) == 1
    replica.wipe()
    assert not path.exists() and not Path(f"{path}-wal").exists()


def test_readers_see_committed_data_and_cannot_write(replica: Replica) -> None:
    synced(replica, ticket(1, 5))
    with replica.reader() as reader:
        assert [t.id for t in reader.tickets()] == [tid(1)]
        replica.add_comment(tid(1), "hello")
        assert reader.status().pending == 1
        detail = reader.ticket(tid(1))
        assert detail is not None and detail.pending[0].kind == "ticket.comment"
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader._conn.execute("DELETE FROM outbox")
    assert replica.status().pending == 1


def test_status_sums_up_what_the_user_should_know(replica: Replica) -> None:
    status = replica.status()
    assert (status.pending, status.cursor, status.last_sync_at) == (0, None, None)
    replica.apply_page(page("c1", ("tickets", [ticket(1, 5)])), synced_at="2026-12-06T09:00:00Z")
    replica.add_comment(tid(1), "x")
    status = replica.status()
    assert status.last_sync_at == "2026-12-06T09:00:00Z"
    assert status.pending == 1 and status.next_attempt_at == 0
    assert status.server_url == SERVER
    count, digest = replica.verify_digest("tickets")
    assert count == 1 and len(digest) == 64


# --------------------------------------------------------------- files and devices

PHOTO = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


def test_migration_from_version_2_keeps_the_outbox_and_adds_the_upload_queue(
    path: Path,
) -> None:
    path.parent.mkdir(mode=0o700)
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, target=2) == 2
    conn.execute(
        "INSERT INTO sync_state (id, device_id, cursor, next_seq, protocol_version) "
        "VALUES (1, 'dev-1', 'c9', 5, 1)"
    )
    conn.execute(
        "INSERT INTO tickets (id, change_position, data) VALUES (?, 9, ?)",
        (tid(1), json.dumps(ticket(1, 9))),
    )
    conn.execute(
        "INSERT INTO outbox (seq, id, device_id, kind, ticket_id, at, payload) "
        "VALUES (4, 'm-4', 'dev-1', 'ticket.comment', ?, '2026-12-06T08:00:00Z', ?)",
        (tid(1), json.dumps({"commentId": "c", "ticketId": tid(1), "body": "On my way"})),
    )
    conn.close()

    with Replica.open(path) as replica:
        assert [m["id"] for m in replica.pending_mutations(now=0)] == ["m-4"]
        assert replica.uploads() == []
        replica.attach_file(tid(1), PHOTO, "lamp.png")
        assert [m["seq"] for m in replica.pending_mutations(now=0)] == [4]  # attach waits
        (job,) = replica.uploads()
        assert job.state == "waiting"
        assert job.mutation_id == replica.outbox()[-1].id and replica.outbox()[-1].seq == 5
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_file_attached_offline_waits_for_its_upload_across_restarts(path: Path) -> None:
    replica = Replica.open(path, server_url=SERVER, user_id=ME)
    synced(replica, ticket(1, 5, attachmentCount=0))
    source = path.parent / "lamp.png"
    source.write_bytes(PHOTO)
    attached = replica.attach_file(tid(1), source, internal=True)
    replica.add_comment(tid(1), "Lamp photo attached")
    (attachment_id,) = attached.written["ticket_attachments"]
    sha256 = hashlib.sha256(PHOTO).hexdigest()

    detail = replica.ticket(tid(1))
    assert detail is not None
    (shown,) = detail.attachments
    assert not shown.synced and shown.data["sha256"] == sha256
    assert shown.data["fileName"] == "lamp.png" and shown.data["mimeType"] == "image/png"
    assert shown.data["sizeBytes"] == len(PHOTO) and shown.data["isInternal"] is True
    assert detail.ticket.data.get("attachmentCount") == 1
    stored = replica.attachment_path(attachment_id)
    assert stored is not None and stored.read_bytes() == PHOTO and stored.name == sha256
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(replica.files_dir.stat().st_mode) == 0o700
    assert replica.files_dir.parent == path.parent
    # the same bytes again are stored once
    assert replica.store_file(PHOTO) == (sha256, len(PHOTO))
    assert [p.name for p in replica.files_dir.iterdir()] == [sha256]
    # nothing goes before the file is up: not the attach, not what follows it
    assert replica.pending_mutations(now=0) == []
    status = replica.status()
    assert status.pending == 2 and status.uploads_waiting == 1
    retry_at = replica.upload_failed(attachment_id, "connection refused", now=1000.0)
    assert retry_at is not None and 1000.5 <= retry_at <= 1001.5
    replica.close()

    with Replica.open(path, server_url=SERVER, user_id=ME) as reopened:
        (job,) = reopened.uploads()
        assert job.attachment_id == attachment_id and job.attempts == 1
        assert job.last_error == "connection refused" and job.sha256 == sha256
        assert reopened.due_uploads(now=1000.0) == []
        assert [j.attachment_id for j in reopened.due_uploads(now=2000.0)] == [attachment_id]
        assert reopened.status().upload_error == "connection refused"
        reopened.record_upload(attachment_id, "org/0190-upload")
        attach, comment = reopened.pending_mutations(now=0)
        assert attach["kind"] == "ticket.attach" and attach["storageKey"] == "org/0190-upload"
        assert attach["attachmentId"] == attachment_id and attach["sha256"] == sha256
        assert attach["internal"] is True and comment["kind"] == "ticket.comment"
        server_row = {
            "id": attachment_id,
            "ticketId": tid(1),
            "changePosition": 7,
            "deletedAt": None,
            "sha256": sha256,
            "fileName": "lamp.png",
        }
        reopened.record_results(
            [
                {
                    "id": attach["id"],
                    "seq": attach["seq"],
                    "verdict": "applied",
                    "rows": [{"table": "ticket_attachments", "rows": [server_row]}],
                }
            ]
        )
        assert reopened.uploads() == []
        row = reopened.row("ticket_attachments", attachment_id)
        assert row is not None and row.synced
        assert reopened.attachment_path(attachment_id) == stored
        reopened.wipe()
        assert not reopened.files_dir.exists()


def test_a_file_the_server_refuses_lets_the_queue_go_and_says_why(replica: Replica) -> None:
    synced(replica, ticket(1, 5))
    with pytest.raises(EditRefused, match="what kind of file"):
        replica.attach_file(tid(1), b"data", "notes")
    with pytest.raises(EditRefused):
        replica.attach_file(tid(99), PHOTO, "lamp.png")
    assert replica.outbox() == []
    replica.attach_file(tid(1), PHOTO, "C:\\Users\\dana\\lamp.jpg", mime_type="image/jpg")
    replica.add_comment(tid(1), "after the photo")
    (job,) = replica.uploads()
    assert job.file_name == "lamp.jpg" and job.mime_type == "image/jpeg"
    replica.upload_refused(job.attachment_id, "This type of file is not allowed")
    attach, comment = replica.pending_mutations(now=0)
    assert attach["storageKey"] is None and comment["kind"] == "ticket.comment"
    replica.record_results(
        [
            answer(attach, "rejected", code="VALIDATION_ERROR", message="Name the file"),
            answer(comment, "applied"),
        ]
    )
    (verdict,) = replica.verdicts()
    assert verdict.message == (
        "The file lamp.jpg could not be uploaded: This type of file is not allowed"
    )
    detail = replica.ticket(tid(1))
    assert detail is not None and detail.attachments == ()
    assert replica.uploads() == [] and replica.outbox() == []


def test_device_links_show_at_once_and_follow_their_verdicts(replica: Replica) -> None:
    server_link = child("ticket_assets", 1, 1, 6, assetId="asset-1")
    replica.apply_page(page("c1", ("tickets", [ticket(1, 5)]), ("ticket_assets", [server_link])))

    def linked() -> list[str]:
        detail = replica.ticket(tid(1))
        assert detail is not None
        return sorted(str(r.data["assetId"]) for r in detail.asset_links)

    assert not replica.unlink_asset(tid(1), "asset-9")  # not linked: nothing queued
    replica.link_asset(tid(1), "asset-2")
    replica.unlink_asset(tid(1), "asset-1")
    assert linked() == ["asset-2"]
    link, unlink = replica.pending_mutations(now=0)
    assert link["kind"] == "asset.link" and link["assetId"] == "asset-2"
    assert unlink["kind"] == "asset.unlink" and unlink["ticketId"] == tid(1)

    # both refused: the link made here goes, the unlinked device shows again
    replica.record_results(
        [
            answer(link, "rejected", code="PERMISSION_DENIED", message="Staff only"),
            answer(unlink, "rejected", code="PERMISSION_DENIED", message="Staff only"),
        ]
    )
    assert linked() == ["asset-1"]
    assert len(replica.rows("ticket_assets")) == 1

    # accepted: the row made here gives way to the server's (another id)
    replica.link_asset(tid(1), "asset-2")
    replica.unlink_asset(tid(1), "asset-1")
    link, unlink = replica.pending_mutations(now=0)
    server_copy = child("ticket_assets", 2, 1, 8, assetId="asset-2")
    replica.record_results(
        [
            {
                "id": link["id"],
                "seq": link["seq"],
                "verdict": "applied",
                "rows": [{"table": "ticket_assets", "rows": [server_copy]}],
            },
            answer(unlink, "applied"),
        ]
    )
    assert linked() == ["asset-2"]
    assert {r.id for r in replica.rows("ticket_assets")} == {server_link["id"], server_copy["id"]}
    # the server's tombstone of the unlinked row arrives with the next pull
    replica.apply_page(page("c2", ("ticket_assets", [{**server_link, "deletedAt": "x"}])))
    assert [r.id for r in replica.rows("ticket_assets")] == [server_copy["id"]]


def test_a_restored_replica_numbers_its_pending_edits_after_the_servers_last(
    replica: Replica,
) -> None:
    """Restored from a backup, the replica would hand out numbers the server already
    judged for other changes; a pull saying lastSequence, or a push answered
    SEQUENCE_REUSED, moves every pending edit after it, in order, effects and all."""
    synced(replica, ticket(1, 5))
    first = replica.update_ticket(tid(1), {"priority": "high"})
    second = replica.add_comment(tid(1), "lamp swapped")
    assert (first.seq, second.seq) == (1, 2)
    replica.apply_page({**page("c2"), "lastSequence": 6})
    pending = replica.pending_mutations(now=float("inf"))
    assert [(m["id"], m["seq"]) for m in pending] == [
        (first.mutation_id, 7),
        (second.mutation_id, 8),
    ]
    assert shown(replica, 1)["priority"] == "high", "the edit still shows"
    third = replica.add_comment(tid(1), "tested")
    assert third.seq == 9
    replica.renumber_after(20)  # a push answered SEQUENCE_REUSED, lastSequence 20
    assert [m["seq"] for m in replica.pending_mutations(now=float("inf"))] == [21, 22, 23]
    replica.apply_page({**page("c3"), "lastSequence": 20})  # no longer behind: nothing moves
    assert [m["seq"] for m in replica.pending_mutations(now=float("inf"))] == [21, 22, 23]
