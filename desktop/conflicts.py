"""Conflicts and refused changes: what the server did not take as the technician sent it.

A **conflict** is a field both the technician (offline) and someone on the server
changed; the server kept its value. The view shows both values side by side and
queues the technician's choice ("Keep mine", "Keep the server's", "Edit…") as a
``conflict.resolve`` through the one writer; the card says "waiting to sync" until the
server has it, then goes. A **refused change** is listed with the server's reason
until the technician dismisses it. Reads come from the reader thread
(``desktop.data.load_conflicts``), edits go to the writer (``desktop.operations``).
"""

from __future__ import annotations

import html
from typing import Any

from desktop import operations
from desktop.data import (
    PRIORITIES,
    ConflictItem,
    ConflictList,
    Names,
    Reader,
    RejectedItem,
    load_conflicts,
    local_text,
)
from desktop.host import ReplicaHost
from desktop.qt import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    Qt,
    QVBoxLayout,
    QWidget,
    Signal,
    Slot,
)
from sync.replica import Changes

#: fields whose value is one of a few levels
LEVELS: dict[str, tuple[str, ...]] = {
    "priority": PRIORITIES,
    "urgency": ("high", "medium", "low"),
    "impact": ("high", "medium", "low"),
}
KEPT_WORDS = {
    "mine": "You kept your value",
    "server": "You kept the server's value",
    "value": "You chose a new value",
}


def _label(text: str, name: str = "", *, wrap: bool = False) -> QLabel:
    label = QLabel(text)
    if name:
        label.setObjectName(name)
    label.setWordWrap(wrap)
    return label


class EditValueDialog(QDialog):
    """A new value for a conflicting field: a list for levels and people, a text box
    otherwise. ``value()`` is what to send."""

    def __init__(
        self,
        item: ConflictItem,
        people: tuple[tuple[str, str], ...],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.item = item
        self.setWindowTitle(f"{item.label} of {item.number}")
        self.setMinimumWidth(420)
        self.combo: QComboBox | None = None
        self.line: QLineEdit | None = None
        self.text: QPlainTextEdit | None = None
        editor: QWidget
        if item.field in LEVELS:
            combo = QComboBox()
            for level in LEVELS[item.field]:
                combo.addItem(level.capitalize(), level)
            at = combo.findData(item.mine_value)
            combo.setCurrentIndex(max(at, 0))
            self.combo = editor = combo
        elif item.field == "assigneeId":
            combo = QComboBox()
            combo.addItem("Unassigned", None)
            for user_id, name in people:
                combo.addItem(name, user_id)
            at = combo.findData(item.mine_value)
            combo.setCurrentIndex(max(at, 0))
            self.combo = editor = combo
        elif item.field == "description":
            text = QPlainTextEdit(str(item.mine_value or ""))
            text.setMinimumHeight(120)
            self.text = editor = text
        else:
            line = QLineEdit(str(item.mine_value or ""))
            self.line = editor = line
        intro = _label(
            f"<b>{html.escape(item.label)}</b> — yours: {html.escape(item.mine)}; "
            f"the server's: {html.escape(item.server)}. "
            + ("Choose" if self.combo is not None else "Type")
            + " the value to keep.",
            "muted",
            wrap=True,
        )
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setText("Keep this value")
        ok.setObjectName("primary")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(editor)
        layout.addWidget(buttons)

    def value(self) -> Any:
        if self.combo is not None:
            return self.combo.currentData()
        if self.text is not None:
            return self.text.toPlainText().strip()
        assert self.line is not None
        return self.line.text().strip()


class ConflictCard(QFrame):
    """One conflict: the ticket, the field, both values, and the three choices."""

    chosen = Signal(str, str)  # conflict id, "mine" | "server"
    edit = Signal(str)  # conflict id
    open_ticket = Signal(str)

    def __init__(self, item: ConflictItem, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.item = item
        self.setObjectName("conflictCard")
        self.ticket_button = QPushButton(f"{item.number} · {item.title}")
        self.ticket_button.setObjectName("link")
        self.ticket_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.ticket_button.setToolTip("Open the ticket in My work")
        self.ticket_button.clicked.connect(lambda: self.open_ticket.emit(item.ticket_id))
        when = _label(f"found {local_text(item.created_at)}", "muted")
        top = QHBoxLayout()
        top.addWidget(self.ticket_button)
        top.addStretch(1)
        top.addWidget(when)

        field_line = _label(
            f"<b>{html.escape(item.label)}</b>"
            f"<span style='color:#5b6675'> — both changed it; you started from "
            f"{html.escape(item.base)}</span>"
        )
        self.mine_box = self._side("Yours (changed offline)", item.mine, "mine")
        self.server_box = self._side("On the server now", item.server, "server")
        sides = QHBoxLayout()
        sides.setSpacing(10)
        sides.addWidget(self.mine_box, 1)
        sides.addWidget(self.server_box, 1)

        self.keep_mine = QPushButton("Keep mine")
        self.keep_mine.setObjectName("primary")
        self.keep_mine.clicked.connect(lambda: self.chosen.emit(item.id, "mine"))
        self.keep_server = QPushButton("Keep the server's")
        self.keep_server.clicked.connect(lambda: self.chosen.emit(item.id, "server"))
        self.edit_button = QPushButton("Edit…")
        self.edit_button.setToolTip("Enter another value to keep")
        self.edit_button.clicked.connect(lambda: self.edit.emit(item.id))
        self.state_label = _label("", "pendingNote")
        buttons = QHBoxLayout()
        buttons.addWidget(self.state_label)
        buttons.addStretch(1)
        buttons.addWidget(self.edit_button)
        buttons.addWidget(self.keep_server)
        buttons.addWidget(self.keep_mine)
        if item.resolution is not None:
            words = KEPT_WORDS.get(item.resolution, "Resolved")
            if item.resolution == "value" and item.chosen:
                words += f" ({item.chosen})"
            self.state_label.setText(f"✓ {words} — it will be sent at the next sync")
            for button in (self.keep_mine, self.keep_server, self.edit_button):
                button.setVisible(False)
            self.setProperty("resolved", True)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 10, 14, 10)
        layout.setSpacing(6)
        layout.addLayout(top)
        layout.addWidget(field_line)
        layout.addLayout(sides)
        layout.addLayout(buttons)

    @staticmethod
    def _side(title: str, value: str, side: str) -> QFrame:
        box = QFrame()
        box.setObjectName("valueBox")
        box.setProperty("side", side)
        heading = _label(title, "valueHeading")
        shown = _label(value, "value", wrap=True)
        shown.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        inner = QVBoxLayout(box)
        inner.setContentsMargins(10, 6, 10, 8)
        inner.setSpacing(2)
        inner.addWidget(heading)
        inner.addWidget(shown)
        return box


class RejectedCard(QFrame):
    """One change the server refused: what was sent and why."""

    dismiss = Signal(str)  # mutation id
    open_ticket = Signal(str)

    def __init__(self, item: RejectedItem, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.item = item
        self.setObjectName("rejectedCard")
        top = QHBoxLayout()
        if item.ticket_id and item.number:
            ticket = QPushButton(f"{item.number} · {item.title}")
            ticket.setObjectName("link")
            ticket.setCursor(Qt.CursorShape.PointingHandCursor)
            ticket.clicked.connect(lambda: self.open_ticket.emit(item.ticket_id or ""))
            top.addWidget(ticket)
        else:
            top.addWidget(_label("A ticket no longer on this computer", "muted"))
        top.addStretch(1)
        top.addWidget(_label(f"refused {local_text(item.judged_at)}", "muted"))
        what = _label(
            f"<span style='color:#5b6675'>You sent:</span> {html.escape(item.what)}", wrap=True
        )
        what.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.reason_label = _label(
            f"<span style='color:#b42318;font-weight:600'>Not accepted:</span> "
            f"{html.escape(item.reason)}",
            wrap=True,
        )
        self.reason_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.dismiss_button = QPushButton("Dismiss")
        self.dismiss_button.setToolTip("I have read this; take it off the list")
        self.dismiss_button.clicked.connect(lambda: self.dismiss.emit(item.mutation_id))
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.dismiss_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 10, 14, 10)
        layout.setSpacing(6)
        layout.addLayout(top)
        layout.addWidget(what)
        layout.addWidget(self.reason_label)
        layout.addLayout(buttons)


class ConflictsView(QWidget):
    """The Conflicts tab: open conflicts, then refused changes."""

    #: a message for the status bar
    message = Signal(str)
    #: show this ticket in My work
    open_ticket = Signal(str)
    #: the list was read (open conflicts, refused changes)
    loaded = Signal(int, int)

    def __init__(self, host: ReplicaHost, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("conflictsView")
        self.host = host
        self.items = ConflictList((), ())
        self.cards: dict[str, ConflictCard] = {}
        self.rejected_cards: dict[str, RejectedCard] = {}
        self.edit_dialog: EditValueDialog | None = None
        self._dirty = True

        title = _label("Conflicts and refused changes", "name")
        intro = _label(
            "While you worked offline, someone changed the same field on the server, or "
            "the server could not accept a change. Nothing you typed is lost: choose what "
            "to keep. Your choice is sent at the next sync.",
            "muted",
            wrap=True,
        )
        self.conflicts_title = _label("Conflicts", "sectionTitle")
        self.conflicts_box = QVBoxLayout()
        self.conflicts_box.setSpacing(10)
        self.no_conflicts = _label("No conflicts.", "muted")
        self.rejected_title = _label("Refused changes", "sectionTitle")
        self.rejected_box = QVBoxLayout()
        self.rejected_box.setSpacing(10)
        self.no_rejected = _label("The server accepted every change you sent.", "muted")

        content = QWidget()
        content.setObjectName("conflictsContent")
        inner = QVBoxLayout(content)
        inner.setContentsMargins(24, 18, 24, 18)
        inner.setSpacing(10)
        inner.addWidget(title)
        inner.addWidget(intro)
        inner.addSpacing(6)
        inner.addWidget(self.conflicts_title)
        inner.addWidget(self.no_conflicts)
        inner.addLayout(self.conflicts_box)
        inner.addSpacing(10)
        inner.addWidget(self.rejected_title)
        inner.addWidget(self.no_rejected)
        inner.addLayout(self.rejected_box)
        inner.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(content)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)

        host.changed.connect(self._replica_changed)
        host.opened.connect(lambda error: self.reload() if error is None else None)

    # ---------------------------------------------------------------- loading

    def reload(self) -> None:
        self._dirty = False
        self.host.read(lambda reader, names: _load(reader, names), self._loaded, name="conflicts")

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self._dirty:
            self.reload()

    @Slot(object)
    def _replica_changed(self, changes: Changes) -> None:
        if not (
            changes.touches("sync_conflicts")
            or changes.verdicts
            or changes.outbox
            or changes.touches("tickets")
        ):
            return
        if self.isVisible():
            self.reload()
        else:
            self._dirty = True  # read again when shown (Anki's views do the same)

    def _loaded(self, items: ConflictList) -> None:
        self.items = items
        self._fill(
            self.conflicts_box,
            self.cards,
            [(c.id, self._conflict_card(c)) for c in items.conflicts],
        )
        self._fill(
            self.rejected_box,
            self.rejected_cards,
            [(r.mutation_id, self._rejected_card(r)) for r in items.rejected],
        )
        self.conflicts_title.setText(f"Conflicts ({items.open})" if items.open else "Conflicts")
        self.rejected_title.setText(
            f"Refused changes ({len(items.rejected)})" if items.rejected else "Refused changes"
        )
        self.no_conflicts.setVisible(not items.conflicts)
        self.no_rejected.setVisible(not items.rejected)
        self.loaded.emit(items.open, len(items.rejected))

    @staticmethod
    def _fill(box: QVBoxLayout, cards: dict[str, Any], made: list[tuple[str, QFrame]]) -> None:
        for card in cards.values():
            box.removeWidget(card)
            card.deleteLater()
        cards.clear()
        for key, card in made:
            cards[key] = card
            box.addWidget(card)

    def _conflict_card(self, item: ConflictItem) -> ConflictCard:
        card = ConflictCard(item)
        card.chosen.connect(self.resolve)
        card.edit.connect(self._edit)
        card.open_ticket.connect(self.open_ticket)
        return card

    def _rejected_card(self, item: RejectedItem) -> RejectedCard:
        card = RejectedCard(item)
        card.dismiss.connect(self.dismiss)
        card.open_ticket.connect(self.open_ticket)
        return card

    # ---------------------------------------------------------------- actions

    @Slot(str, str)
    def resolve(self, conflict_id: str, keep: str, value: Any = None) -> None:
        item = next((c for c in self.items.conflicts if c.id == conflict_id), None)
        card = self.cards.get(conflict_id)
        if card is not None:  # one click is enough: the card changes when the write lands
            for button in (card.keep_mine, card.keep_server, card.edit_button):
                button.setEnabled(False)

        def done(_: Changes) -> None:
            if item is not None:
                self.message.emit(
                    f"{item.number}: {KEPT_WORDS.get(keep, 'Resolved').lower()} for "
                    f"{item.label.lower()}. Saved here; it will be sent at the next sync."
                )

        self.host.edit(
            lambda replica: operations.resolve_conflict(replica, conflict_id, keep, value),
            name="resolve-conflict",
            on_done=done,
        )

    @Slot(str)
    def _edit(self, conflict_id: str) -> None:
        item = next((c for c in self.items.conflicts if c.id == conflict_id), None)
        if item is None:
            return
        dialog = EditValueDialog(item, self.items.people, self)
        dialog.accepted.connect(lambda: self.resolve(conflict_id, "value", dialog.value()))
        dialog.finished.connect(dialog.deleteLater)
        self.edit_dialog = dialog
        dialog.open()

    @Slot(str)
    def dismiss(self, mutation_id: str) -> None:
        self.host.edit(
            lambda replica: operations.dismiss_rejection(replica, mutation_id), name="dismiss"
        )


def _load(reader: Reader, names: Names) -> ConflictList:
    return load_conflicts(reader, names)
