"""Render the main views offscreen from sample data into PNG files.

``python -m desktop.screenshots docs/screenshots`` (needs no server and no display:
it sets ``QT_QPA_PLATFORM=offscreen`` when nothing else is set).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from desktop import sample


def _wait(app: object, until: Callable[[], bool], timeout: float = 10.0) -> None:
    from desktop.qt import QApplication

    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise TimeoutError("the window did not fill in time")
        QApplication.processEvents()
        time.sleep(0.01)


def _settle(app: object) -> None:
    from desktop.qt import QApplication

    for _ in range(20):
        QApplication.processEvents()
        time.sleep(0.01)


def render(out: Path, tickets: int = 2_000) -> list[Path]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from desktop.app import MainWindow, Session, create_application
    from desktop.host import ReplicaHost
    from sync.client import ApiClient, Me

    app = create_application([sys.argv[0]])
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "replica.sqlite3"
        replica = sample.build(path, tickets)
        sample.add_work(replica)  # parts, two conflicts, a refused change
        replica.close()
        client = ApiClient(sample.SERVER)
        me = Me.from_api(
            {
                "user": {
                    "id": sample.ME,
                    "email": "dana.reyes@lincoln-usd.example",
                    "firstName": "Dana",
                    "lastName": "Reyes",
                    "fullName": "Dana Reyes",
                    "role": "technician",
                    "mfaEnabled": False,
                },
                "organization": {"id": "o", "name": "Lincoln USD", "slug": "lincoln-usd"},
            }
        )
        session = Session(client, me, me.user.email, True, False, datetime.now())
        host = ReplicaHost(path, server_url=sample.SERVER, user_id=sample.ME, client=client)
        window = MainWindow(session, host)
        host.start(sync=False)
        host.online = True
        window._set_online(True)
        window.resize(1360, 820)
        window.show()
        model = window.queue.model
        _wait(app, lambda: model.total > 0 and host.status is not None)
        window.statusBar().clearMessage()
        window.last_sync_label.setText(f"Last sync {datetime.now():%H:%M}")
        window.queue.table.selectRow(2)
        _wait(app, lambda: window.ticket_pane.view is not None)
        ticket_id = window.ticket_pane.ticket_id
        # an edit waiting to sync, so the status bar and the timeline show one
        host.edit(
            lambda r: r.add_comment(
                ticket_id, "Replaced the lamp; the picture is steady now.", minutes_worked=25
            )
        )
        _wait(app, lambda: bool(host.status and host.status.pending))
        _wait(app, lambda: any(e.pending for e in window.ticket_pane.view.timeline))  # type: ignore[union-attr]
        for _ in range(20):
            app.processEvents()
            time.sleep(0.01)
        first = out / "queue-and-ticket.png"
        window.grab().save(str(first))
        written.append(first)

        window.queue.group_check.setChecked(True)
        window.queue.breached_check.setChecked(False)
        window.queue.search_edit.setText("projector")
        _wait(app, lambda: window.queue.model.query.search == "projector" and not model.loading)
        for _ in range(20):
            app.processEvents()
            time.sleep(0.01)
        second = out / "queue-grouped-search.png"
        window.grab().save(str(second))
        written.append(second)

        # Conflicts and refused changes, reached from the status bar's count.
        window.conflicts_button.click()
        view = window.conflicts_view
        _wait(app, lambda: len(view.cards) == 2 and len(view.rejected_cards) == 1)
        _settle(app)
        written.append(out / "conflicts.png")
        window.grab().save(str(written[-1]))

        # The parts picker over the ticket pane, and a new ticket made from its context.
        window.queue.search_edit.clear()
        window.queue.group_check.setChecked(False)
        window.tabs.setCurrentIndex(0)
        pane = window.ticket_pane
        pane.open_parts_picker()
        picker = pane.parts_picker
        assert picker is not None
        _wait(app, lambda: bool(picker.items))
        _settle(app)
        written.append(out / "parts-picker.png")
        picker.grab().save(str(written[-1]))
        picker.reject()
        window.open_new_ticket()
        dialog = window.new_ticket_dialog
        assert dialog is not None
        _wait(app, lambda: dialog.building_combo.count() > 1)
        dialog.title_edit.setText("Ceiling tile loose above the projector")
        dialog.description_edit.setPlainText(
            "Hanging by one corner over the teacher's desk; I roped off the area."
        )
        _settle(app)
        written.append(out / "new-ticket.png")
        dialog.grab().save(str(written[-1]))
        dialog.reject()
        host.shutdown()
        window.close()
        client.close()
    return written


if __name__ == "__main__":
    for written in render(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")):
        print(written)
