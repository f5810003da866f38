"""Private file storage on the local disk, and the signed URLs that let a client
upload into it.

Files live under ``<data_dir>/uploads/<organization id>/<upload uuid>``: directories
0700, files 0600, nothing served by a static route; only the application reads them
back (after its own permission checks). The storage key ``"<org id>/<uuid>"`` is made
by the server and never contains any part of the name the user gave the file, so it
cannot walk out of the directory.

The upload URL carries ``key`` and a ``token``: ``v1.<expiry unix seconds>.<HMAC>``,
an HMAC-SHA256 over the method, the key and the expiry with a key derived from the
server's secret key. Changing any of them, or using it after its expiry, is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from common.errors import ErrorCode
from server.core.errors import AuthenticationRequired
from server.core.files import PRIVATE_FILE, private_dir

UPLOADS_DIR = "uploads"
PART_MARKER = ".part-"
CHUNK_BYTES = 256 * 1024

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_KEY = re.compile(rf"^({_UUID})/({_UUID})$")
_TOKEN_VERSION = "v1"
_TOKEN_CONTEXT = b"district-resolve/uploads/v1"


# ------------------------------------------------------------------------ keys


def new_storage_key(organization_id: uuid.UUID, file_id: uuid.UUID) -> str:
    return f"{organization_id}/{file_id}"


def parse_storage_key(key: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    """(organization id, file id) of a well-formed key, else None."""
    match = _KEY.match(key)
    if match is None:
        return None
    return uuid.UUID(match.group(1)), uuid.UUID(match.group(2))


# ---------------------------------------------------------------------- tokens


def _mac_key(secret: str) -> bytes:
    # Derived, so an upload signature can never stand in for any other signed value.
    return hmac.new(secret.encode(), _TOKEN_CONTEXT, hashlib.sha256).digest()


def _signature(secret: str, method: str, key: str, expires: int) -> str:
    message = f"{method}\n{key}\n{expires}".encode()
    digest = hmac.new(_mac_key(secret), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign_upload(secret: str, key: str, expires_at: datetime, *, method: str = "PUT") -> str:
    expires = int(expires_at.timestamp())
    return f"{_TOKEN_VERSION}.{expires}.{_signature(secret, method, key, expires)}"


def _token_error(message: str, code: ErrorCode) -> AuthenticationRequired:
    # No WWW-Authenticate: a bearer token would not help, the URL is what is wrong.
    error = AuthenticationRequired(message, code=code)
    error.headers = None
    return error


def verify_upload(
    secret: str, key: str, token: str, *, method: str = "PUT", now: float | None = None
) -> tuple[uuid.UUID, uuid.UUID]:
    """Check a signed upload URL; returns (organization id, file id) of its key.

    Raises 401 ``TOKEN_INVALID`` for anything altered or malformed, 401
    ``TOKEN_EXPIRED`` for a genuine URL past its expiry.
    """
    invalid = _token_error("The upload link is not valid", ErrorCode.TOKEN_INVALID)
    parts = token.split(".")
    parsed = parse_storage_key(key)
    if len(parts) != 3 or parts[0] != _TOKEN_VERSION or parsed is None:
        raise invalid
    if not parts[1].isdigit() or len(parts[1]) > 12:
        raise invalid
    expires = int(parts[1])
    expected = _signature(secret, method, key, expires)
    if not hmac.compare_digest(expected.encode(), parts[2].encode()):
        raise invalid
    if expires <= (time.time() if now is None else now):
        raise _token_error("The upload link has expired", ErrorCode.TOKEN_EXPIRED)
    return parsed


# --------------------------------------------------------------------- storage


@dataclass(frozen=True, slots=True)
class StoredFile:
    path: Path
    size: int


class LocalStorage:
    """Private files under ``<data_dir>/uploads``."""

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir) / UPLOADS_DIR

    def _dir(self, organization_id: uuid.UUID) -> Path:
        private_dir(self.root)
        return private_dir(self.root / str(organization_id))

    def path_for(self, key: str) -> Path:
        parsed = parse_storage_key(key)
        if parsed is None:
            raise ValueError(f"not a storage key: {key!r}")
        return self.root / str(parsed[0]) / str(parsed[1])

    def open_part(self, key: str) -> tuple[Path, BinaryIO]:
        """A new private temporary file beside where ``key`` will live."""
        parsed = parse_storage_key(key)
        if parsed is None:
            raise ValueError(f"not a storage key: {key!r}")
        directory = self._dir(parsed[0])
        path = directory / f"{parsed[1]}{PART_MARKER}{secrets.token_hex(8)}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(path, flags | getattr(os, "O_BINARY", 0), PRIVATE_FILE)
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, PRIVATE_FILE)  # the mode given to open() is filtered by the umask
            return path, os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            raise

    def commit(self, part: Path, key: str) -> Path:
        """Move a finished temporary file to its key (atomic on one file system)."""
        final = self.path_for(key)
        os.replace(part, final)
        return final

    def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def stat(self, key: str) -> StoredFile:
        path = self.path_for(key)
        return StoredFile(path=path, size=path.stat().st_size)

    def read(self, key: str, *, chunk_size: int = CHUNK_BYTES) -> Iterator[bytes]:
        with self.path_for(key).open("rb") as stream:
            while chunk := stream.read(chunk_size):
                yield chunk

    def delete(self, key: str) -> bool:
        return discard(self.path_for(key))

    def sweep_parts(self, *, older_than_seconds: float, now: float | None = None) -> int:
        """Remove temporary files that an interrupted upload left behind."""
        if not self.root.is_dir():
            return 0
        cutoff = (time.time() if now is None else now) - older_than_seconds
        removed = 0
        for directory in self.root.iterdir():
            if not directory.is_dir() or directory.is_symlink():
                continue
            for path in directory.iterdir():
                if PART_MARKER not in path.name:
                    continue
                try:
                    if path.lstat().st_mtime < cutoff and discard(path):
                        removed += 1
                except OSError:
                    continue
        return removed


def discard(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def storage_for(data_dir: Path) -> LocalStorage:
    return LocalStorage(data_dir)
