"""Where a client keeps its sign-in: refresh tokens in the OS keyring, never in a file.

The keyring entry is service ``district-resolve``, user ``"{server_url}|{email}"``.
When the machine has no usable keyring (a headless Linux box, a locked Secret
Service), the token is kept in this process's memory only and ``memory_only``
turns true, so the UI can say that the next start will ask for the password
again. Non-secret per-user data (the last server and email) lives in the
platform's data directory.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
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

log = logging.getLogger(__name__)


def data_dir() -> Path:
    """The per-user directory of the desktop and sync clients (``$RESOLVE_CLIENT_DIR`` wins)."""
    override = os.environ.get(DATA_DIR_ENV)
    path = Path(override) if override else Path(user_data_dir("district-resolve-client", False))
    return path


def credential_key(server_url: str, email: str) -> str:
    return f"{normalize_server_url(server_url)}|{email.strip().lower()}"


class CredentialStore:
    """Refresh tokens per (server, email), in the OS keyring or, failing that, in memory."""

    def __init__(self, service: str = SERVICE_NAME) -> None:
        self.service = service
        self._memory: dict[str, str] = {}
        self._lock = threading.Lock()
        #: why the keyring could not be used (None while it works)
        self.problem: str | None = None

    @property
    def memory_only(self) -> bool:
        """True once the keyring failed: tokens saved since then die with the process."""
        return self.problem is not None

    def save(self, server_url: str, email: str, refresh_token: str) -> bool:
        """Keep the token; True when it is in the keyring, False when only in memory."""
        key = credential_key(server_url, email)
        with self._lock:
            try:
                keyring.set_password(self.service, key, refresh_token)
            except KeyringError as exc:
                self._keyring_failed(exc)
                self._memory[key] = refresh_token
                return False
            self._memory.pop(key, None)
            return True

    def load(self, server_url: str, email: str) -> str | None:
        key = credential_key(server_url, email)
        with self._lock:
            if key in self._memory:
                return self._memory[key]
            try:
                return keyring.get_password(self.service, key)
            except KeyringError as exc:
                self._keyring_failed(exc)
                return None

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
    """The server and email used last, to fill in the sign-in form (not secret)."""

    server_url: str
    email: str

    FILE_NAME = "last-sign-in.json"

    @classmethod
    def load(cls, directory: Path | None = None) -> LastSignIn | None:
        path = (directory or data_dir()) / cls.FILE_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(server_url=str(data["serverUrl"]), email=str(data["email"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, directory: Path | None = None) -> None:
        directory = directory or data_dir()
        try:
            directory.mkdir(parents=True, exist_ok=True)
            tmp = directory / (self.FILE_NAME + ".tmp")
            tmp.write_text(
                json.dumps({"serverUrl": self.server_url, "email": self.email}), encoding="utf-8"
            )
            tmp.replace(directory / self.FILE_NAME)
        except OSError as exc:  # a convenience only: never fail a sign-in over it
            log.warning("could not remember the last sign-in: %s", exc)
