"""My work: the queue of tickets in the replica, as a Qt model over SQLite pages.

``QueueModel`` filters and sorts in SQL through the replica's reader API (no proxy
model): it knows the number of matching tickets and holds the pages of rows it has
read, 200 at a time, asking the reader thread for a page when the view first paints
one of its rows (a placeholder shows meanwhile). A new filter or a change to the
replica reads the first page and the count again and swaps them in at once, so the
table never empties while a query runs.
"""

from __future__ import annotations

import itertools
import logging
from collections import OrderedDict
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from desktop.data import (
    ACTIVE_STATUSES,
    PRIORITIES,
    Names,
    QueuePage,
    QueueQuery,
    QueueRow,
    Reader,
    load_queue,
    local_text,
    status_label,
)
from desktop.host import ReplicaHost
from desktop.qt import (
    QAbstractTableModel,
    QCheckBox,
    QColor,
    QComboBox,
    QFont,
    QHBoxLayout,
    QHeaderView,
    QItemSelectionModel,
    QLabel,
    QLineEdit,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTableView,
    QTimer,
    QVBoxLayout,
    QWidget,
    Signal,
    Slot,
)
from sync.replica import Changes

log = logging.getLogger(__name__)

PAGE_SIZE = 200
MAX_PAGES = 40  # pages kept in memory (8,000 rows); the least recently shown go first
SEARCH_DELAY_MS = 150

COLUMNS = ("Number", "Title", "Status", "Priority", "Building / room", "Assignee", "SLA due")
#: column -> the replica's sort name (None: not sortable in SQL)
SORTS: tuple[str | None, ...] = (
    "number",
    None,
    "status",
    "priority",
    "buildingId",
    None,
    "resolutionDueAt",
)
PRIORITY_COLORS = {"critical": "#b42318", "high": "#c4540a", "medium": "#3d4b5c", "low": "#6b7785"}
SLA_TEXT = {"breached": "Breached", "overdue": "Overdue", "due_soon": "Due soon"}
SLA_COLORS = {"breached": "#b42318", "overdue": "#b42318", "due_soon": "#b25e00"}
PLACEHOLDER = "…"

Index = QModelIndex | QPersistentModelIndex


class QueueModel(QAbstractTableModel):
    """The replica's tickets for a ``QueueQuery``, read page by page off the UI thread."""

    #: a new query's first page arrived (total rows, seconds the queries took)
    loaded = Signal(int, float)

    def __init__(self, host: ReplicaHost, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.host = host
        self.query = QueueQuery()
        self.total = 0
        self.buildings: tuple[tuple[str, str], ...] = ()
        self._pages: OrderedDict[int, tuple[QueueRow, ...]] = OrderedDict()
        self._asked: set[int] = set()
        self._generation = itertools.count(1)
        self._current = 0
        #: the newest generation, read by reader-thread jobs to skip stale work
        self._latest = [0]
        self.loading = False
        host.changed.connect(self._replica_changed)

    # ---------------------------------------------------------------- queries

    def set_query(self, query: QueueQuery) -> None:
        self.query = query
        self.reload()

    def reload(self) -> None:
        """Read the count and the first page for the current query (on the reader)."""
        generation = next(self._generation)
        self._current = generation
        self._latest[0] = generation
        self.loading = True
        query, latest, now = self.query, self._latest, datetime.now(UTC)

        def work(reader: Reader, names: Names) -> tuple[int, QueuePage] | None:
            if latest[0] != generation:
                return None  # a newer query is queued behind this one
            page = load_queue(reader, names, query, 0, PAGE_SIZE, with_total=True, now=now)
            return generation, page

        self.host.read(work, self._first_page, name="queue")

    def _first_page(self, result: tuple[int, QueuePage] | None) -> None:
        if result is None or result[0] != self._current:
            return
        _, page = result
        self.loading = False
        total = page.total or 0
        self.buildings = page.buildings
        if total == self.total and self.total:
            self._pages = OrderedDict({0: page.rows})
            self._asked.clear()
            self.dataChanged.emit(self.index(0, 0), self.index(total - 1, len(COLUMNS) - 1))
        else:
            self.beginResetModel()
            self.total = total
            self._pages = OrderedDict({0: page.rows})
            self._asked.clear()
            self.endResetModel()
        self.loaded.emit(total, page.took)

    def _ask(self, number: int) -> None:
        if number in self._asked:
            return
        self._asked.add(number)
        generation, query, latest = self._current, self.query, self._latest
        now = datetime.now(UTC)

        def work(reader: Reader, names: Names) -> tuple[int, QueuePage] | None:
            if latest[0] != generation:
                return None
            offset = number * PAGE_SIZE
            page = load_queue(reader, names, query, offset, PAGE_SIZE, with_total=False, now=now)
            return generation, page

        self.host.read(work, self._page_read, name="queue page")

    def _page_read(self, result: tuple[int, QueuePage] | None) -> None:
        if result is None or result[0] != self._current:
            return
        page = result[1]
        number = page.offset // PAGE_SIZE
        self._asked.discard(number)
        self._pages[number] = page.rows
        while len(self._pages) > MAX_PAGES:
            self._pages.popitem(last=False)
        first = page.offset
        last = min(self.total, first + PAGE_SIZE) - 1
        if last >= first:
            self.dataChanged.emit(self.index(first, 0), self.index(last, len(COLUMNS) - 1))

    @Slot(object)
    def _replica_changed(self, changes: Changes) -> None:
        if changes.touches("tickets") or any(changes.touches(t) for t in Names.TABLES):
            self.reload()

    # ---------------------------------------------------------------- rows

    def row_at(self, row: int) -> QueueRow | None:
        """The row if its page is read (asks for the page otherwise)."""
        if row < 0 or row >= self.total:
            return None
        number = row // PAGE_SIZE
        rows = self._pages.get(number)
        if rows is None:
            self._ask(number)
            return None
        self._pages.move_to_end(number)
        offset = row - number * PAGE_SIZE
        return rows[offset] if offset < len(rows) else None

    def _cached(self, row: int) -> QueueRow | None:
        rows = self._pages.get(row // PAGE_SIZE)
        offset = row % PAGE_SIZE
        return rows[offset] if rows is not None and offset < len(rows) else None

    def row_of(self, ticket_id: str) -> int | None:
        for number, rows in self._pages.items():
            for offset, item in enumerate(rows):
                if item.id == ticket_id:
                    return number * PAGE_SIZE + offset
        return None

    # ---------------------------------------------------------------- Qt model

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else self.total

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            return "Click to sort" if SORTS[section] else "This column does not sort"
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        item = self.row_at(index.row())
        column = index.column()
        if item is None:
            return PLACEHOLDER if role == Qt.ItemDataRole.DisplayRole and column == 1 else None
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(item, column, index.row())
        if role == Qt.ItemDataRole.ForegroundRole:
            if column == 3:
                return QColor(PRIORITY_COLORS.get(item.priority, "#3d4b5c"))
            if column == 6 and item.sla:
                return QColor(SLA_COLORS[item.sla])
            if column == 0 and not item.synced:
                return QColor("#7a5b00")
            return None
        if role == Qt.ItemDataRole.FontRole:
            if (column == 6 and item.sla) or (column == 3 and item.priority == "critical"):
                font = QFont()
                font.setBold(True)
                return font
            if column == 4 and self._first_of_group(item, index.row()):
                font = QFont()
                font.setBold(True)
                return font
            return None
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == 0 and item.pending:
                return "Changes to this ticket wait to be sent"
            if column == 4:
                return item.place
            if column == 1:
                return item.title
            if column == 6 and item.due_at:
                return item.due_at.astimezone().strftime("Resolution due %A %d %B %Y, %H:%M")
            return None
        if role == Qt.ItemDataRole.UserRole:
            return item.id
        return None

    def _first_of_group(self, item: QueueRow, row: int) -> bool:
        if not self.query.grouped:
            return False
        before = self._cached(row - 1) if row > 0 else None
        return before is None or before.building_id != item.building_id

    def _text(self, item: QueueRow, column: int, row: int) -> str:
        if column == 0:
            return item.number + (" •" if item.pending else "")
        if column == 1:
            return item.title
        if column == 2:
            return status_label(item.status)
        if column == 3:
            return item.priority.capitalize()
        if column == 4:
            if self.query.grouped:
                room = item.short_place.split(" · ")[-1] if " · " in item.short_place else ""
                if self._first_of_group(item, row):
                    return item.short_place or item.building
                return f"    {room}" if room else ""
            return item.short_place
        if column == 5:
            return item.assignee
        if column == 6:
            due = local_text(item.due_at)
            marker = SLA_TEXT.get(item.sla)
            return f"{marker} · {due}" if marker and due else (marker or due)
        return ""


class QueueView(QWidget):
    """The filter bar, the table and a one-line summary."""

    #: the selected ticket (id), or "" when none
    ticket_selected = Signal(str)

    STATUS_CHOICES: tuple[tuple[str, tuple[str, ...]], ...] = (
        ("Active work", ACTIVE_STATUSES),
        ("All statuses", ()),
        *((status_label(s), (s,)) for s in (*ACTIVE_STATUSES, "resolved", "closed", "cancelled")),
    )

    def __init__(self, host: ReplicaHost, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = QueueModel(host, self)
        self._selected = ""

        self.search_edit = QLineEdit()
        self.search_edit.setPlaceholderText("Search number, title, description…")
        self.search_edit.setClearButtonEnabled(True)
        self.search_edit.setMinimumWidth(220)
        self.search_edit.setObjectName("search")
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self._apply_filters)
        self.search_edit.textChanged.connect(lambda _: self._search_timer.start())

        self.status_combo = QComboBox()
        for label, statuses in self.STATUS_CHOICES:
            self.status_combo.addItem(label, statuses)
        self.priority_combo = QComboBox()
        self.priority_combo.addItem("Any priority", None)
        for priority in PRIORITIES:
            self.priority_combo.addItem(priority.capitalize(), priority)
        self.building_combo = QComboBox()
        self.building_combo.addItem("All buildings", None)
        self.building_combo.setMinimumContentsLength(14)
        self.due_soon_check = QCheckBox("Due soon")
        self.breached_check = QCheckBox("Breached")
        self.group_check = QCheckBox("Group by building")
        for combo in (self.status_combo, self.priority_combo, self.building_combo):
            combo.currentIndexChanged.connect(self._apply_filters)
        for check in (self.due_soon_check, self.breached_check, self.group_check):
            check.toggled.connect(self._apply_filters)

        filters = QHBoxLayout()
        filters.setSpacing(8)
        filters.addWidget(self.search_edit, 1)
        filters.addWidget(self.status_combo)
        filters.addWidget(self.priority_combo)
        filters.addWidget(self.building_combo)
        toggles = QHBoxLayout()
        toggles.setSpacing(16)
        toggles.addWidget(self.due_soon_check)
        toggles.addWidget(self.breached_check)
        toggles.addWidget(self.group_check)
        toggles.addStretch(1)
        self.summary_label = QLabel("Opening the replica…")
        self.summary_label.setObjectName("muted")
        toggles.addWidget(self.summary_label)

        self.table = QTableView()
        self.table.setObjectName("queue")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(26)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        header = self.table.horizontalHeader()
        header.setHighlightSections(False)
        header.setSectionsClickable(True)
        header.setSortIndicatorShown(False)
        header.sectionClicked.connect(self._header_clicked)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        for column, width in ((0, 104), (2, 112), (3, 72), (4, 150), (5, 104), (6, 150)):
            header.resizeSection(column, width)
        self.table.selectionModel().currentRowChanged.connect(self._row_changed)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        layout.addLayout(filters)
        layout.addLayout(toggles)
        layout.addWidget(self.table, 1)

        self.model.loaded.connect(self._loaded)
        self.model.modelReset.connect(self._restore_selection)

    # ---------------------------------------------------------------- filters

    def current_query(self) -> QueueQuery:
        return replace(
            self.model.query,
            search=self.search_edit.text(),
            status=tuple(self.status_combo.currentData() or ()),
            priority=self.priority_combo.currentData(),
            building_id=self.building_combo.currentData(),
            due_soon=self.due_soon_check.isChecked(),
            breached=self.breached_check.isChecked(),
            sort="buildingId" if self.group_check.isChecked() else self._sort,
        )

    _sort = "-updatedAt"

    @Slot()
    def _apply_filters(self) -> None:
        self._search_timer.stop()
        query = self.current_query()
        if query != self.model.query:
            self.model.set_query(query)

    @Slot(int)
    def _header_clicked(self, column: int) -> None:
        header = self.table.horizontalHeader()
        name = SORTS[column]
        if name is None:
            return
        if self._sort.lstrip("-") == name:
            self._sort = name if self._sort.startswith("-") else f"-{name}"
        else:
            self._sort = name
        header.setSortIndicatorShown(True)
        header.setSortIndicator(
            column,
            Qt.SortOrder.DescendingOrder
            if self._sort.startswith("-")
            else Qt.SortOrder.AscendingOrder,
        )
        self.group_check.blockSignals(True)
        self.group_check.setChecked(False)
        self.group_check.blockSignals(False)
        self._apply_filters()

    # ---------------------------------------------------------------- results

    @Slot(int, float)
    def _loaded(self, total: int, took: float) -> None:
        query = self.model.query
        noun = "ticket" if total == 1 else "tickets"
        text = f"{total:,} {noun}"
        if query.search.strip():
            text += f" matching “{query.search.strip()}”"
        self.summary_label.setText(text)
        self._fill_buildings()
        self._restore_selection()

    def _fill_buildings(self) -> None:
        combo = self.building_combo
        have = [combo.itemData(i) for i in range(1, combo.count())]
        wanted = [b[0] for b in self.model.buildings]
        if have == wanted:
            return
        current = combo.currentData()
        combo.blockSignals(True)
        while combo.count() > 1:
            combo.removeItem(1)
        for building_id, name in self.model.buildings:
            combo.addItem(name, building_id)
        at = combo.findData(current)
        combo.setCurrentIndex(max(0, at))
        combo.blockSignals(False)

    @Slot()
    def _restore_selection(self) -> None:
        if not self._selected:
            return
        row = self.model.row_of(self._selected)
        selection = self.table.selectionModel()
        if row is None:
            return
        index = self.model.index(row, 0)
        if selection.currentIndex().row() != row:
            selection.blockSignals(True)
            selection.setCurrentIndex(
                index,
                QItemSelectionModel.SelectionFlag.ClearAndSelect
                | QItemSelectionModel.SelectionFlag.Rows,
            )
            selection.blockSignals(False)
            self.table.viewport().update()

    @Slot(QModelIndex, QModelIndex)
    def _row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        item = self.model.row_at(current.row()) if current.isValid() else None
        ticket_id = item.id if item is not None else ""
        if ticket_id != self._selected:
            self._selected = ticket_id
            self.ticket_selected.emit(ticket_id)

    def select_ticket(self, ticket_id: str) -> bool:
        row = self.model.row_of(ticket_id)
        if row is None:
            return False
        self.table.selectRow(row)
        return True

    def follow(self, ticket_id: str) -> None:
        """Show ``ticket_id`` in the pane and keep it selected across reloads (a ticket
        just made here, before the queue has read it)."""
        if not self.select_ticket(ticket_id):
            self._selected = ticket_id
            self.ticket_selected.emit(ticket_id)
