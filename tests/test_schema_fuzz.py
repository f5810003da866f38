"""Schema-driven fuzzing of every operation in /api/openapi.json against the live server.

Schemathesis generates requests (valid and invalid) from the published schema and sends
them to the real uvicorn server on loopback, signed in as an organization administrator
and, in a second pass, as a platform administrator. Every response must be free of
server errors and must match what the schema documents: status code, content type and
body. A route added later is fuzzed by these tests without any change here.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from common.enums import Role
from server.core.routing import api_routes
from tests.conftest import World

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = int(os.environ.get("RESOLVE_FUZZ_EXAMPLES", "12"))
#: Routes whose side effects would end the fuzzing session itself: sent without the
#: caller's token, so a generated logout cannot revoke it.
UNAUTHENTICATED_PREFIXES = ("/api/auth/login", "/api/auth/logout", "/api/auth/refresh")


@pytest.fixture
def api_schema(server_url: str) -> Any:
    return schemathesis.openapi.from_url(f"{server_url}/api/openapi.json")


@pytest.fixture
def fuzz_headers(world: World) -> dict[str, dict[str, str]]:
    """Callers for each pass; the organization gets some rows for the generator to meet."""
    tenant = world.org("fuzz")
    world.user(tenant.id, Role.AGENT, email="agent@fuzz.example", login=False)
    root = world.super_admin()
    return {"org_admin": tenant.admin.headers, "super_admin": root.headers}


def _fuzz_operation(
    operation: Any,
    mode: GenerationMode,
    server_url: str,
    headers: dict[str, str],
    statuses: Counter[int],
) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
    )
    def run(case: Any) -> None:
        response = case.call_and_validate(base_url=server_url, headers=headers, checks=CHECKS)
        statuses[response.status_code] += 1

    try:
        run()
    except Unsatisfiable:
        # Nothing can be generated in this mode (no parameters to break): nothing to test.
        assert mode is GenerationMode.NEGATIVE, operation.label


def _fuzz(schema: Any, server_url: str, headers: dict[str, str]) -> list[str]:
    """Fuzz every operation in both generation modes; return one entry per failure."""
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 10, "the schema lists too few operations"
    for operation in operations:
        sent = {} if operation.path.startswith(UNAUTHENTICATED_PREFIXES) else headers
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz_operation(operation, mode, server_url, sent, statuses)
            except (Exception, BaseExceptionGroup) as exc:  # report it, fuzz the next one
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    # The fuzzer must get past authentication and validation, not only collect 4xx.
    assert sum(n for status, n in statuses.items() if 200 <= status < 300) > 20, statuses
    return failures


def test_fuzz_as_org_admin(
    api_schema: Any, server_url: str, fuzz_headers: dict[str, dict[str, str]]
) -> None:
    failures = _fuzz(api_schema, server_url, fuzz_headers["org_admin"])
    assert not failures, "\n\n".join(failures)


def test_fuzz_as_super_admin(
    api_schema: Any, server_url: str, fuzz_headers: dict[str, dict[str, str]]
) -> None:
    failures = _fuzz(api_schema, server_url, fuzz_headers["super_admin"])
    assert not failures, "\n\n".join(failures)


def test_schema_lists_every_api_route(client: httpx.Client, app: Any) -> None:
    """The fuzzer only reaches what the schema publishes: every /api route must be in it."""
    paths = client.get("/api/openapi.json").json()["paths"]
    missing = []
    checked = 0
    for route in api_routes(app):
        if not route.include_in_schema:
            continue
        if not route.path.startswith("/api/") or route.path.startswith("/api/v1/"):
            continue
        for method in (route.methods or set()) - {"HEAD", "OPTIONS"}:
            checked += 1
            if method.lower() not in paths.get(route.path, {}):
                missing.append(f"{method} {route.path}")
    assert checked > 20, checked
    assert not missing, missing
