"""The ticket pane: fields, description, one timeline, and the actions the workflow
allows from the status shown. Reads come from the reader thread (``desktop.data``),
edits go to the writer (``desktop.operations``); the pane reloads when a write's
``Changes`` touch its ticket."""

from __future__ import annotations

import html
from functools import partial

from common.workflow import Transition
from desktop import operations
from desktop.data import (
    PRIORITIES,
    Entry,
    Names,
    Reader,
    TicketView,
    load_ticket,
    local_text,
    status_label,
)
from desktop.host import ReplicaHost
from desktop.parts import PartsPicker
from desktop.qt import (
    QCheckBox,
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    Qt,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
    Signal,
    Slot,
)
from sync.replica import Changes, Replica

#: button text of each workflow transition (those a technician meets first)
ACTION_LABELS = {
    "triage": "Triage",
    "assign": "Assign",
    "start_work": "Start work",
    "hold": "Put on hold",
    "wait_on_requester": "Wait on requester",
    "requester_replied": "Requester replied",
    "resolve": "Resolve…",
    "approve_resolution": "Approve resolution",
    "reject_resolution": "Reject resolution",
    "close": "Close",
    "auto_close": "Close (no answer)",
    "reopen": "Reopen",
    "cancel": "Cancel ticket",
}
ENTRY_STYLE = {
    "comment": ("#1f5fbf", "commented"),
    "note": ("#8a5a00", "internal note"),
    "status": ("#2e7d32", ""),
    "event": ("#5b6675", ""),
    "part": ("#6a3fb5", ""),
    "pending": ("#7a5b00", "waiting to sync"),
}


def _minutes(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    if hours and rest:
        return f"{hours} h {rest} min"
    return f"{hours} h" if hours else f"{rest} min"


def timeline_html(view: TicketView) -> str:
    """The description and the timeline as simple rich text for a ``QTextBrowser``."""
    out = [
        "<div style='color:#17243a'>",
        "<p style='color:#5b6675;font-weight:600;margin:0'>Description</p>",
        f"<p style='margin-top:4px'>{_paragraphs(view.description) or '<i>None</i>'}</p>",
    ]
    if view.resolution_notes:
        out.append(
            "<p style='color:#5b6675;font-weight:600;margin:0'>Resolution notes</p>"
            f"<p style='margin-top:4px'>{_paragraphs(view.resolution_notes)}</p>"
        )
    out.append(
        f"<p style='color:#5b6675;font-weight:600;margin:12px 0 0 0'>"
        f"Timeline ({len(view.timeline)})</p>"
    )
    for entry in view.timeline:
        out.append(_entry_html(entry))
    out.append("</div>")
    return "".join(out)


def _paragraphs(text: str) -> str:
    return html.escape(text.strip()).replace("\n", "<br>")


def _entry_html(entry: Entry) -> str:
    color, tag = ENTRY_STYLE.get(entry.kind, ("#5b6675", ""))
    when = html.escape(local_text(entry.at))
    who = html.escape(entry.who or "System")
    bits = [f"<b style='color:{color}'>{who}</b>"]
    if tag:
        bits.append(f"<span style='color:{color}'>· {tag}</span>")
    if entry.minutes:
        bits.append(f"<span style='color:#5b6675'>· {_minutes(entry.minutes)} worked</span>")
    if entry.pending and entry.kind != "pending":
        bits.append("<span style='color:#7a5b00'>· not yet synced</span>")
    bits.append(f"<span style='color:#8a94a3'>{when}</span>")
    body = _paragraphs(entry.text)
    if entry.kind in ("comment", "note"):
        background = "#fff8e6" if entry.kind == "note" else "#f5f7fa"
        body_html = (
            f"<table width='100%' cellpadding='6' style='background:{background};"
            f"margin:2px 0 0 0'><tr><td>{body}</td></tr></table>"
        )
    else:
        body_html = f"<div style='color:#3d4b5c'>{body}</div>"
    return f"<p style='margin:10px 0 0 0'>{' '.join(bits)}</p>{body_html}"


class TicketPane(QWidget):
    """One ticket, or a hint when none is selected."""

    #: a message for the status bar
    message = Signal(str)

    def __init__(
        self,
        host: ReplicaHost,
        *,
        user_id: str | None,
        role: str | None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("ticketPane")
        self.host = host
        self.user_id = user_id
        self.role = role
        self.ticket_id = ""
        self.view: TicketView | None = None
        self._loading = 0

        self.empty_label = QLabel("Select a ticket to see its history and work on it.")
        self.empty_label.setObjectName("muted")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)

        self.number_label = QLabel()
        self.number_label.setObjectName("ticketNumber")
        self.title_label = QLabel()
        self.title_label.setObjectName("ticketTitle")
        self.title_label.setWordWrap(True)
        self.title_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status_chip = QLabel()
        self.status_chip.setObjectName("chip")
        top = QHBoxLayout()
        top.addWidget(self.number_label)
        top.addStretch(1)
        top.addWidget(self.status_chip)

        self.priority_combo = QComboBox()
        for priority in PRIORITIES:
            self.priority_combo.addItem(priority.capitalize(), priority)
        self.priority_combo.activated.connect(self._priority_chosen)
        self.requester_label = self._value()
        self.assignee_label = self._value()
        self.place_label = self._value()
        self.place_label.setWordWrap(True)
        self.due_label = self._value()
        self.worked_label = self._value()
        self.updated_label = self._value()
        grid = QGridLayout()
        grid.setHorizontalSpacing(14)
        grid.setVerticalSpacing(4)
        fields = [
            ("Priority", self.priority_combo),
            ("Requester", self.requester_label),
            ("Assignee", self.assignee_label),
            ("Where", self.place_label),
            ("SLA due", self.due_label),
            ("Time worked", self.worked_label),
        ]
        for i, (name, widget) in enumerate(fields):
            label = QLabel(name)
            label.setObjectName("fieldName")
            row, col = divmod(i, 2)
            grid.addWidget(label, row, col * 2)
            grid.addWidget(widget, row, col * 2 + 1)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)

        self.actions_row = QHBoxLayout()
        self.actions_row.setSpacing(6)
        self.action_buttons: dict[str, QPushButton] = {}
        self.parts_button = QPushButton("Use parts…")
        self.parts_button.setObjectName("action")
        self.parts_button.setToolTip("Record parts from your van or stock on this ticket")
        self.parts_button.clicked.connect(self.open_parts_picker)
        self.parts_picker: PartsPicker | None = None
        # what is recorded on the ticket besides its status (parts; later time, files)
        tools_row = QHBoxLayout()
        tools_row.setSpacing(6)
        tools_row.addWidget(self.parts_button)
        tools_row.addStretch(1)

        self.resolve_box = QFrame()
        self.resolve_box.setObjectName("resolveBox")
        self.resolution_edit = QPlainTextEdit()
        self.resolution_edit.setPlaceholderText("What fixed it? (the requester reads this)")
        self.resolution_edit.setFixedHeight(60)
        self.resolve_confirm = QPushButton("Resolve")
        self.resolve_confirm.setObjectName("primary")
        self.resolve_confirm.clicked.connect(self._resolve)
        resolve_cancel = QPushButton("Cancel")
        resolve_cancel.clicked.connect(lambda: self.resolve_box.setVisible(False))
        resolve_buttons = QHBoxLayout()
        resolve_buttons.addStretch(1)
        resolve_buttons.addWidget(resolve_cancel)
        resolve_buttons.addWidget(self.resolve_confirm)
        resolve_layout = QVBoxLayout(self.resolve_box)
        resolve_layout.setContentsMargins(8, 8, 8, 8)
        resolve_layout.addWidget(self.resolution_edit)
        resolve_layout.addLayout(resolve_buttons)
        self.resolve_box.setVisible(False)

        self.timeline = QTextBrowser()
        self.timeline.setObjectName("timeline")
        self.timeline.setOpenLinks(False)

        self.comment_edit = QPlainTextEdit()
        self.comment_edit.setPlaceholderText(
            "Add a comment for the requester, or an internal note…"
        )
        self.comment_edit.setFixedHeight(64)
        self.internal_check = QCheckBox("Internal note")
        self.minutes_spin = QSpinBox()
        self.minutes_spin.setRange(0, 24 * 60)
        self.minutes_spin.setSingleStep(5)
        self.minutes_spin.setSuffix(" min")
        self.minutes_spin.setSpecialValueText("No time")
        self.minutes_spin.setToolTip("Minutes worked (optional)")
        self.comment_button = QPushButton("Add")
        self.comment_button.setObjectName("primary")
        self.comment_button.clicked.connect(self._add_comment)
        composer_row = QHBoxLayout()
        composer_row.addWidget(self.internal_check)
        composer_row.addStretch(1)
        composer_row.addWidget(QLabel("Time worked"))
        composer_row.addWidget(self.minutes_spin)
        composer_row.addWidget(self.comment_button)

        self.details = QWidget()
        details = QVBoxLayout(self.details)
        details.setContentsMargins(0, 0, 0, 0)
        details.setSpacing(8)
        details.addLayout(top)
        details.addWidget(self.title_label)
        details.addLayout(grid)
        details.addLayout(self.actions_row)
        details.addLayout(tools_row)
        details.addWidget(self.resolve_box)
        details.addWidget(self.timeline, 1)
        details.addWidget(self.comment_edit)
        details.addLayout(composer_row)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 14, 16, 14)
        layout.addWidget(self.empty_label, 1)
        layout.addWidget(self.details, 1)
        self.details.setVisible(False)

        host.changed.connect(self._replica_changed)

    @staticmethod
    def _value() -> QLabel:
        label = QLabel()
        label.setObjectName("fieldValue")
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        return label

    # ---------------------------------------------------------------- loading

    @Slot(str)
    def show_ticket(self, ticket_id: str) -> None:
        if ticket_id != self.ticket_id:
            self.resolve_box.setVisible(False)
            self.resolution_edit.clear()
        self.ticket_id = ticket_id
        if not ticket_id:
            self.view = None
            self.details.setVisible(False)
            self.empty_label.setVisible(True)
            return
        self.reload()

    def reload(self) -> None:
        ticket_id, user_id, role = self.ticket_id, self.user_id, self.role
        self._loading += 1

        def work(reader: Reader, names: Names) -> TicketView | None:
            return load_ticket(reader, names, ticket_id, user_id=user_id, role=role)

        self.host.read(work, partial(self._loaded, ticket_id), self._load_failed, name="ticket")

    def _load_failed(self, error: BaseException) -> None:
        self._loading -= 1
        self.message.emit(f"Could not read the ticket: {error}")

    def _loaded(self, ticket_id: str, view: TicketView | None) -> None:
        self._loading -= 1
        if ticket_id != self.ticket_id:
            return
        if view is None:
            self.show_ticket("")
            return
        self.view = view
        self.empty_label.setVisible(False)
        self.details.setVisible(True)
        self.number_label.setText(
            view.number + ("  · changes waiting to sync" if view.pending else "")
        )
        self.title_label.setText(view.title)
        self.status_chip.setText(status_label(view.status))
        self.status_chip.setProperty("status", view.status)
        self.status_chip.style().unpolish(self.status_chip)
        self.status_chip.style().polish(self.status_chip)
        at = self.priority_combo.findData(view.priority)
        self.priority_combo.setCurrentIndex(at)
        self.requester_label.setText(view.requester or "—")
        self.assignee_label.setText(view.assignee)
        self.place_label.setText(view.place or "—")
        due = local_text(view.due_at) or "—"
        marker = {"breached": "Breached", "overdue": "Overdue", "due_soon": "Due soon"}.get(
            view.sla
        )
        self.due_label.setText(f"{due} ({marker})" if marker else due)
        self.due_label.setProperty("sla", view.sla)
        self.due_label.style().unpolish(self.due_label)
        self.due_label.style().polish(self.due_label)
        self.worked_label.setText(
            _minutes(view.minutes_worked) if view.minutes_worked else "None yet"
        )
        self._set_actions(view.transitions)
        scroll = self.timeline.verticalScrollBar()
        at_end = scroll.value() >= scroll.maximum() - 4
        self.timeline.setHtml(timeline_html(view))
        if at_end or ticket_id != getattr(self, "_shown_id", None):
            scroll.setValue(scroll.maximum())
        self._shown_id = ticket_id

    def _set_actions(self, transitions: tuple[Transition, ...]) -> None:
        while self.actions_row.count():
            item = self.actions_row.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self.action_buttons = {}
        for transition in transitions:
            button = QPushButton(ACTION_LABELS.get(transition.name, transition.name))
            button.setObjectName("action")
            button.setToolTip(transition.description)
            button.clicked.connect(partial(self._action, transition))
            self.actions_row.addWidget(button)
            self.action_buttons[transition.name] = button
        self.actions_row.addStretch(1)

    @Slot(object)
    def _replica_changed(self, changes: Changes) -> None:
        if not self.ticket_id:
            return
        touched = any(
            self.ticket_id in changes.written.get(t, set()) for t in ("tickets",)
        ) or self.ticket_id in changes.removed.get("tickets", set())
        children = any(
            changes.touches(t)
            for t in ("ticket_comments", "ticket_events", "stock_movements", "users", "parts")
        )
        if touched or children or changes.outbox:
            self.reload()

    # ---------------------------------------------------------------- actions

    def _action(self, transition: Transition) -> None:
        if transition.target.value == "resolved":
            self.resolve_box.setVisible(True)
            self.resolution_edit.setFocus()
            return
        self._transition(transition.target.value, None)

    def _resolve(self) -> None:
        notes = self.resolution_edit.toPlainText()
        if not notes.strip():
            self.message.emit("Say what fixed it: resolution notes are required")
            self.resolution_edit.setFocus()
            return
        self._transition("resolved", notes)

    def _transition(self, to: str, resolution_notes: str | None) -> None:
        view = self.view
        if view is None:
            return
        ticket_id, capacities = view.id, view.capacities

        def edit(replica: Replica) -> Changes:
            return operations.transition(
                replica, ticket_id, to, resolution_notes=resolution_notes, capacities=capacities
            )

        def done(_: Changes) -> None:
            self.resolve_box.setVisible(False)
            self.resolution_edit.clear()
            self.message.emit(
                f"{view.number}: {status_label(to)}. Saved here; it will be sent at the next sync."
            )

        self.host.edit(edit, name="transition", on_done=done)

    @Slot(int)
    def _priority_chosen(self, _index: int) -> None:
        view = self.view
        priority = self.priority_combo.currentData()
        if view is None or priority == view.priority:
            return
        ticket_id = view.id
        self.host.edit(
            lambda replica: operations.set_priority(replica, ticket_id, priority), name="priority"
        )

    def _add_comment(self) -> None:
        view = self.view
        body = self.comment_edit.toPlainText()
        if view is None:
            return
        if not body.strip():
            self.message.emit("Write something first")
            return
        ticket_id = view.id
        internal = self.internal_check.isChecked()
        minutes = self.minutes_spin.value() or None

        def done(_: Changes) -> None:
            self.comment_edit.clear()
            self.minutes_spin.setValue(0)
            self.internal_check.setChecked(False)

        self.host.edit(
            lambda replica: operations.add_comment(
                replica, ticket_id, body, internal=internal, minutes=minutes
            ),
            name="comment",
            on_done=done,
        )

    @Slot()
    def open_parts_picker(self) -> None:
        """The parts picker for this ticket (window-modal; the UI keeps running)."""
        view = self.view
        if view is None:
            return
        picker = PartsPicker(
            self.host,
            ticket_id=view.id,
            ticket_number=view.number,
            ticket_title=view.title,
            user_id=self.user_id,
            parent=self,
        )
        picker.message.connect(self.message)
        picker.finished.connect(picker.deleteLater)
        self.parts_picker = picker
        picker.open()
        picker.load()
