"""Files and folders only their owner may read: the data directory, the SQLite
database with its WAL, the secret key and uploaded files.

A school district's database holds students' and staff's names, and uploads hold
photos of their rooms; on a shared server or a technician's laptop nobody but the
service account should read them. Modes given to ``mkdir``/``open`` are filtered by
the umask, so each helper sets the mode explicitly afterwards.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path) -> Path:
    """``path`` (and missing parents) as a folder only the owner may enter."""
    if not path.is_dir():
        path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        path.chmod(PRIVATE_DIR)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty and owner-only unless it exists (then it is left alone)."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE)
    except FileExistsError:
        return path
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)
    return path


def sqlite_files(database: Path) -> list[Path]:
    """The database file and the WAL and shared-memory files SQLite keeps beside it
    (SQLite gives those the database file's own mode)."""
    return [
        database,
        database.with_name(database.name + "-wal"),
        database.with_name(database.name + "-shm"),
    ]


def readable_by_others(paths: Iterable[Path]) -> list[str]:
    """``"<path> (mode 0644)"`` for each existing path that group or others may use."""
    found = []
    for path in paths:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError:
            continue
        if mode & 0o077:
            found.append(f"{path} (mode {mode:04o})")
    return found
