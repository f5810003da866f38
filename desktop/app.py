"""The desktop application: sign-in, the signed-in main window, sign-out.

``DesktopApp`` is the controller. Windows only collect input and show state; every
network or keyring call is a plain function below, run by ``TaskRunner`` off the
UI thread, whose result comes back to the UI thread by signal.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from common import __version__
from common.errors import ErrorCode
from desktop.conflicts import ConflictsView
from desktop.host import PROBE_INTERVAL_MS, SYNC_INTERVAL_MS, ReplicaHost
from desktop.newticket import NewTicketDialog
from desktop.qt import (
    QAction,
    QApplication,
    QColor,
    QFont,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QIcon,
    QKeySequence,
    QLabel,
    QMainWindow,
    QMessageBox,
    QObject,
    QPainter,
    QPixmap,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStyleFactory,
    Qt,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
    Signal,
    Slot,
)
from desktop.queue import QueueView
from desktop.signin import APP_TITLE, SignInWindow
from desktop.ticket import TicketPane
from desktop.workers import GarbageCollector, TaskRunner
from sync.client import NOT_SIGNED_IN, ApiClient, ApiError, Me, ServerUnreachable
from sync.credentials import MEMORY_ONLY_NOTICE, CredentialStore, LastSignIn, data_dir
from sync.engine import Outcome, SyncReport
from sync.replica import ReplicaStatus, replica_path

log = logging.getLogger(__name__)

ACCENT = "#1f5fbf"

STYLE_SHEET = f"""
QWidget#signInWindow, QMainWindow {{ background: #eef1f5; }}
QFrame#card {{ background: #ffffff; border: 1px solid #d9dee5; border-radius: 10px; }}
QLabel#title {{ font-size: 20pt; font-weight: 600; color: #17243a; }}
QLabel#subtitle, QLabel#muted {{ color: #5b6675; }}
QLabel#name {{ font-size: 18pt; font-weight: 600; color: #17243a; }}
QLabel#fieldName {{ color: #5b6675; }}
QLabel#fieldValue {{ color: #17243a; font-weight: 600; }}
QLabel#sectionTitle {{ font-size: 11pt; font-weight: 600; color: #17243a; }}
QLabel#status[kind="error"] {{ color: #b42318; }}
QLabel#status[kind="info"] {{ color: #3d4b5c; }}
QLabel#banner {{
    background: #fff6e5; border: 1px solid #f0c36d; border-radius: 6px;
    padding: 8px 10px; color: #6b4500;
}}
QLineEdit {{
    padding: 6px 8px; border: 1px solid #c5ccd6; border-radius: 5px; background: #ffffff;
    selection-background-color: {ACCENT};
}}
QLineEdit:focus {{ border: 1px solid {ACCENT}; }}
QLineEdit:disabled {{ background: #f3f5f8; color: #8a94a3; }}
QPushButton {{
    padding: 7px 16px; border: 1px solid #c5ccd6; border-radius: 5px; background: #ffffff;
}}
QPushButton:hover {{ background: #f3f6fa; }}
QPushButton#primary {{
    background: {ACCENT}; color: #ffffff; border: 1px solid {ACCENT}; font-weight: 600;
}}
QPushButton#primary:hover {{ background: #1a52a6; }}
QPushButton#primary:disabled {{ background: #93afd9; border-color: #93afd9; }}
QStatusBar {{ background: #e3e8ee; color: #3d4b5c; }}
QStatusBar QLabel {{ padding: 0 8px; color: #3d4b5c; }}
QLabel#online[kind="online"] {{ color: #2e7d32; font-weight: 600; }}
QLabel#online[kind="offline"] {{ color: #b42318; font-weight: 600; }}
QLabel#online[kind="unknown"] {{ color: #8a94a3; }}
QStatusBar QLabel[kind="pending"] {{ color: #8a5a00; font-weight: 600; }}
QToolBar#mainToolbar {{ background: #eef1f5; border: none; padding: 4px 8px; spacing: 6px; }}
QToolBar#mainToolbar QToolButton {{
    padding: 5px 14px; border: 1px solid #c5ccd6; border-radius: 5px; background: #ffffff;
}}
QToolBar#mainToolbar QToolButton:hover {{ background: #f3f6fa; }}
QTabWidget::pane {{ border: none; }}
QTabBar::tab {{ padding: 6px 16px; color: #3d4b5c; }}
QTabBar::tab:selected {{ color: #17243a; font-weight: 600; border-bottom: 2px solid {ACCENT}; }}
QTableView#queue {{
    background: #ffffff; alternate-background-color: #f6f8fb; border: 1px solid #d9dee5;
    border-radius: 6px; selection-background-color: #dce8fa; selection-color: #17243a;
}}
QHeaderView::section {{
    background: #f3f5f8; color: #3d4b5c; padding: 5px 6px; border: none;
    border-bottom: 1px solid #d9dee5; font-weight: 600;
}}
QComboBox {{ padding: 4px 8px; border: 1px solid #c5ccd6; border-radius: 5px; background: #fff; }}
QFrame#pane {{ background: #ffffff; border-left: 1px solid #d9dee5; }}
QWidget#ticketPane QLabel#ticketNumber {{ color: #5b6675; font-weight: 600; }}
QWidget#ticketPane QLabel#ticketTitle {{ font-size: 14pt; font-weight: 600; color: #17243a; }}
QLabel#chip {{
    border-radius: 9px; padding: 2px 10px; background: #e8eef8; color: #1f5fbf; font-weight: 600;
}}
QLabel#chip[status="in_progress"] {{ background: #e6f4ea; color: #2e7d32; }}
QLabel#chip[status="on_hold"], QLabel#chip[status="waiting_on_requester"] {{
    background: #fff3e0; color: #8a5a00;
}}
QLabel#chip[status="resolved"], QLabel#chip[status="closed"] {{
    background: #eceff3; color: #5b6675;
}}
QLabel#fieldValue[sla="breached"], QLabel#fieldValue[sla="overdue"] {{ color: #b42318; }}
QLabel#fieldValue[sla="due_soon"] {{ color: #b25e00; }}
QTextBrowser#timeline {{ border: 1px solid #e3e7ed; border-radius: 6px; background: #ffffff; }}
QPlainTextEdit {{ border: 1px solid #c5ccd6; border-radius: 5px; background: #ffffff; }}
QPushButton#action {{ padding: 5px 10px; }}
QFrame#resolveBox {{ background: #f3f8f3; border: 1px solid #b9d8bc; border-radius: 6px; }}
QWidget#conflictsContent {{ background: #eef1f5; }}
QFrame#conflictCard, QFrame#rejectedCard {{
    background: #ffffff; border: 1px solid #d9dee5; border-radius: 8px;
}}
QFrame#conflictCard {{ border-left: 4px solid #d98a00; }}
QFrame#conflictCard[resolved="true"] {{ border-left: 4px solid #2e7d32; }}
QFrame#rejectedCard {{ border-left: 4px solid #b42318; }}
QFrame#valueBox {{ border-radius: 6px; border: 1px solid #d9dee5; background: #f6f8fb; }}
QFrame#valueBox[side="mine"] {{ background: #eef4fd; border-color: #b8cdef; }}
QFrame#valueBox[side="server"] {{ background: #fff7ea; border-color: #f0d29a; }}
QLabel#valueHeading {{ color: #5b6675; font-size: 8.5pt; font-weight: 600; }}
QLabel#value {{ color: #17243a; font-size: 11pt; font-weight: 600; }}
QLabel#pendingNote {{ color: #2e7d32; font-weight: 600; }}
QPushButton#link {{
    border: none; background: transparent; padding: 0; color: {ACCENT}; font-weight: 600;
    text-align: left;
}}
QPushButton#link:hover {{ text-decoration: underline; background: transparent; }}
QPushButton#conflictsLink {{
    border: none; background: transparent; padding: 0 8px; color: #b25e00; font-weight: 600;
}}
QPushButton#conflictsLink:hover {{ text-decoration: underline; background: transparent; }}
QTableWidget#partsTable {{
    background: #ffffff; alternate-background-color: #f6f8fb; border: 1px solid #d9dee5;
    border-radius: 6px; selection-background-color: #dce8fa; selection-color: #17243a;
}}
QDialog {{ background: #eef1f5; }}
"""

ROLE_NAMES = {
    "super_admin": "Platform operator",
    "org_admin": "Organization admin",
    "agent": "Help-desk agent",
    "technician": "Field technician",
    "requester": "Requester",
}


# --------------------------------------------------------------------------- operations
# Plain functions: they run on a worker thread and never touch a widget.


@dataclass(frozen=True, slots=True)
class Session:
    client: ApiClient
    me: Me
    email: str
    #: the refresh token is in the OS keyring (False: memory only, sign in next time)
    saved: bool
    mfa_enrollment_required: bool
    signed_in_at: datetime
    #: the server could not be reached at start: opened on the cached replica
    offline: bool = False

    @property
    def server_url(self) -> str:
        return self.client.base_url

    @property
    def user_id(self) -> str:
        return self.me.user.id


PROFILE_FILE = "desktop-profile.json"


def save_profile(directory: Path, session: Session) -> None:
    """Who signed in last (name, role, organization: not secret), so the app can open on
    the cached replica when the server cannot be reached at the next start."""
    me = session.me
    org = me.organization
    data = {
        "serverUrl": session.server_url,
        "email": session.email,
        "me": {
            "user": dict(me.user.raw),
            "organization": (
                {"id": org.id, "name": org.name, "slug": org.slug, "status": org.status}
                if org
                else None
            ),
            "scopes": list(me.scopes),
        },
    }
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / (PROFILE_FILE + ".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(directory / PROFILE_FILE)
    except OSError as exc:
        log.warning("could not remember the profile: %s", exc)


def load_profile(directory: Path, server_url: str, email: str) -> Me | None:
    try:
        data = json.loads((directory / PROFILE_FILE).read_text(encoding="utf-8"))
        if data.get("serverUrl") != server_url or data.get("email") != email:
            return None
        return Me.from_api(data["me"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def sign_in(
    store: CredentialStore,
    server_url: str,
    email: str,
    password: str,
    mfa_code: str,
    directory: Path | None = None,
) -> Session:
    email = email.strip().lower()
    client = ApiClient(server_url, on_tokens=store.listener(server_url, email))
    try:
        result = client.login(email, password, mfa_code or None)
        me = client.me()
    except BaseException:
        client.close()
        raise
    directory = directory or data_dir()
    LastSignIn(client.base_url, email, me.user.id).save(directory)
    session = Session(
        client=client,
        me=me,
        email=email,
        saved=not store.memory_only,
        mfa_enrollment_required=result.mfa_enrollment_required,
        signed_in_at=datetime.now(),
    )
    save_profile(directory, session)
    return session


def resume(store: CredentialStore, last: LastSignIn, directory: Path | None = None) -> Session:
    """Continue the stored sign-in of the last account (a refresh, then ``/api/me``).
    When the server cannot be reached and this account's replica is on this computer,
    the session opens offline on it; the stored token signs in at the next sync."""
    directory = directory or data_dir()
    token = store.load(last.server_url, last.email)
    if token is None:
        raise ApiError(NOT_SIGNED_IN, "Not signed in")
    client = ApiClient(last.server_url, on_tokens=store.listener(last.server_url, last.email))
    client.resume(token)
    offline = False
    try:
        me = client.me()
    except ServerUnreachable:
        cached = load_profile(directory, last.server_url, last.email)
        if cached is None or not replica_path(directory, last.server_url, cached.user.id).exists():
            client.close()
            raise
        me, offline = cached, True
    except BaseException:
        client.close()
        raise
    session = Session(
        client=client,
        me=me,
        email=last.email,
        saved=not store.memory_only,
        mfa_enrollment_required=False,
        signed_in_at=datetime.now(),
        offline=offline,
    )
    if not offline:
        LastSignIn(last.server_url, last.email, me.user.id).save(directory)
        save_profile(directory, session)
    return session


def forget_device(store: CredentialStore, session: Session, directory: Path) -> None:
    """After a remote wipe: forget who signed in on this computer. The engine has deleted
    the replica and ended the session (``logout``, whose listener deletes the stored
    token); the token is deleted again here in case the server could not be told, and
    the last sign-in and the offline profile go too."""
    try:
        store.delete(session.server_url, session.email)
        for name in (LastSignIn.FILE_NAME, PROFILE_FILE):
            (directory / name).unlink(missing_ok=True)
    finally:
        session.client.close()


def sign_out(store: CredentialStore, session: Session) -> str | None:
    """End the session; the stored token goes whatever happens. Returns a warning or None."""
    try:
        session.client.logout()
    except ApiError as exc:
        return f"Signed out on this computer, but the server did not end the session: {exc}"
    finally:
        store.delete(session.server_url, session.email)
        session.client.close()
    return None


# --------------------------------------------------------------------------- widgets


def initials_of(name: str) -> str:
    words = [w for w in name.replace("@", " ").replace(".", " ").split() if w[:1].isalnum()]
    letters = "".join(w[0] for w in words[:2]).upper()
    return letters or "?"


def badge_pixmap(text: str, size: int, color: str = ACCENT) -> QPixmap:
    """A round badge with initials (the avatar, and the window icon)."""
    ratio = 2.0
    pixmap = QPixmap(int(size * ratio), int(size * ratio))
    pixmap.setDevicePixelRatio(ratio)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(color))
    painter.drawEllipse(0, 0, size, size)
    font = QFont()
    font.setPixelSize(int(size * 0.38))
    font.setBold(True)
    painter.setFont(font)
    painter.setPen(QColor("#ffffff"))
    painter.drawText(0, 0, size, size, Qt.AlignmentFlag.AlignCenter, text)
    painter.end()
    return pixmap


class MainWindow(QMainWindow):
    sign_out_requested = Signal()

    def __init__(self, session: Session, host: ReplicaHost, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.host = host
        me = session.me
        self.setWindowTitle(APP_TITLE)
        self.resize(1280, 780)

        self.sync_action = QAction("Sync now", self)
        self.sync_action.setShortcut(QKeySequence("F5"))
        self.sync_action.setStatusTip("Send waiting changes and fetch what is new (F5)")
        self.sync_action.triggered.connect(self._sync_now)

        self.new_ticket_action = QAction("New ticket", self)
        self.new_ticket_action.setShortcut(QKeySequence("Ctrl+N"))
        self.new_ticket_action.setStatusTip(
            "Open a ticket for something found on site (Ctrl+N); works offline"
        )
        self.new_ticket_action.triggered.connect(self.open_new_ticket)
        self.new_ticket_dialog: NewTicketDialog | None = None

        self.sign_out_action = QAction("Sign out", self)
        self.sign_out_action.setShortcut(QKeySequence("Ctrl+Shift+Q"))
        self.sign_out_action.setStatusTip("End this session and return to the sign-in window")
        self.sign_out_action.triggered.connect(self.sign_out_requested)
        quit_action = QAction("Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        about_action = QAction("About District Resolve", self)
        about_action.triggered.connect(self._about)

        tickets_menu = self.menuBar().addMenu("&Tickets")
        tickets_menu.addAction(self.new_ticket_action)
        account_menu = self.menuBar().addMenu("&Account")
        account_menu.addAction(self.sync_action)
        account_menu.addSeparator()
        account_menu.addAction(self.sign_out_action)
        account_menu.addSeparator()
        account_menu.addAction(quit_action)
        self.menuBar().addMenu("&Help").addAction(about_action)

        user = me.user
        avatar = QLabel()
        avatar.setPixmap(badge_pixmap(initials_of(user.display_name), 64))
        avatar.setFixedSize(64, 64)
        self.name_label = QLabel(user.display_name)
        self.name_label.setObjectName("name")
        email_label = QLabel(user.email)
        email_label.setObjectName("muted")
        identity = QVBoxLayout()
        identity.setSpacing(2)
        identity.addStretch(1)
        identity.addWidget(self.name_label)
        identity.addWidget(email_label)
        identity.addStretch(1)
        header = QHBoxLayout()
        header.setSpacing(16)
        header.addWidget(avatar)
        header.addLayout(identity, 1)

        org = me.organization
        self.role_label = self._value(ROLE_NAMES.get(user.role, user.role))
        self.organization_label = self._value(
            f"{org.name} ({org.slug})" if org else "None (platform account)"
        )
        self.session_label = self._value(
            "Saved in the system keyring" if session.saved else "Kept until you quit"
        )
        grid = QGridLayout()
        grid.setHorizontalSpacing(24)
        grid.setVerticalSpacing(10)
        rows = [
            ("Role", self.role_label),
            ("Organization", self.organization_label),
            ("Server", self._value(session.server_url)),
            ("Two-factor sign-in", self._value("On" if user.mfa_enabled else "Off")),
            ("Signed in", self._value(session.signed_in_at.strftime("%A %d %B %Y, %H:%M"))),
            ("Session", self.session_label),
        ]
        for row, (name, value) in enumerate(rows):
            label = QLabel(name)
            label.setObjectName("fieldName")
            grid.addWidget(label, row, 0, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
            grid.addWidget(value, row, 1)
        grid.setColumnStretch(1, 1)

        self.sign_out_button = QPushButton("Sign out")
        self.sign_out_button.clicked.connect(self.sign_out_requested)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.sign_out_button)

        section = QLabel("Account")
        section.setObjectName("sectionTitle")
        card = QFrame()
        card.setObjectName("card")
        inner = QVBoxLayout(card)
        inner.setContentsMargins(28, 24, 28, 24)
        inner.setSpacing(14)
        inner.addLayout(header)
        for notice in self._notices(session):
            inner.addWidget(notice)
        inner.addSpacing(4)
        inner.addWidget(section)
        inner.addLayout(grid)
        inner.addStretch(1)
        inner.addLayout(buttons)

        account_page = QWidget()
        outer = QVBoxLayout(account_page)
        outer.setContentsMargins(24, 24, 24, 24)
        outer.addWidget(card)

        # My work: the queue on the left, the selected ticket on the right.
        self.queue = QueueView(host)
        self.ticket_pane = TicketPane(host, user_id=user.id, role=user.role)
        self.queue.ticket_selected.connect(self.ticket_pane.show_ticket)
        self.ticket_pane.message.connect(self._show_message)
        host.edit_failed.connect(self._edit_failed)
        queue_box = QWidget()
        queue_layout = QVBoxLayout(queue_box)
        queue_layout.setContentsMargins(14, 12, 8, 10)
        queue_layout.addWidget(self.queue)
        pane_frame = QFrame()
        pane_frame.setObjectName("pane")
        pane_layout = QVBoxLayout(pane_frame)
        pane_layout.setContentsMargins(0, 0, 0, 0)
        pane_layout.addWidget(self.ticket_pane)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(queue_box)
        self.splitter.addWidget(pane_frame)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setSizes([880, 480])
        pane_frame.setMinimumWidth(440)

        self.conflicts_view = ConflictsView(host)
        self.conflicts_view.message.connect(self._show_message)
        self.conflicts_view.open_ticket.connect(self.show_ticket)

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.splitter, "My work")
        self.conflicts_tab = self.tabs.addTab(self.conflicts_view, "Conflicts")
        self.tabs.addTab(account_page, "Account")
        self.setCentralWidget(self.tabs)

        toolbar = QToolBar("Sync")
        toolbar.setObjectName("mainToolbar")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        toolbar.addAction(self.new_ticket_action)
        toolbar.addAction(self.sync_action)
        self.addToolBar(toolbar)
        self.sync_button = toolbar.widgetForAction(self.sync_action)

        # The status bar: online state, last sync, waiting changes, download progress.
        self.online_label = QLabel()
        self.online_label.setObjectName("online")
        self.last_sync_label = QLabel("Not synced yet")
        self.pending_label = QLabel()
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(220)
        self.progress_bar.setTextVisible(True)
        self.progress_bar.setVisible(False)
        # Conflicts and refused changes: shown when there are any; a click opens the tab.
        self.conflicts_button = QPushButton()
        self.conflicts_button.setObjectName("conflictsLink")
        self.conflicts_button.setFlat(True)
        self.conflicts_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.conflicts_button.setToolTip("Open the conflicts and refused changes")
        self.conflicts_button.clicked.connect(self.show_conflicts)
        self.conflicts_button.setVisible(False)
        bar = self.statusBar()
        bar.addPermanentWidget(self.conflicts_button)
        bar.addPermanentWidget(self.progress_bar)
        bar.addPermanentWidget(self.pending_label)
        bar.addPermanentWidget(self.last_sync_label)
        bar.addPermanentWidget(self.online_label)
        self._set_online(host.online)
        bar.showMessage(
            f"Signed in to {session.server_url} as {user.email}" + (f" · {org.name}" if org else "")
        )
        if session.offline:
            bar.showMessage(
                f"Cannot reach {session.server_url}: working offline on this computer's copy. "
                "Your changes are kept and sent when the server answers."
            )
        host.online_changed.connect(self._set_online)
        host.status_changed.connect(self._status_read)
        host.sync_started.connect(self._sync_started)
        host.sync_progress.connect(self._sync_progress)
        host.sync_finished.connect(self._sync_finished)
        host.opened.connect(self._replica_opened)

    # ---------------------------------------------------------------- sync state

    @Slot(object)
    def _replica_opened(self, error: object) -> None:
        if error is not None:
            self.statusBar().showMessage(f"Could not open this computer's copy: {error}")
            return
        self.queue.model.reload()

    @Slot()
    def _sync_now(self) -> None:
        self.host.sync_now(retry_now=True)

    @Slot(object)
    def _set_online(self, online: object) -> None:
        if online is None:
            text, kind = "● Connecting…", "unknown"
        elif online:
            text, kind = "● Online", "online"
        else:
            text, kind = "● Offline", "offline"
        self.online_label.setText(text)
        self.online_label.setProperty("kind", kind)
        self.online_label.style().unpolish(self.online_label)
        self.online_label.style().polish(self.online_label)

    @Slot(object)
    def _status_read(self, status: ReplicaStatus) -> None:
        pending = status.pending
        if pending:
            self.pending_label.setText(f"{pending} change{'s' if pending != 1 else ''} waiting")
            self.pending_label.setProperty("kind", "pending")
        else:
            self.pending_label.setText("All changes sent")
            self.pending_label.setProperty("kind", "")
        self.pending_label.style().unpolish(self.pending_label)
        self.pending_label.style().polish(self.pending_label)
        self.last_sync_label.setText(_last_sync_text(status.last_sync_at))
        words = []
        if status.open_conflicts:
            words.append(
                f"{status.open_conflicts} conflict{'s' if status.open_conflicts != 1 else ''}"
            )
        if status.rejections:
            words.append(
                f"{status.rejections} refused change{'s' if status.rejections != 1 else ''}"
            )
        self.conflicts_button.setText("⚠ " + " · ".join(words) if words else "")
        self.conflicts_button.setVisible(bool(words))
        count = status.open_conflicts + status.rejections
        self.tabs.setTabText(self.conflicts_tab, f"Conflicts ({count})" if count else "Conflicts")

    @Slot()
    def show_conflicts(self) -> None:
        self.tabs.setCurrentIndex(self.conflicts_tab)

    @Slot(str)
    def show_ticket(self, ticket_id: str) -> None:
        """My work, with this ticket in the pane (selected in the queue when listed)."""
        self.tabs.setCurrentIndex(0)
        self.queue.follow(ticket_id)

    @Slot()
    def open_new_ticket(self) -> None:
        """The new-ticket box, placed where the open ticket is (window-modal)."""
        view = self.ticket_pane.view
        dialog = NewTicketDialog(
            self.host,
            site_id=view.site_id if view else None,
            building_id=view.building_id if view else None,
            room_id=view.room_id if view else None,
            context=f"{view.number} ({view.place})" if view and view.place else "",
            parent=self,
        )
        dialog.message.connect(self._show_message)
        dialog.created.connect(self.show_ticket)
        dialog.finished.connect(dialog.deleteLater)
        self.new_ticket_dialog = dialog
        dialog.open()
        dialog.load()
        dialog.title_edit.setFocus()

    @Slot()
    def _sync_started(self) -> None:
        self.sync_action.setEnabled(False)
        self.sync_action.setText("Syncing…")
        self._sync_began = time.monotonic()

    @Slot(str, int, object)
    def _sync_progress(self, phase: str, done: int, total: object) -> None:
        # A long download (a first sync, a resync) shows its progress; quick syncs don't.
        if phase == "push" and not self.progress_bar.isVisible():
            return
        if not self.progress_bar.isVisible() and time.monotonic() - self._sync_began < 0.5:
            return
        bar = self.progress_bar
        bar.setVisible(True)
        if isinstance(total, int) and total > 0:
            bar.setRange(0, total)
            bar.setValue(min(done, total))
        else:
            bar.setRange(0, 0)  # busy: the server does not say how much is coming
        words = {"pull": "Downloading", "hydrate": "Fetching history", "push": "Sending"}
        bar.setFormat(f"{words.get(phase, phase)} {done:,}")
        bar.setToolTip(f"{words.get(phase, phase)}: {done:,} so far")

    @Slot(object)
    def _sync_finished(self, report: SyncReport) -> None:
        self.sync_action.setEnabled(True)
        self.sync_action.setText("Sync now")
        self.progress_bar.setVisible(False)
        if report.outcome is Outcome.OK:
            self.statusBar().showMessage(report.summary(), 8000)
        elif report.errors:
            self.statusBar().showMessage(report.errors[-1])

    @Slot(str)
    def _show_message(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)

    @Slot(str)
    def _edit_failed(self, text: str) -> None:
        self.statusBar().showMessage(f"Not saved: {text}", 10000)

    @staticmethod
    def _value(text: str) -> QLabel:
        label = QLabel(text)
        label.setObjectName("fieldValue")
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        return label

    @staticmethod
    def _notices(session: Session) -> list[QLabel]:
        texts = []
        if session.mfa_enrollment_required:
            texts.append(
                "Your organization requires two-factor sign-in for administrators. "
                "Turn it on before using this account."
            )
        if not session.saved:
            texts.append(MEMORY_ONLY_NOTICE)
        notices = []
        for text in texts:
            notice = QLabel(text)
            notice.setObjectName("banner")
            notice.setWordWrap(True)
            notices.append(notice)
        return notices

    def set_signing_out(self) -> None:
        self.sign_out_action.setEnabled(False)
        self.sign_out_button.setEnabled(False)
        self.sync_action.setEnabled(False)
        self.statusBar().showMessage("Signing out…")

    @Slot()
    def _about(self) -> None:
        QMessageBox.about(
            self,
            "About District Resolve",
            f"<b>District Resolve</b> {__version__}<br>"
            "Help desk and field work for school districts.",
        )


def _last_sync_text(last_sync_at: str | None) -> str:
    if not last_sync_at:
        return "Not synced yet"
    try:
        moment = datetime.fromisoformat(last_sync_at.replace("Z", "+00:00")).astimezone()
    except ValueError:
        return f"Last sync {last_sync_at}"
    if moment.date() == datetime.now().astimezone().date():
        return f"Last sync {moment:%H:%M}"
    return f"Last sync {moment:%d %b %H:%M}"


# --------------------------------------------------------------------------- controller


class DesktopApp(QObject):
    """Shows the sign-in window, then the main window; runs the work in a TaskRunner."""

    #: emitted on the UI thread once the main window is up
    signed_in = Signal()
    #: emitted when the sign-in window is back after a sign-out
    signed_out = Signal()

    def __init__(
        self,
        *,
        store: CredentialStore | None = None,
        data_dir: Path | None = None,
        server_url: str | None = None,
        sync_interval_ms: int = SYNC_INTERVAL_MS,
        probe_interval_ms: int = PROBE_INTERVAL_MS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.store = store or CredentialStore()
        self.data_dir = data_dir
        self.sync_interval_ms = sync_interval_ms
        self.probe_interval_ms = probe_interval_ms
        self.host: ReplicaHost | None = None
        self.runner = TaskRunner(self)
        self.garbage = GarbageCollector(self)
        self.session: Session | None = None
        self.main_window: MainWindow | None = None
        self.sign_in_window = SignInWindow()
        self.sign_in_window.setWindowIcon(app_icon())
        self.sign_in_window.submitted.connect(self._sign_in)
        self._server_override = server_url
        #: the message box shown after a remote wipe (kept for tests)
        self.wipe_notice: QMessageBox | None = None

    def start(self) -> None:
        """Show the sign-in window; continue the last stored sign-in when there is one."""
        self.garbage.start()
        window = self.sign_in_window
        last = LastSignIn.load(self.directory)
        if self._server_override:
            window.server_edit.setText(self._server_override)
            if last and last.server_url != self._server_override:
                last = None
        if last is not None:
            window.prefill(last.server_url, last.email)
        window.show()
        window.focus_first_empty()
        if last is not None:
            window.set_busy(True, f"Signing you back in as {last.email}…")
            store, directory = self.store, self.directory
            self.runner.submit(
                lambda: resume(store, last, directory),
                on_success=self._session_started,
                on_error=self._resume_failed,
                name="resume",
            )

    @property
    def directory(self) -> Path:
        """The per-user data directory (replicas, last sign-in)."""
        return self.data_dir or data_dir()

    def shutdown(self) -> None:
        """Wait for running work, close the replica and release the connection (the
        session stays signed in)."""
        self._close_host()
        self.runner.wait()
        if self.session is not None:
            self.session.client.close()
        self.garbage.stop()

    def _close_host(self) -> None:
        host, self.host = self.host, None
        if host is not None:
            host.shutdown()
            host.deleteLater()

    # ---------------------------------------------------------------- sign-in

    @Slot(str, str, str, str)
    def _sign_in(self, server_url: str, email: str, password: str, mfa_code: str) -> None:
        store, directory = self.store, self.directory
        self.runner.submit(
            lambda: sign_in(store, server_url, email, password, mfa_code, directory),
            on_success=self._session_started,
            on_error=self._sign_in_failed,
            name="sign-in",
        )

    def _session_started(self, session: Session) -> None:
        self.session = session
        self.host = ReplicaHost(
            replica_path(self.directory, session.server_url, session.user_id),
            server_url=session.server_url,
            user_id=session.user_id,
            client=session.client,
            online=False if session.offline else None,
            sync_interval_ms=self.sync_interval_ms,
            probe_interval_ms=self.probe_interval_ms,
            parent=self,
        )
        self.main_window = MainWindow(session, self.host)
        self.main_window.setWindowIcon(app_icon())
        self.main_window.sign_out_requested.connect(self._sign_out)
        self.host.wiped.connect(self._wiped)
        self.main_window.show()  # before hiding the sign-in window, so the app stays up
        self.sign_in_window.set_busy(False)
        self.sign_in_window.password_edit.clear()
        self.sign_in_window.status_label.clear()
        self.sign_in_window.hide()
        self.host.start()
        self.signed_in.emit()

    def _sign_in_failed(self, error: BaseException) -> None:
        window = self.sign_in_window
        if isinstance(error, ApiError) and error.code == ErrorCode.MFA_REQUIRED:
            window.ask_for_mfa(error.message)
        else:
            window.sign_in_failed(describe(error))

    def _resume_failed(self, error: BaseException) -> None:
        window = self.sign_in_window
        window.set_busy(False)
        if isinstance(error, ApiError) and error.code == NOT_SIGNED_IN:
            window.status_label.clear()
        elif isinstance(error, ApiError) and error.session_ended:
            window.show_info(f"{error.message}. Sign in again to continue.")
        else:
            window.show_error(describe(error))
        window.focus_first_empty()

    # ---------------------------------------------------------------- sign-out

    @Slot()
    def _sign_out(self) -> None:
        session = self.session
        if session is None or self.main_window is None:
            return
        self.main_window.set_signing_out()
        self._close_host()  # the sync stops and the replica closes; it stays on disk
        self.runner.submit(
            lambda: sign_out(self.store, session),
            on_success=self._signed_out,
            on_error=lambda error: self._signed_out(describe(error)),
            name="sign-out",
        )

    # ---------------------------------------------------------------- remote wipe

    @Slot(str)
    def _wiped(self, text: str) -> None:
        """The administrator wiped this computer: the replica is gone and the session
        ended. Close the main window, forget the sign-in, say so, and ask to sign in."""
        session, self.session = self.session, None
        self._close_host()
        window = self.sign_in_window
        window.prefill(session.server_url if session else window.server_edit.text(), "")
        window.reset_after_sign_out(text, warning=True)
        window.show()  # before the main window goes, so the app stays up
        if self.main_window is not None:
            self.main_window.hide()
            self.main_window.deleteLater()
            self.main_window = None
            self.garbage.collect_soon()
        notice = QMessageBox(
            QMessageBox.Icon.Warning,
            "This computer was wiped",
            text,
            QMessageBox.StandardButton.Ok,
            window,
        )
        notice.setInformativeText(
            "This is done when a laptop is reported lost or changes hands. Changes not "
            "yet sent from this computer were discarded."
        )
        notice.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.wipe_notice = notice
        notice.open()
        if session is not None:
            store, directory = self.store, self.directory
            self.runner.submit(
                lambda: forget_device(store, session, directory),
                on_success=lambda _: self.signed_out.emit(),
                on_error=lambda error: log.warning("forgetting the sign-in failed: %s", error),
                name="forget-device",
            )

    def _signed_out(self, warning: str | None) -> None:
        session, self.session = self.session, None
        window = self.sign_in_window
        if session is not None:
            window.prefill(session.server_url, session.email)
        window.reset_after_sign_out(warning or "You are signed out.", warning=bool(warning))
        window.show()
        if self.main_window is not None:
            self.main_window.hide()
            self.main_window.deleteLater()
            self.main_window = None
            self.garbage.collect_soon()
        self.signed_out.emit()


def describe(error: BaseException) -> str:
    """The message to show for a failed operation: the server's own words when it sent any."""
    if isinstance(error, ApiError):
        return error.message
    return f"Something went wrong: {error}"


def app_icon() -> QIcon:
    return QIcon(badge_pixmap("DR", 64))


def create_application(argv: list[str]) -> QApplication:
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(argv)
    app.setApplicationName(APP_TITLE)
    app.setApplicationDisplayName(APP_TITLE)
    app.setOrganizationName("District Resolve")
    app.setApplicationVersion(__version__)
    apply_style(app)
    return app


def apply_style(app: QApplication) -> None:
    style = QStyleFactory.create("Fusion")
    if style is not None:
        app.setStyle(style)
    app.setStyleSheet(STYLE_SHEET)
    app.setWindowIcon(app_icon())
