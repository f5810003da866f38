"""What every API router shares: the documented error responses; listing the routes."""

from __future__ import annotations

import abc
import functools
import inspect
from collections.abc import Callable
from typing import Any

import fastapi.routing
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from server.core.schemas import ErrorResponse

ERROR = {"model": ErrorResponse}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {**ERROR, "description": "Malformed request"},
    401: {**ERROR, "description": "Not signed in, or the token is invalid"},
    403: {**ERROR, "description": "Not allowed"},
    404: {**ERROR, "description": "Not found (or in another organization)"},
    409: {**ERROR, "description": "Conflicts with existing data"},
    413: {**ERROR, "description": "Request body too large"},
    422: {**ERROR, "description": "Invalid input or a business rule refused it"},
    423: {**ERROR, "description": "Account locked"},
    429: {**ERROR, "description": "Rate limit exceeded"},
    503: {**ERROR, "description": "Database busy or unavailable"},
}


class UnitOfWork(abc.ABC):
    """A request-scoped value that holds a database session.

    ``UnitOfWorkRoute`` opens it in the endpoint's worker thread just before the
    endpoint runs and finishes it (commit or roll back, close) in the same thread
    right after, so a request costs one thread-pool hop and commits before its
    response is sent.
    """

    @abc.abstractmethod
    def open(self) -> None:
        """Open the session and do the request's checks (may raise an ApiError)."""

    @abc.abstractmethod
    def finish(self, error: BaseException | None) -> None:
        """Commit (or roll back when ``error`` says so) and close the session."""


class UnitOfWorkRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, _in_unit_of_work(endpoint), **kwargs)


def _in_unit_of_work(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Run a plain ``def`` endpoint and its units of work in one worker-thread hop.

    The wrapper is a coroutine on purpose: FastAPI validates the response of a sync
    endpoint in a second thread-pool hop, but inline for a coroutine.
    """
    if inspect.iscoroutinefunction(endpoint):
        # An async endpoint would open its session on the event loop and block it.
        return endpoint

    def call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        units = [value for value in kwargs.values() if isinstance(value, UnitOfWork)]
        error: BaseException | None = None
        try:
            for unit in units:
                unit.open()
            return endpoint(*args, **kwargs)
        except BaseException as exc:
            error = exc
            raise
        finally:
            for unit in units:
                unit.finish(error)

    @functools.wraps(endpoint)
    async def run(*args: Any, **kwargs: Any) -> Any:
        return await run_in_threadpool(call, args, kwargs)

    return run


def api_router(*, prefix: str, tags: list[str]) -> APIRouter:
    return APIRouter(
        prefix=prefix, tags=list(tags), responses=ERROR_RESPONSES, route_class=UnitOfWorkRoute
    )


def api_routes(app: FastAPI) -> list[APIRoute]:
    """Every ``APIRoute`` of ``app`` with its full path, in registration order.

    Newer FastAPI keeps each included router as one node in ``app.routes``; this
    flattens them, so generic checks (tenancy, bad input) see every route.
    """
    flatten = getattr(fastapi.routing, "_iter_included_route_candidates", None)
    routes = flatten(app.routes) if flatten is not None else app.routes
    return [route for route in routes if isinstance(route, APIRoute)]
