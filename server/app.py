"""The FastAPI application factory."""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import Receive, Scope, Send

from common import __version__
from server.assets.routes import ROUTERS as ASSET_ROUTERS
from server.audit.routes import router as audit_router
from server.auth.routes import router as auth_router
from server.auth.routes import tokens as tokens_router
from server.core import handlers
from server.core.config import Settings, get_settings
from server.core.engine import Database
from server.core.logging import configure_logging
from server.core.middleware import RequestEnvelopeMiddleware
from server.core.ratelimit import RateLimiter
from server.core.routing import UnitOfWorkRoute
from server.core.security import configure_password_hashing
from server.inventory.procurement_routes import purchase_orders, vendors
from server.inventory.routes import ROUTERS as INVENTORY_ROUTERS
from server.inventory.ticket_parts import router as ticket_parts_router
from server.notifications.routes import router as notifications_router
from server.organizations.routes import departments, organizations
from server.platform.routes import router as platform_router
from server.routing.routes import rule_sets as routing_rule_sets
from server.routing.routes import rules as routing_rules
from server.security.routes import router as security_router
from server.sites.routes import buildings, rooms, sites
from server.sla.routes import automation as sla_automation
from server.sla.routes import calendars as business_calendars
from server.sla.routes import rules as sla_rules
from server.sync.routes import router as sync_router
from server.teams.routes import router as teams_router
from server.tickets.routes import automation_router as ticket_automation_router
from server.tickets.routes import router as tickets_router
from server.tickets.routes import settings_router as ticket_settings_router
from server.uploads.routes import OWN_BODY_LIMIT_PATHS
from server.uploads.routes import router as uploads_router
from server.users.routes import me_router
from server.users.routes import router as users_router

API_DESCRIPTION = """
District Resolve: help desk and operations for school districts.

Every request except sign-in and health needs `Authorization: Bearer <token>`: an
access token from `POST /api/auth/login`, or an API token from `POST /api/api-tokens`.
JSON is camelCase (snake_case is accepted on input). Lists take `page`, `perPage`
(max 100), `sort` (e.g. `-createdAt,name`) and `q`. Errors always look like
`{"error": {"code", "message", "details", "requestId"}}`.
"""

ROUTERS = (
    auth_router,
    tokens_router,
    me_router,
    users_router,
    organizations,
    departments,
    sites,
    buildings,
    rooms,
    teams_router,
    routing_rules,
    routing_rule_sets,
    security_router,
    audit_router,
    platform_router,
    uploads_router,
    *ASSET_ROUTERS,
    notifications_router,
    tickets_router,
    ticket_settings_router,
    ticket_automation_router,
    ticket_parts_router,
    *INVENTORY_ROUTERS,
    vendors,
    purchase_orders,
    sla_rules,
    business_calendars,
    sla_automation,
    sync_router,
)


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.signing_key()  # make (or read) the persisted key before any worker needs it
    configure_password_hashing(settings.password_cost, serving=True)
    db = database or Database(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.request_threads
        scheduler = None
        if settings.background_jobs:
            from server.jobs import start_scheduler

            scheduler = start_scheduler(db, settings)
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.shutdown(wait=False)
            if database is None:
                db.dispose()

    app = FastAPI(
        title="District Resolve API",
        version=__version__,
        description=API_DESCRIPTION,
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        servers=[{"url": "/"}],
    )
    # Routes added straight to the app open and finish their request context too.
    app.router.route_class = UnitOfWorkRoute
    app.state.settings = settings
    app.state.db = db
    app.state.rate_limiter = RateLimiter(settings)
    handlers.install(app)
    for router in ROUTERS:
        app.include_router(router)
    _install_docs(app)
    _install_version_redirect(app)
    app.add_middleware(
        RequestEnvelopeMiddleware,
        max_body_bytes=settings.max_body_bytes,
        own_body_limit_paths=OWN_BODY_LIMIT_PATHS,
    )
    # Replicas download thousands of rows a page: compress what sync sends (JSON
    # shrinks about tenfold); level 6 is most of the gain for a fraction of level 9's CPU.
    app.add_middleware(SyncGZipMiddleware, minimum_size=1024, compresslevel=6)
    _add_security_scheme(app)
    return app


class SyncGZipMiddleware(GZipMiddleware):
    """Gzip for ``/api/sync/`` answers when the client accepts it; other routes are
    small JSON or files and are sent as they are."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/sync/"):
            await super().__call__(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _install_docs(app: FastAPI) -> None:
    # Swagger UI 5 (OpenAPI 3.1) served from an installed package, not a CDN: a district
    # network may not reach one. fastapi-offline is used only for its static files.
    static = Path(importlib.util.find_spec("fastapi_offline").origin).parent / "static"  # type: ignore[arg-type, union-attr]
    app.mount("/api/docs/static", StaticFiles(directory=static), name="swagger-static")

    @app.get("/api/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/api/openapi.json",
            title="District Resolve API",
            swagger_js_url="/api/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/api/docs/static/swagger-ui.css",
            swagger_favicon_url="/api/docs/static/favicon.png",
            swagger_ui_parameters={"persistAuthorization": True, "displayRequestDuration": True},
        )

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/api/docs")


def _install_version_redirect(app: FastAPI) -> None:
    @app.api_route(
        "/api/v1/{path:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        include_in_schema=False,
    )
    def versioned(path: str, request: Request) -> RedirectResponse:
        target = "/api/" + path.strip("/")
        if request.url.query:
            target += "?" + request.url.query
        return RedirectResponse(target, status_code=307)


def _add_security_scheme(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            servers=app.servers,
        )
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearerAuth": {"type": "http", "scheme": "bearer"}
        }
        public = {
            "/api/auth/login",
            "/api/auth/refresh",
            "/api/auth/google",
            "/api/auth/password-reset/request",
            "/api/auth/password-reset/confirm",
            "/api/auth/logout",
            "/api/platform/health",
        }
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                if isinstance(operation, dict) and path not in public:
                    operation["security"] = [{"bearerAuth": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def factory() -> FastAPI:
    """Entry point for ``uvicorn --factory`` (and each worker process)."""
    settings = get_settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    return create_app(settings)
