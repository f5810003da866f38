"""The one error type services raise, mapped to the API error shape by ``server.core.handlers``."""

from __future__ import annotations

from typing import Any

from common.errors import ErrorCode


class ApiError(Exception):
    status_code = 400
    code = ErrorCode.VALIDATION_ERROR
    #: commit the request's transaction although the request fails (failed sign-in
    #: bookkeeping, lockouts, refresh-reuse revocation must persist)
    keep_changes = False

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | None = None,
        status_code: int | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.details = details
        self.headers = headers


class ValidationFailed(ApiError):
    status_code = 422
    code = ErrorCode.VALIDATION_ERROR


class AuthenticationRequired(ApiError):
    status_code = 401
    code = ErrorCode.AUTHENTICATION_REQUIRED

    def __init__(self, message: str = "Authentication required", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kw)


class PermissionDenied(ApiError):
    status_code = 403
    code = ErrorCode.PERMISSION_DENIED

    def __init__(self, message: str = "You do not have permission to do this", **kw: Any) -> None:
        super().__init__(message, **kw)


class NotFound(ApiError):
    status_code = 404
    code = ErrorCode.RESOURCE_NOT_FOUND

    def __init__(self, what: str = "Resource", **kw: Any) -> None:
        super().__init__(f"{what} not found", **kw)


class Conflict(ApiError):
    status_code = 409
    code = ErrorCode.RESOURCE_CONFLICT


class BusinessRuleViolation(ApiError):
    status_code = 422
    code = ErrorCode.BUSINESS_RULE_VIOLATION


class RateLimited(ApiError):
    status_code = 429
    code = ErrorCode.RATE_LIMIT_EXCEEDED
