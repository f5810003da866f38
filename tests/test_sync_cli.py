"""``resolve-sync`` as a user runs it: separate processes (``python -m sync``) against the
real server on loopback, with no system keyring (the sign-in goes to the private file
in ``--data-dir``), so a sign-in in one process is used by the next."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from common.enums import Role
from sync.cli import EXIT_NOT_SIGNED_IN, EXIT_OK, EXIT_USAGE
from sync.credentials import CREDENTIALS_FILE
from tests.conftest import PASSWORD, Account, World
from tests.test_sync_engine import closed_port_url
from tests.test_tickets import new_ticket

ROOT = Path(__file__).resolve().parent.parent


class Cli:
    def __init__(self, data_dir: Path, server_url: str) -> None:
        self.data_dir = data_dir
        self.server_url = server_url
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
            "RESOLVE_CLIENT_DIR": str(data_dir / "unused"),
        }
        self.env.pop("RESOLVE_SERVER_URL", None)

    def __call__(
        self, *args: str, stdin: str = "", server: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        # the options every command takes go after the (sub)command, as argparse wants
        extra = ["--data-dir", str(self.data_dir)]
        if server is not None:
            extra += ["--server", server]
        return subprocess.run(
            [sys.executable, "-m", "sync", *args, *extra],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            cwd=ROOT,
            timeout=60,
            check=False,
        )

    def ok(self, *args: str, **kwargs: Any) -> str:
        done = self(*args, **kwargs)
        assert done.returncode == EXIT_OK, (args, done.stdout, done.stderr)
        return done.stdout

    def json(self, *args: str, **kwargs: Any) -> Any:
        return json.loads(self.ok(*args, "--json", **kwargs))


@pytest.fixture
def cli(tmp_path: Path, server_url: str) -> Cli:
    return Cli(tmp_path / "data", server_url)


def _setup(world: World, client: httpx.Client) -> tuple[Account, Account, list[dict[str, Any]]]:
    tenant = world.org()
    agent = world.user(tenant.id, Role.AGENT)
    tech = world.user(tenant.id, Role.TECHNICIAN, first_name="Dana", last_name="Reyes")
    teacher = world.user(tenant.id, Role.REQUESTER)
    tickets = [
        new_ticket(client, agent, title=title, requesterId=str(teacher.id), assigneeId=str(tech.id))
        for title in ("Projector dead in room 204", "Printer jam in the library")
    ]
    comment = client.post(
        f"/api/tickets/{tickets[0]['id']}/comments",
        json={"body": "Lamp on order"},
        headers=agent.headers,
    )
    assert comment.status_code == 201, comment.text
    return agent, tech, tickets


def test_login_in_one_process_sync_in_the_next(
    cli: Cli, world: World, client: httpx.Client, server_url: str
) -> None:
    _, tech, tickets = _setup(world, client)
    done = cli(
        "login", "--email", tech.email, "--password-stdin", stdin=PASSWORD + "\n", server=server_url
    )
    assert done.returncode == 0, done.stderr
    assert f"as Dana Reyes <{tech.email}>" in done.stdout
    assert "readable only by you" in done.stderr
    secret = cli.data_dir / CREDENTIALS_FILE
    assert secret.stat().st_mode & 0o777 == 0o600

    # later commands find the server and the account from the last sign-in
    out = cli.ok("sync")
    assert out.startswith("Synced: received"), out
    listed = cli.json("tickets")
    assert {t["id"] for t in listed} == {t["id"] for t in tickets}
    assert all(t["synced"] and not t["pending"] for t in listed)
    assert [t["title"] for t in cli.json("tickets", "--search", "projector", "--limit", "1")] == [
        "Projector dead in room 204"
    ]
    assert cli.json("tickets", "--status", "closed,cancelled") == []

    number = tickets[0]["number"]
    shown = cli.json("ticket", "show", number)
    assert shown["id"] == tickets[0]["id"]
    assert [e["body"] for e in shown["timeline"] if e["kind"] == "comment"] == ["Lamp on order"]
    text = cli.ok("ticket", "show", tickets[0]["id"])
    assert number in text and "Lamp on order" in text

    status = cli.json("status")
    assert status["pending"] == 0 and status["lastSyncAt"] and status["email"] == tech.email

    assert cli.ok("sync") == "Synced: nothing new.\n"
    checked = cli.json("sync", "--verify")
    assert checked["verified"] and checked["mismatched"] == [], checked


def test_ticket_set_offline_is_queued_then_synced(
    cli: Cli, world: World, client: httpx.Client, server_url: str
) -> None:
    agent, tech, tickets = _setup(world, client)
    cli.ok(
        "login", "--email", tech.email, "--password-stdin", stdin=PASSWORD + "\n", server=server_url
    )
    cli.ok("sync")
    ticket = tickets[0]

    # offline edits need no server at all
    out = cli.ok("ticket", "set", ticket["number"], "priority=high", "title=Lamp, room 204")
    assert "wait to be sent" in out
    cli.ok("ticket", "comment", ticket["number"], "Lamp replaced", "--minutes", "20")
    listed = {t["id"]: t for t in cli.json("tickets")}
    assert listed[ticket["id"]]["pending"] and listed[ticket["id"]]["priority"] == "high"
    assert cli.json("status")["pending"] == 2

    # the laptop loses the network: every connection goes to a proxy that is not there
    online = cli.env
    cli.env = {k: v for k, v in online.items() if k.lower() not in ("no_proxy", "all_proxy")}
    cli.env["ALL_PROXY"] = closed_port_url()
    done = cli("sync")
    assert done.returncode == EXIT_OK, done.stderr
    assert "Working offline" in done.stdout and "2 change(s) wait to be sent" in done.stdout
    retried = cli("ticket", "comment", ticket["number"], "Tested: works", "--sync")
    assert retried.returncode == EXIT_OK, retried.stderr
    assert "Working offline" in retried.stdout
    cli.env = online

    status = cli.json("status")
    assert status["pending"] == 3 and status["lastError"], status
    report = cli.json("sync")
    assert report["outcome"] == "ok", report
    assert (report["pushed"], report["applied"]) == (3, 3)
    assert cli.json("status")["pending"] == 0

    server = client.get(f"/api/tickets/{ticket['id']}", headers=agent.headers).json()["data"]
    assert (server["priority"], server["title"]) == ("high", "Lamp, room 204")
    comments = client.get(f"/api/tickets/{ticket['id']}/comments", headers=agent.headers)
    assert [c["body"] for c in comments.json()["data"]] == [
        "Lamp on order",
        "Lamp replaced",
        "Tested: works",
    ]


def test_usage_and_sign_in_errors_have_their_exit_codes(
    cli: Cli, world: World, client: httpx.Client, server_url: str
) -> None:
    done = cli("tickets", server=server_url)
    assert done.returncode == EXIT_NOT_SIGNED_IN
    assert "not signed in" in done.stderr and "resolve-sync login" in done.stderr
    agent, tech, tickets = _setup(world, client)
    cli.ok(
        "login", "--email", tech.email, "--password-stdin", stdin=PASSWORD + "\n", server=server_url
    )
    cli.ok("sync")
    bad = cli("ticket", "set", tickets[0]["id"], "priority=urgent")
    assert bad.returncode == EXIT_USAGE and "priority must be one of" in bad.stderr
    bad = cli("ticket", "set", tickets[0]["id"], "colour=red")
    assert bad.returncode == EXIT_USAGE
    missing = cli("ticket", "show", "INC-999999")
    assert missing.returncode == 1 and "not in the replica" in missing.stderr
    refused = cli("ticket", "set", tickets[0]["id"], "status=closed")
    assert refused.returncode == 1, refused.stderr

    # someone changes the priority while this laptop changes it too: a conflict
    changed = client.patch(
        f"/api/tickets/{tickets[1]['id']}", json={"priority": "critical"}, headers=agent.headers
    )
    assert changed.status_code == 200, changed.text
    out = cli.ok("ticket", "set", tickets[1]["number"], "priority=low", "--sync")
    assert "1 in conflict" in out and "priority" in out
    (conflict,) = cli.json("conflicts")["conflicts"]
    assert (conflict["field"], conflict["mine"], conflict["server"]) == (
        "priority",
        "low",
        "critical",
    )
    out = cli.ok("resolve", conflict["id"], "--keep", "server", "--sync")
    assert "keeping server" in out and "Synced" in out
    assert cli.ok("conflicts") == "No conflicts or rejected changes.\n"

    out = cli.ok("logout")
    assert "Signed out" in out
    assert not (cli.data_dir / CREDENTIALS_FILE).exists()
    after = cli("tickets")
    assert after.returncode == EXIT_NOT_SIGNED_IN
    assert list((cli.data_dir / "replicas").glob("*.sqlite3")), "the replica is kept"


def test_new_ticket_and_parts_used_offline_reach_the_server(
    cli: Cli, world: World, client: httpx.Client, server_url: str
) -> None:
    agent, tech, tickets = _setup(world, client)
    van = client.post(
        "/api/inventory/locations",
        json={"name": "Dana's van", "kind": "van", "holderUserId": str(tech.id)},
        headers=agent.headers,
    ).json()["data"]
    part = client.post(
        "/api/inventory/parts",
        json={"name": "Projector lamp", "partNumber": "LAMP-1"},
        headers=agent.headers,
    ).json()["data"]
    stocked = client.post(
        "/api/inventory/movements",
        json={"kind": "receive", "partId": part["id"], "locationId": van["id"], "quantity": 5},
        headers=agent.headers,
    )
    assert stocked.status_code == 201, stocked.text
    cli.ok(
        "login", "--email", tech.email, "--password-stdin", stdin=PASSWORD + "\n", server=server_url
    )
    cli.ok("sync")

    out = cli.ok("ticket", "new", "--title", "Smartboard pen missing", "--description", "Rm 12")
    assert "not yet numbered" in out
    out = cli.ok("part", "use", tickets[0]["number"], "lamp-1", "2", "--location", "Dana's van")
    assert "2 x Projector lamp used from Dana's van" in out
    created = [t for t in cli.json("tickets") if not t["synced"]]
    assert [t["displayNumber"] for t in created] == ["New (not yet synced)"]

    report = cli.json("sync")
    assert report["outcome"] == "ok" and report["applied"] == 2, report
    (made,) = [t for t in cli.json("tickets") if t["id"] == created[0]["id"]]
    assert made["synced"] and made["number"].startswith("INC-"), made
    stock = client.get(f"/api/inventory/parts/{part['id']}", headers=agent.headers)
    assert stock.json()["data"]["currentStock"] == 3


def test_files_and_devices_offline_from_the_command_line(
    cli: Cli, world: World, client: httpx.Client, server_url: str, tmp_path: Path
) -> None:
    from tests.test_assets import build_campus, make_asset
    from tests.test_uploads import PNG, _intent, _put

    campus = build_campus(client, world, slug="clifiles")
    agent = world.user(campus.tenant.id, Role.AGENT)
    tech = world.user(campus.tenant.id, Role.TECHNICIAN)
    ticket = new_ticket(client, agent, assigneeId=str(tech.id))
    panel = make_asset(client, campus, "MPS-PANEL-7", type="Projector")
    intent = _intent(client, agent.headers, ticketId=ticket["id"])
    assert _put(client, intent, PNG).status_code == 200
    theirs = client.post(
        f"/api/tickets/{ticket['id']}/attachments",
        json={"storageKey": intent["storageKey"]},
        headers=agent.headers,
    )
    assert theirs.status_code == 201, theirs.text
    cli.ok(
        "login", "--email", tech.email, "--password-stdin", stdin=PASSWORD + "\n", server=server_url
    )
    cli.ok("sync")
    number = ticket["number"]

    photo = tmp_path / "lamp.png"
    photo.write_bytes(PNG + b"\x00" * 32)
    out = cli.ok("ticket", "attach", number, str(photo), "--internal")
    assert "lamp.png attached" in out and "wait to be sent" in out
    cli.ok("asset", "link", number, panel["id"])
    shown = cli.json("ticket", "show", number)
    files = {a["fileName"]: a for a in shown["attachments"]}
    assert files["lamp.png"]["local"] and not files["lamp.png"]["synced"]
    assert files["projector.png"]["synced"] and not files["projector.png"]["local"]
    assert [a["assetId"] for a in shown["assets"]] == [panel["id"]]
    text = cli.ok("ticket", "show", number)
    assert "not downloaded" in text and "on this computer [not yet sent]" in text
    assert cli.json("status")["uploadsWaiting"] == 1

    report = cli.json("sync")
    assert report["uploaded"] == 1 and report["applied"] == 2, report
    path = Path(cli.ok("ticket", "file", theirs.json()["data"]["id"]).strip())
    assert path.read_bytes() == PNG
    shown = cli.json("ticket", "show", number)
    assert all(a["local"] and a["synced"] for a in shown["attachments"])
    assert shown["assets"][0]["asset"]["assetTag"] == "MPS-PANEL-7"

    out = cli.ok("asset", "unlink", number, "MPS-PANEL-7", "--sync")
    assert "unlinked" in out and "Synced" in out
    assert cli.json("ticket", "show", number)["assets"] == []
    listed = client.get(f"/api/tickets/{ticket['id']}/attachments", headers=agent.headers)
    assert sorted(a["fileName"] for a in listed.json()["data"]) == ["lamp.png", "projector.png"]
    linked = client.get(f"/api/assets/{panel['id']}/tickets", headers=agent.headers)
    assert linked.json()["data"] == []
