from __future__ import annotations

from typing import Literal

from pydantic import Field, IPvAnyNetwork, field_validator

from server.core.schemas import ApiInput, ApiModel
from server.uploads.sniff import DEFAULT_ALLOWED_TYPES, SUPPORTED_TYPES, UploadMimeType

VirusScanMode = Literal["metadata_only", "clamav_ready", "external_provider"]
UPLOAD_DEFAULT_MAX_BYTES = 25 * 1024 * 1024
UPLOAD_CEILING_BYTES = 100 * 1024 * 1024
UPLOAD_MIN_BYTES = 1024


class SecurityPolicy(ApiModel):
    """The stored policy, with the defaults a new organization starts with."""

    audit_retention_days: int = Field(default=365, ge=90, le=3650)
    data_retention_years: int = Field(default=7, ge=1, le=20)
    audit_export_requires_reports_export: bool = True
    require_mfa_for_admins: bool = False
    require_mfa_for_super_admins: bool = False
    session_timeout_minutes: int = Field(default=480, ge=30, le=43200)
    max_failed_login_attempts: int = Field(default=5, ge=3, le=20)
    lockout_minutes: int = Field(default=15, ge=5, le=1440)
    ip_allowlist: list[str] = Field(default_factory=list)
    ferpa_mode: bool = True
    student_data_access_logging: bool = True
    suspicious_login_alerts: bool = True
    upload_virus_scan_mode: VirusScanMode = "metadata_only"
    data_export_review_required: bool = False
    #: largest file one upload may carry (bytes)
    upload_max_bytes: int = Field(
        default=UPLOAD_DEFAULT_MAX_BYTES, ge=UPLOAD_MIN_BYTES, le=UPLOAD_CEILING_BYTES
    )
    #: content types users may upload; each is verified against the file's bytes
    upload_allowed_mime_types: list[UploadMimeType] = Field(
        default_factory=lambda: list(DEFAULT_ALLOWED_TYPES),
        max_length=len(SUPPORTED_TYPES),
    )


class SecurityPolicyUpdate(ApiInput):
    """``SecurityComplianceSettings`` of the primary spec; omitted fields stay as they are."""

    organization_id: str | None = None
    audit_retention_days: int | None = Field(default=None, ge=90, le=3650)
    data_retention_years: int | None = Field(default=None, ge=1, le=20)
    audit_export_requires_reports_export: bool | None = None
    require_mfa_for_admins: bool | None = None
    require_mfa_for_super_admins: bool | None = None
    session_timeout_minutes: int | None = Field(default=None, ge=30, le=43200)
    max_failed_login_attempts: int | None = Field(default=None, ge=3, le=20)
    lockout_minutes: int | None = Field(default=None, ge=5, le=1440)
    ip_allowlist: list[IPvAnyNetwork] | None = Field(default=None, max_length=200)
    ferpa_mode: bool | None = None
    student_data_access_logging: bool | None = None
    suspicious_login_alerts: bool | None = None
    upload_virus_scan_mode: VirusScanMode | None = None
    data_export_review_required: bool | None = None
    upload_max_bytes: int | None = Field(
        default=None,
        ge=UPLOAD_MIN_BYTES,
        le=UPLOAD_CEILING_BYTES,
        description="Largest file one upload may carry, in bytes (at most 100 MiB)",
    )
    upload_allowed_mime_types: list[UploadMimeType] | None = Field(
        default=None,
        max_length=len(SUPPORTED_TYPES),
        description="Content types users may upload; an empty list allows no uploads",
    )

    @field_validator("upload_allowed_mime_types")
    @classmethod
    def _unique_types(cls, value: list[str] | None) -> list[str] | None:
        return list(dict.fromkeys(value)) if value is not None else None


class SecuritySettingsOut(ApiModel):
    organization_id: str
    policy: SecurityPolicy
    security_headers: dict[str, str]
