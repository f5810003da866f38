"""What every API router shares: the documented error responses; listing the routes."""

from __future__ import annotations

from typing import Any

import fastapi.routing
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from server.core.schemas import ErrorResponse

_ERROR = {"model": ErrorResponse}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {**_ERROR, "description": "Malformed request"},
    401: {**_ERROR, "description": "Not signed in, or the token is invalid"},
    403: {**_ERROR, "description": "Not allowed"},
    404: {**_ERROR, "description": "Not found (or in another organization)"},
    409: {**_ERROR, "description": "Conflicts with existing data"},
    413: {**_ERROR, "description": "Request body too large"},
    422: {**_ERROR, "description": "Invalid input or a business rule refused it"},
    423: {**_ERROR, "description": "Account locked"},
    429: {**_ERROR, "description": "Rate limit exceeded"},
    503: {**_ERROR, "description": "Database busy or unavailable"},
}


def api_router(*, prefix: str, tags: list[str]) -> APIRouter:
    return APIRouter(prefix=prefix, tags=list(tags), responses=ERROR_RESPONSES)


def api_routes(app: FastAPI) -> list[APIRoute]:
    """Every ``APIRoute`` of ``app`` with its full path, in registration order.

    Newer FastAPI keeps each included router as one node in ``app.routes``; this
    flattens them, so generic checks (tenancy, bad input) see every route.
    """
    flatten = getattr(fastapi.routing, "_iter_included_route_candidates", None)
    routes = flatten(app.routes) if flatten is not None else app.routes
    return [route for route in routes if isinstance(route, APIRoute)]
