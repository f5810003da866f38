"""The sign-in window: server address, email, password, and a code when MFA is on.

It only collects input and shows state; ``desktop.app`` runs the sign-in in a worker.
"""

from __future__ import annotations

from desktop.qt import (
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    Qt,
    QVBoxLayout,
    QWidget,
    Signal,
    Slot,
)
from sync.client import DEFAULT_SERVER_URL, normalize_server_url

APP_TITLE = "District Resolve"


def set_kind(label: QLabel, kind: str) -> None:
    """Switch a label's ``kind`` property (error, info, warning) and restyle it."""
    label.setProperty("kind", kind)
    label.style().unpolish(label)
    label.style().polish(label)


class SignInWindow(QWidget):
    #: server URL (normalized), email, password, MFA code ("" when not asked for)
    submitted = Signal(str, str, str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("signInWindow")
        self.setWindowTitle(APP_TITLE)
        self.setMinimumWidth(460)

        title = QLabel(APP_TITLE)
        title.setObjectName("title")
        subtitle = QLabel("Sign in to your district's help desk")
        subtitle.setObjectName("subtitle")

        self.server_edit = QLineEdit(DEFAULT_SERVER_URL)
        self.server_edit.setObjectName("server")
        self.server_edit.setPlaceholderText("http://server:8000")
        self.email_edit = QLineEdit()
        self.email_edit.setObjectName("email")
        self.email_edit.setPlaceholderText("you@district.org")
        self.password_edit = QLineEdit()
        self.password_edit.setObjectName("password")
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.mfa_edit = QLineEdit()
        self.mfa_edit.setObjectName("mfaCode")
        self.mfa_edit.setPlaceholderText("6-digit code or a backup code")
        self.mfa_edit.setMaxLength(32)
        self.mfa_label = self._label("Authenticator code", self.mfa_edit)

        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setHorizontalSpacing(14)
        form.setVerticalSpacing(10)
        form.addRow(self._label("Server address", self.server_edit), self.server_edit)
        form.addRow(self._label("Email", self.email_edit), self.email_edit)
        form.addRow(self._label("Password", self.password_edit), self.password_edit)
        form.addRow(self.mfa_label, self.mfa_edit)

        self.status_label = QLabel()
        self.status_label.setObjectName("status")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.sign_in_button = QPushButton("Sign in")
        self.sign_in_button.setObjectName("primary")
        self.sign_in_button.setDefault(True)
        self.sign_in_button.setAutoDefault(True)
        self.sign_in_button.setMinimumWidth(120)
        self.sign_in_button.clicked.connect(self._submit)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.sign_in_button)

        card = QFrame()
        card.setObjectName("card")
        inner = QVBoxLayout(card)
        inner.setContentsMargins(28, 24, 28, 24)
        inner.setSpacing(6)
        inner.addWidget(title)
        inner.addWidget(subtitle)
        inner.addSpacing(16)
        inner.addLayout(form)
        inner.addSpacing(8)
        inner.addWidget(self.status_label)
        inner.addSpacing(4)
        inner.addLayout(buttons)

        outer = QVBoxLayout(self)
        outer.setContentsMargins(24, 24, 24, 24)
        outer.addWidget(card)

        for edit in (self.server_edit, self.email_edit, self.password_edit, self.mfa_edit):
            edit.returnPressed.connect(self._submit)
        # A code belongs to one account on one server: asking again when they change.
        self.server_edit.textEdited.connect(self._account_changed)
        self.email_edit.textEdited.connect(self._account_changed)
        self._show_mfa(False)
        self._busy = False

    @staticmethod
    def _label(text: str, buddy: QLineEdit) -> QLabel:
        """A form label centred on its field's height (QFormLayout aligns them at the top)."""
        label = QLabel(text)
        label.setBuddy(buddy)
        label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        label.setMinimumHeight(buddy.sizeHint().height())
        return label

    # ---------------------------------------------------------------- state

    @property
    def mfa_requested(self) -> bool:
        return not self.mfa_edit.isHidden()

    def prefill(self, server_url: str, email: str) -> None:
        self.server_edit.setText(server_url)
        self.email_edit.setText(email)
        self.password_edit.clear()
        self._show_mfa(False)
        self.focus_first_empty()

    def focus_first_empty(self) -> None:
        for edit in (self.server_edit, self.email_edit, self.password_edit):
            if not edit.text():
                edit.setFocus()
                return
        (self.mfa_edit if self.mfa_requested else self.password_edit).setFocus()

    def set_busy(self, busy: bool, message: str = "") -> None:
        self._busy = busy
        for widget in (
            self.server_edit,
            self.email_edit,
            self.password_edit,
            self.mfa_edit,
            self.sign_in_button,
        ):
            widget.setEnabled(not busy)
        self.sign_in_button.setText("Signing in…" if busy else "Sign in")
        if busy:
            self.show_info(message)

    def show_info(self, message: str) -> None:
        set_kind(self.status_label, "info")
        self.status_label.setText(message)

    def show_error(self, message: str) -> None:
        set_kind(self.status_label, "error")
        self.status_label.setText(message)

    def ask_for_mfa(self, message: str) -> None:
        """The server wants a code: show the field and put the cursor there."""
        self.set_busy(False)
        self._show_mfa(True)
        self.mfa_edit.clear()
        set_kind(self.status_label, "info")
        self.status_label.setText(message)
        self.mfa_edit.setFocus()

    def sign_in_failed(self, message: str) -> None:
        """Show the server's message and hand the form back for another try."""
        self.set_busy(False)
        self.show_error(message)
        if self.mfa_requested:
            self.mfa_edit.clear()
            self.mfa_edit.setFocus()
        else:
            self.password_edit.selectAll()
            self.password_edit.setFocus()

    def reset_after_sign_out(self, message: str, *, warning: bool = False) -> None:
        self.set_busy(False)
        self.password_edit.clear()
        self._show_mfa(False)
        if warning:
            self.show_error(message)
        else:
            self.show_info(message)
        self.focus_first_empty()

    # ---------------------------------------------------------------- input

    @Slot()
    def _submit(self) -> None:
        if self._busy:
            return
        try:
            server = normalize_server_url(self.server_edit.text())
        except ValueError as exc:
            self.show_error(str(exc))
            self.server_edit.setFocus()
            return
        email = self.email_edit.text().strip()
        if "@" not in email:
            self.show_error("Enter the email address you sign in with")
            self.email_edit.setFocus()
            return
        password = self.password_edit.text()
        if not password:
            self.show_error("Enter your password")
            self.password_edit.setFocus()
            return
        code = self.mfa_edit.text().strip() if self.mfa_requested else ""
        if self.mfa_requested and not code:
            self.show_error("Enter the code from your authenticator app")
            self.mfa_edit.setFocus()
            return
        self.server_edit.setText(server)
        self.set_busy(True, "Signing in…")
        self.submitted.emit(server, email, password, code)

    @Slot()
    def _account_changed(self) -> None:
        if self.mfa_requested:
            self._show_mfa(False)
            self.status_label.clear()

    def _show_mfa(self, visible: bool) -> None:
        self.mfa_label.setVisible(visible)
        self.mfa_edit.setVisible(visible)
        if not visible:
            self.mfa_edit.clear()
