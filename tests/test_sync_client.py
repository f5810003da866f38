"""The sync client, the credential store and ``resolve-sync`` against a real server on loopback."""

from __future__ import annotations

import io
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import keyring
import pyotp
import pytest
from keyring.backend import KeyringBackend
from keyring.errors import NoKeyringError, PasswordDeleteError

from common.enums import Role
from server.core.config import Settings
from server.core.security import issue_access_token
from sync import cli
from sync.client import (
    NOT_SIGNED_IN,
    SERVER_UNREACHABLE,
    UNEXPECTED_RESPONSE,
    ApiClient,
    ApiError,
    ServerUnreachable,
    Tokens,
    normalize_server_url,
)
from sync.credentials import (
    CREDENTIALS_FILE,
    DATA_DIR_ENV,
    SERVICE_NAME,
    CredentialStore,
    LastSignIn,
    credential_key,
)
from tests.conftest import PASSWORD, Account, World

# --------------------------------------------------------------------------- keyrings


class MemoryKeyring(KeyringBackend):
    """A keyring that lives in this process: tests never touch the machine's keyring."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        try:
            del self.entries[(service, username)]
        except KeyError:
            raise PasswordDeleteError(username) from None


class NoKeyring(KeyringBackend):
    """What a headless machine has: every call raises NoKeyringError."""

    priority = 0  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> str | None:
        raise NoKeyringError("No recommended backend was available")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise NoKeyringError("No recommended backend was available")

    def delete_password(self, service: str, username: str) -> None:
        raise NoKeyringError("No recommended backend was available")


@pytest.fixture(autouse=True)
def memory_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryKeyring]:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "client"))
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


# --------------------------------------------------------------------------- helpers


def technician(world: World, slug: str = "alpha") -> Account:
    tenant = world.org(slug)
    return world.user(
        tenant.id,
        Role.TECHNICIAN,
        email=f"dana.reyes@{slug}.example",
        login=False,
        first_name="Dana",
        last_name="Reyes",
    )


def enable_mfa(world: World, server_url: str, account: Account) -> pyotp.TOTP:
    """Turn MFA on for the account through the API; returns its authenticator."""
    headers = world.login(account.email, account.password)
    with httpx.Client(base_url=server_url, headers=headers, timeout=30) as http:
        started = http.post("/api/auth/mfa/enable")
        assert started.status_code == 200, started.text
        totp = pyotp.TOTP(started.json()["data"]["secret"])
        verified = http.post("/api/auth/mfa/verify", json={"code": totp.now()})
        assert verified.status_code == 200, verified.text
    return totp


def next_code(totp: pyotp.TOTP) -> str:
    """The code of the next 30-second step: accepted, and never the one just used to enrol."""
    return totp.at(time.time() + 30)


def expired_access_token(settings: Settings, access_token: str) -> str:
    claims = jwt.decode(access_token, options={"verify_signature": False})
    token, _ = issue_access_token(
        key=settings.signing_key(),
        user_id=uuid.UUID(claims["sub"]),
        session_id=uuid.UUID(claims["sid"]),
        organization_id=uuid.UUID(claims["org"]) if claims["org"] else None,
        minutes=-5,
    )
    return token


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --------------------------------------------------------------------------- ApiClient


def test_login_me_refresh_logout_round_trip(server_url: str, world: World) -> None:
    account = technician(world)
    seen: list[Tokens | None] = []
    with ApiClient(server_url, on_tokens=seen.append) as client:
        result = client.login(account.email, PASSWORD)
        assert result.user.email == account.email
        assert result.user.role == "technician"
        assert result.user.display_name == "Dana Reyes"
        assert result.mfa_enrollment_required is False
        assert seen == [result.tokens]

        me = client.me()
        assert me.user.id == result.user.id
        assert me.organization is not None
        assert (me.organization.slug, me.organization.name) == ("alpha", "Alpha")
        assert me.via_api_token is False
        assert me.scopes

        first = client.tokens
        assert first is not None
        second = client.refresh()
        assert second.refresh_token != first.refresh_token
        assert second.access_token != first.access_token
        assert seen[-1] == second
        assert client.me().user.email == account.email

        client.logout()
        assert client.tokens is None
        assert seen[-1] is None
        with pytest.raises(ApiError) as not_signed_in:
            client.me()
        assert not_signed_in.value.code == NOT_SIGNED_IN

    # The server ended the session: its refresh token is worth nothing now.
    with ApiClient(server_url) as client:
        client.resume(second.refresh_token)
        with pytest.raises(ApiError) as revoked:
            client.me()
    assert revoked.value.code == "TOKEN_REVOKED"
    assert revoked.value.status == 401
    assert revoked.value.session_ended


def test_wrong_password_is_a_typed_api_error(server_url: str, world: World) -> None:
    account = technician(world)
    with ApiClient(server_url) as client, pytest.raises(ApiError) as caught:
        client.login(account.email, "Wrong-password-1")
    error = caught.value
    assert error.code == "INVALID_CREDENTIALS"
    assert error.status == 401
    assert error.message == "Invalid email or password"
    assert error.request_id
    assert str(error) == "Invalid email or password"
    assert not client.signed_in


def test_mfa_required_then_code_signs_in(server_url: str, world: World) -> None:
    account = technician(world)
    totp = enable_mfa(world, server_url, account)
    with ApiClient(server_url) as client:
        with pytest.raises(ApiError) as caught:
            client.login(account.email, PASSWORD)
        assert caught.value.code == "MFA_REQUIRED"
        assert caught.value.status == 401
        result = client.login(account.email, PASSWORD, next_code(totp))
        assert result.user.mfa_enabled
        assert client.me().user.email == account.email


def test_expired_access_token_is_refreshed_transparently(
    server_url: str, world: World, settings: Settings
) -> None:
    account = technician(world)
    seen: list[Tokens | None] = []
    with ApiClient(server_url, on_tokens=seen.append) as client:
        login = client.login(account.email, PASSWORD)
        assert login.tokens.access_token is not None
        stale = expired_access_token(settings, login.tokens.access_token)
        client.tokens = Tokens(access_token=stale, refresh_token=login.tokens.refresh_token)

        # The server really refuses the stale token...
        refused = httpx.get(
            f"{server_url}/api/me", headers={"Authorization": f"Bearer {stale}"}, timeout=30
        )
        assert refused.json()["error"]["code"] == "TOKEN_EXPIRED"

        # ...and the client refreshes once and repeats the call without the caller noticing.
        me = client.me()
        assert me.user.email == account.email
        current = client.tokens
        assert current is not None
        assert current.access_token not in (stale, login.tokens.access_token)
        assert current.refresh_token != login.tokens.refresh_token
        assert seen == [login.tokens, current]


def test_spent_refresh_token_ends_the_session(server_url: str, world: World) -> None:
    account = technician(world)
    seen: list[Tokens | None] = []
    with ApiClient(server_url) as first:
        login = first.login(account.email, PASSWORD)
        first.refresh()
    with ApiClient(server_url, on_tokens=seen.append) as thief:
        thief.resume(login.tokens.refresh_token)  # already used once: a copy
        with pytest.raises(ApiError) as caught:
            thief.refresh()
    assert caught.value.code == "TOKEN_REVOKED"
    assert thief.tokens is None
    assert seen == [None]


def test_health(server_url: str) -> None:
    with ApiClient(server_url + "/") as client:
        health = client.health()
    assert health.status in {"ok", "degraded"}
    assert health.checks["database"].status == "ok"
    assert health.checks["migrations"].status == "ok"
    assert health.current_revision == health.head_revision
    assert health.usable


def test_unreachable_server() -> None:
    url = closed_port_url()
    with ApiClient(url, timeout=5) as client, pytest.raises(ServerUnreachable) as caught:
        client.health()
    assert caught.value.code == SERVER_UNREACHABLE
    assert caught.value.status is None
    assert url in caught.value.message


def test_answer_without_error_shape_is_reported() -> None:
    # A proxy in front of a stopped server answers with its own HTML page.
    def proxy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, html="<h1>Bad Gateway</h1>")

    transport = httpx.MockTransport(proxy)
    with (
        ApiClient("http://proxy.example", transport=transport) as client,
        pytest.raises(ApiError) as caught,
    ):
        client.login("someone@example.org", "x")
    assert caught.value.code == UNEXPECTED_RESPONSE
    assert caught.value.status == 502
    assert "502" in caught.value.message


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("  127.0.0.1:8000/ ", "http://127.0.0.1:8000"),
        ("https://help.district.org/resolve/", "https://help.district.org/resolve"),
    ],
)
def test_normalize_server_url(text: str, url: str) -> None:
    assert normalize_server_url(text) == url


@pytest.mark.parametrize("text", ["", "   ", "ftp://host", "http://", "http://host/?a=1"])
def test_normalize_server_url_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        normalize_server_url(text)


# --------------------------------------------------------------------------- credentials


def test_credentials_live_in_the_keyring(memory_keyring: MemoryKeyring) -> None:
    store = CredentialStore()
    assert store.save("http://127.0.0.1:8000/", "Dana@Alpha.example", "refresh-1") is True
    assert not store.memory_only
    assert memory_keyring.entries == {
        (SERVICE_NAME, "http://127.0.0.1:8000|dana@alpha.example"): "refresh-1"
    }
    assert credential_key("127.0.0.1:8000", "dana@alpha.example") == (
        "http://127.0.0.1:8000|dana@alpha.example"
    )
    # Another process (a new store) finds it.
    assert CredentialStore().load("http://127.0.0.1:8000", "dana@alpha.example") == "refresh-1"
    store.delete("http://127.0.0.1:8000", "dana@alpha.example")
    store.delete("http://127.0.0.1:8000", "dana@alpha.example")  # twice is fine
    assert memory_keyring.entries == {}


def test_no_keyring_falls_back_to_memory(server_url: str, world: World, tmp_path: Path) -> None:
    keyring.set_keyring(NoKeyring())
    account = technician(world)
    store = CredentialStore()
    with ApiClient(server_url, on_tokens=store.listener(server_url, account.email)) as client:
        client.login(account.email, PASSWORD)
    assert store.memory_only
    assert store.problem and "No recommended backend" in store.problem
    token = store.load(server_url, account.email)
    assert token is not None

    # The in-memory token works like a stored one for the life of the process...
    with ApiClient(server_url, on_tokens=store.listener(server_url, account.email)) as client:
        client.resume(token)
        assert client.me().user.email == account.email
    rotated = store.load(server_url, account.email)
    assert rotated not in (None, token)

    # ...and nothing was written to disk in its place.
    assert not any(rotated in p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    assert CredentialStore().load(server_url, account.email) is None
    store.delete(server_url, account.email)
    assert store.load(server_url, account.email) is None


def test_last_sign_in_is_remembered(tmp_path: Path) -> None:
    assert LastSignIn.load(tmp_path) is None
    LastSignIn("http://127.0.0.1:8000", "dana@alpha.example").save(tmp_path)
    assert LastSignIn.load(tmp_path) == LastSignIn("http://127.0.0.1:8000", "dana@alpha.example")
    (tmp_path / LastSignIn.FILE_NAME).write_text("{not json")
    assert LastSignIn.load(tmp_path) is None


# --------------------------------------------------------------------------- resolve-sync


def test_cli_check(server_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", "--server", server_url]) == 0
    out = capsys.readouterr().out
    assert f"Server {server_url}:" in out
    lines = {line.split()[0]: line.split()[1] for line in out.splitlines()[1:]}
    assert lines["database"] == "ok"
    assert lines["migrations"] == "ok"


def test_cli_check_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    url = closed_port_url()
    assert cli.main(["check", "--server", url]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"resolve-sync: Cannot reach the server at {url}")
    assert captured.err.count("\n") == 1


def test_cli_login_whoami_logout(
    server_url: str,
    world: World,
    memory_keyring: MemoryKeyring,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account = technician(world)
    key = (SERVICE_NAME, f"{server_url}|{account.email}")
    base = ["--server", server_url, "--email", account.email]

    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert cli.main(["login", *base, "--password-stdin"]) == 0
    out = capsys.readouterr().out
    assert out == f"Signed in to {server_url} as Dana Reyes <{account.email}>.\n"
    stored = memory_keyring.entries[key]
    assert LastSignIn.load() == LastSignIn(server_url, account.email)

    assert cli.main(["whoami", *base]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"Dana Reyes <{account.email}>"
    assert "role          technician" in out
    assert "organization  Alpha (alpha)" in out
    # The refresh token rotated, and the new one was kept: whoami works again.
    assert memory_keyring.entries[key] != stored
    assert cli.main(["whoami", *base]) == 0
    capsys.readouterr()

    assert cli.main(["logout", *base]) == 0
    assert capsys.readouterr().out == f"Signed out of {server_url}.\n"
    assert key not in memory_keyring.entries

    assert cli.main(["whoami", *base]) == 3
    err = capsys.readouterr().err
    assert err.startswith(f"resolve-sync: not signed in to {server_url} as {account.email}")
    assert cli.main(["logout", *base]) == 0
    assert capsys.readouterr().out == f"Not signed in to {server_url} as {account.email}.\n"


def test_cli_login_wrong_password(
    server_url: str,
    world: World,
    memory_keyring: MemoryKeyring,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account = technician(world)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "Wrong-password-1")
    assert cli.main(["login", "--server", server_url, "--email", account.email]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(
        "resolve-sync: Invalid email or password (INVALID_CREDENTIALS, request "
    )
    assert memory_keyring.entries == {}


def test_cli_login_asks_for_the_mfa_code(
    server_url: str,
    world: World,
    memory_keyring: MemoryKeyring,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account = technician(world)
    totp = enable_mfa(world, server_url, account)
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{PASSWORD}\n{next_code(totp)}\n"))
    base = ["--server", server_url, "--email", account.email]
    assert cli.main(["login", *base, "--password-stdin"]) == 0
    assert "Signed in" in capsys.readouterr().out
    assert cli.main(["whoami", *base]) == 0
    assert "two-factor    on" in capsys.readouterr().out


def test_cli_without_keyring_keeps_the_sign_in_in_a_private_file_and_says_so(
    server_url: str,
    world: World,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keyring.set_keyring(NoKeyring())
    account = technician(world)
    base = ["--server", server_url, "--email", account.email]
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert cli.main(["login", *base, "--password-stdin"]) == 0
    captured = capsys.readouterr()
    assert "Signed in" in captured.out
    path = tmp_path / "client" / CREDENTIALS_FILE
    assert f"sign-in is kept in {path}, readable only by you" in captured.err
    assert path.stat().st_mode & 0o777 == 0o600
    # A new process (a new store) resumes from the file.
    assert cli.main(["whoami", *base]) == 0
    assert account.email in capsys.readouterr().out
    assert cli.main(["logout", *base]) == 0
    assert not path.exists(), "the last token gone, the file goes"
    assert cli.main(["whoami", *base]) == 3
    assert "not signed in" in capsys.readouterr().err


def test_credential_file_fallback_is_opt_in(tmp_path: Path) -> None:
    keyring.set_keyring(NoKeyring())
    store = CredentialStore(fallback_dir=tmp_path)
    assert store.save("http://127.0.0.1:8000", "dana@alpha.example", "refresh-1") is True
    assert store.in_file and not store.memory_only
    assert (
        CredentialStore(fallback_dir=tmp_path).load("http://127.0.0.1:8000", "Dana@Alpha.example")
        == "refresh-1"
    )
    assert CredentialStore().load("http://127.0.0.1:8000", "dana@alpha.example") is None
    store.delete("http://127.0.0.1:8000", "dana@alpha.example")
    assert not (tmp_path / CREDENTIALS_FILE).exists()


def test_cli_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main([])
    assert caught.value.code == 2
    assert cli.main(["check", "--server", "ftp://nowhere"]) == 2
    assert "not a server address" in capsys.readouterr().err
