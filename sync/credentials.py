"""Where a client keeps its sign-in: refresh tokens in the OS keyring.

The keyring entry is service ``district-resolve``, user ``"{server_url}|{email}"``.
When the machine has no usable keyring (a headless Linux box, a locked Secret
Service), the token goes to a file readable only by its owner
(``credentials.json``, mode 0600, in the data directory) when the store was given
a ``fallback_dir`` (``resolve-sync`` does: a sign-in must outlive the process), and
otherwise stays in this process's memory only: ``memory_only`` turns true, so the
UI can say that the next start will ask for the password again. Non-secret
per-user data (the last server, email and user id) lives in the platform's data
directory.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keyring
from keyring.errors import KeyringError, PasswordDeleteError
from platformdirs import user_data_dir

from sync.client import Tokens, normalize_server_url

SERVICE_NAME = "district-resolve"
DATA_DIR_ENV = "RESOLVE_CLIENT_DIR"
MEMORY_ONLY_NOTICE = (
    "No system keyring is available, so this sign-in is kept only while the program "
    "runs: you will need to sign in again next time."
)
CREDENTIALS_FILE = "credentials.json"


def file_notice(path: Path) -> str:
    return (
        f"No system keyring is available, so this sign-in is kept in {path}, "
        "readable only by you. Sign out on shared machines."
    )


log = logging.getLogger(__name__)


def data_dir() -> Path:
    """The per-user directory of the desktop and sync clients (``$RESOLVE_CLIENT_DIR`` wins)."""
    override = os.environ.get(DATA_DIR_ENV)
    path = Path(override) if override else Path(user_data_dir("district-resolve-client", False))
    return path


def credential_key(server_url: str, email: str) -> str:
    return f"{normalize_server_url(server_url)}|{email.strip().lower()}"


class CredentialStore:
    """Refresh tokens per (server, email), in the OS keyring or, failing that, in a 0600
    file in ``fallback_dir`` (when given) or in memory."""

    def __init__(self, service: str = SERVICE_NAME, *, fallback_dir: Path | None = None) -> None:
        self.service = service
        self._memory: dict[str, str] = {}
        self._lock = threading.Lock()
        self.fallback_dir = fallback_dir
        #: why the keyring could not be used (None while it works)
        self.problem: str | None = None

    @property
    def memory_only(self) -> bool:
        """True once the keyring failed and there is no file to fall back on: tokens saved
        since then die with the process."""
        return self.problem is not None and self.fallback_dir is None

    @property
    def in_file(self) -> bool:
        """True once the keyring failed and tokens go to the owner-only file."""
        return self.problem is not None and self.fallback_dir is not None

    @property
    def file_path(self) -> Path | None:
        return self.fallback_dir / CREDENTIALS_FILE if self.fallback_dir is not None else None

    def save(self, server_url: str, email: str, refresh_token: str) -> bool:
        """Keep the token; True when it outlives the process (keyring or file), False when
        it is only in memory."""
        key = credential_key(server_url, email)
        with self._lock:
            try:
                keyring.set_password(self.service, key, refresh_token)
            except KeyringError as exc:
                self._keyring_failed(exc)
                if self.fallback_dir is not None and self._file_put(key, refresh_token):
                    self._memory.pop(key, None)
                    return True
                self._memory[key] = refresh_token
                return False
            self._memory.pop(key, None)
            self._file_put(key, None)  # a token left there from a keyless time goes
            return True

    def load(self, server_url: str, email: str) -> str | None:
        key = credential_key(server_url, email)
        with self._lock:
            if key in self._memory:
                return self._memory[key]
            try:
                found = keyring.get_password(self.service, key)
            except KeyringError as exc:
                self._keyring_failed(exc)
                found = None
            if found is None:
                found = self._file_entries().get(key)
            return found

    def delete(self, server_url: str, email: str) -> None:
        key = credential_key(server_url, email)
        with self._lock:
            self._memory.pop(key, None)
            try:
                keyring.delete_password(self.service, key)
            except PasswordDeleteError:
                pass  # nothing stored: nothing to delete
            except KeyringError as exc:
                self._keyring_failed(exc)
            self._file_put(key, None)

    # ---------------------------------------------------------------- the file

    def _file_entries(self) -> dict[str, str]:
        path = self.file_path
        if path is None:
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): str(v) for k, v in data.items() if isinstance(v, str)}

    def _file_put(self, key: str, token: str | None) -> bool:
        """Set (or with None remove) one entry of the owner-only file; False on failure."""
        path = self.file_path
        if path is None:
            return False
        entries = self._file_entries()
        if token is None:
            if key not in entries:
                return True
            entries.pop(key)
        else:
            entries[key] = token
        try:
            if not entries:
                path.unlink(missing_ok=True)
                return True
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                os.fchmod(out.fileno(), 0o600)
                json.dump(entries, out)
            tmp.replace(path)
        except OSError as exc:
            log.warning("could not keep the sign-in in %s: %s", path, exc)
            return False
        return True

    def listener(self, server_url: str, email: str) -> Callable[[Tokens | None], None]:
        """An ``ApiClient.on_tokens`` callback that keeps the newest refresh token stored."""

        def store(tokens: Tokens | None) -> None:
            if tokens is None:
                self.delete(server_url, email)
            else:
                self.save(server_url, email, tokens.refresh_token)

        return store

    def _keyring_failed(self, exc: KeyringError) -> None:
        if self.problem is None:
            log.info("keyring unavailable, keeping sign-ins in memory only: %s", exc)
        self.problem = str(exc) or type(exc).__name__


@dataclass(frozen=True, slots=True)
class LastSignIn:
    """The server and email used last, to fill in the sign-in form (not secret), and the
    user's id once known (it names the replica file, so the CLI finds it offline)."""

    server_url: str
    email: str
    user_id: str | None = field(default=None, compare=False)

    FILE_NAME = "last-sign-in.json"

    @classmethod
    def load(cls, directory: Path | None = None) -> LastSignIn | None:
        path = (directory or data_dir()) / cls.FILE_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            user_id = data.get("userId")
            return cls(
                server_url=str(data["serverUrl"]),
                email=str(data["email"]),
                user_id=str(user_id) if user_id else None,
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def save(self, directory: Path | None = None) -> None:
        directory = directory or data_dir()
        data = {"serverUrl": self.server_url, "email": self.email}
        if self.user_id:
            data["userId"] = self.user_id
        try:
            directory.mkdir(parents=True, exist_ok=True)
            tmp = directory / (self.FILE_NAME + ".tmp")
            tmp.write_text(json.dumps(data), encoding="utf-8")
            tmp.replace(directory / self.FILE_NAME)
        except OSError as exc:  # a convenience only: never fail a sign-in over it
            log.warning("could not remember the last sign-in: %s", exc)
