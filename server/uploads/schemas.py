from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from server.core.schemas import ApiInput, ApiModel
from server.uploads.models import UploadPurpose

#: largest integer a JSON number carries exactly; the real limit is the org's policy
_JSON_SAFE_INT = 2**53 - 1


class UploadIntent(ApiInput):
    """``UploadIntent`` of the primary spec: what the client is about to upload."""

    organization_id: str | None = Field(default=None, max_length=64)
    file_name: str = Field(
        min_length=1,
        max_length=1000,
        description="The file's name; paths and control characters are removed, the "
        "extension kept (or the type's own added when it does not fit the type)",
        examples=["broken-projector.jpg"],
    )
    mime_type: str = Field(
        min_length=3,
        max_length=255,
        description="The file's content type; must be allowed by the organization's "
        "security policy (uploadAllowedMimeTypes) and is checked against the bytes",
        examples=["image/jpeg"],
    )
    size_bytes: int = Field(
        ge=1,
        le=_JSON_SAFE_INT,
        description="Exact size of the file; at most the policy's uploadMaxBytes",
    )
    purpose: UploadPurpose
    ticket_id: uuid.UUID | None = Field(
        default=None,
        description="The ticket the file is for (TICKET_ATTACHMENT, CHROME_SCREENSHOT)",
    )
    asset_id: uuid.UUID | None = Field(
        default=None, description="The asset the file is for (ASSET_ATTACHMENT)"
    )


class PresignedUpload(ApiModel):
    """Where and how to send the file's bytes."""

    upload_id: uuid.UUID
    storage_key: str
    upload_url: str = Field(description="Send the file's bytes here, before expiresAt")
    method: Literal["PUT"] = "PUT"
    headers: dict[str, str] = Field(description="Headers to send with the bytes")
    expires_at: datetime
    max_bytes: int = Field(description="The body must be exactly this many bytes")
    file_name: str = Field(description="The name the file is stored under")
    mime_type: str


class UploadOut(ApiModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    storage_key: str
    purpose: UploadPurpose
    file_name: str
    mime_type: str
    size_bytes: int
    sha256: str | None
    status: str
    ticket_id: uuid.UUID | None
    asset_id: uuid.UUID | None
    uploaded_by_id: uuid.UUID | None
    expires_at: datetime
    completed_at: datetime | None
    claimed_at: datetime | None
    created_at: datetime
