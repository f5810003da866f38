"""A technician's offline work in the real widgets (offscreen), against the real server
on loopback behind a relay the tests unplug: conflicts made by another client and
resolved in the conflicts view, refused changes, parts used from the picker, a new
ticket made offline, and a remote wipe ordered by an administrator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from common.enums import Role
from desktop.app import DesktopApp, MainWindow
from desktop.qt import Qt
from sync.credentials import SERVICE_NAME, LastSignIn
from sync.replica import replica_path
from tests import test_desktop, test_desktop_queue
from tests.conftest import Account, World
from tests.test_desktop_queue import Relay, main_of, open_ticket, sign_in_ui, synced_once
from tests.test_sync_client import MemoryKeyring
from tests.test_sync_engine import _server_comments, _server_ticket
from tests.test_tickets import new_ticket

# the fixtures of the other desktop tests (the in-memory keyring is autouse)
make_app = test_desktop.make_app
memory_keyring = test_desktop.memory_keyring
relay = test_desktop_queue.relay


def people(world: World) -> tuple[Account, Account, Account, Account]:
    tenant = world.org("alpha")
    agent = world.user(tenant.id, Role.AGENT, first_name="Marcus", last_name="Okafor")
    tech = world.user(
        tenant.id,
        Role.TECHNICIAN,
        email="dana.reyes@alpha.example",
        first_name="Dana",
        last_name="Reyes",
    )
    teacher = world.user(tenant.id, Role.REQUESTER, first_name="Priya", last_name="Shah")
    return tenant.admin, agent, tech, teacher


def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def go_offline(qtbot: Any, main: MainWindow, relay: Relay) -> None:
    relay.unplug()
    with qtbot.waitSignal(main.host.sync_finished, timeout=15_000):
        main.sync_action.trigger()
    assert main.online_label.text() == "● Offline"


def sync_now(qtbot: Any, main: MainWindow) -> None:
    with qtbot.waitSignal(main.host.sync_finished, timeout=15_000):
        main.sync_action.trigger()
    report = main.host.last_report
    assert report is not None and report.ok, report.errors if report else None


def start(qtbot: Any, make_app: Any, relay: Relay, tech: Account, tickets: int) -> MainWindow:
    main = main_of(sign_in_ui(qtbot, make_app, relay.url, tech, probe_interval_ms=60_000))
    qtbot.waitUntil(lambda: main.queue.model.rowCount() == tickets, timeout=15_000)
    qtbot.waitUntil(lambda: synced_once(main), timeout=15_000)
    return main


# --------------------------------------------------------------------------- conflicts


def test_a_conflict_made_by_another_client_is_resolved_in_the_conflicts_view(
    qtbot: Any, make_app: Any, relay: Relay, world: World, client: httpx.Client
) -> None:
    _, agent, tech, teacher = people(world)
    ticket = new_ticket(
        client,
        agent,
        title="Projector dead in 204",
        requesterId=str(teacher.id),
        assigneeId=str(tech.id),
        priority="medium",
    )
    closing = new_ticket(
        client, agent, title="Badge reader", requesterId=str(teacher.id), assigneeId=str(tech.id)
    )
    main = start(qtbot, make_app, relay, tech, 2)
    pane = main.ticket_pane
    assert not main.conflicts_button.isVisible()
    assert main.tabs.tabText(main.conflicts_tab) == "Conflicts"

    go_offline(qtbot, main, relay)
    # offline: the technician raises the priority and starts work on the badge reader
    open_ticket(qtbot, main, "Projector dead in 204")
    at = pane.priority_combo.findData("high")
    pane.priority_combo.setCurrentIndex(at)
    pane.priority_combo.activated.emit(at)
    qtbot.waitUntil(lambda: main.pending_label.text() == "1 change waiting", timeout=5_000)
    open_ticket(qtbot, main, "Badge reader")
    qtbot.mouseClick(pane.action_buttons["start_work"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: main.pending_label.text() == "2 changes waiting", timeout=5_000)
    # meanwhile, at the desk: the same field changed, and the other ticket cancelled
    ok(
        client.patch(
            f"/api/tickets/{ticket['id']}", json={"priority": "critical"}, headers=agent.headers
        )
    )
    ok(
        client.post(
            f"/api/tickets/{closing['id']}/cancel",
            json={"note": "Duplicate"},
            headers=agent.headers,
        )
    )

    relay.plug()
    sync_now(qtbot, main)
    qtbot.waitUntil(lambda: main.conflicts_button.isVisible(), timeout=5_000)
    assert main.conflicts_button.text() == "⚠ 1 conflict · 1 refused change"
    assert main.tabs.tabText(main.conflicts_tab) == "Conflicts (2)"

    view = main.conflicts_view
    qtbot.mouseClick(main.conflicts_button, Qt.MouseButton.LeftButton)
    assert main.tabs.currentWidget() is view
    qtbot.waitUntil(lambda: len(view.cards) == 1 and len(view.rejected_cards) == 1, timeout=5_000)
    (card,) = view.cards.values()
    item = card.item
    assert (item.number, item.title, item.label) == (ticket["number"], ticket["title"], "Priority")
    assert (item.base, item.mine, item.server) == ("Medium", "High", "Critical")
    assert view.conflicts_title.text() == "Conflicts (1)"
    (refused,) = view.rejected_cards.values()
    assert refused.item.number == closing["number"]
    assert refused.item.what == "Status: Assigned → In progress"
    assert refused.item.reason  # the server's sentence
    assert refused.item.reason in refused.reason_label.text()

    # "Keep mine": queued through the writer, shown at once as waiting to sync
    qtbot.mouseClick(card.keep_mine, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: any(
            "waiting" in c.state_label.text() or "next sync" in c.state_label.text()
            for c in view.cards.values()
        ),
        timeout=5_000,
    )
    (card,) = view.cards.values()
    assert card.state_label.text().startswith("✓ You kept your value")
    assert not card.keep_mine.isVisibleTo(card)
    qtbot.waitUntil(lambda: main.pending_label.text() == "1 change waiting", timeout=5_000)
    assert main.conflicts_button.text() == "⚠ 1 refused change"
    shown = main.host.status
    assert shown is not None and shown.open_conflicts == 0 and shown.conflicts == 0

    # the refused change is read: dismissed, it leaves the list and the count
    (refused,) = view.rejected_cards.values()  # the cards were read again
    qtbot.mouseClick(refused.dismiss_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not view.rejected_cards, timeout=5_000)
    qtbot.waitUntil(lambda: not main.conflicts_button.isVisible(), timeout=5_000)
    assert view.no_rejected.isVisible()

    sync_now(qtbot, main)
    assert _server_ticket(client, agent, ticket["id"])["priority"] == "high"
    qtbot.waitUntil(lambda: not view.cards, timeout=5_000)
    assert view.no_conflicts.isVisible()
    assert main.tabs.tabText(main.conflicts_tab) == "Conflicts"
    assert main.host.status is not None and main.host.status.pending == 0


def test_edit_keeps_a_new_value_and_the_ticket_link_opens_the_ticket(
    qtbot: Any, make_app: Any, relay: Relay, world: World, client: httpx.Client
) -> None:
    _, agent, tech, teacher = people(world)
    ticket = new_ticket(
        client,
        agent,
        title="Smartboard pen lost",
        requesterId=str(teacher.id),
        assigneeId=str(tech.id),
    )
    main = start(qtbot, make_app, relay, tech, 1)
    go_offline(qtbot, main, relay)
    main.ticket_pane.show_ticket(ticket["id"])
    qtbot.waitUntil(lambda: main.ticket_pane.view is not None, timeout=5_000)
    main.host.edit(lambda r: r.update_ticket(ticket["id"], {"title": "Smartboard pen, room 12"}))
    ok(
        client.patch(
            f"/api/tickets/{ticket['id']}",
            json={"title": "Smartboard pen missing"},
            headers=agent.headers,
        )
    )
    relay.plug()
    sync_now(qtbot, main)
    main.show_conflicts()
    view = main.conflicts_view
    qtbot.waitUntil(lambda: len(view.cards) == 1, timeout=5_000)
    (card,) = view.cards.values()
    # the card names the ticket; a click opens it in My work
    qtbot.mouseClick(card.ticket_button, Qt.MouseButton.LeftButton)
    assert main.tabs.currentIndex() == 0
    qtbot.waitUntil(lambda: main.queue.table.currentIndex().row() == 0, timeout=5_000)
    assert main.ticket_pane.ticket_id == ticket["id"]
    main.show_conflicts()
    assert (card.item.mine, card.item.server) == (
        "Smartboard pen, room 12",
        "Smartboard pen missing",
    )

    qtbot.mouseClick(card.edit_button, Qt.MouseButton.LeftButton)
    dialog = view.edit_dialog
    assert dialog is not None and dialog.line is not None
    assert dialog.line.text() == "Smartboard pen, room 12"
    dialog.line.setText("Smartboard pen missing, room 12")
    dialog.accept()
    qtbot.waitUntil(
        lambda: any(c.item.resolution == "value" for c in view.cards.values()), timeout=5_000
    )
    (card,) = view.cards.values()
    assert "Smartboard pen missing, room 12" in card.state_label.text()
    sync_now(qtbot, main)
    assert _server_ticket(client, agent, ticket["id"])["title"] == "Smartboard pen missing, room 12"
    qtbot.waitUntil(lambda: not view.cards, timeout=5_000)


# --------------------------------------------------------------------------- parts


def test_parts_used_offline_lower_the_stock_shown_and_reach_the_server_once(
    qtbot: Any, make_app: Any, relay: Relay, world: World, client: httpx.Client
) -> None:
    admin, agent, tech, teacher = people(world)
    new_ticket(
        client,
        agent,
        title="Projector lamp out",
        requesterId=str(teacher.id),
        assigneeId=str(tech.id),
    )
    van = ok(
        client.post(
            "/api/inventory/locations",
            json={"name": "Dana's van", "kind": "van", "holderUserId": str(tech.id)},
            headers=admin.headers,
        ),
        201,
    )
    lamp = ok(
        client.post(
            "/api/inventory/parts",
            json={"name": "Projector lamp", "partNumber": "LAMP-1", "reorderPoint": 3},
            headers=admin.headers,
        ),
        201,
    )
    cable = ok(
        client.post(
            "/api/inventory/parts",
            json={"name": "HDMI cable", "partNumber": "HDMI-2"},
            headers=admin.headers,
        ),
        201,
    )
    for part, quantity in ((lamp, 5), (cable, 12)):
        ok(
            client.post(
                "/api/inventory/movements",
                json={
                    "kind": "receive",
                    "partId": part["id"],
                    "locationId": van["id"],
                    "quantity": quantity,
                },
                headers=admin.headers,
            ),
            201,
        )
    main = start(qtbot, make_app, relay, tech, 1)
    open_ticket(qtbot, main, "Projector lamp out")
    pane = main.ticket_pane
    go_offline(qtbot, main, relay)

    qtbot.mouseClick(pane.parts_button, Qt.MouseButton.LeftButton)
    picker = pane.parts_picker
    assert picker is not None and picker.isVisible()
    qtbot.waitUntil(lambda: len(picker.items) == 2, timeout=5_000)
    rows = {
        picker.table.item(r, 0).text(): [picker.table.item(r, c).text() for c in range(4)]
        for r in range(picker.table.rowCount())
    }
    assert rows == {
        "HDMI cable": ["HDMI cable", "HDMI-2", "Dana's van (yours)", "12"],
        "Projector lamp": ["Projector lamp", "LAMP-1", "Dana's van (yours)", "5"],
    }
    qtbot.keyClicks(picker.filter_edit, "lamp")
    assert picker.table.rowCount() == 1
    assert picker.select(lamp["id"])
    assert picker.quantity_spin.maximum() == 5
    picker.quantity_spin.setValue(2)
    with qtbot.waitSignal(picker.accepted, timeout=5_000):  # closes once saved here
        qtbot.mouseClick(picker.use_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Used 2 x Projector lamp" in pane.timeline.toPlainText(), timeout=5_000)
    assert main.pending_label.text() == "1 change waiting"

    # the stock shown dropped at once, and is now at the reorder point: marked low
    qtbot.mouseClick(pane.parts_button, Qt.MouseButton.LeftButton)
    again = pane.parts_picker
    assert again is not None and again is not picker
    qtbot.waitUntil(lambda: len(again.items) == 2, timeout=5_000)
    assert again.select(lamp["id"])
    (shown,) = [i for i in again.items if i.part_id == lamp["id"]]
    assert shown.quantity == 3 and shown.low
    row = again.table.currentRow()
    assert again.table.item(row, 3).text() == "3 · Low"
    again.reject()

    relay.plug()
    sync_now(qtbot, main)
    qtbot.waitUntil(lambda: main.pending_label.text() == "All changes sent", timeout=5_000)
    stock = ok(client.get(f"/api/inventory/parts/{lamp['id']}", headers=admin.headers))
    assert stock["currentStock"] == 3
    sync_now(qtbot, main)  # a second sync does not count it again
    stock = ok(client.get(f"/api/inventory/parts/{lamp['id']}", headers=admin.headers))
    assert stock["currentStock"] == 3
    qtbot.waitUntil(lambda: "not yet synced" not in pane.timeline.toPlainText(), timeout=5_000)
    assert "Used 2 x Projector lamp" in pane.timeline.toPlainText()


# --------------------------------------------------------------------------- new ticket


def test_a_ticket_made_offline_shows_as_new_and_gets_its_number_after_sync(
    qtbot: Any, make_app: Any, relay: Relay, world: World, client: httpx.Client
) -> None:
    admin, agent, tech, teacher = people(world)
    site = ok(client.post("/api/sites", json={"name": "Lincoln High"}, headers=admin.headers), 201)
    building = ok(
        client.post(
            f"/api/sites/{site['id']}/buildings", json={"name": "Main"}, headers=admin.headers
        ),
        201,
    )
    rooms = [
        ok(
            client.post(
                f"/api/buildings/{building['id']}/rooms",
                json={"number": number},
                headers=admin.headers,
            ),
            201,
        )
        for number in ("101", "204")
    ]
    new_ticket(
        client,
        agent,
        title="Projector dead in 204",
        requesterId=str(teacher.id),
        assigneeId=str(tech.id),
        siteId=site["id"],
        buildingId=building["id"],
        roomId=rooms[1]["id"],
    )
    main = start(qtbot, make_app, relay, tech, 1)
    open_ticket(qtbot, main, "Projector dead in 204")
    go_offline(qtbot, main, relay)

    qtbot.keyClick(main, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    dialog = main.new_ticket_dialog
    assert dialog is not None and dialog.isVisible()
    qtbot.waitUntil(lambda: dialog.building_combo.count() > 1, timeout=5_000)
    # the place comes from the ticket that was open
    assert dialog.building_combo.currentText() == "Main"
    assert dialog.room_combo.currentData() == rooms[1]["id"]
    assert not dialog.create_button.isEnabled()
    qtbot.keyClicks(dialog.title_edit, "Ceiling tile loose above the projector")
    dialog.description_edit.setPlainText("Hanging by one corner; roped off the area.")
    dialog.urgency_combo.setCurrentIndex(dialog.urgency_combo.findData("high"))
    with qtbot.waitSignal(dialog.accepted, timeout=5_000):  # closes once saved here
        qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)

    pane = main.ticket_pane
    title = "Ceiling tile loose above the projector"
    qtbot.waitUntil(lambda: pane.view is not None and pane.view.title == title, timeout=5_000)
    assert pane.number_label.text().startswith("New (not yet synced)")
    assert pane.place_label.text() == "Main · Room 204"
    qtbot.waitUntil(lambda: main.queue.model.rowCount() == 2, timeout=5_000)
    model = main.queue.model
    row = model.row_of(pane.ticket_id)
    assert row is not None
    assert model.data(model.index(row, 0)).startswith("New (not yet synced)")
    assert main.queue.table.currentIndex().row() == row
    assert main.pending_label.text() == "1 change waiting"

    relay.plug()
    sync_now(qtbot, main)
    server = _server_ticket(client, agent, pane.ticket_id)
    assert server["title"] == title and server["number"].startswith("INC-")
    assert (server["buildingId"], server["roomId"], server["siteId"]) == (
        building["id"],
        rooms[1]["id"],
        site["id"],
    )
    assert server["urgency"] == "high"
    assert server["requesterId"] == str(tech.id)
    qtbot.waitUntil(lambda: pane.number_label.text() == server["number"], timeout=5_000)
    row = model.row_of(pane.ticket_id)
    assert row is not None and model.data(model.index(row, 0)) == server["number"]
    assert _server_comments(client, agent, pane.ticket_id) == []


# --------------------------------------------------------------------------- remote wipe


def test_a_remote_wipe_closes_the_window_forgets_the_sign_in_and_asks_to_sign_in(
    qtbot: Any,
    make_app: Any,
    server_url: str,
    world: World,
    client: httpx.Client,
    memory_keyring: MemoryKeyring,
    tmp_path: Path,
) -> None:
    admin, agent, tech, teacher = people(world)
    new_ticket(
        client, agent, title="Lost laptop", requesterId=str(teacher.id), assigneeId=str(tech.id)
    )
    controller: DesktopApp = sign_in_ui(qtbot, make_app, server_url, tech)
    main = main_of(controller)
    qtbot.waitUntil(lambda: synced_once(main) and main.host.status is not None, timeout=15_000)
    status = main.host.status
    assert status is not None
    path = replica_path(controller.directory, server_url, str(tech.id))
    assert path.exists()
    key = (SERVICE_NAME, f"{server_url}|{tech.email}")
    assert key in memory_keyring.entries

    ok(client.post(f"/api/sync/devices/{status.device_id}/wipe", headers=admin.headers))
    with qtbot.waitSignal(controller.signed_out, timeout=15_000):
        main.sync_action.trigger()
    assert controller.main_window is None  # closed (and deleted)
    window = controller.sign_in_window
    assert window.isVisible()
    assert "removed this computer's copy" in window.status_label.text()
    notice = controller.wipe_notice
    assert notice is not None and notice.isVisible()
    assert notice.windowTitle() == "This computer was wiped"
    assert window.email_edit.text() == "" and window.server_edit.text() == server_url
    assert not path.exists()
    assert key not in memory_keyring.entries
    assert LastSignIn.load(controller.directory) is None
    listed = client.get("/api/sync/devices", headers=admin.headers)
    assert listed.status_code == 200, listed.text
    (device,) = [d for d in listed.json()["data"] if d["id"] == status.device_id]
    assert device["wipedAt"] is not None
