"""The parts picker: the parts at the technician's stock locations (their van, their
bag, their home site's closets) as the replica holds them, with low stock marked; the
chosen quantity is recorded on the ticket as ``part.use`` through the one writer, and
the stock shown drops at once."""

from __future__ import annotations

from desktop import operations
from desktop.data import Names, Reader, StockItem, load_stock
from desktop.host import ReplicaHost
from desktop.qt import (
    QAbstractItemView,
    QColor,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    Qt,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
    Signal,
    Slot,
)
from sync.replica import Changes

COLUMNS = ("Part", "Part number", "Location", "In stock")
LOW_COLOR = "#b25e00"
OUT_COLOR = "#b42318"


def stock_text(item: StockItem) -> str:
    if item.quantity <= 0:
        return "None left"
    return f"{item.quantity} · Low" if item.low else str(item.quantity)


class PartsPicker(QDialog):
    """Pick a part and a quantity; ``used`` is emitted once the use is saved here."""

    #: a message for the status bar
    message = Signal(str)
    #: the parts were read (number of rows)
    loaded = Signal(int)

    def __init__(
        self,
        host: ReplicaHost,
        *,
        ticket_id: str,
        ticket_number: str,
        ticket_title: str = "",
        user_id: str | None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("partsPicker")
        self.host = host
        self.ticket_id = ticket_id
        self.ticket_number = ticket_number
        self.user_id = user_id
        self.items: tuple[StockItem, ...] = ()
        self.setWindowTitle(f"Use parts on {ticket_number}")
        self.resize(640, 440)

        heading = QLabel(
            f"Parts used on {ticket_number}" + (f" · {ticket_title}" if ticket_title else "")
        )
        heading.setObjectName("sectionTitle")
        heading.setWordWrap(True)
        hint = QLabel("Stock at your locations, as last synced. Low stock is marked.")
        hint.setObjectName("muted")
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter by name, part number or location…")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self._show)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("partsTable")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        stock_header = self.table.horizontalHeaderItem(3)
        if stock_header is not None:
            stock_header.setTextAlignment(
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
            )
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        self.table.setShowGrid(False)
        header = self.table.horizontalHeader()
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2, 3):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.doubleClicked.connect(lambda _: self._use())
        self.empty_label = QLabel("Reading the stock…")
        self.empty_label.setObjectName("muted")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)

        self.quantity_spin = QSpinBox()
        self.quantity_spin.setRange(1, 1)
        self.quantity_spin.setMinimumWidth(80)
        self.use_button = QPushButton("Use parts")
        self.use_button.setObjectName("primary")
        self.use_button.setEnabled(False)
        self.use_button.clicked.connect(self._use)
        cancel = QPushButton("Cancel")
        cancel.clicked.connect(self.reject)
        bottom = QHBoxLayout()
        bottom.addWidget(QLabel("Quantity"))
        bottom.addWidget(self.quantity_spin)
        bottom.addStretch(1)
        bottom.addWidget(cancel)
        bottom.addWidget(self.use_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 14, 16, 14)
        layout.setSpacing(8)
        layout.addWidget(heading)
        layout.addWidget(hint)
        layout.addWidget(self.filter_edit)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.empty_label)
        layout.addLayout(bottom)
        host.edit_failed.connect(lambda _: self._selection_changed())

    def load(self) -> None:
        user_id = self.user_id

        def work(reader: Reader, names: Names) -> tuple[StockItem, ...]:
            return load_stock(reader, names, user_id)

        self.host.read(work, self._loaded, name="stock")

    def _loaded(self, items: tuple[StockItem, ...]) -> None:
        self.items = items
        self._show()
        self.loaded.emit(len(items))

    @Slot()
    def _show(self) -> None:
        words = self.filter_edit.text().lower().split()
        shown = [
            item
            for item in self.items
            if all(w in f"{item.part} {item.part_number} {item.location}".lower() for w in words)
        ]
        table = self.table
        table.setRowCount(len(shown))
        for row, item in enumerate(shown):
            location = item.location + (" (yours)" if item.mine else "")
            cells = (item.part, item.part_number, location, stock_text(item))
            for column, text in enumerate(cells):
                cell = QTableWidgetItem(text)
                cell.setData(Qt.ItemDataRole.UserRole, (item.part_id, item.location_id))
                if column == 3:
                    cell.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                    if item.low:
                        cell.setForeground(QColor(OUT_COLOR if item.quantity <= 0 else LOW_COLOR))
                        font = cell.font()
                        font.setBold(True)
                        cell.setFont(font)
                table.setItem(row, column, cell)
        self.empty_label.setVisible(not shown)
        self.empty_label.setText(
            "No parts at your locations on this computer."
            if not self.items
            else "No part matches the filter."
        )
        if shown and not table.selectedItems():
            first = next((r for r, i in enumerate(shown) if i.quantity > 0), 0)
            table.selectRow(first)
        self._selection_changed()

    def selected(self) -> StockItem | None:
        cells = self.table.selectedItems()
        if not cells:
            return None
        key = cells[0].data(Qt.ItemDataRole.UserRole)
        return next((i for i in self.items if (i.part_id, i.location_id) == tuple(key)), None)

    def select(self, part_id: str, location_id: str | None = None) -> bool:
        for row in range(self.table.rowCount()):
            cell = self.table.item(row, 0)
            key = cell.data(Qt.ItemDataRole.UserRole) if cell is not None else None
            if key and key[0] == part_id and (location_id is None or key[1] == location_id):
                self.table.selectRow(row)
                return True
        return False

    @Slot()
    def _selection_changed(self) -> None:
        item = self.selected()
        available = item.quantity if item is not None else 0
        self.use_button.setEnabled(available > 0)
        self.quantity_spin.setRange(1, max(available, 1))
        self.use_button.setToolTip("" if available > 0 else "None left at this location")

    def _use(self) -> None:
        item = self.selected()
        if item is None or item.quantity <= 0:
            return
        quantity = self.quantity_spin.value()
        ticket_id = self.ticket_id
        self.use_button.setEnabled(False)

        def done(_: Changes) -> None:
            self.message.emit(
                f"{self.ticket_number}: used {quantity} x {item.part} from {item.location}. "
                "Saved here; it will be sent at the next sync."
            )
            self.accept()

        self.host.edit(
            lambda replica: operations.use_part(
                replica, ticket_id, item.part_id, item.location_id, quantity
            ),
            name="use-part",
            on_done=done,
        )
