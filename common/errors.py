"""Error codes of the API error shape, shared so clients can react to them by name."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    VALIDATION_ERROR = "VALIDATION_ERROR"
    AUTHENTICATION_REQUIRED = "AUTHENTICATION_REQUIRED"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    TOKEN_EXPIRED = "TOKEN_EXPIRED"
    TOKEN_INVALID = "TOKEN_INVALID"
    TOKEN_REVOKED = "TOKEN_REVOKED"
    MFA_REQUIRED = "MFA_REQUIRED"
    MFA_INVALID = "MFA_INVALID"
    MFA_ENROLLMENT_REQUIRED = "MFA_ENROLLMENT_REQUIRED"
    ACCOUNT_LOCKED = "ACCOUNT_LOCKED"
    ACCOUNT_DISABLED = "ACCOUNT_DISABLED"
    ORGANIZATION_SUSPENDED = "ORGANIZATION_SUSPENDED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    INSUFFICIENT_SCOPE = "INSUFFICIENT_SCOPE"
    RESOURCE_NOT_FOUND = "RESOURCE_NOT_FOUND"
    RESOURCE_CONFLICT = "RESOURCE_CONFLICT"
    DUPLICATE_RESOURCE = "DUPLICATE_RESOURCE"
    BUSINESS_RULE_VIOLATION = "BUSINESS_RULE_VIOLATION"
    INVALID_STATUS_TRANSITION = "INVALID_STATUS_TRANSITION"
    TICKET_ALREADY_CLOSED = "TICKET_ALREADY_CLOSED"
    PRECONDITION_FAILED = "PRECONDITION_FAILED"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    RATE_LIMIT_EXCEEDED = "RATE_LIMIT_EXCEEDED"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    #: sync: the replica's cursor is older than the kept tombstones, or newer than the
    #: server's data (a restored server): download the scope again, keep the outbox
    RESYNC_REQUIRED = "RESYNC_REQUIRED"
    #: sync: the client speaks a protocol version the server no longer supports
    UPGRADE_REQUIRED = "UPGRADE_REQUIRED"
    #: sync: an administrator ordered this device's replica wiped; nothing it sends
    #: is applied, and it deletes its replica and stored sign-in
    DEVICE_WIPED = "DEVICE_WIPED"
    #: sync: a new change came with a sequence number this device used before (a
    #: replica restored from a backup): renumber the pending changes above the
    #: server's last and send them again
    SEQUENCE_REUSED = "SEQUENCE_REUSED"
