"""The desktop app through its real widgets (offscreen), signing in to a real server."""

from __future__ import annotations

import ast
import threading
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest

from desktop.app import DesktopApp, apply_style
from desktop.qt import QApplication, Qt
from desktop.workers import TaskRunner
from sync.client import ApiClient
from sync.credentials import DATA_DIR_ENV, SERVICE_NAME, CredentialStore, LastSignIn
from tests.conftest import PASSWORD, World
from tests.test_sync_client import (
    MemoryKeyring,
    NoKeyring,
    closed_port_url,
    enable_mfa,
    next_code,
    technician,
)

SCREENSHOT = Path("/tmp/desktop-main.png")
DESKTOP = Path(__file__).resolve().parent.parent / "desktop"


@pytest.fixture(autouse=True)
def memory_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryKeyring]:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "client"))
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def make_app(qtbot) -> Iterator:
    """Build DesktopApp controllers; wait for their workers and close their windows after."""
    apply_style(QApplication.instance())
    made: list[DesktopApp] = []

    def make(**kwargs) -> DesktopApp:
        controller = DesktopApp(**kwargs)
        qtbot.addWidget(controller.sign_in_window)
        made.append(controller)
        return controller

    yield make
    for controller in made:
        controller.shutdown()
        if controller.main_window is not None:
            controller.main_window.close()
        controller.sign_in_window.close()


def type_sign_in(qtbot, controller: DesktopApp, server: str, email: str, password: str) -> None:
    window = controller.sign_in_window
    window.server_edit.clear()
    qtbot.keyClicks(window.server_edit, server)
    window.email_edit.clear()
    qtbot.keyClicks(window.email_edit, email)
    window.password_edit.clear()
    qtbot.keyClicks(window.password_edit, password)


def signed_in(controller: DesktopApp) -> bool:
    return controller.main_window is not None and controller.main_window.isVisible()


def test_sign_in_shows_who_is_signed_in_then_sign_out(
    qtbot, make_app, server_url: str, world: World, memory_keyring: MemoryKeyring
) -> None:
    account = technician(world)
    controller = make_app()
    controller.start()
    window = controller.sign_in_window
    qtbot.waitExposed(window)
    assert window.windowTitle() == "District Resolve"
    assert window.server_edit.text() == "http://127.0.0.1:8000"
    assert not window.mfa_requested

    type_sign_in(qtbot, controller, server_url, account.email, PASSWORD)
    qtbot.mouseClick(window.sign_in_button, Qt.MouseButton.LeftButton)
    # The click returned at once: the request runs on a worker, the form waits.
    assert controller.main_window is None
    assert not window.sign_in_button.isEnabled()
    assert window.status_label.text() == "Signing in…"

    qtbot.waitUntil(lambda: signed_in(controller), timeout=15_000)
    main = controller.main_window
    assert main is not None
    assert main.windowTitle() == "District Resolve"
    assert main.name_label.text() == "Dana Reyes"
    assert main.role_label.text() == "Field technician"
    assert main.organization_label.text() == "Alpha (alpha)"
    assert main.session_label.text() == "Saved in the system keyring"
    assert not window.isVisible()
    key = (SERVICE_NAME, f"{server_url}|{account.email}")
    assert key in memory_keyring.entries
    assert LastSignIn.load() == LastSignIn(server_url, account.email)

    main.resize(760, 540)
    qtbot.wait(50)
    assert main.grab().save(str(SCREENSHOT))

    refresh_token = memory_keyring.entries[key]
    with qtbot.waitSignal(controller.signed_out, timeout=15_000):
        qtbot.mouseClick(main.sign_out_button, Qt.MouseButton.LeftButton)
    assert window.isVisible()
    assert window.status_label.text() == "You are signed out."
    assert window.email_edit.text() == account.email
    assert window.password_edit.text() == ""
    assert key not in memory_keyring.entries
    assert controller.main_window is None
    # The server ended the session too.
    with ApiClient(server_url) as client:
        client.resume(refresh_token)
        with pytest.raises(Exception, match="signed out"):
            client.me()


def test_wrong_password_shows_the_servers_message(
    qtbot, make_app, server_url: str, world: World
) -> None:
    account = technician(world)
    controller = make_app()
    controller.start()
    window = controller.sign_in_window

    type_sign_in(qtbot, controller, server_url, account.email, "Wrong-password-1")
    qtbot.keyClick(window.password_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.sign_in_button.isEnabled(), timeout=15_000)
    assert window.status_label.text() == "Invalid email or password"
    assert window.status_label.property("kind") == "error"
    assert controller.main_window is None
    assert window.password_edit.isEnabled() and window.email_edit.isEnabled()

    # Still usable: the right password goes through.
    window.password_edit.clear()
    qtbot.keyClicks(window.password_edit, PASSWORD)
    qtbot.mouseClick(window.sign_in_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: signed_in(controller), timeout=15_000)
    assert controller.main_window is not None
    assert controller.main_window.name_label.text() == "Dana Reyes"


def test_mfa_code_field_appears_when_the_server_asks(
    qtbot, make_app, server_url: str, world: World
) -> None:
    account = technician(world)
    totp = enable_mfa(world, server_url, account)
    controller = make_app()
    controller.start()
    window = controller.sign_in_window
    assert not window.mfa_edit.isVisible()

    type_sign_in(qtbot, controller, server_url, account.email, PASSWORD)
    qtbot.mouseClick(window.sign_in_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.mfa_edit.isVisible(), timeout=15_000)
    assert window.status_label.text() == "A code from your authenticator app is required"
    assert window.sign_in_button.isEnabled()
    assert controller.main_window is None

    # An empty code is caught before anything is sent.
    qtbot.mouseClick(window.sign_in_button, Qt.MouseButton.LeftButton)
    assert window.status_label.text() == "Enter the code from your authenticator app"

    qtbot.keyClicks(window.mfa_edit, next_code(totp))
    qtbot.mouseClick(window.sign_in_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: signed_in(controller), timeout=15_000)
    assert controller.main_window is not None
    assert controller.main_window.name_label.text() == "Dana Reyes"


def test_next_start_continues_the_stored_sign_in(
    qtbot, make_app, server_url: str, world: World
) -> None:
    account = technician(world)
    first = make_app()
    first.start()
    type_sign_in(qtbot, first, server_url, account.email, PASSWORD)
    qtbot.mouseClick(first.sign_in_window.sign_in_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: signed_in(first), timeout=15_000)
    first.shutdown()

    second = make_app()
    second.start()
    assert second.sign_in_window.email_edit.text() == account.email
    qtbot.waitUntil(lambda: signed_in(second), timeout=15_000)
    assert second.main_window is not None
    assert second.main_window.name_label.text() == "Dana Reyes"


def test_unreachable_server_is_reported(qtbot, make_app) -> None:
    url = closed_port_url()
    controller = make_app()
    controller.start()
    window = controller.sign_in_window
    type_sign_in(qtbot, controller, url, "dana@alpha.example", PASSWORD)
    qtbot.mouseClick(window.sign_in_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.sign_in_button.isEnabled(), timeout=15_000)
    assert window.status_label.text().startswith(f"Cannot reach the server at {url}")


def test_form_is_checked_before_sending(qtbot, make_app) -> None:
    controller = make_app()
    controller.start()
    window = controller.sign_in_window
    window.server_edit.clear()
    qtbot.mouseClick(window.sign_in_button, Qt.MouseButton.LeftButton)
    assert window.status_label.text() == "Enter the server address"
    qtbot.keyClicks(window.server_edit, "127.0.0.1:8000")
    qtbot.mouseClick(window.sign_in_button, Qt.MouseButton.LeftButton)
    assert window.status_label.text() == "Enter the email address you sign in with"
    qtbot.keyClicks(window.email_edit, "dana@alpha.example")
    qtbot.mouseClick(window.sign_in_button, Qt.MouseButton.LeftButton)
    assert window.status_label.text() == "Enter your password"
    assert not controller.runner.busy


def test_without_keyring_the_main_window_says_so(
    qtbot, make_app, server_url: str, world: World
) -> None:
    keyring.set_keyring(NoKeyring())
    account = technician(world)
    controller = make_app(store=CredentialStore())
    controller.start()
    type_sign_in(qtbot, controller, server_url, account.email, PASSWORD)
    qtbot.mouseClick(controller.sign_in_window.sign_in_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: signed_in(controller), timeout=15_000)
    main = controller.main_window
    assert main is not None
    assert main.session_label.text() == "Kept until you quit"
    banners = [label.text() for label in main.findChildren(type(main.name_label), "banner")]
    assert any("you will need to sign in again" in text for text in banners)


def test_task_results_arrive_on_the_ui_thread(qtbot) -> None:
    runner = TaskRunner()
    seen: dict[str, int] = {}

    def done(worker_thread: int) -> None:
        seen["worker"] = worker_thread
        seen["callback"] = threading.get_ident()

    def idle(busy: bool) -> bool:
        return not busy

    with qtbot.waitSignal(runner.busy_changed, timeout=5_000, check_params_cb=idle):
        runner.submit(threading.get_ident, on_success=done, on_error=pytest.fail)
        assert runner.busy
    assert not runner.busy
    assert seen["worker"] != threading.main_thread().ident
    assert seen["callback"] == threading.main_thread().ident

    errors: list[BaseException] = []
    with qtbot.waitSignal(runner.busy_changed, timeout=5_000, check_params_cb=idle):
        runner.submit(lambda: 1 / 0, on_success=pytest.fail, on_error=errors.append)
    assert isinstance(errors[0], ZeroDivisionError)


def test_qt_is_imported_only_through_desktop_qt() -> None:
    offenders = []
    for path in sorted(DESKTOP.rglob("*.py")):
        if path.name == "qt.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "PySide6"]
    assert offenders == []


def test_python_m_desktop_has_a_main(capsys: pytest.CaptureFixture[str]) -> None:
    from desktop.__main__ import main

    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.startswith("resolve-desktop ")
