"""The API conventions of the design brief, checked over HTTP against the live server.

Envelopes and pagination, camelCase out and snake_case in, list parameters, request
ids, security headers, the /api/v1 redirect, the self-hosted docs, the error shape of
unknown routes and wrong methods, and the health report.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from common.enums import Role
from tests.conftest import Tenant, World, assert_error

PAGINATION_KEYS = {
    "page",
    "perPage",
    "total",
    "totalPages",
    "hasNext",
    "hasPrev",
    "totalCapped",
}
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}
CAMEL = re.compile(r"^[a-z][a-zA-Z0-9]*$")
#: fields whose values are free-form maps (keys are data, not field names)
FREE_FORM = {"details", "securityHeaders"}


def _snake_keys(value: Any, path: str = "") -> list[str]:
    """Every key in a JSON document that is not camelCase, with where it was found."""
    bad: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            if not CAMEL.match(key):
                bad.append(where)
            if key not in FREE_FORM:
                bad.extend(_snake_keys(item, where))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            bad.extend(_snake_keys(item, f"{path}[{index}]"))
    return bad


@pytest.fixture
def tenant(world: World) -> Tenant:
    tenant = world.org("conv")
    for n in range(3):
        world.user(tenant.id, Role.AGENT, email=f"agent{n}@conv.example", login=False)
    return tenant


# ----------------------------------------------------------------------- envelopes


def test_list_envelope_and_pagination(client: httpx.Client, tenant: Tenant) -> None:
    response = client.get("/api/users", params={"perPage": 2}, headers=tenant.admin.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"data", "pagination"}
    assert isinstance(body["data"], list)
    assert len(body["data"]) == 2
    assert body["pagination"] == {
        "page": 1,
        "perPage": 2,
        "total": 4,
        "totalPages": 2,
        "hasNext": True,
        "hasPrev": False,
        "totalCapped": False,
    }
    last = client.get(
        "/api/users", params={"perPage": 2, "page": 2}, headers=tenant.admin.headers
    ).json()
    assert last["pagination"]["hasNext"] is False
    assert last["pagination"]["hasPrev"] is True
    first_ids = {u["id"] for u in body["data"]}
    assert not first_ids & {u["id"] for u in last["data"]}


@pytest.mark.parametrize(
    "path", ["/api/users", "/api/departments", "/api/api-tokens", "/api/audit-logs"]
)
def test_every_list_has_the_pagination_fields(
    client: httpx.Client, tenant: Tenant, path: str
) -> None:
    response = client.get(path, headers=tenant.admin.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"data", "pagination"}, body
    assert set(body["pagination"]) == PAGINATION_KEYS


def test_single_resource_envelope(client: httpx.Client, tenant: Tenant) -> None:
    for path in (f"/api/users/{tenant.admin.id}", "/api/me", f"/api/organizations/{tenant.id}"):
        response = client.get(path, headers=tenant.admin.headers)
        assert response.status_code == 200, (path, response.text)
        body = response.json()
        assert set(body) == {"data"}, (path, body)
        assert isinstance(body["data"], dict)


def test_empty_list_pagination(client: httpx.Client, tenant: Tenant) -> None:
    body = client.get("/api/departments", headers=tenant.admin.headers).json()
    assert body == {
        "data": [],
        "pagination": {
            "page": 1,
            "perPage": 25,
            "total": 0,
            "totalPages": 0,
            "hasNext": False,
            "hasPrev": False,
            "totalCapped": False,
        },
    }


# ------------------------------------------------------------------ camelCase / snake


def test_output_is_camel_case(client: httpx.Client, tenant: Tenant) -> None:
    headers = tenant.admin.headers
    created = client.post(
        "/api/api-tokens", json={"name": "ci", "scopes": ["users:read"]}, headers=headers
    )
    assert created.status_code == 201, created.text
    client.post("/api/departments", json={"name": "Facilities"}, headers=headers)
    paths = [
        "/api/users",
        f"/api/users/{tenant.admin.id}",
        "/api/me",
        f"/api/organizations/{tenant.id}",
        "/api/departments",
        "/api/api-tokens",
        "/api/audit-logs",
        "/api/security/settings",
        "/api/platform/health",
    ]
    bad = {path: _snake_keys(client.get(path, headers=headers).json()) for path in paths}
    bad["POST /api/api-tokens"] = _snake_keys(created.json())
    bad["error"] = _snake_keys(client.get("/api/users/not-a-uuid", headers=headers).json())
    assert not {k: v for k, v in bad.items() if v}, bad
    user = client.get(f"/api/users/{tenant.admin.id}", headers=headers).json()["data"]
    assert {"firstName", "lastName", "isActive", "organizationId", "createdAt"} <= set(user)


def test_snake_case_and_camel_case_accepted_on_input(client: httpx.Client, tenant: Tenant) -> None:
    headers = tenant.admin.headers
    snake = client.post(
        "/api/users",
        json={
            "email": "snake@conv.example",
            "first_name": "Sid",
            "last_name": "Snake",
            "job_title": "Technician",
            "role": "technician",
            "password": "Long-enough-pass-1",
        },
        headers=headers,
    )
    assert snake.status_code == 201, snake.text
    data = snake.json()["data"]
    assert (data["firstName"], data["lastName"], data["jobTitle"]) == (
        "Sid",
        "Snake",
        "Technician",
    )
    camel = client.post(
        "/api/users",
        json={
            "email": "camel@conv.example",
            "firstName": "Cam",
            "lastName": "Camel",
            "password": "Long-enough-pass-1",
        },
        headers=headers,
    )
    assert camel.status_code == 201, camel.text
    assert camel.json()["data"]["firstName"] == "Cam"
    patched = client.patch(f"/api/users/{data['id']}", json={"job_title": "Lead"}, headers=headers)
    assert patched.status_code == 200, patched.text
    assert patched.json()["data"]["jobTitle"] == "Lead"


# --------------------------------------------------------------------- list params


def test_per_page_is_capped(client: httpx.Client, tenant: Tenant) -> None:
    headers = tenant.admin.headers
    assert client.get("/api/users?perPage=100", headers=headers).status_code == 200
    error = assert_error(
        client.get("/api/users?perPage=101", headers=headers), 422, "VALIDATION_ERROR"
    )
    assert [(d["field"], d["location"]) for d in error["details"]] == [("perPage", "query")]
    assert_error(client.get("/api/users?perPage=0", headers=headers), 422, "VALIDATION_ERROR")
    assert_error(client.get("/api/users?page=0", headers=headers), 422, "VALIDATION_ERROR")
    assert_error(client.get("/api/users?page=abc", headers=headers), 422, "VALIDATION_ERROR")


def test_sorting(client: httpx.Client, tenant: Tenant) -> None:
    headers = tenant.admin.headers
    emails = [
        u["email"] for u in client.get("/api/users?sort=-email", headers=headers).json()["data"]
    ]
    assert emails == sorted(emails, reverse=True)
    error = assert_error(
        client.get("/api/users?sort=-createdAt,password_hash", headers=headers),
        422,
        "VALIDATION_ERROR",
    )
    assert error["details"]["sort"] == "password_hash"
    assert "email" in error["details"]["allowed"]
    assert "createdAt" in error["details"]["allowed"]


# ---------------------------------------------------------------- request id, headers


def test_request_id_generated_when_absent(client: httpx.Client) -> None:
    first = client.get("/api/platform/health")
    second = client.get("/api/platform/health")
    assert re.fullmatch(r"[0-9a-f]{32}", first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


def test_safe_request_id_is_kept(client: httpx.Client) -> None:
    response = client.get("/api/users", headers={"X-Request-ID": "client-req.0001_abc"})
    assert response.headers["x-request-id"] == "client-req.0001_abc"
    error = assert_error(response, 401, "AUTHENTICATION_REQUIRED")
    assert error["requestId"] == "client-req.0001_abc"


@pytest.mark.parametrize(
    "unsafe", ["short", "x" * 65, "has space in it", "new\\nline-0001", "<script>alert(1)"]
)
def test_unsafe_request_id_is_replaced(client: httpx.Client, unsafe: str) -> None:
    response = client.get("/api/platform/health", headers={"X-Request-ID": unsafe})
    assert response.headers["x-request-id"] != unsafe
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


def _assert_security_headers(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (response.request.url, name)
    assert "strict-transport-security" in response.headers
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers.get("x-request-id")


def test_security_headers_on_every_kind_of_response(client: httpx.Client, tenant: Tenant) -> None:
    headers = tenant.admin.headers
    responses = [
        client.get("/api/users", headers=headers),  # 200
        client.get("/api/users"),  # 401
        client.get("/api/organizations", headers=headers),  # 403
        client.get("/api/no-such-route"),  # 404
        client.get("/not-even-api"),  # 404 outside /api
        client.put("/api/users", headers=headers),  # 405
        client.get("/api/users?perPage=1000", headers=headers),  # 422
        client.post(
            "/api/users", content=b"{", headers={**headers, "content-type": "application/json"}
        ),  # 400
        client.get("/api/v1/users", follow_redirects=False),  # 307
        client.get("/api/openapi.json"),
        client.get("/api/docs"),
        client.get("/api/docs/static/swagger-ui.css"),
    ]
    for response in responses:
        _assert_security_headers(response)
    api_csp = responses[0].headers["content-security-policy"]
    assert "default-src 'none'" in api_csp
    assert responses[0].headers["cache-control"] == "no-store"


# ------------------------------------------------------------------------ redirect


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_v1_redirects_to_canonical_route(client: httpx.Client, method: str) -> None:
    response = client.request(
        method, "/api/v1/users?x=1&y=two", json={} if method != "GET" else None
    )
    assert response.status_code == 307, response.text
    assert response.headers["location"] == "/api/users?x=1&y=two"
    nested = client.request(method, "/api/v1/users/123/activate", follow_redirects=False)
    assert nested.status_code == 307
    assert nested.headers["location"] == "/api/users/123/activate"


def test_v1_redirect_is_followed_with_the_body(client: httpx.Client, tenant: Tenant) -> None:
    response = client.post(
        "/api/v1/departments",
        json={"name": "Via v1"},
        headers=tenant.admin.headers,
        follow_redirects=True,
    )
    assert response.status_code == 201, response.text
    assert response.json()["data"]["name"] == "Via v1"


# ---------------------------------------------------------------------------- docs


def test_docs_are_served_without_a_cdn(client: httpx.Client) -> None:
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "/api/docs/static/swagger-ui-bundle.js" in html
    assert "/api/docs/static/swagger-ui.css" in html
    assert "/api/openapi.json" in html
    sources = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    external = [s for s in sources if s.startswith(("http:", "https:", "//"))]
    assert not external, external
    assert "cdn" not in html.lower()
    js = client.get("/api/docs/static/swagger-ui-bundle.js")
    assert js.status_code == 200
    assert "javascript" in js.headers["content-type"]
    assert len(js.content) > 100_000
    # the schema is OpenAPI 3.1: Swagger UI 3/4 answer "Unable to render this definition"
    assert client.get("/api/openapi.json").json()["openapi"].startswith("3.1")
    assert b"isOAS31" in js.content, "the bundled Swagger UI cannot render OpenAPI 3.1"
    css = client.get("/api/docs/static/swagger-ui.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    root = client.get("/", follow_redirects=False)
    assert root.status_code in (302, 307)
    assert root.headers["location"] == "/api/docs"


def test_openapi_lists_the_documented_routes(client: httpx.Client) -> None:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    for path in (
        "/api/users",
        "/api/auth/login",
        "/api/organizations",
        "/api/departments",
        "/api/api-tokens",
        "/api/audit-logs",
        "/api/platform/health",
        "/api/me",
    ):
        assert path in paths, path
    assert not [p for p in paths if p.startswith("/api/v1")]
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert "security" not in paths["/api/auth/login"]["post"]
    assert paths["/api/users"]["get"]["security"] == [{"bearerAuth": []}]
    user_out = schema["components"]["schemas"]["UserOut"]["properties"]
    assert "firstName" in user_out


# ------------------------------------------------------------------ unknown / method


@pytest.mark.parametrize(
    "path", ["/api/no-such-route", "/api/users/x/y/z", "/nothing-here", "/api/docs/static/nope"]
)
def test_unknown_route_is_404_in_the_error_shape(client: httpx.Client, path: str) -> None:
    error = assert_error(client.get(path), 404, "RESOURCE_NOT_FOUND")
    assert error["message"]


def test_unknown_route_is_404_when_signed_in(client: httpx.Client, tenant: Tenant) -> None:
    assert_error(
        client.post("/api/no-such-route", json={}, headers=tenant.admin.headers),
        404,
        "RESOURCE_NOT_FOUND",
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/api/users"),
        ("DELETE", "/api/users"),
        ("POST", "/api/platform/health"),
        ("GET", "/api/auth/login"),
        ("PUT", "/api/me"),
    ],
)
def test_wrong_method_is_405_in_the_error_shape(
    client: httpx.Client, method: str, path: str
) -> None:
    response = client.request(method, path)
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers.get("allow")


# -------------------------------------------------------------------------- health


def test_health_reports_database_and_migrations(client: httpx.Client) -> None:
    response = client.get("/api/platform/health")
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["database"]["status"] == "ok"
    assert data["migrations"]["status"] == "ok"
    assert data["currentRevision"] == data["headRevision"]
    assert data["currentRevision"]
    assert data["status"] in ("ok", "degraded")
