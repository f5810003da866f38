"""New ticket, offline: for something found on site. Where it is (building and room)
comes from the ticket the technician has open; the ticket is created in the replica
through the one writer and shows as "New (not yet synced)" until the server numbers
it."""

from __future__ import annotations

from desktop import operations
from desktop.data import Names, Places, Reader, load_places
from desktop.host import ReplicaHost
from desktop.qt import (
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
    Signal,
    Slot,
)
from sync.replica import Changes

URGENCIES = (("low", "Low — it can wait"), ("medium", "Medium"), ("high", "High — work stops"))


class NewTicketDialog(QDialog):
    """Title, description, urgency and place; ``created`` carries the new ticket's id."""

    created = Signal(str)
    #: a message for the status bar
    message = Signal(str)
    #: buildings and rooms were read
    loaded = Signal()

    def __init__(
        self,
        host: ReplicaHost,
        *,
        site_id: str | None = None,
        building_id: str | None = None,
        room_id: str | None = None,
        context: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("newTicket")
        self.setWindowTitle("New ticket")
        self.setMinimumWidth(520)
        self.host = host
        self.site_id = site_id
        self._building_id = building_id
        self._room_id = room_id
        self.places = Places((), {})

        heading = QLabel("New ticket")
        heading.setObjectName("sectionTitle")
        hint = QLabel(
            "Saved on this computer at once; it gets its number when it reaches the server."
            + (f"\nWhere: from {context}." if context else "")
        )
        hint.setObjectName("muted")
        hint.setWordWrap(True)
        self.title_edit = QLineEdit()
        self.title_edit.setPlaceholderText("What is wrong, in a few words")
        self.title_edit.setMaxLength(200)
        self.title_edit.textChanged.connect(self._title_changed)
        self.description_edit = QPlainTextEdit()
        self.description_edit.setPlaceholderText("What you saw, where exactly, what you tried")
        self.description_edit.setMinimumHeight(90)
        self.description_edit.setMaximumHeight(140)
        self.urgency_combo = QComboBox()
        for value, text in URGENCIES:
            self.urgency_combo.addItem(text, value)
        self.urgency_combo.setCurrentIndex(1)
        self.building_combo = QComboBox()
        self.building_combo.addItem("No building", None)
        self.building_combo.currentIndexChanged.connect(self._building_changed)
        self.room_combo = QComboBox()
        self.room_combo.addItem("No room", None)
        form = QFormLayout()
        form.setHorizontalSpacing(14)
        form.setVerticalSpacing(8)
        form.addRow("Title", self.title_edit)
        form.addRow("Description", self.description_edit)
        form.addRow("Urgency", self.urgency_combo)
        form.addRow("Building", self.building_combo)
        form.addRow("Room", self.room_combo)

        self.create_button = QPushButton("Create ticket")
        self.create_button.setObjectName("primary")
        self.create_button.setEnabled(False)
        self.create_button.setDefault(True)
        self.create_button.clicked.connect(self._create)
        cancel = QPushButton("Cancel")
        cancel.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(cancel)
        buttons.addWidget(self.create_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 16, 18, 16)
        layout.setSpacing(10)
        layout.addWidget(heading)
        layout.addWidget(hint)
        layout.addLayout(form)
        layout.addLayout(buttons)
        host.edit_failed.connect(lambda _: self._title_changed(self.title_edit.text()))

    def load(self) -> None:
        def work(reader: Reader, names: Names) -> Places:
            return load_places(reader, names)

        self.host.read(work, self._loaded, name="places")

    def _loaded(self, places: Places) -> None:
        self.places = places
        combo = self.building_combo
        combo.blockSignals(True)
        for building_id, name in places.buildings:
            combo.addItem(name, building_id)
        combo.setCurrentIndex(max(combo.findData(self._building_id), 0))
        combo.blockSignals(False)
        self._building_changed()
        if self._room_id:
            self.room_combo.setCurrentIndex(max(self.room_combo.findData(self._room_id), 0))
        self.loaded.emit()

    @Slot()
    def _building_changed(self) -> None:
        building_id = self.building_combo.currentData()
        self.room_combo.clear()
        self.room_combo.addItem("No room", None)
        for room_id, label in self.places.rooms.get(building_id or "", ()):
            self.room_combo.addItem(label, room_id)
        self.room_combo.setEnabled(bool(building_id))

    @Slot(str)
    def _title_changed(self, text: str) -> None:
        self.create_button.setEnabled(bool(text.strip()))

    def _create(self) -> None:
        title = self.title_edit.text().strip()
        if not title:
            return
        description = self.description_edit.toPlainText()
        urgency = self.urgency_combo.currentData()
        building_id = self.building_combo.currentData()
        room_id = self.room_combo.currentData() if building_id else None
        # the site of the ticket it came from, unless another building was chosen
        site_id = self.site_id if building_id == self._building_id else None
        self.create_button.setEnabled(False)

        def done(changes: Changes) -> None:
            new_id = next(iter(changes.written.get("tickets", ())), "")
            self.message.emit(
                f"New ticket “{title}” saved here; it gets its number at the next sync."
            )
            self.created.emit(new_id)
            self.accept()

        self.host.edit(
            lambda replica: operations.create_ticket(
                replica,
                title,
                description,
                urgency=urgency,
                site_id=site_id,
                building_id=building_id,
                room_id=room_id,
            ),
            name="new-ticket",
            on_done=done,
        )
