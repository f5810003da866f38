"""Bad input to every write route: a clear 4xx in the error shape, never a 5xx, no change.

The routes are discovered from the application, so a route added later is covered
without any change here. For each POST/PUT/PATCH/DELETE route under /api this sends
malformed JSON, JSON that is not an object, a body that is not JSON, and then, field by
field of the route's body model (nested models included): wrong types, oversized
strings, unknown enum values, out-of-range and huge numbers, nulls, missing required
fields and unknown extra fields. Each mutation starts from a valid body, so a refusal
names the mutated field. A fingerprint of every row of every table must be the same
before and after.

The request body cap (``settings.max_body_bytes``) answers 413 PAYLOAD_TOO_LARGE with a
declared Content-Length and with chunked transfer.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
import types
import typing
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from sqlalchemy import select

from common.enums import Role
from server.core.engine import Database
from server.core.routing import api_routes
from server.models import Base
from tests.conftest import Tenant, World, assert_error

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
HUGE = "x" * 100_000
UNKNOWN_ENUM = "no-such-value"
_counter = itertools.count(1)

#: Valid values for fields whose schema alone does not say what is valid (custom
#: validators); keyed by the field's camelCase name. A new route whose body cannot be
#: built fails ``test_every_body_model_has_a_valid_sample`` and names the field to add.
FIELD_EXAMPLES: dict[str, Any] = {
    "scopes": lambda: ["users:read"],
    "timezone": lambda: "America/New_York",
    "domains": lambda: [],
    "ipAllowlist": lambda: ["10.0.0.0/8"],
    "slug": lambda: f"sample-{next(_counter)}",
    "password": lambda: "Sample-password-42",
    "newPassword": lambda: "Sample-password-42",
    "mimeType": lambda: "image/png",
}


# ------------------------------------------------------------------ route discovery


def write_routes(app: FastAPI) -> list[tuple[str, APIRoute]]:
    """(method, route) for every write route under /api, in registration order."""
    found = []
    for route in api_routes(app):
        if not route.path.startswith("/api/") or route.path.startswith("/api/v1/"):
            continue
        for method in WRITE_METHODS:
            if method in (route.methods or ()):
                found.append((method, route))
    return found


def body_model(route: APIRoute) -> type[BaseModel] | None:
    """The pydantic model of the route's JSON body (``X | None`` unwrapped), if any."""
    if route.body_field is None:
        return None
    annotation = route.body_field.field_info.annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = members[0] if len(members) == 1 else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def body_required(route: APIRoute) -> bool:
    return bool(route.body_field is not None and route.body_field.field_info.is_required())


def path_param_names(route: APIRoute) -> list[str]:
    return re.findall(r"{(\w+)(?::\w+)?}", route.path)


def fill_path(route: APIRoute, values: dict[str, str] | str) -> str:
    path = route.path
    for name in path_param_names(route):
        value = values if isinstance(values, str) else values[name]
        path = re.sub(r"{" + name + r"(?::\w+)?}", value, path)
    return path


# ------------------------------------------------------------------ sample bodies


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _alternatives(schema: dict[str, Any], defs: dict[str, Any]) -> list[dict[str, Any]]:
    """The non-null alternatives of a property schema, references resolved."""
    schema = _resolve(schema, defs)
    options = schema.get("anyOf") or schema.get("oneOf") or [schema]
    resolved = [_resolve(o, defs) for o in options]
    return [o for o in resolved if o.get("type") != "null"]


def _nullable(schema: dict[str, Any], defs: dict[str, Any]) -> bool:
    schema = _resolve(schema, defs)
    options = schema.get("anyOf") or schema.get("oneOf") or [schema]
    return any(_resolve(o, defs).get("type") == "null" for o in options)


def _string_sample(schema: dict[str, Any]) -> str:
    n = next(_counter)
    fmt = schema.get("format")
    if fmt == "email":
        return f"sample{n}@example.org"
    if fmt == "uuid":
        return str(uuid.uuid4())
    if fmt == "date-time":
        return "2031-01-01T00:00:00Z"
    if fmt == "date":
        return "2031-01-01"
    candidates = [
        f"sample-{n}",
        f"sample{n}@example.org",
        "https://example.org/",
        "#336699",
        "en-US",
        "10.0.0.0/8",
        "123456",
        "sample",
    ]
    low, high = schema.get("minLength", 1), schema.get("maxLength", 10_000)
    pattern = schema.get("pattern")
    for candidate in candidates:
        if pattern and not re.search(pattern, candidate):
            continue
        if low <= len(candidate) <= high:
            return candidate
    return "x" * max(low, 1)


def sample_value(name: str, schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    """A valid value for one property (best effort; FIELD_EXAMPLES covers the rest)."""
    if name in FIELD_EXAMPLES:
        return FIELD_EXAMPLES[name]()
    options = _alternatives(schema, defs)
    if not options:
        return None
    chosen = options[0]
    if "const" in chosen:
        return chosen["const"]
    if "enum" in chosen:
        return chosen["enum"][0]
    kind = chosen.get("type")
    if kind == "string":
        return _string_sample(chosen)
    if kind in ("integer", "number"):
        return chosen.get("minimum", chosen.get("exclusiveMinimum", 0) + 1)
    if kind == "boolean":
        return False
    if kind == "array":
        count = chosen.get("minItems", 0)
        return [sample_value("", chosen.get("items", {}), defs) for _ in range(count)]
    if kind == "object" or "properties" in chosen:
        return sample_object(chosen, defs)
    return None


def sample_object(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    schema = _resolve(schema, defs)
    return {
        name: sample_value(name, prop, defs)
        for name, prop in schema.get("properties", {}).items()
        if name in schema.get("required", ())
    }


def model_schema(model: type[BaseModel]) -> tuple[dict[str, Any], dict[str, Any]]:
    schema = model.model_json_schema(by_alias=True, mode="validation")
    return schema, schema.get("$defs", {})


def sample_body(model: type[BaseModel]) -> dict[str, Any]:
    """A minimal valid body (required fields only) for a body model; a model whose
    JSON schema carries examples (one field of several required) starts from the first."""
    schema, defs = model_schema(model)
    return {**sample_object(schema, defs), **(schema.get("examples") or [{}])[0]}


# -------------------------------------------------------------------- mutations


@dataclass(frozen=True)
class Mutation:
    label: str
    #: the field path the refusal must name (camelCase, dotted), when there is one
    field: str | None = None
    json_body: Any = None
    raw: bytes | None = None
    content_type: str = "application/json"


def _set(body: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(body)
    target = out
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value
    return out


def _remove(body: dict[str, Any], path: list[str]) -> dict[str, Any]:
    out = copy.deepcopy(body)
    target = out
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return out


def _wrong_values(options: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    kinds = {o.get("type") for o in options}
    if not kinds or (None in kinds and not any("enum" in o or "const" in o for o in options)):
        return []  # free-form (Any): nothing is the wrong type
    wrong: list[tuple[str, Any]] = []
    if "object" not in kinds:
        wrong.append(("an object", {"unexpected": {"nested": True}}))
    if "array" not in kinds:
        wrong.append(("an array", [["nested"], {"x": 1}]))
    if kinds <= {"boolean"}:
        wrong.append(("a word for a boolean", "definitely"))
    if kinds & {"integer", "number"} and "string" not in kinds:
        wrong.append(("a word for a number", "twelve"))
    if kinds == {"string"} and not {o.get("format") for o in options} & {"date-time", "date"}:
        wrong.append(("a number for a string", 12345))
    return wrong


def field_mutations(
    schema: dict[str, Any], defs: dict[str, Any], base: dict[str, Any], prefix: list[str]
) -> Iterator[Mutation]:
    schema = _resolve(schema, defs)
    required = set(schema.get("required", ()))
    for name, prop in schema.get("properties", {}).items():
        path = [*prefix, name]
        dotted = ".".join(path)
        options = _alternatives(prop, defs)
        for what, value in _wrong_values(options):
            yield Mutation(f"{dotted}: {what}", dotted, _set(base, path, value))
        for option in options:
            if option.get("type") == "string" and "enum" not in option:
                yield Mutation(f"{dotted}: 100k characters", dotted, _set(base, path, HUGE))
                yield Mutation(f"{dotted}: a NUL character", dotted, _set(base, path, "a\x00b"))
                break
        for option in options:
            items = _alternatives(option.get("items", {}), defs) if "items" in option else []
            if option.get("type") == "array" and items:
                yield Mutation(f"{dotted}: a wrong item", dotted, _set(base, path, [[["x"]]]))
                if any(i.get("type") == "string" for i in items):
                    yield Mutation(f"{dotted}: a 100k item", dotted, _set(base, path, [HUGE]))
                break
        if any("enum" in o for o in options):
            yield Mutation(f"{dotted}: unknown enum value", dotted, _set(base, path, UNKNOWN_ENUM))
        for option in options:
            if option.get("type") in ("integer", "number"):
                yield Mutation(f"{dotted}: huge number", dotted, _set(base, path, 10**30))
                yield Mutation(f"{dotted}: -huge number", dotted, _set(base, path, -(10**30)))
                if "maximum" in option:
                    too_big = option["maximum"] + 1
                    yield Mutation(f"{dotted}: above maximum", dotted, _set(base, path, too_big))
                if "minimum" in option:
                    too_small = option["minimum"] - 1
                    yield Mutation(f"{dotted}: below minimum", dotted, _set(base, path, too_small))
                break
        if not _nullable(prop, defs) and options:
            yield Mutation(f"{dotted}: null", dotted, _set(base, path, None))
        if name in required:
            yield Mutation(f"{dotted}: missing", dotted, _remove(base, path))
        nested = [o for o in options if "properties" in o]
        if nested and len(prefix) < 2:
            inner = sample_object(nested[0], defs)
            nested_base = _set(base, path, inner)
            yield Mutation(
                f"{dotted}: unknown extra field",
                dotted,
                _set(nested_base, [*path, "unexpectedField"], "x"),
            )
            yield from field_mutations(nested[0], defs, nested_base, path)


def mutations_for(route: APIRoute) -> list[Mutation]:
    model = body_model(route)
    if model is None:
        return []
    base = sample_body(model)
    out = [
        Mutation("malformed JSON", raw=b'{"name": "unterminated'),
        Mutation("JSON with a trailing comma", raw=b'{"a": 1,}'),
        Mutation("a JSON array", json_body=[base]),
        Mutation("a JSON string", json_body="just text"),
        Mutation("a JSON number", json_body=42),
        Mutation("form data", raw=b"a=1&b=2", content_type="application/x-www-form-urlencoded"),
        Mutation(
            "JSON sent as text/plain", raw=json.dumps(base).encode(), content_type="text/plain"
        ),
        Mutation("invalid UTF-8", raw=b'{"name": "\xff\xfe"}'),
        Mutation("unknown extra field", "unexpectedField", {**base, "unexpectedField": 1}),
    ]
    if body_required(route):
        out.append(Mutation("an empty body", raw=b""))
        if base:
            out.append(Mutation("an empty object", json_body={}))
    schema, defs = model_schema(model)
    out.extend(field_mutations(schema, defs, base, []))
    return out


# ---------------------------------------------------------------- DB fingerprint


Fingerprint = dict[str, dict[str, str]]


def fingerprint(db: Database) -> Fingerprint:
    """Every row of every table, keyed by primary key, as a hash of its values."""
    result: Fingerprint = {}
    with db.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            rows: dict[str, str] = {}
            for row in conn.execute(select(table)).mappings():
                key = "|".join(str(row[c.name]) for c in table.primary_key.columns)
                value = json.dumps({k: str(v) for k, v in row.items()}, sort_keys=True)
                rows[key] = hashlib.sha256(value.encode()).hexdigest()
            result[table.name] = rows
    return result


def fingerprint_diff(before: Fingerprint, after: Fingerprint) -> dict[str, dict[str, list[str]]]:
    diff: dict[str, dict[str, list[str]]] = {}
    for table in before.keys() | after.keys():
        old, new = before.get(table, {}), after.get(table, {})
        changes = {
            "added": sorted(new.keys() - old.keys()),
            "removed": sorted(old.keys() - new.keys()),
            "changed": sorted(k for k in old.keys() & new.keys() if old[k] != new[k]),
        }
        if any(changes.values()):
            diff[table] = {k: v for k, v in changes.items() if v}
    return diff


# ------------------------------------------------------------------------ fixtures


@dataclass
class Scene:
    tenant: Tenant
    root_headers: dict[str, str]
    #: an existing row id per table name, for path parameters
    ids: dict[str, str]


@pytest.fixture
def scene(world: World, client: httpx.Client, db: Database) -> Scene:
    tenant = world.org("badinput")
    headers = tenant.admin.headers
    agent = world.user(tenant.id, Role.AGENT, email="agent@badinput.example", login=False)
    dept = client.post("/api/departments", json={"name": "Facilities"}, headers=headers)
    assert dept.status_code == 201, dept.text
    token = client.post(
        "/api/api-tokens", json={"name": "ci", "scopes": ["users:read"]}, headers=headers
    )
    assert token.status_code == 201, token.text
    ids = {
        "users": str(agent.id),
        "departments": dept.json()["data"]["id"],
        "api_tokens": token.json()["data"]["id"],
        "organizations": str(tenant.id),
    }
    return Scene(tenant=tenant, root_headers=world.super_admin().headers, ids=ids)


def path_for(route: APIRoute, ids: dict[str, str]) -> str:
    """The route's path with an existing row of the table its first segment names."""
    segment = route.path.removeprefix("/api/").split("/", 1)[0].replace("-", "_")
    return fill_path(route, ids.get(segment, str(uuid.uuid4())))


# --------------------------------------------------------------------------- tests


def _send(
    client: httpx.Client, method: str, path: str, headers: dict[str, str], mutation: Mutation
) -> httpx.Response:
    sent = {**headers, "content-type": mutation.content_type}
    if mutation.raw is not None:
        return client.request(method, path, content=mutation.raw, headers=sent)
    return client.request(method, path, content=json.dumps(mutation.json_body), headers=sent)


def _named(error: dict[str, Any], field: str) -> bool:
    details = error.get("details")
    entries = details if isinstance(details, list) else [details]
    wanted = {field, _snake_path(field)}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        named = str(entry.get("field") or "")
        if any(named == w or named.startswith(w + ".") for w in wanted):
            return True
    return False


def _snake_path(dotted: str) -> str:
    return ".".join(re.sub(r"(?<!^)([A-Z])", r"_\1", part).lower() for part in dotted.split("."))


def test_write_routes_are_discovered(app: FastAPI) -> None:
    routes = {f"{m} {r.path}" for m, r in write_routes(app)}
    assert {"POST /api/users", "PATCH /api/users/{id}", "DELETE /api/departments/{id}"} <= routes
    assert len(routes) > 15, routes


def test_every_body_model_has_a_valid_sample(app: FastAPI) -> None:
    """The mutations start from a valid body; otherwise they would test nothing."""
    problems = []
    for method, route in write_routes(app):
        model = body_model(route)
        if model is None:
            continue
        try:
            model.model_validate(sample_body(model))
        except ValidationError as exc:
            problems.append(f"{method} {route.path}: add FIELD_EXAMPLES for {exc.errors()}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("caller", ["org_admin", "super_admin"])
def test_bad_bodies_are_refused_without_changes(
    app: FastAPI, client: httpx.Client, db: Database, scene: Scene, caller: str
) -> None:
    headers = scene.tenant.admin.headers if caller == "org_admin" else scene.root_headers
    problems: list[str] = []
    sent = 0
    before = fingerprint(db)  # each route's "after" is the next one's "before"
    for method, route in write_routes(app):
        mutations = mutations_for(route)
        if not mutations:
            continue
        path = path_for(route, scene.ids)
        for mutation in mutations:
            response = _send(client, method, path, headers, mutation)
            sent += 1
            where = f"{method} {route.path} [{mutation.label}] -> {response.status_code}"
            if not 400 <= response.status_code < 500:
                problems.append(f"{where}: {response.text[:300]}")
                continue
            try:
                error = assert_error(response, response.status_code)
            except AssertionError as exc:
                problems.append(f"{where}: not the error shape: {exc}")
                continue
            if response.status_code == 422 and mutation.field and not _named(error, mutation.field):
                problems.append(f"{where}: refusal does not name {mutation.field}: {error}")
        after = fingerprint(db)
        diff = fingerprint_diff(before, after)
        if diff:
            problems.append(f"{method} {route.path}: bad input changed the database: {diff}")
        before = after
    assert sent > 200, sent
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


@pytest.mark.parametrize("caller", ["org_admin", "super_admin"])
def test_bad_path_parameters_are_refused(
    app: FastAPI, client: httpx.Client, db: Database, scene: Scene, caller: str
) -> None:
    headers = scene.tenant.admin.headers if caller == "org_admin" else scene.root_headers
    before = fingerprint(db)
    problems = []
    for method, route in write_routes(app):
        if not path_param_names(route):
            continue
        model = body_model(route)
        body = sample_body(model) if model else None
        for bad in ("not-a-uuid", "1", "x" * 2000, "%00", "..%2f..%2fetc"):
            response = client.request(method, fill_path(route, bad), json=body, headers=headers)
            where = f"{method} {route.path} [{bad[:20]}] -> {response.status_code}"
            if not 400 <= response.status_code < 500:
                problems.append(f"{where}: {response.text[:300]}")
                continue
            try:
                assert_error(response, response.status_code)
            except AssertionError as exc:
                problems.append(f"{where}: not the error shape: {exc}")
    assert not problems, "\n".join(problems)
    assert fingerprint_diff(before, fingerprint(db)) == {}


#: values for query parameters that no route should answer with a server error
BAD_QUERY_VALUES = [
    "a\x00b",
    "x" * 5000,
    "not-a-number-or-id",
    str(10**30),
    "-1",
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-05:00",
    "2031-01-01T00:00:00",
    "%",
    "_",
    "\\",
    "'; DROP TABLE users; --",
    "\u202e\U0001f600",
]


def test_bad_query_parameters_never_fail(app: FastAPI, client: httpx.Client, scene: Scene) -> None:
    """Every query parameter of every GET route (dependencies included) with values
    that are wrong in type, range or content: a 2xx or a 4xx in the error shape."""
    problems = []
    sent = 0
    for route in api_routes(app):
        if "GET" not in (route.methods or ()) or not route.path.startswith("/api/"):
            continue
        if route.path.startswith("/api/v1/"):
            continue
        path = path_for(route, scene.ids)
        for name in query_param_names(route):
            if name == "organizationId":
                continue
            for value in BAD_QUERY_VALUES:
                response = client.get(
                    path, params={name: value}, headers=scene.tenant.admin.headers
                )
                sent += 1
                where = f"GET {route.path}?{name}={value[:30]!r} -> {response.status_code}"
                if response.status_code >= 500:
                    problems.append(f"{where}: {response.text[:300]}")
                elif response.status_code >= 400:
                    try:
                        assert_error(response, response.status_code)
                    except AssertionError as exc:
                        problems.append(f"{where}: not the error shape: {exc}")
    assert sent > 100, sent
    assert not problems, "\n".join(problems)


def query_param_names(route: APIRoute) -> list[str]:
    """Query parameters on the wire, those of the route's dependencies included."""
    names: list[str] = []
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        names += [p.alias for p in dependant.query_params]
        pending += dependant.dependencies
    return names


# ---------------------------------------------------------------- auth bookkeeping


def test_failed_sign_in_records_only_its_own_bookkeeping(
    client: httpx.Client, db: Database, scene: Scene
) -> None:
    """The one kind of refused request that writes: a well-formed login with a wrong
    password records an audit event and counts the failure against the account."""
    before = fingerprint(db)
    response = client.post(
        "/api/auth/login", json={"email": "agent@badinput.example", "password": "wrong"}
    )
    assert_error(response, 401)
    diff = fingerprint_diff(before, fingerprint(db))
    assert set(diff) <= {"audit_events", "users", "change_counters"}, diff
    assert list(diff["audit_events"]) == ["added"]
    assert len(diff["audit_events"]["added"]) == 1
    assert diff.get("users", {}) in ({}, {"changed": [scene.ids["users"]]}), diff
    with db.engine.connect() as conn:
        from server.audit.models import AuditEvent

        event = conn.execute(
            select(AuditEvent.__table__).where(
                AuditEvent.__table__.c.id == uuid.UUID(diff["audit_events"]["added"][0])
            )
        ).one()
    assert event.action == "auth.login_failed"


# ------------------------------------------------------------------------- size cap


def _big_json(size: int) -> bytes:
    return b'{"email": "a@example.org", "firstName": "' + b"x" * size + b'"}'


def test_body_over_the_cap_with_content_length(
    client: httpx.Client, db: Database, scene: Scene, settings: Any
) -> None:
    cap = settings.max_body_bytes
    before = fingerprint(db)
    headers = {**scene.tenant.admin.headers, "content-type": "application/json"}
    response = client.post("/api/users", content=_big_json(cap + 1), headers=headers)
    assert "content-length" in {k.lower() for k in response.request.headers}
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    response = client.post(
        "/api/auth/login", content=_big_json(cap), headers={"content-type": "application/json"}
    )
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    # A route that reads no body refuses a declared oversized one before it runs.
    path = f"/api/departments/{scene.ids['departments']}"
    response = client.request("DELETE", path, content=b"x" * (cap + 1), headers=headers)
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert fingerprint_diff(before, fingerprint(db)) == {}
    # Just under the cap is read and validated (the name is too long, not the body).
    response = client.post("/api/users", content=_big_json(cap - 100), headers=headers)
    assert_error(response, 422, "VALIDATION_ERROR")


def test_body_over_the_cap_when_chunked(
    client: httpx.Client, db: Database, scene: Scene, settings: Any
) -> None:
    cap = settings.max_body_bytes
    before = fingerprint(db)
    body = _big_json(cap + 1)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    headers = {**scene.tenant.admin.headers, "content-type": "application/json"}
    response = client.post("/api/users", content=chunks(), headers=headers)
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    response = client.post(
        "/api/auth/login", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert fingerprint_diff(before, fingerprint(db)) == {}
