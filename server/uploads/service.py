"""Private uploads: presign, receive the bytes, claim, read back, clean up.

1. ``create_intent`` (``POST /api/uploads/presign``) checks the name, type and size
   against the organization's security policy and makes a ``pending`` row whose
   storage key the server chose; ``presigned_upload`` signs the URL to send the bytes to.
2. ``receive_local`` (``PUT /api/uploads/local``) checks the signed URL, streams the
   body to a private temporary file (exactly the declared size, hashing as it goes),
   checks the bytes are what the client said, and completes the row.
3. A feature that uses the file calls ``claim`` once (a ticket attachment, an import);
   ``open_stream`` / ``download_response`` read it back.
4. ``cleanup`` removes expired pending uploads, refused ones and never-claimed ones.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO
from urllib.parse import quote, urlencode

import anyio.to_thread
from fastapi import Request
from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.responses import FileResponse

from common.enums import AuditCategory, AuditSeverity, OrganizationStatus, Role
from common.errors import ErrorCode
from common.ids import uuid7
from common.scopes import scope_grants
from server.assets.models import Asset
from server.audit import service as audit
from server.auth import service as auth_service
from server.core.config import Settings, get_settings
from server.core.db import utcnow
from server.core.engine import Database
from server.core.errors import (
    ApiError,
    AuthenticationRequired,
    BusinessRuleViolation,
    Conflict,
    NotFound,
    PermissionDenied,
    RateLimited,
    ValidationFailed,
)
from server.core.leases import run_exclusive
from server.core.ratelimit import RateLimiter
from server.core.tenancy import ALL_TENANTS, INCLUDE_DELETED, Caller, bind_tenant
from server.organizations.models import Organization
from server.security.schemas import SecurityPolicy
from server.security.service import address_allowed, policy_of
from server.tickets.models import Ticket, TicketAttachment
from server.tickets.visibility import visible_filter
from server.uploads import sniff, storage
from server.uploads.models import Upload, UploadPurpose, UploadStatus
from server.uploads.schemas import PresignedUpload, UploadIntent
from server.users.models import User

#: how long an upload link works
UPLOAD_TTL = timedelta(minutes=15)
LOCAL_UPLOAD_PATH = "/api/uploads/local"
MAX_NAME_CHARS = 180
_MAX_EXTENSION_CHARS = 10
#: bytes gathered before one write (and one thread hop) to the temporary file
_WRITE_BATCH = 1024 * 1024


class UnsupportedMediaType(ApiError):
    status_code = 415
    code = ErrorCode.UNSUPPORTED_MEDIA_TYPE


class PayloadTooLarge(ApiError):
    status_code = 413
    code = ErrorCode.PAYLOAD_TOO_LARGE


@dataclass(frozen=True, slots=True)
class PurposeRule:
    #: the scope an API token needs
    scope: str
    #: roles that may upload for this purpose (super admins always may); empty: everyone
    roles: frozenset[Role]
    #: content types that make sense for the purpose (then narrowed by the policy)
    types: frozenset[str]


_STAFF = frozenset({Role.ORG_ADMIN, Role.AGENT, Role.TECHNICIAN})
PURPOSE_RULES: dict[UploadPurpose, PurposeRule] = {
    UploadPurpose.TICKET_ATTACHMENT: PurposeRule(
        "tickets:write", frozenset(), frozenset(sniff.SUPPORTED_TYPES)
    ),
    UploadPurpose.CHROME_SCREENSHOT: PurposeRule(
        "tickets:write", frozenset(), frozenset({sniff.PNG, sniff.JPEG, sniff.WEBP})
    ),
    UploadPurpose.ASSET_ATTACHMENT: PurposeRule(
        "assets:write", _STAFF, frozenset(sniff.SUPPORTED_TYPES)
    ),
    UploadPurpose.IMPORT_FILE: PurposeRule(
        "imports:write", frozenset({Role.ORG_ADMIN}), frozenset({sniff.CSV, sniff.XLSX, sniff.TEXT})
    ),
}
_TICKET_PURPOSES = frozenset({UploadPurpose.TICKET_ATTACHMENT, UploadPurpose.CHROME_SCREENSHOT})


# ------------------------------------------------------------------------ names

_WINDOWS_RESERVED = frozenset(
    {"con", "prn", "aux", "nul"} | {f"com{n}" for n in range(10)} | {f"lpt{n}" for n in range(10)}
)
_UNSAFE_CHARS = re.compile(r'[<>:"|?*]')
_DROPPED_CATEGORIES = frozenset({"Cf", "Cs", "Co"})  # invisible, surrogates, private use
_SPACE_CATEGORIES = frozenset({"Cc", "Zl", "Zp", "Zs"})  # control characters, line breaks


def sanitize_file_name(name: str, mime_type: str) -> str:
    """A name that is safe to show and to offer in a download, from what the user sent.

    Only the last path component is kept (``../../etc/passwd`` -> ``passwd``,
    ``C:\\x\\y.png`` -> ``y.png``); control and invisible characters (NUL, line
    breaks, right-to-left overrides), characters Windows refuses and leading or
    trailing dots and spaces go; Windows device names (``CON``, ``LPT1``) get a
    ``_`` prefix; the length is capped. The extension is kept when it belongs to
    the content type, otherwise the type's own is added (``notes.html`` as text
    -> ``notes.html.txt``), so the name never suggests another kind of file.
    The name is only ever metadata: files are stored under server-made keys.
    """
    text = unicodedata.normalize("NFC", name)
    chars = []
    for ch in text:
        category = unicodedata.category(ch)
        if category in _DROPPED_CATEGORIES:
            continue
        chars.append(" " if category in _SPACE_CATEGORIES else ch)
    text = re.split(r"[/\\]", "".join(chars))[-1]
    text = _UNSAFE_CHARS.sub("_", text)
    text = re.sub(r"\.{2,}", ".", re.sub(r"\s+", " ", text)).strip(" .")
    stem, dot, extension = text.rpartition(".")
    if not dot or not extension.isalnum() or len(extension) > _MAX_EXTENSION_CHARS or not stem:
        stem, extension = text, ""
    allowed = sniff.EXTENSIONS.get(mime_type, ())
    suffixes = [extension] if extension else []
    if extension.lower() not in allowed and allowed:
        suffixes.append(allowed[0])
    stem = stem.strip(" .") or "upload"
    if stem.split(".", 1)[0].strip().lower() in _WINDOWS_RESERVED:
        stem = "_" + stem
    suffix = "".join("." + s for s in suffixes)
    stem = stem[: max(1, MAX_NAME_CHARS - len(suffix))].rstrip(" .") or "upload"
    return stem + suffix


# ------------------------------------------------------------------------ presign


def allowed_types(policy: SecurityPolicy, purpose: UploadPurpose) -> list[str]:
    """The content types an organization accepts for one purpose."""
    rule = PURPOSE_RULES[purpose]
    return [t for t in policy.upload_allowed_mime_types if t in rule.types]


def _check_may_upload(caller: Caller, purpose: UploadPurpose) -> None:
    rule = PURPOSE_RULES[purpose]
    if rule.roles and not caller.is_super_admin and caller.role not in rule.roles:
        raise PermissionDenied(
            f"Your role may not upload files for {purpose.value}", details={"field": "purpose"}
        )
    if caller.via_api_token and not scope_grants(caller.scopes, rule.scope):
        raise PermissionDenied(
            f"This API token lacks the '{rule.scope}' scope",
            code=ErrorCode.INSUFFICIENT_SCOPE,
        )


def _check_target(
    session: Session, caller: Caller, data: UploadIntent, purpose: UploadPurpose
) -> None:
    if data.ticket_id is not None and data.asset_id is not None:
        raise ValidationFailed("Give ticketId or assetId, not both", details={"field": "assetId"})
    if data.ticket_id is not None:
        if purpose not in _TICKET_PURPOSES:
            raise ValidationFailed(
                f"ticketId does not apply to {purpose.value}", details={"field": "ticketId"}
            )
        visible = session.scalar(
            select(Ticket.id).where(
                Ticket.id == data.ticket_id, Ticket.deleted_at.is_(None), visible_filter(caller)
            )
        )
        if visible is None:  # also a ticket the caller may not see: nothing to learn here
            raise ValidationFailed("ticketId does not exist", details={"field": "ticketId"})
    if data.asset_id is not None:
        if purpose is not UploadPurpose.ASSET_ATTACHMENT:
            raise ValidationFailed(
                f"assetId does not apply to {purpose.value}", details={"field": "assetId"}
            )
        # The session is scoped to the caller's organization: another's asset is not here.
        found = session.scalar(
            select(Asset.id).where(Asset.id == data.asset_id, Asset.deleted_at.is_(None))
        )
        if found is None:
            raise ValidationFailed("assetId does not exist", details={"field": "assetId"})


def create_intent(
    session: Session,
    *,
    caller: Caller,
    organization_id: uuid.UUID,
    data: UploadIntent,
    now: datetime | None = None,
) -> Upload:
    """A pending upload the caller may send bytes for during ``UPLOAD_TTL``."""
    purpose = UploadPurpose(data.purpose)
    _check_may_upload(caller, purpose)
    org = session.get(Organization, organization_id)
    if org is None:
        raise NotFound("Organization")
    policy = policy_of(org)
    mime = sniff.normalize_mime(data.mime_type)
    allowed = allowed_types(policy, purpose)
    if mime not in allowed:
        raise UnsupportedMediaType(
            f"Files of type {mime!r} cannot be uploaded for {purpose.value}",
            details={"field": "mimeType", "allowed": allowed},
        )
    if data.size_bytes > policy.upload_max_bytes:
        raise PayloadTooLarge(
            f"The file is larger than this organization allows ({policy.upload_max_bytes} bytes)",
            details={"field": "sizeBytes", "maxBytes": policy.upload_max_bytes},
        )
    _check_target(session, caller, data, purpose)
    now = now or utcnow()
    upload = Upload(
        id=uuid7(),
        organization_id=organization_id,
        storage_key=storage.new_storage_key(organization_id, uuid7()),
        purpose=purpose.value,
        file_name=sanitize_file_name(data.file_name, mime),
        mime_type=mime,
        size_bytes=data.size_bytes,
        status=UploadStatus.PENDING.value,
        uploaded_by_id=caller.user_id,
        expires_at=now + UPLOAD_TTL,
        ticket_id=data.ticket_id,
        asset_id=data.asset_id,
    )
    session.add(upload)
    session.flush()
    return upload


def presigned_upload(upload: Upload, *, secret: str, base_url: str) -> PresignedUpload:
    """Where to send the bytes: the local upload URL, signed until the upload expires."""
    token = storage.sign_upload(secret, upload.storage_key, upload.expires_at)
    query = urlencode({"key": upload.storage_key, "token": token})
    return PresignedUpload(
        upload_id=upload.id,
        storage_key=upload.storage_key,
        upload_url=f"{base_url.rstrip('/')}{LOCAL_UPLOAD_PATH}?{query}",
        method="PUT",
        headers={"Content-Type": upload.mime_type},
        expires_at=upload.expires_at,
        max_bytes=upload.size_bytes,
        file_name=upload.file_name,
        mime_type=upload.mime_type,
    )


# ------------------------------------------------------------------ receive bytes


def check_target(
    session: Session,
    *,
    organization_id: uuid.UUID,
    key: str,
    caller: Caller | None,
    client_ip: str | None,
    now: datetime | None = None,
) -> Upload:
    """The pending upload a signed URL names, if its bytes may be received now.

    ``session`` is bound to ``ALL_TENANTS``: the organization comes from the signed key.
    ``caller``: who the request's bearer token names, when it has one; it must be the
    user who asked for the upload.
    """
    upload = session.scalar(select(Upload).where(Upload.storage_key == key))
    if upload is None or upload.organization_id != organization_id:
        raise NotFound("Upload")
    if caller is not None and caller.user_id != upload.uploaded_by_id:
        raise PermissionDenied("This upload link was made for another user")
    if upload.status == UploadStatus.COMPLETE:
        raise Conflict("This file has already been uploaded", details={"status": upload.status})
    if upload.status != UploadStatus.PENDING:
        raise Conflict(
            "This upload was refused; ask for a new upload link",
            details={"status": upload.status},
        )
    if upload.expires_at <= (now or utcnow()):
        raise AuthenticationRequired(
            "The upload link has expired", code=ErrorCode.TOKEN_EXPIRED, headers={}
        )
    uploader = session.get(User, upload.uploaded_by_id) if upload.uploaded_by_id else None
    org = session.get(Organization, upload.organization_id)
    if org is None or org.status is not OrganizationStatus.ACTIVE:
        raise PermissionDenied(
            "The organization is not active", code=ErrorCode.ORGANIZATION_SUSPENDED
        )
    if uploader is None or not uploader.is_active or uploader.deleted_at is not None:
        raise PermissionDenied(
            "The account that asked for this upload is deactivated",
            code=ErrorCode.ACCOUNT_DISABLED,
        )
    if not address_allowed(policy_of(org).ip_allowlist, client_ip):
        raise PermissionDenied("Uploads from your network address are not allowed")
    return upload


@dataclass(frozen=True, slots=True)
class _Target:
    id: uuid.UUID
    organization_id: uuid.UUID
    uploaded_by_id: uuid.UUID | None
    size_bytes: int
    mime_type: str
    file_name: str


@dataclass(frozen=True, slots=True)
class Received:
    part: Path
    size: int
    sha256: str
    head: bytes
    is_text: bool


def _open_target(
    db: Database,
    settings: Settings,
    *,
    organization_id: uuid.UUID,
    key: str,
    bearer: str | None,
    client_ip: str | None,
) -> tuple[_Target, Caller | None]:
    session = db.session()
    try:
        bind_tenant(session, ALL_TENANTS)
        caller = None
        if bearer is not None:
            caller = auth_service.authenticate(
                session, settings=settings, token=bearer, ip_address=client_ip
            )
        upload = check_target(
            session, organization_id=organization_id, key=key, caller=caller, client_ip=client_ip
        )
        target = _Target(
            id=upload.id,
            organization_id=upload.organization_id,
            uploaded_by_id=upload.uploaded_by_id,
            size_bytes=upload.size_bytes,
            mime_type=upload.mime_type,
            file_name=upload.file_name,
        )
        return target, caller
    finally:
        session.rollback()
        session.close()


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationRequired()
    return token.strip()


def _limit(request: Request, limiter: RateLimiter, subject: str) -> None:
    result = limiter.hit("upload", subject)
    request.state.rate_limit = result  # copied onto the response by the middleware
    if not result.allowed:
        raise RateLimited(
            "Rate limit exceeded; try again later",
            headers=result.headers(),
            details={"limit": result.limit, "retryAfter": int(result.headers()["Retry-After"])},
        )


def _check_headers(request: Request, target: _Target) -> None:
    content_type = request.headers.get("content-type")
    if content_type is not None and sniff.normalize_mime(content_type) != target.mime_type:
        raise UnsupportedMediaType(
            f"Content-Type must be {target.mime_type}, as declared when the upload was made",
            details={"field": "Content-Type", "expected": target.mime_type},
        )
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ValidationFailed("Content-Length is not a number")
        _check_size(int(declared), target.size_bytes, final=True)


def _check_size(received: int, expected: int, *, final: bool) -> None:
    if received > expected:
        raise PayloadTooLarge(
            f"The file is larger than the {expected} bytes declared for this upload",
            details={"field": "sizeBytes", "expected": expected},
        )
    if final and received < expected:
        raise ValidationFailed(
            f"The file is {received} bytes, not the {expected} bytes declared for this upload",
            details={"field": "sizeBytes", "expected": expected, "received": received},
        )


class _Sink:
    """The temporary file and everything learnt from the bytes on their way in."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.hasher = hashlib.sha256()
        self.text = sniff.TextCheck()
        self.head = b""

    def absorb(self, data: bytes) -> None:
        if len(self.head) < sniff.HEAD_BYTES:
            self.head += data[: sniff.HEAD_BYTES - len(self.head)]
        self.hasher.update(data)
        self.text.feed(data)
        self.stream.write(data)


async def _receive_body(
    request: Request, store: storage.LocalStorage, key: str, size: int
) -> Received:
    """Stream the body into a private temporary file, exactly ``size`` bytes."""
    part, stream = await anyio.to_thread.run_sync(store.open_part, key)
    try:
        sink = _Sink(stream)
        received = 0
        pending: list[bytes] = []
        pending_bytes = 0
        try:
            async for chunk in request.stream():
                if not chunk:
                    continue
                received += len(chunk)
                _check_size(received, size, final=False)
                pending.append(chunk)
                pending_bytes += len(chunk)
                if pending_bytes >= _WRITE_BATCH:
                    await anyio.to_thread.run_sync(sink.absorb, b"".join(pending))
                    pending, pending_bytes = [], 0
        except ClientDisconnect as exc:
            raise ValidationFailed("The upload was interrupted") from exc
        if pending:
            await anyio.to_thread.run_sync(sink.absorb, b"".join(pending))
        _check_size(received, size, final=True)
        await anyio.to_thread.run_sync(stream.close)
        return Received(
            part=part,
            size=received,
            sha256=sink.hasher.hexdigest(),
            head=sink.head,
            is_text=sink.text.finish(),
        )
    except BaseException:
        stream.close()
        storage.discard(part)
        raise


def _reject(
    db: Database, target: _Target, detected: str, caller: Caller | None, now: datetime
) -> None:
    reason = f"declared {target.mime_type}, looks like {detected}"[:200]
    with db.transaction(tenant=target.organization_id) as session:
        session.execute(
            update(Upload)
            .where(Upload.id == target.id, Upload.status == UploadStatus.PENDING.value)
            .values(status=UploadStatus.REJECTED.value, rejected_reason=reason, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        audit.record(
            session,
            action="upload.rejected",
            category=AuditCategory.SECURITY,
            severity=AuditSeverity.WARNING,
            organization_id=target.organization_id,
            actor=caller,
            actor_user_id=target.uploaded_by_id,
            entity_type="upload",
            entity_id=target.id,
            message=f"An upload was refused: {reason}",
            details={
                "fileName": target.file_name,
                "declared": target.mime_type,
                "detected": detected,
            },
        )


def _complete(
    db: Database,
    store: storage.LocalStorage,
    key: str,
    target: _Target,
    received: Received,
    now: datetime,
) -> Upload:
    final: Path | None = None
    try:
        with db.transaction(tenant=target.organization_id) as session:
            result = session.execute(
                update(Upload)
                .where(Upload.id == target.id, Upload.status == UploadStatus.PENDING.value)
                .values(
                    status=UploadStatus.COMPLETE.value,
                    sha256=received.sha256,
                    completed_at=now,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) != 1:
                # Another request completed (or refused) it while these bytes arrived.
                raise Conflict("This file has already been uploaded")
            # The row is locked until commit: only this request can move its file in.
            final = store.commit(received.part, key)
            upload = session.get_one(Upload, target.id)
            session.flush()
        return upload
    except BaseException:
        storage.discard(received.part)
        if final is not None:
            storage.discard(final)
        raise


async def receive_local(request: Request, *, key: str, token: str) -> Upload:
    """``PUT /api/uploads/local``: receive, check and keep the bytes of an upload.

    Refusals: 401 ``TOKEN_INVALID``/``TOKEN_EXPIRED`` (the link), 403 (a bearer token of
    another user, a deactivated uploader), 404 (no such upload), 409 (already
    uploaded or refused), 413/422 (more/fewer bytes than declared), 415 (the bytes
    are not the declared type: the file is removed and the upload marked rejected).
    """
    state = request.app.state
    settings: Settings = state.settings
    db: Database = state.db
    organization_id, _ = storage.verify_upload(settings.signing_key(), key, token)
    bearer = _bearer(request)
    client_ip = request.client.host if request.client else None
    target, caller = await run_in_threadpool(
        _open_target,
        db,
        settings,
        organization_id=organization_id,
        key=key,
        bearer=bearer,
        client_ip=client_ip,
    )
    request.state.organization_id = organization_id
    if caller is not None:
        request.state.caller = caller
    subject = f"token:{caller.token_id}" if caller and caller.token_id else None
    _limit(request, state.rate_limiter, subject or f"user:{target.uploaded_by_id}")
    _check_headers(request, target)
    store = storage.storage_for(settings.data_dir)
    received = await _receive_body(request, store, key, target.size_bytes)
    detected = await anyio.to_thread.run_sync(
        lambda: sniff.verify(
            target.mime_type, received.head, is_text=received.is_text, path=received.part
        )
    )
    now = utcnow()
    if detected is not None:
        storage.discard(received.part)
        await run_in_threadpool(_reject, db, target, detected, caller, now)
        raise UnsupportedMediaType(
            f"The file is not {target.mime_type}: it looks like {detected}",
            details={"field": "Content-Type", "declared": target.mime_type, "detected": detected},
        )
    return await run_in_threadpool(_complete, db, store, key, target, received, now)


# --------------------------------------------------------------------------- claim


def claim(
    session: Session,
    caller: Caller,
    ref: str | uuid.UUID,
    purpose: str | Collection[str],
    *,
    ticket_id: uuid.UUID | None = None,
    asset_id: uuid.UUID | None = None,
    field: str | None = None,
    now: datetime | None = None,
) -> Upload:
    """Take a finished upload for a feature, once (a ticket attachment, an import).

    ``ref``: the storage key or the upload id; ``purpose``: the purpose (or purposes)
    the feature accepts, e.g. ``UploadPurpose.TICKET_ATTACHMENT``. The upload must be
    in the session's organization and uploaded by the caller, or the caller be staff
    (else 404); be made for ``purpose`` and, when it named a ticket or asset at
    presign and ``ticket_id``/``asset_id`` is given, for that one (422); be complete
    (422) and not claimed before (409). Records ``claimed_at``/``claimed_by_id``.
    ``field``: the request field that named the upload, for error details (default
    ``storageKey`` or ``uploadId``).
    """
    upload_id, key = _parse_ref(ref)
    field = field or ("storageKey" if key is not None else "uploadId")
    upload = None
    if upload_id is not None:
        upload = session.get(Upload, upload_id)
    elif key is not None:
        upload = session.scalar(select(Upload).where(Upload.storage_key == key))
    if upload is None or (upload.uploaded_by_id != caller.user_id and not caller.role.is_staff):
        raise NotFound("Upload", details={"field": field})
    purposes = {purpose} if isinstance(purpose, str) else {str(p) for p in purpose}
    if upload.purpose not in purposes:
        raise ValidationFailed(
            f"This file was uploaded for {upload.purpose}, not {' or '.join(sorted(purposes))}",
            details={"field": field},
        )
    if ticket_id is not None and upload.ticket_id not in (None, ticket_id):
        raise ValidationFailed(
            "This file was uploaded for another ticket", details={"field": field}
        )
    if asset_id is not None and upload.asset_id not in (None, asset_id):
        raise ValidationFailed("This file was uploaded for another asset", details={"field": field})
    if upload.status != UploadStatus.COMPLETE:
        message = (
            "The file has not finished uploading"
            if upload.status == UploadStatus.PENDING
            else "The file was refused when it was uploaded"
        )
        raise BusinessRuleViolation(message, details={"field": field, "status": upload.status})
    if upload.claimed_at is not None:
        raise Conflict("This file is already in use", details={"field": field})
    now = now or utcnow()
    # Conditional: of two concurrent claims only one matches (the other waits for the
    # row lock, then finds claimed_at set).
    result = session.execute(
        update(Upload)
        .where(
            Upload.id == upload.id,
            Upload.claimed_at.is_(None),
            Upload.status == UploadStatus.COMPLETE.value,
        )
        .values(claimed_at=now, claimed_by_id=caller.user_id, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        raise Conflict("This file is already in use", details={"field": field})
    session.refresh(upload)
    return upload


def _parse_ref(ref: str | uuid.UUID) -> tuple[uuid.UUID | None, str | None]:
    """(upload id, storage key) from what a client sent; neither when it is neither."""
    if isinstance(ref, uuid.UUID):
        return ref, None
    if storage.parse_storage_key(ref) is not None:
        return None, ref
    try:
        return uuid.UUID(ref), None
    except ValueError:
        return None, None


# ----------------------------------------------------------------------- read back


def path_of(session: Session, upload_id: uuid.UUID, *, data_dir: Path | None = None) -> Path:
    """Where the bytes of a complete upload of the session's organization are (404
    otherwise). Pass ``data_dir=ctx.settings.data_dir``; without it the process
    settings (``RESOLVE_DATA_DIR``) are used."""
    upload = session.get(Upload, upload_id)
    if upload is None:
        raise NotFound("File")
    return file_path(upload, data_dir=data_dir if data_dir is not None else get_settings().data_dir)


def file_path(upload: Upload, *, data_dir: Path) -> Path:
    """Where a complete upload's bytes are (404 when it is not complete or is gone)."""
    if upload.status != UploadStatus.COMPLETE:
        raise NotFound("File")
    path = storage.storage_for(data_dir).path_for(upload.storage_key)
    if not path.is_file():
        raise NotFound("File")
    return path


def open_stream(upload: Upload, *, data_dir: Path) -> Iterator[bytes]:
    """The bytes of a complete upload, in chunks."""
    file_path(upload, data_dir=data_dir)
    return storage.storage_for(data_dir).read(upload.storage_key)


def download_headers(upload: Upload, *, inline: bool = False) -> dict[str, str]:
    """Headers that make a browser save (or, for images, show) the file and never run it."""
    disposition = "inline" if inline and upload.mime_type in sniff.IMAGE_TYPES else "attachment"
    fallback = (
        "".join(c if 32 <= ord(c) < 127 and c not in '"\\%' else "_" for c in upload.file_name)
        or "download"
    )
    media_type = upload.mime_type
    if media_type in sniff.TEXT_TYPES:
        media_type += "; charset=utf-8"
    headers = {
        "Content-Type": media_type,
        "Content-Disposition": (
            f'{disposition}; filename="{fallback}"; '
            f"filename*=UTF-8''{quote(upload.file_name, safe='')}"
        ),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, no-store",
    }
    if upload.sha256:
        headers["ETag"] = f'"{upload.sha256}"'
    return headers


def download_response(upload: Upload, *, data_dir: Path, inline: bool = False) -> FileResponse:
    """A response that sends a complete upload's bytes (for a download route)."""
    path = file_path(upload, data_dir=data_dir)
    headers = download_headers(upload, inline=inline)
    media_type = headers.pop("Content-Type")
    return FileResponse(path, media_type=media_type, headers=headers)


# ------------------------------------------------------------------------- cleanup


@dataclass(frozen=True, slots=True)
class CleanupResult:
    rows: int
    files: int
    parts: int


def cleanup(
    session: Session,
    *,
    data_dir: Path,
    now: datetime | None = None,
    pending_grace: timedelta = timedelta(hours=1),
    unclaimed_after: timedelta = timedelta(days=7),
    batch: int = 500,
) -> CleanupResult:
    """Delete uploads nobody will use, with their files.

    Pending and refused uploads ``pending_grace`` after their link expired (a slow
    upload that began before the expiry may still be arriving), complete ones that no
    feature claimed within ``unclaimed_after``, and temporary files of interrupted
    uploads. ``session``: bound to ``ALL_TENANTS`` (a job), or to one organization.
    """
    now = now or utcnow()
    attached = exists(select(TicketAttachment.id).where(TicketAttachment.upload_id == Upload.id))
    stale = (
        select(Upload)
        .where(
            or_(
                and_(
                    Upload.status.in_([UploadStatus.PENDING.value, UploadStatus.REJECTED.value]),
                    Upload.expires_at < now - pending_grace,
                ),
                and_(
                    Upload.status == UploadStatus.COMPLETE.value,
                    Upload.claimed_at.is_(None),
                    Upload.completed_at < now - unclaimed_after,
                ),
            ),
            ~attached,
        )
        .order_by(Upload.expires_at)
        .limit(batch)
        .execution_options(**{INCLUDE_DELETED: True})
    )
    rows = list(session.scalars(stale))
    keys = [upload.storage_key for upload in rows]
    for upload in rows:
        session.delete(upload)
    session.flush()
    store = storage.storage_for(data_dir)
    files = sum(1 for key in keys if store.delete(key))
    parts = store.sweep_parts(older_than_seconds=(UPLOAD_TTL + pending_grace).total_seconds())
    return CleanupResult(rows=len(rows), files=files, parts=parts)


def cleanup_job(db: Database, settings: Settings) -> None:
    """The periodic job (every few minutes; runs in one server process at a time)."""

    def work(session: Session) -> None:
        cleanup(session, data_dir=settings.data_dir)

    run_exclusive(db, "uploads.cleanup", 300, work)


def request_base_url(request: Request) -> str:
    """The address the client reached the server at (the upload URL goes to the same)."""
    return str(request.base_url).rstrip("/")
