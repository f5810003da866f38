"""Every error leaves the server in one shape: {"error": {code, message, details, requestId}}."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, StatementError
from starlette.exceptions import HTTPException

from common.errors import ErrorCode
from server.core.errors import ApiError

log = logging.getLogger(__name__)

_STATUS_CODES = {
    400: ErrorCode.VALIDATION_ERROR,
    401: ErrorCode.AUTHENTICATION_REQUIRED,
    403: ErrorCode.PERMISSION_DENIED,
    404: ErrorCode.RESOURCE_NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    409: ErrorCode.RESOURCE_CONFLICT,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    422: ErrorCode.VALIDATION_ERROR,
    429: ErrorCode.RATE_LIMIT_EXCEEDED,
    503: ErrorCode.SERVICE_UNAVAILABLE,
}
_LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    request_id = request.scope.get("state", {}).get("request_id")
    return JSONResponse(
        {"error": {"code": code, "message": message, "details": details, "requestId": request_id}},
        status_code=status,
        headers=dict(headers) if headers else None,
    )


def _validation_details(
    exc: RequestValidationError | ValidationError,
) -> tuple[int, str, list[dict[str, Any]]]:
    details = []
    malformed = False
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            malformed = True
        raw = [str(p) for p in err.get("loc", ())]
        # "body", "query", "path", "header", "cookie": said once in "location", so a
        # field is named the same way wherever it came from (perPage, email, items.0.id).
        location = raw[0] if raw and raw[0] in _LOCATIONS else None
        loc = raw[1:] if location else raw
        details.append(
            {
                "field": ".".join(loc) or None,
                "location": location,
                "message": err.get("msg"),
                "type": err.get("type"),
            }
        )
    if malformed:
        return 400, "Request body is not valid JSON", details
    return 422, "Request is not valid", details


def _unstorable_value(request: Request) -> JSONResponse:
    return error_response(
        request,
        422,
        ErrorCode.VALIDATION_ERROR,
        "A value in the request is out of range or cannot be stored",
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(
            request, exc.status_code, exc.code, exc.message, exc.details, exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message, details = _validation_details(exc)
        return error_response(request, status, ErrorCode.VALIDATION_ERROR, message, details)

    @app.exception_handler(ValidationError)
    async def _model_validation(request: Request, exc: ValidationError) -> JSONResponse:
        # A model built inside a service or dependency (merged settings, filters from
        # query parameters) refused its values: the request was bad, not the server.
        _, message, details = _validation_details(exc)
        return error_response(request, 422, ErrorCode.VALIDATION_ERROR, message, details)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, ErrorCode.VALIDATION_ERROR)
        message = exc.detail if isinstance(exc.detail, str) else "Request failed"
        if exc.status_code == 404:
            message = "No such endpoint" if message == "Not Found" else message
        return error_response(request, exc.status_code, code, message, None, exc.headers)

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        log.info("integrity error: %s", exc.orig)
        return error_response(
            request,
            409,
            ErrorCode.RESOURCE_CONFLICT,
            "The change conflicts with existing data (duplicate or missing reference)",
        )

    @app.exception_handler(DataError)
    async def _unstorable(request: Request, exc: DataError) -> JSONResponse:
        # The database refused a value: out of range, NUL in text, too long...
        log.info("data error: %s", exc.orig)
        return _unstorable_value(request)

    @app.exception_handler(StatementError)
    async def _statement(request: Request, exc: StatementError) -> JSONResponse:
        # A value that could not even be bound (a date beyond year 9999 once in UTC, an
        # unknown enum value): bad input that got past validation, not a server fault.
        if isinstance(exc.orig, (OverflowError, ValueError, LookupError)):
            log.warning("unbindable value on %s %s: %s", request.method, request.url.path, exc)
            return _unstorable_value(request)
        return await _unexpected(request, exc)

    @app.exception_handler(OperationalError)
    async def _db_unavailable(request: Request, exc: OperationalError) -> JSONResponse:
        log.error("database error: %s", exc)
        return error_response(
            request,
            503,
            ErrorCode.SERVICE_UNAVAILABLE,
            "The database is busy or unavailable; try again",
            headers={"Retry-After": "2"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(
            request, 500, ErrorCode.INTERNAL_ERROR, "Internal error; it has been logged"
        )
