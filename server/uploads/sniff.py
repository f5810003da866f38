"""What a file really is: content types the server can recognise from its bytes.

Only types whose bytes can be checked are accepted for upload, so an organization's
allow-list (``uploadAllowedMimeTypes`` of its security policy) is a subset of
``UploadMimeType``. A file is accepted only when its bytes match the type the client
claimed: an executable renamed ``photo.png`` is refused. This module is pure (no
server imports), so the security policy schema can use its vocabulary.
"""

from __future__ import annotations

import codecs
import zipfile
from pathlib import Path
from typing import Literal, get_args

PNG = "image/png"
JPEG = "image/jpeg"
GIF = "image/gif"
WEBP = "image/webp"
PDF = "application/pdf"
TEXT = "text/plain"
CSV = "text/csv"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
ZIP = "application/zip"

UploadMimeType = Literal[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
    "text/csv",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/zip",
]
#: every type the server can verify, in the order documents list them
SUPPORTED_TYPES: tuple[UploadMimeType, ...] = get_args(UploadMimeType)
#: what a new organization allows: everything but bare zip archives, which can carry
#: anything (an organization admin may add ``application/zip``)
DEFAULT_ALLOWED_TYPES: tuple[UploadMimeType, ...] = tuple(t for t in SUPPORTED_TYPES if t != ZIP)

IMAGE_TYPES = frozenset({PNG, JPEG, GIF, WEBP})
TEXT_TYPES = frozenset({TEXT, CSV})
OOXML_TYPES = {DOCX: "word/", XLSX: "xl/", PPTX: "ppt/"}

#: file-name extensions that belong to each type (the first is the canonical one)
EXTENSIONS: dict[str, tuple[str, ...]] = {
    PNG: ("png",),
    JPEG: ("jpg", "jpeg", "jpe", "jfif"),
    GIF: ("gif",),
    WEBP: ("webp",),
    PDF: ("pdf",),
    TEXT: ("txt", "log", "text", "md", "ini", "cfg", "conf", "json", "xml"),
    CSV: ("csv",),
    DOCX: ("docx",),
    XLSX: ("xlsx",),
    PPTX: ("pptx",),
    ZIP: ("zip",),
}

#: names clients commonly send for a supported type
ALIASES = {
    "image/jpg": JPEG,
    "image/pjpeg": JPEG,
    "image/x-png": PNG,
    "application/x-pdf": PDF,
    "application/x-zip-compressed": ZIP,
    "application/x-zip": ZIP,
    "application/csv": CSV,
    "text/comma-separated-values": CSV,
}

#: how many leading bytes the checks look at
HEAD_BYTES = 4096


def normalize_mime(value: str) -> str:
    """``"Image/JPG; charset=x"`` -> ``"image/jpeg"``: lower case, no parameters, aliases."""
    base = value.split(";", 1)[0].strip().lower()
    return ALIASES.get(base, base)


def _magic(head: bytes) -> str | None:
    """The type announced by the first bytes, when it is one of the binary ones."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if b"%PDF-" in head[:1024]:
        return PDF
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return ZIP
    return None


#: well-known kinds of files that are never accepted, named in the refusal
_FOREIGN = (
    (b"MZ", "application/x-msdownload"),
    (b"\x7fELF", "application/x-elf"),
    (b"\xca\xfe\xba\xbe", "application/x-mach-binary"),
    (b"\xcf\xfa\xed\xfe", "application/x-mach-binary"),
    (b"\xd0\xcf\x11\xe0", "application/x-ole-storage"),
    (b"Rar!", "application/vnd.rar"),
    (b"7z\xbc\xaf", "application/x-7z-compressed"),
    (b"\x1f\x8b", "application/gzip"),
    (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)


class TextCheck:
    """Whether a stream of bytes is text: valid UTF-8 with no NUL characters.

    Fed chunk by chunk as the upload arrives, so the whole file is checked without
    holding it in memory.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
        self.ok = True

    def feed(self, chunk: bytes) -> None:
        if not self.ok:
            return
        if b"\x00" in chunk:
            self.ok = False
            return
        try:
            self._decoder.decode(chunk)
        except UnicodeDecodeError:
            self.ok = False

    def finish(self) -> bool:
        if self.ok:
            try:
                self._decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                self.ok = False
        return self.ok


def ooxml_kind(path: Path) -> str | None:
    """DOCX, XLSX or PPTX when the zip archive at ``path`` is an Office Open XML file."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    if "[Content_Types].xml" not in names:
        return None
    for kind, folder in OOXML_TYPES.items():
        if any(name.startswith(folder) for name in names):
            return kind
    return None


def detect(head: bytes, *, is_text: bool, path: Path | None = None) -> str | None:
    """The content type of a file from its first bytes (and, for zip archives, its
    table of contents); ``None`` when it is none of the kinds this module knows."""
    magic = _magic(head)
    if magic == ZIP and path is not None:
        return ooxml_kind(path) or ZIP
    if magic is not None:
        return magic
    if is_text:
        return TEXT
    for prefix, kind in _FOREIGN:
        if head.startswith(prefix):
            return kind
    return None


def verify(claimed: str, head: bytes, *, is_text: bool, path: Path | None = None) -> str | None:
    """``None`` when the bytes may be stored as ``claimed``; else what they look like
    (``"unknown"`` when they are nothing this module recognises).

    ``head``: the first bytes; ``is_text``: the whole file passed ``TextCheck``;
    ``path``: the file, for looking inside zip archives.
    """
    if claimed in TEXT_TYPES:
        # Text is text, whatever words it starts with.
        return None if is_text else (detect(head, is_text=False) or "unknown")
    detected = detect(head, is_text=is_text, path=path if claimed in _ZIPS else None)
    if detected == claimed or (claimed == ZIP and detected in OOXML_TYPES):
        return None  # an Office file is a zip archive too
    return detected or "unknown"


_ZIPS = frozenset({ZIP, *OOXML_TYPES})
