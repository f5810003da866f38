"""The cross-tenant test: nothing of organization A is visible or writable from B.

Two organizations are built through the API (users of every role, departments, API
tokens, sessions, resets, invitations, audit events, sites...), so every tenant table has
rows of both; A's names and emails carry the marker ``alphasecret``. Every id of A's
rows is collected from every table that has an ``organization_id`` column (and the
tables that hang off those rows by foreign key). Then EVERY route the application
registers under /api is walked automatically, so a route added later joins the test by
itself:

(a) routes with path parameters, for every method, with each of A's ids, as B's
    org_admin, agent, requester and API token: never 2xx, never a byte of A's data,
    and the same answer as for an id that does not exist (another tenant's row is
    "not found", not "forbidden"); A's rows are unchanged afterwards;
(b) GET routes without path parameters, also with A's ids in every id-typed query
    parameter: no A id and no A marker in the body;
(c) ``organizationId=<A>`` (query parameter, and body field where a model has one) as
    a B user: 403 PERMISSION_DENIED on every route that takes it;
(d) a super admin acting on A (``organizationId=A``) sees A's data and none of B's.

``test_walker_catches_a_route_that_forgot_scoping`` adds an unscoped route to a copy of
the application and checks that the walker reports it.
"""

from __future__ import annotations

import re
import typing
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Query
from fastapi.routing import APIRoute
from sqlalchemy import select

from common.enums import Role
from server.app import create_app
from server.auth.deps import RequestContext, access
from server.core.engine import Database
from server.core.routing import api_routes
from server.core.tenancy import ALL_TENANTS, bind_tenant
from server.jobs import deliver_email
from server.models import Base
from server.users.models import User
from tests.conftest import PASSWORD, Tenant, World
from tests.tenancy_seed import DomainSeed
from tests.test_bad_input import body_model, fill_path, path_param_names, sample_body

ALPHA = "alphasecret"
BRAVO = "bravoprivate"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
#: Collections that belong to the platform rather than a tenant: a super admin lists
#: every organization whichever organization they act on.
PLATFORM_COLLECTIONS = {"/api/organizations"}
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


# ------------------------------------------------------------------------ the world


@dataclass
class Org:
    tenant: Tenant
    marker: str
    #: caller name -> request headers
    callers: dict[str, dict[str, str]]
    emails: list[str]
    #: table -> primary keys (as text) of this organization's rows
    rows: dict[str, set[str]] = field(default_factory=dict)

    @property
    def ids(self) -> set[str]:
        return {key for keys in self.rows.values() for key in keys}

    @property
    def uuid_ids(self) -> list[str]:
        return sorted(i for i in self.ids if UUID_RE.match(i))

    def leaks(self, response: httpx.Response, sent: Iterable[str] = ()) -> list[str]:
        """Pieces of this organization's data in a response (the values sent excluded)."""
        text = (response.text + " " + str(dict(response.headers))).lower()
        for value in sent:
            text = text.replace(value.lower(), "")
        found = [self.marker] if self.marker in text else []
        for key in self.ids:
            if key.lower() in text or (UUID_RE.match(key) and key.replace("-", "") in text):
                found.append(key)
        return found


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.request.url}: {response.text}"
    return response.json()["data"] if response.content else None


def build_org(world: World, client: httpx.Client, db: Database, marker: str) -> Org:
    """An organization with rows in every tenant table, made through the API."""
    tenant = world.org(marker, name=f"{marker.title()} District")
    admin = tenant.admin.headers
    _ok(
        client.patch(
            f"/api/organizations/{tenant.id}",
            json={
                "domains": [f"{marker}.example"],
                "contactEmail": f"contact@{marker}.example",
                "address": f"1 {marker} road",
            },
            headers=admin,
        )
    )
    dept = _ok(
        client.post(
            "/api/departments",
            json={
                "name": f"{marker} Facilities",
                "code": marker[:8],
                "email": f"facilities@{marker}.example",
                "description": f"{marker} department",
            },
            headers=admin,
        ),
        201,
    )
    users: dict[str, dict[str, Any]] = {}
    for role in (Role.AGENT, Role.TECHNICIAN, Role.REQUESTER, Role.ORG_ADMIN):
        users[role.value] = _ok(
            client.post(
                "/api/users",
                json={
                    "email": f"{role.value}@{marker}.example",
                    "firstName": marker,
                    "lastName": role.value,
                    "role": role.value,
                    "password": PASSWORD,
                    "departmentId": dept["id"],
                    "jobTitle": f"{marker} {role.value}",
                },
                headers=admin,
            ),
            201,
        )
    # An invitation: outbox email and a password token.
    _ok(
        client.post(
            "/api/users",
            json={"email": f"invited@{marker}.example", "firstName": marker},
            headers=admin,
        ),
        201,
    )
    _ok(
        client.patch(
            f"/api/departments/{dept['id']}",
            json={"managerId": users["agent"]["id"]},
            headers=admin,
        )
    )
    token = _ok(
        client.post(
            "/api/api-tokens",
            json={"name": f"{marker} integration", "scopes": ["*"]},
            headers=admin,
        ),
        201,
    )
    _ok(client.patch("/api/security/settings", json={"sessionTimeoutMinutes": 600}, headers=admin))
    # Sessions and refresh tokens, a refresh, a failed sign-in, a password reset.
    callers = {"org_admin": admin, "api_token": {"Authorization": f"Bearer {token['token']}"}}
    for name in ("agent", "technician", "requester"):
        callers[name] = world.login(f"{name}@{marker}.example")
    signed_in = _ok(
        client.post(
            "/api/auth/login", json={"email": f"org_admin@{marker}.example", "password": PASSWORD}
        )
    )
    _ok(client.post("/api/auth/refresh", json={"refreshToken": signed_in["refreshToken"]}))
    failed = client.post(
        "/api/auth/login", json={"email": f"requester@{marker}.example", "password": "wrong-1"}
    )
    assert failed.status_code == 401, failed.text
    _ok(
        client.post(
            "/api/auth/password-reset/request", json={"email": f"technician@{marker}.example"}
        ),
        202,
    )
    deliver_email(db, world.settings)  # the outbox job writes the reset token and mail
    _seed_without_routes(db, tenant.id, marker)
    domain = DomainSeed(
        client=client, world=world, db=db, marker=marker, tenant_id=tenant.id,
        admin=admin, callers=callers, users=users, department=dept,
    )  # fmt: skip
    for module in domain_seeders():
        module.seed(domain)
    emails = [tenant.admin.email, f"invited@{marker}.example"]
    emails += [f"{role}@{marker}.example" for role in users]
    return Org(tenant=tenant, marker=marker, callers=callers, emails=emails)


def domain_seeders() -> list[Any]:
    """One module per domain in tests/tenancy_seed/, run in name order: each gives
    its tables rows for the organization being built."""
    import importlib
    import pkgutil

    import tests.tenancy_seed as package

    names = sorted(m.name for m in pkgutil.iter_modules(package.__path__))
    return [importlib.import_module(f"tests.tenancy_seed.{name}") for name in names]


def _seed_without_routes(db: Database, org_id: uuid.UUID, marker: str) -> None:
    """Tables that have no API yet get rows straight through the models."""
    from server.sites.models import Building, Room, Site

    with db.transaction(tenant=org_id) as session:
        site = Site(name=f"{marker} High School", code=marker[:8], address=f"2 {marker} road")
        session.add(site)
        session.flush()
        building = Building(site_id=site.id, name=f"{marker} Main Building")
        session.add(building)
        session.flush()
        session.add(Room(building_id=building.id, number="101", name=f"{marker} lab"))


def collect_rows(db: Database, org_id: uuid.UUID) -> dict[str, set[str]]:
    """Primary keys of the organization's rows in every table: tables with an
    ``organization_id`` column, then rows reached from those by foreign key."""
    owned: dict[str, set[Any]] = {"organizations": {org_id}}
    tables = Base.metadata.sorted_tables
    with db.engine.connect() as conn:
        for table in tables:
            if "organization_id" not in table.c:
                continue
            key = list(table.primary_key.columns)
            rows = conn.execute(select(*key).where(table.c.organization_id == org_id)).all()
            owned.setdefault(table.name, set()).update(
                row[0] if len(key) == 1 else "|".join(map(str, row)) for row in rows
            )
        grown = True
        while grown:
            grown = False
            for table in tables:
                key = list(table.primary_key.columns)
                if "organization_id" in table.c or table.name == "organizations" or len(key) != 1:
                    continue
                for fk in table.foreign_keys:
                    parents = owned.get(fk.column.table.name)
                    if not parents or not fk.column.primary_key:
                        continue
                    found = conn.execute(select(key[0]).where(fk.parent.in_(parents))).scalars()
                    new = set(found) - owned.get(table.name, set())
                    if new:
                        owned.setdefault(table.name, set()).update(new)
                        grown = True
    return {name: {str(v) for v in values} for name, values in owned.items()}


@dataclass
class Scene:
    a: Org
    b: Org
    root: dict[str, str]


@pytest.fixture
def scene(world: World, client: httpx.Client, db: Database) -> Scene:
    a = build_org(world, client, db, ALPHA)
    b = build_org(world, client, db, BRAVO)
    a.rows = collect_rows(db, a.tenant.id)
    b.rows = collect_rows(db, b.tenant.id)
    return Scene(a=a, b=b, root=world.super_admin().headers)


# ------------------------------------------------------------------------- the walker


def tenant_routes(app: FastAPI) -> list[APIRoute]:
    return [
        r
        for r in api_routes(app)
        if r.path.startswith("/api/")
        and not r.path.startswith(("/api/v1/", "/api/docs"))
        and r.path != "/api/openapi.json"
    ]


def _methods(route: APIRoute) -> list[str]:
    return [m for m in METHODS if m in (route.methods or ())]


def _query_params(route: APIRoute) -> list[tuple[str, Any]]:
    """(name on the wire, annotation) of every query parameter, dependencies included."""
    found: list[tuple[str, Any]] = []
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        found += [(p.alias, p.field_info.annotation) for p in dependant.query_params]
        pending += dependant.dependencies
    return found


def _takes_uuid(annotation: Any) -> bool:
    """A UUID, or an optional one, or a list of them (``?teamId=a&teamId=b``)."""
    return annotation is uuid.UUID or any(_takes_uuid(a) for a in typing.get_args(annotation))


def _takes_text(annotation: Any) -> bool:
    return annotation is str or (str in typing.get_args(annotation))


def _body(route: APIRoute, method: str) -> Any:
    if method in ("GET", "DELETE"):
        return None
    model = body_model(route)
    return sample_body(model) if model is not None else None


def _request(
    client: httpx.Client,
    method: str,
    path: str,
    headers: dict[str, str],
    body: Any = None,
    params: dict[str, str] | None = None,
) -> httpx.Response:
    return client.request(
        method, path, headers=headers, json=body, params=params, follow_redirects=False
    )


#: Id parameters (path or query) whose table their name does not give; every other
#: ``fooId`` / ``{id}`` after ``/foos`` names the table ``foos`` (see ``id_tables``).
ID_TABLES: dict[str, tuple[str, ...]] = {
    "asset_statuses": ("asset_status_labels",),
    "blocker": ("tickets",),
    "review": ("stock_movements",),
    "actor": ("users",),
    "assignee": ("users",),
    "requester": ("users",),
    "holder_user": ("users",),
    "assigned_person": ("people",),
    "source": ("tickets", "purchase_orders"),
}
#: ids each caller after the first sends to a parameter: the first (an organization
#: administrator, who reaches the most) sends every id of the parameter's table
OTHER_CALLERS_IDS = 3


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).replace("-", "_").lower()


def id_tables(route_path: str, param: str) -> tuple[str, ...]:
    """The tables whose ids the parameter ``param`` of ``route_path`` takes: named by
    the parameter (``userId`` -> users) or, for ``{id}`` and ``id``, by the path
    segment before it (``/api/rooms/{id}`` -> rooms). Empty when nothing matches."""
    word = _snake(param).removesuffix("_id")
    if word == "id":
        head = route_path.split("{" + param, 1)[0]
        word = _snake(head.rstrip("/").rsplit("/", 1)[-1])
    if word in ID_TABLES:
        return ID_TABLES[word]
    names = [t.name for t in Base.metadata.sorted_tables]
    forms = {word, word + "s"}
    return tuple(n for n in names if n in forms or any(n.endswith("_" + f) for f in forms))


def _ids_of(org: Org, tables: Iterable[str]) -> list[str]:
    return sorted({key for table in tables for key in org.rows.get(table, ()) if "/" not in key})


def walk_path_routes(
    client: httpx.Client, routes: list[APIRoute], attacker: Org, victim: Org, callers: list[str]
) -> list[str]:
    """(a): the victim's ids in every path parameter of every route, every method.

    Each parameter gets the ids of the table it names (the others filled with one of
    the victim's rows of theirs): every such id from the first caller, a few from the
    others, and from the first caller also one id of every other table, in case a
    route takes ids of a table its name does not say. A route whose parameter names
    no table gets every id the victim has."""
    problems: list[str] = []
    every_id = sorted(k for k in victim.ids if "/" not in k)
    one_per_table = sorted({min(keys) for keys in victim.rows.values() if keys} & set(every_id))
    for route in routes:
        params = path_param_names(route)
        if not params:
            continue
        own = {p: _ids_of(victim, id_tables(route.path, p)) or every_id for p in params}
        for method in _methods(route):
            body = _body(route, method)
            for caller in callers:
                headers = attacker.callers[caller]
                label = f"{method} {route.path} as {attacker.marker}'s {caller}"
                nowhere = str(uuid.uuid4())
                baseline = _request(client, method, fill_path(route, nowhere), headers, body)
                if baseline.status_code < 300:
                    problems.append(f"{label}: a row that does not exist gave {baseline}")
                for param in params:
                    keys = own[param]
                    if caller == callers[0]:
                        keys = sorted(set(keys) | set(one_per_table))
                    else:
                        keys = keys[:OTHER_CALLERS_IDS]
                    values = {p: own[p][0] for p in params}
                    for key in keys:
                        values[param] = key
                        response = _request(client, method, fill_path(route, values), headers, body)
                        sent = list(values.values())
                        where = (
                            f"{label} with {victim.marker}'s ids {values} -> {response.status_code}"
                        )
                        if response.status_code < 300:
                            problems.append(f"{where}: ANSWERED {response.text[:300]}")
                        if response.status_code >= 500:
                            problems.append(f"{where}: server error")
                        if UUID_RE.match(key) and response.status_code != baseline.status_code:
                            problems.append(
                                f"{where}: differs from a missing row ({baseline.status_code}), "
                                "so it reveals that the row exists"
                            )
                        leaked = victim.leaks(response, sent=sent)
                        if leaked:
                            problems.append(f"{where}: LEAKED {leaked[:5]}: {response.text[:300]}")
    return problems


def walk_collections(
    client: httpx.Client,
    routes: list[APIRoute],
    viewer_headers: dict[str, str],
    label: str,
    hidden: Org,
    extra_params: dict[str, str] | None = None,
) -> list[str]:
    """(b): GET routes without path parameters show nothing of ``hidden``, also when the
    query names its ids or searches for its marker."""
    problems: list[str] = []
    for route in routes:
        if path_param_names(route) or "GET" not in (route.methods or ()):
            continue
        attempts: list[dict[str, str]] = [{}]
        for name, annotation in _query_params(route):
            if name == "organizationId":
                continue
            if _takes_uuid(annotation):
                # the ids of the table the parameter names (all of them, if none)
                keys = _ids_of(hidden, id_tables(route.path, name)) or hidden.uuid_ids
                attempts += [{name: key} for key in keys if UUID_RE.match(key)]
            elif _takes_text(annotation) and name not in ("sort",):
                attempts.append({name: hidden.marker[:7]})
        for params in attempts:
            params = {**params, **(extra_params or {})}
            response = _request(client, "GET", route.path, viewer_headers, params=params)
            where = f"GET {route.path}?{params} as {label} -> {response.status_code}"
            if response.status_code >= 500:
                problems.append(f"{where}: server error")
            leaked = hidden.leaks(response, sent=params.values())
            if leaked:
                problems.append(f"{where}: LEAKED {leaked[:5]}: {response.text[:300]}")
    return problems


def check_every_tenant_table_has_rows(scene: Scene) -> None:
    """The walk only proves something for tables it has ids of. A new tenant table
    must get rows in ``build_org`` (through its API, or ``_seed_without_routes``)."""
    for org in (scene.a, scene.b):
        for table in Base.metadata.sorted_tables:
            if "organization_id" in table.c:
                assert org.rows.get(table.name), (
                    f"table {table.name} has no rows of {org.marker}: add some in build_org"
                )
        for name in ("auth_sessions", "refresh_tokens", "password_reset_tokens"):
            assert org.rows.get(name), (name, org.marker)
    assert not scene.a.ids & scene.b.ids
    assert len(scene.a.uuid_ids) > 30


def check_admin_reaches_the_handlers(
    client: httpx.Client, routes: list[APIRoute], org: Org
) -> None:
    """The walk means something only if the admin gets past validation to the lookup:
    for a missing row the answer is 404, or 403 where the role may not call at all."""
    problems = []
    for route in routes:
        if not path_param_names(route):
            continue
        for method in _methods(route):
            path = fill_path(route, str(uuid.uuid4()))
            response = _request(
                client, method, path, org.callers["org_admin"], _body(route, method)
            )
            if response.status_code not in (403, 404):
                problems.append(f"{method} {route.path} -> {response.status_code}: {response.text}")
    assert not problems, "the walker's requests do not reach the handlers:\n" + "\n".join(problems)


# ------------------------------------------------------------------------------ tests


def test_routes_are_discovered(app: FastAPI) -> None:
    paths = {r.path for r in tenant_routes(app)}
    assert {"/api/users/{id}", "/api/departments/{id}", "/api/api-tokens/{id}/revoke"} <= paths
    assert "/api/v1/{path:path}" not in paths


def test_every_id_parameter_names_its_table(app: FastAPI) -> None:
    """The walks send each id parameter the ids of its table; one that names no table
    would get every id of the organization (slow, and a sign of a name to fix or an
    entry for ``ID_TABLES``)."""
    assert id_tables("/api/teams/{id}/members/{userId}", "id") == ("teams",)
    assert id_tables("/api/teams/{id}/members/{userId}", "userId") == ("users",)
    assert id_tables("/api/assets", "statusLabelId") == ("asset_status_labels",)
    unnamed = []
    for route in tenant_routes(app):
        params = list(path_param_names(route))
        if not params and "GET" in (route.methods or ()):
            params = [name for name, annotation in _query_params(route) if _takes_uuid(annotation)]
        unnamed += [f"{route.path} {p}" for p in params if not id_tables(route.path, p)]
    assert not unnamed, unnamed


@pytest.mark.timeout(1200)
def test_other_tenants_rows_are_not_found_by_id(
    app: FastAPI, client: httpx.Client, db: Database, scene: Scene
) -> None:
    from tests.test_bad_input import fingerprint

    routes = tenant_routes(app)
    check_every_tenant_table_has_rows(scene)
    check_admin_reaches_the_handlers(client, routes, scene.b)
    before = fingerprint(db)
    problems = walk_path_routes(
        client, routes, scene.b, scene.a, ["org_admin", "agent", "requester", "api_token"]
    )
    after = fingerprint(db)
    for table, keys in scene.a.rows.items():
        changed = sorted(k for k in keys if before[table].get(k) != after[table].get(k))
        if changed:
            problems.append(f"{ALPHA}'s rows in {table} changed during the walk: {changed}")
    assert not problems, f"{len(problems)} cross-tenant problems:\n" + "\n".join(problems)


@pytest.mark.timeout(1200)
def test_collections_show_nothing_of_another_tenant(
    app: FastAPI, client: httpx.Client, scene: Scene
) -> None:
    problems = []
    for caller in ("org_admin", "agent", "technician", "requester", "api_token"):
        problems += walk_collections(
            client, tenant_routes(app), scene.b.callers[caller], f"{BRAVO}'s {caller}", scene.a
        )
    assert not problems, f"{len(problems)} cross-tenant problems:\n" + "\n".join(problems)


@pytest.mark.timeout(1200)
def test_naming_another_organization_is_refused(
    app: FastAPI, client: httpx.Client, scene: Scene
) -> None:
    """(c) organizationId=A, as a query parameter or a body field, by any B user: 403."""
    other = str(scene.a.tenant.id)
    problems = []
    checked = 0
    for route in tenant_routes(app):
        takes_query = any(name == "organizationId" for name, _ in _query_params(route))
        for method in _methods(route):
            body = _body(route, method)
            path = fill_path(route, str(uuid.uuid4()))
            for caller in ("org_admin", "agent", "technician", "requester", "api_token"):
                headers = scene.b.callers[caller]
                where = f"{method} {route.path} as {BRAVO}'s {caller}"
                attempts: list[tuple[str, dict[str, str] | None, Any]] = []
                if takes_query:
                    attempts.append(("?organizationId", {"organizationId": other}, body))
                if isinstance(body, dict) and _has_org_field(route):
                    attempts.append(
                        ("body organizationId", None, {**body, "organizationId": other})
                    )
                for how, params, sent in attempts:
                    checked += 1
                    response = _request(client, method, path, headers, sent, params)
                    ok = response.status_code == 403 and (
                        response.json().get("error", {}).get("code") == "PERMISSION_DENIED"
                    )
                    if not ok:
                        problems.append(f"{where} {how}: {response.status_code} {response.text}")
                    leaked = scene.a.leaks(response, sent=[other])
                    if leaked:
                        problems.append(f"{where} {how}: LEAKED {leaked[:5]}")
    assert checked > 50, checked
    assert not problems, "\n".join(problems)


def _has_org_field(route: APIRoute) -> bool:
    model = body_model(route)
    return model is not None and "organization_id" in model.model_fields


def test_super_admin_acting_on_one_organization_sees_only_it(
    app: FastAPI, client: httpx.Client, scene: Scene
) -> None:
    """(d) a platform administrator acting on A sees A's rows and nothing of B."""
    response = client.get(
        "/api/users",
        params={"organizationId": str(scene.a.tenant.id), "perPage": 100},
        headers=scene.root,
    )
    assert response.status_code == 200, response.text
    emails = {u["email"] for u in response.json()["data"]}
    assert emails == set(scene.a.emails)
    assert not scene.b.leaks(response)
    acting_on_a = {"organizationId": str(scene.a.tenant.id)}
    routes = [r for r in tenant_routes(app) if r.path not in PLATFORM_COLLECTIONS]
    problems = walk_collections(
        client, routes, scene.root, "a super admin acting on A", scene.b, acting_on_a
    )
    assert not problems, "\n".join(problems)
    # and B's own admin, acting on B, sees its own rows (the marker check is not vacuous)
    own = client.get("/api/users", headers=scene.b.callers["org_admin"], params={"perPage": 100})
    assert {u["email"] for u in own.json()["data"]} == set(scene.b.emails)


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_walker_catches_a_route_that_forgot_scoping(
    settings: Any, db: Database, scene: Scene
) -> None:
    """A route that reads across tenants, added to a copy of the app, is reported."""
    from fastapi.testclient import TestClient

    leaky = create_app(settings, database=db)

    @leaky.get("/api/leaky/users/{id}")
    def leaky_user(ctx: Annotated[RequestContext, access(None)], id: uuid.UUID) -> dict[str, Any]:
        bind_tenant(ctx.session, ALL_TENANTS)  # the mistake
        user = ctx.session.get(User, id)
        return {"data": {"email": user.email} if user else None}

    @leaky.get("/api/leaky-list")
    def leaky_list(ctx: Annotated[RequestContext, access(None)]) -> dict[str, Any]:
        bind_tenant(ctx.session, ALL_TENANTS)
        return {"data": [u.email for u in ctx.session.scalars(select(User)).all()]}

    @leaky.get("/api/leaky/rooms")
    def leaky_rooms(
        ctx: Annotated[RequestContext, access(None)],
        building_id: Annotated[uuid.UUID | None, Query(alias="buildingId")] = None,
    ) -> dict[str, Any]:
        """Only a filter by another tenant's building shows its rooms."""
        from server.sites.models import Room

        bind_tenant(ctx.session, ALL_TENANTS)
        rooms = ctx.session.scalars(select(Room).where(Room.building_id == building_id)).all()
        return {"data": [room.name for room in rooms]}

    routes = [r for r in tenant_routes(leaky) if r.path.startswith("/api/leaky")]
    assert len(routes) == 3
    with TestClient(leaky) as client:
        by_id = walk_path_routes(client, routes, scene.b, scene.a, ["agent"])
        listed = walk_collections(client, routes, scene.b.callers["agent"], "agent", scene.a)
    assert any("ANSWERED" in p and "/api/leaky/users/{id}" in p for p in by_id), by_id
    assert any("LEAKED" in p and "/api/leaky-list" in p for p in listed), listed
    assert any("LEAKED" in p and "/api/leaky/rooms?{'buildingId'" in p for p in listed), listed
