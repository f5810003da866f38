"""The desktop application: sign-in, the signed-in main window, sign-out.

``DesktopApp`` is the controller. Windows only collect input and show state; every
network or keyring call is a plain function below, run by ``TaskRunner`` off the
UI thread, whose result comes back to the UI thread by signal.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from common import __version__
from common.errors import ErrorCode
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
    QPushButton,
    QStyleFactory,
    Qt,
    QVBoxLayout,
    QWidget,
    Signal,
    Slot,
)
from desktop.signin import APP_TITLE, SignInWindow
from desktop.workers import GarbageCollector, TaskRunner
from sync.client import NOT_SIGNED_IN, ApiClient, ApiError, Me
from sync.credentials import MEMORY_ONLY_NOTICE, CredentialStore, LastSignIn

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

    @property
    def server_url(self) -> str:
        return self.client.base_url


def sign_in(
    store: CredentialStore, server_url: str, email: str, password: str, mfa_code: str
) -> Session:
    email = email.strip().lower()
    client = ApiClient(server_url, on_tokens=store.listener(server_url, email))
    try:
        result = client.login(email, password, mfa_code or None)
        me = client.me()
    except BaseException:
        client.close()
        raise
    LastSignIn(client.base_url, email).save()
    return Session(
        client=client,
        me=me,
        email=email,
        saved=not store.memory_only,
        mfa_enrollment_required=result.mfa_enrollment_required,
        signed_in_at=datetime.now(),
    )


def resume(store: CredentialStore, last: LastSignIn) -> Session:
    """Continue the stored sign-in of the last account (a refresh, then ``/api/me``)."""
    token = store.load(last.server_url, last.email)
    if token is None:
        raise ApiError(NOT_SIGNED_IN, "Not signed in")
    client = ApiClient(last.server_url, on_tokens=store.listener(last.server_url, last.email))
    client.resume(token)
    try:
        me = client.me()
    except BaseException:
        client.close()
        raise
    return Session(
        client=client,
        me=me,
        email=last.email,
        saved=not store.memory_only,
        mfa_enrollment_required=False,
        signed_in_at=datetime.now(),
    )


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

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        me = session.me
        self.setWindowTitle(APP_TITLE)
        self.resize(760, 540)

        self.sign_out_action = QAction("Sign out", self)
        self.sign_out_action.setShortcut(QKeySequence("Ctrl+Shift+Q"))
        self.sign_out_action.setStatusTip("End this session and return to the sign-in window")
        self.sign_out_action.triggered.connect(self.sign_out_requested)
        quit_action = QAction("Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        about_action = QAction("About District Resolve", self)
        about_action.triggered.connect(self._about)

        account_menu = self.menuBar().addMenu("&Account")
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

        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(24, 24, 24, 24)
        outer.addWidget(card)
        self.setCentralWidget(central)
        self.statusBar().showMessage(
            f"Signed in to {session.server_url} as {user.email}" + (f" · {org.name}" if org else "")
        )

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
        self.statusBar().showMessage("Signing out…")

    @Slot()
    def _about(self) -> None:
        QMessageBox.about(
            self,
            "About District Resolve",
            f"<b>District Resolve</b> {__version__}<br>"
            "Help desk and field work for school districts.",
        )


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
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.store = store or CredentialStore()
        self.data_dir = data_dir
        self.runner = TaskRunner(self)
        self.garbage = GarbageCollector(self)
        self.session: Session | None = None
        self.main_window: MainWindow | None = None
        self.sign_in_window = SignInWindow()
        self.sign_in_window.setWindowIcon(app_icon())
        self.sign_in_window.submitted.connect(self._sign_in)
        self._server_override = server_url

    def start(self) -> None:
        """Show the sign-in window; continue the last stored sign-in when there is one."""
        self.garbage.start()
        window = self.sign_in_window
        last = LastSignIn.load(self.data_dir)
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
            self.runner.submit(
                lambda: resume(self.store, last),
                on_success=self._session_started,
                on_error=self._resume_failed,
                name="resume",
            )

    def shutdown(self) -> None:
        """Wait for running work and release the connection (the session stays signed in)."""
        self.runner.wait()
        if self.session is not None:
            self.session.client.close()
        self.garbage.stop()

    # ---------------------------------------------------------------- sign-in

    @Slot(str, str, str, str)
    def _sign_in(self, server_url: str, email: str, password: str, mfa_code: str) -> None:
        self.runner.submit(
            lambda: sign_in(self.store, server_url, email, password, mfa_code),
            on_success=self._session_started,
            on_error=self._sign_in_failed,
            name="sign-in",
        )

    def _session_started(self, session: Session) -> None:
        self.session = session
        self.main_window = MainWindow(session)
        self.main_window.setWindowIcon(app_icon())
        self.main_window.sign_out_requested.connect(self._sign_out)
        self.main_window.show()  # before hiding the sign-in window, so the app stays up
        self.sign_in_window.set_busy(False)
        self.sign_in_window.password_edit.clear()
        self.sign_in_window.status_label.clear()
        self.sign_in_window.hide()
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
        self.runner.submit(
            lambda: sign_out(self.store, session),
            on_success=self._signed_out,
            on_error=lambda error: self._signed_out(describe(error)),
            name="sign-out",
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
