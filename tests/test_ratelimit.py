"""Rate limits per endpoint class, with the documented headers and error."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from common.enums import Role
from server.core.config import Settings
from server.core.ratelimit import RateLimiter, classify
from tests.conftest import PASSWORD, World, assert_error


def _limited(app, settings: Settings, **rates: str) -> None:
    app.state.rate_limiter = RateLimiter(settings.model_copy(update=rates))


def test_reads_are_limited_per_user_with_headers(
    world: World, client: httpx.Client, app, settings
) -> None:
    tenant = world.org("alpha")
    agent = world.user(tenant.id, Role.AGENT)
    _limited(app, settings, rate_limit_read="3/600")
    remaining = []
    for _ in range(3):
        response = client.get("/api/users", headers=tenant.admin.headers)
        assert response.status_code == 200
        assert response.headers["x-ratelimit-limit"] == "3"
        remaining.append(int(response.headers["x-ratelimit-remaining"]))
        assert int(response.headers["x-ratelimit-reset"]) > time.time()
    assert remaining == [2, 1, 0]
    refused = client.get("/api/users", headers=tenant.admin.headers)
    error = assert_error(refused, 429, "RATE_LIMIT_EXCEEDED")
    assert 1 <= int(refused.headers["retry-after"]) <= 600
    assert error["details"]["limit"] == 3
    # another user has a budget of their own
    assert client.get("/api/users", headers=agent.headers).status_code == 200
    # writes are a different class
    created = client.post("/api/departments", headers=tenant.admin.headers, json={"name": "Tech"})
    assert created.status_code == 201, created.text


def test_sign_in_is_throttled_per_account_and_per_address(
    world: World, client: httpx.Client, app, settings
) -> None:
    tenant = world.org("alpha")
    other = world.user(tenant.id, Role.AGENT, login=False)
    _limited(app, settings, rate_limit_login_account="2/600", rate_limit_login_address="3/600")
    wrong = {"email": tenant.admin.email, "password": "not-the-password"}
    assert client.post("/api/auth/login", json=wrong).status_code == 401
    assert client.post("/api/auth/login", json=wrong).status_code == 401
    # the right password does not help once the account's budget is spent
    right = {"email": tenant.admin.email, "password": PASSWORD}
    assert_error(client.post("/api/auth/login", json=right), 429, "RATE_LIMIT_EXCEEDED")
    # another account from the same address still has the address budget (3): this is the last
    assert (
        client.post(
            "/api/auth/login", json={"email": other.email, "password": PASSWORD}
        ).status_code
        == 200
    )
    assert_error(
        client.post("/api/auth/login", json={"email": other.email, "password": PASSWORD}), 429
    )


def test_a_process_enforces_its_share_of_the_budget(settings: Settings) -> None:
    limiter = RateLimiter(settings.model_copy(update={"rate_limit_read": "10/60", "workers": 2}))
    now = 1_000_000.0
    results = [limiter.hit("read", "user:1", now=now) for _ in range(6)]
    assert [r.allowed for r in results] == [True] * 5 + [False]
    assert results[0].limit == 10, "headers report the whole budget, not the share"
    assert results[0].remaining == 8
    # a new window starts afresh
    assert limiter.hit("read", "user:1", now=now + 60).allowed


def test_disabled_limits_never_refuse(settings: Settings) -> None:
    limiter = RateLimiter(
        settings.model_copy(update={"rate_limit_read": "1/60", "rate_limit_enabled": False})
    )
    assert all(limiter.hit("read", "u", now=5.0).allowed for _ in range(10))


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/api/auth/login", "auth"),
        ("GET", "/api/users", "read"),
        ("PATCH", "/api/users/1", "write"),
        ("POST", "/api/tickets/search", "search"),
        ("POST", "/api/uploads/presign", "upload"),
        ("POST", "/api/tickets/1/attachments", "upload"),
        ("GET", "/api/reports/sla", "reports"),
    ],
)
def test_endpoint_classes(method: str, path: str, expected: str) -> None:
    assert classify(method, path) == expected


@pytest.fixture
def redis_url() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (.ci/run installs it)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def test_processes_share_one_budget_through_redis(settings: Settings, redis_url: str) -> None:
    shared = settings.model_copy(
        update={"rate_limit_read": "4/60", "redis_url": redis_url, "workers": 4}
    )
    first, second = RateLimiter(shared), RateLimiter(shared)
    now = time.time()
    allowed = [lim.hit("read", "user:7", now=now).allowed for lim in (first, second) * 3]
    # four requests in all, wherever they land, then refusals: the budget is not divided
    assert allowed == [True, True, True, True, False, False]
