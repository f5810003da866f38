"""Authentication as a user or an integration meets it: sign-in, tokens and their
revocation, refresh rotation, lockout, two-factor sign-in, API tokens, password reset,
invitations and Google domain matching. Every test talks to a real server over HTTP."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pyotp
import pytest
from sqlalchemy import select, update

from common.enums import OrganizationStatus, Role
from server.auth.models import ApiToken, AuthSession, PasswordResetToken
from server.core.config import Settings
from server.core.db import utcnow
from server.core.engine import Database
from server.core.security import decode_access_token, issue_access_token
from server.core.tenancy import ALL_TENANTS
from server.jobs import deliver_email
from server.mail.models import OutboxEmail
from server.models import Base
from server.organizations.models import Organization
from server.users.models import User
from tests.conftest import PASSWORD, World, assert_error
from tests.test_query_counts import count_statements

NEW_PASSWORD = "Brand-new-Pass-77"


# --------------------------------------------------------------------------- helpers


def _login(
    client: httpx.Client, email: str, password: str = PASSWORD, **extra: Any
) -> httpx.Response:
    return client.post("/api/auth/login", json={"email": email, "password": password, **extra})


def _signed_in(
    client: httpx.Client, email: str, password: str = PASSWORD, **extra: Any
) -> dict[str, Any]:
    response = _login(client, email, password, **extra)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _audit(client: httpx.Client, headers: dict[str, str], action: str) -> list[dict[str, Any]]:
    response = client.get(
        "/api/audit-logs", headers=headers, params={"action": action, "perPage": 100}
    )
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["data"]
    assert all(e["action"] == action for e in events)
    return events


def _set_policy(client: httpx.Client, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    response = client.patch("/api/security/settings", headers=headers, json=fields)
    assert response.status_code == 200, response.text
    policy: dict[str, Any] = response.json()["data"]["policy"]
    return policy


def _emails(db: Database, to: str) -> list[OutboxEmail]:
    with db.transaction(tenant=ALL_TENANTS) as s:
        stmt = (
            select(OutboxEmail).where(OutboxEmail.to_address == to).order_by(OutboxEmail.created_at)
        )
        return list(s.scalars(stmt))


def _ask_reset(world: World, email: str) -> httpx.Response:
    """Ask for a reset link, then run the outbox job, which turns the request into a mail."""
    response = world.client.post("/api/auth/password-reset/request", json={"email": email})
    assert response.status_code == 202, response.text
    deliver_email(world.db, world.settings)
    return response


def _code_in(email: OutboxEmail) -> str:
    match = re.search(r"enter this code in the app: (\S+)", email.body_text)
    assert match, email.body_text
    token = match.group(1)
    assert f"reset-password?token={token}" in email.body_text
    return token


def _set_user(db: Database, user_id: uuid.UUID, **values: Any) -> None:
    with db.transaction(tenant=ALL_TENANTS) as s:
        s.execute(update(User).where(User.id == user_id).values(**values))


def _user_row(db: Database, user_id: uuid.UUID) -> User:
    with db.transaction(tenant=ALL_TENANTS) as s:
        user = s.get(User, user_id)
        assert user is not None
        return user


def _session_id(settings: Settings, access_token: str) -> uuid.UUID:
    return decode_access_token(access_token, key=settings.signing_key()).session_id


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _me(client: httpx.Client, headers: dict[str, str]) -> httpx.Response:
    return client.get("/api/me", headers=headers)


def _create_token(
    client: httpx.Client, headers: dict[str, str], scopes: list[str], **extra: Any
) -> httpx.Response:
    body = {"name": extra.pop("name", "integration"), "scopes": scopes, **extra}
    return client.post("/api/api-tokens", headers=headers, json=body)


def _new_token(client: httpx.Client, headers: dict[str, str], scopes: list[str]) -> dict[str, Any]:
    response = _create_token(client, headers, scopes)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _next_code(secret: str) -> str:
    """The code of the next 30-second step: the current one was spent on enrolment,
    and the server accepts each step once."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def _enrol_mfa(client: httpx.Client, headers: dict[str, str]) -> dict[str, Any]:
    enrollment = client.post("/api/auth/mfa/enable", headers=headers)
    assert enrollment.status_code == 200, enrollment.text
    data: dict[str, Any] = enrollment.json()["data"]
    code = pyotp.TOTP(data["secret"]).now()
    verified = client.post("/api/auth/mfa/verify", headers=headers, json={"code": code})
    assert verified.status_code == 200, verified.text
    return data


def _other_code(code: str) -> str:
    return f"{(int(code) + 500_000) % 1_000_000:06d}"


# --------------------------------------------------------------------------- sign-in


def test_passwords_are_hashed_at_production_cost_unless_testing(app: Any, tmp_path: Any) -> None:
    """The suite's app runs with a cheap argon2 cost; a deployment cannot, and the
    defaults are the production figures (argon2id, 64 MiB, 3 passes, 4 lanes)."""
    from pydantic import ValidationError

    from server.core import security
    from server.core.config import PRODUCTION_PASSWORD_COST

    defaults = Settings(data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    assert defaults.password_cost == PRODUCTION_PASSWORD_COST
    for environment in ("production", "development"):
        with pytest.raises(ValidationError, match="RESOLVE_ENVIRONMENT=test"):
            Settings(data_dir=tmp_path, environment=environment, password_memory_kib=1024)
        with pytest.raises(ValidationError, match="RESOLVE_ENVIRONMENT=test"):
            Settings(data_dir=tmp_path, environment=environment, password_time_cost=1)
    cheap = security.password_cost()
    assert cheap != PRODUCTION_PASSWORD_COST  # this suite's settings are in force
    cheap_hash = security.hash_password(PASSWORD)
    try:
        security.configure_password_hashing(defaults.password_cost)
        strong = security.hash_password(PASSWORD)
        assert strong.startswith("$argon2id$v=19$m=65536,t=3,p=4$"), strong
        assert security.verify_password(strong, PASSWORD)
        # a hash keeps its own cost: one made at another cost still verifies
        assert security.verify_password(cheap_hash, PASSWORD)
        assert not security.verify_password(strong, PASSWORD + "x")
        assert not security.verify_password(None, PASSWORD)
    finally:
        security.configure_password_hashing(cheap)


def test_login_returns_working_tokens_and_the_user(world: World, client: httpx.Client) -> None:
    tenant = world.org("alpha")
    agent = world.user(tenant.id, Role.AGENT, email="Dana@Alpha.example", login=False)
    data = _signed_in(client, "DANA@alpha.EXAMPLE")  # email is case-insensitive
    assert data["tokenType"] == "Bearer"
    assert 0 < data["expiresIn"] <= 15 * 60
    assert data["mfaEnrollmentRequired"] is False
    assert data["accessToken"] and data["refreshToken"]
    assert data["accessToken"] != data["refreshToken"]
    user = data["user"]
    assert user["id"] == str(agent.id)
    assert user["email"] == "dana@alpha.example"
    assert user["lastLoginAt"] is not None
    assert not {"passwordHash", "mfaSecret", "mfaBackupCodes"} & set(user)
    me = _me(client, _bearer(data["accessToken"]))
    assert me.status_code == 200, me.text
    assert me.json()["data"]["user"]["id"] == str(agent.id)
    assert me.json()["data"]["viaApiToken"] is False


def test_wrong_password_and_unknown_email_are_indistinguishable(
    world: World, client: httpx.Client
) -> None:
    tenant = world.org("alpha")
    agent = world.user(tenant.id, Role.AGENT, login=False)
    wrong = assert_error(
        _login(client, agent.email, "Not-the-password-1"), 401, "INVALID_CREDENTIALS"
    )
    unknown = assert_error(_login(client, "nobody@alpha.example"), 401, "INVALID_CREDENTIALS")
    assert wrong["message"] == unknown["message"]
    assert wrong["details"] == unknown["details"]
    # an empty password is bad input, not a sign-in attempt
    assert_error(_login(client, agent.email, ""), 422, "VALIDATION_ERROR")


def test_sign_in_success_and_failure_are_audited(world: World, client: httpx.Client) -> None:
    tenant = world.org("alpha")
    agent = world.user(tenant.id, Role.AGENT, login=False)
    _signed_in(client, agent.email)
    assert_error(_login(client, agent.email, "Not-the-password-1"), 401)

    succeeded = [
        e
        for e in _audit(client, tenant.admin.headers, "auth.login_succeeded")
        if e["actorUserId"] == str(agent.id)
    ]
    assert len(succeeded) == 1
    assert succeeded[0]["entityId"] == str(agent.id)
    failed = _audit(client, tenant.admin.headers, "auth.login_failed")
    assert len(failed) == 1
    assert failed[0]["actorUserId"] == str(agent.id)
    assert failed[0]["details"]["reason"] == "bad_password"
    assert failed[0]["severity"] == "Warning"
    # another organization's admin sees none of it
    other = world.org("beta")
    assert _audit(client, other.admin.headers, "auth.login_failed") == []


def test_deactivated_user_cannot_sign_in(world: World, client: httpx.Client) -> None:
    tenant = world.org("alpha")
    tech = world.user(tenant.id, Role.TECHNICIAN)
    refresh = _signed_in(client, tech.email)["refreshToken"]
    response = client.post(f"/api/users/{tech.id}/deactivate", headers=tenant.admin.headers)
    assert response.status_code == 200, response.text

    assert_error(_login(client, tech.email), 403, "ACCOUNT_DISABLED")
    # a wrong password still says nothing about the account's state
    assert_error(_login(client, tech.email, "Not-the-password-1"), 401, "INVALID_CREDENTIALS")
    assert_error(_me(client, tech.headers), 401)
    assert_error(client.post("/api/auth/refresh", json={"refreshToken": refresh}), 401)


def test_deactivated_user_flag_alone_stops_existing_tokens(
    world: World, client: httpx.Client, db: Database
) -> None:
    tenant = world.org("alpha")
    tech = world.user(tenant.id, Role.TECHNICIAN)
    _set_user(db, tech.id, is_active=False)  # sessions left alive on purpose
    assert_error(_me(client, tech.headers), 401, "ACCOUNT_DISABLED")


def test_suspended_organization_locks_out_its_users(world: World, client: httpx.Client) -> None:
    alpha = world.org("alpha")
    beta = world.org("beta")
    agent = world.user(alpha.id, Role.AGENT)
    refresh = _signed_in(client, agent.email)["refreshToken"]
    root = world.super_admin()

    response = client.patch(
        f"/api/organizations/{alpha.id}", headers=root.headers, json={"status": "suspended"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["status"] == "suspended"

    assert_error(_login(client, agent.email), 403, "ORGANIZATION_SUSPENDED")
    assert_error(_login(client, alpha.admin.email), 403, "ORGANIZATION_SUSPENDED")
    assert_error(_me(client, agent.headers), 401, "ORGANIZATION_SUSPENDED")
    assert_error(
        client.get("/api/users", headers=alpha.admin.headers), 401, "ORGANIZATION_SUSPENDED"
    )
    assert_error(client.post("/api/auth/refresh", json={"refreshToken": refresh}), 401)
    # other organizations and the platform carry on
    assert _me(client, beta.admin.headers).status_code == 200
    assert _me(client, root.headers).status_code == 200

    response = client.patch(
        f"/api/organizations/{alpha.id}", headers=root.headers, json={"status": "active"}
    )
    assert response.status_code == 200, response.text
    assert _me(client, agent.headers).status_code == 200
    assert _signed_in(client, agent.email)


def test_an_organization_admin_cannot_change_its_own_status(
    world: World, client: httpx.Client
) -> None:
    tenant = world.org("alpha")
    response = client.patch(
        f"/api/organizations/{tenant.id}", headers=tenant.admin.headers, json={"status": "active"}
    )
    assert_error(response, 403)


# --------------------------------------------------------------------------- access tokens


def test_missing_or_malformed_authorization_is_refused(world: World, client: httpx.Client) -> None:
    world.org("alpha")
    response = client.get("/api/me")
    assert_error(response, 401, "AUTHENTICATION_REQUIRED")
    assert response.headers["www-authenticate"] == "Bearer"
    assert_error(client.get("/api/me", headers={"Authorization": "Bearer"}), 401)
    assert_error(client.get("/api/me", headers={"Authorization": "Basic YTpi"}), 401)
    assert_error(client.get("/api/me", headers=_bearer("garbage")), 401, "TOKEN_INVALID")
    assert_error(client.get("/api/me", headers=_bearer("a.b.c")), 401, "TOKEN_INVALID")
    assert_error(client.get("/api/me", headers=_bearer("drt_" + "x" * 40)), 401, "TOKEN_INVALID")


def test_expired_access_token_is_refused(
    world: World, client: httpx.Client, settings: Settings
) -> None:
    tenant = world.org("alpha")
    token = tenant.admin.headers["Authorization"].split()[1]
    sid = _session_id(settings, token)
    expired, _ = issue_access_token(
        key=settings.signing_key(),
        user_id=tenant.admin.id,
        session_id=sid,
        organization_id=tenant.id,
        minutes=15,
        now=utcnow() - timedelta(hours=1),
    )
    assert_error(_me(client, _bearer(expired)), 401, "TOKEN_EXPIRED")
    # the same claims, still valid, are accepted: only the expiry made the difference
    fresh, _ = issue_access_token(
        key=settings.signing_key(),
        user_id=tenant.admin.id,
        session_id=sid,
        organization_id=tenant.id,
        minutes=15,
    )
    assert _me(client, _bearer(fresh)).status_code == 200


def test_tampered_tokens_are_refused(world: World, client: httpx.Client) -> None:
    tenant = world.org("alpha")
    victim = world.user(tenant.id, Role.AGENT, login=False)
    token = tenant.admin.headers["Authorization"].split()[1]
    assert _me(client, tenant.admin.headers).status_code == 200
    header, payload, signature = token.split(".")

    raw_sig = bytearray(_unb64(signature))
    raw_sig[5] ^= 0x01
    flipped = f"{header}.{payload}.{_b64(bytes(raw_sig))}"
    assert_error(_me(client, _bearer(flipped)), 401, "TOKEN_INVALID")

    claims = json.loads(_unb64(payload))
    claims["sub"] = str(victim.id)
    forged = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    assert_error(_me(client, _bearer(forged)), 401, "TOKEN_INVALID")

    unsigned_header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    assert_error(_me(client, _bearer(f"{unsigned_header}.{payload}.")), 401, "TOKEN_INVALID")


def test_token_signed_with_another_key_is_refused(
    world: World, client: httpx.Client, settings: Settings
) -> None:
    tenant = world.org("alpha")
    token = tenant.admin.headers["Authorization"].split()[1]
    foreign, _ = issue_access_token(
        key="someone-elses-secret-key-that-is-long-enough",
        user_id=tenant.admin.id,
        session_id=_session_id(settings, token),
        organization_id=tenant.id,
        minutes=15,
    )
    assert_error(_me(client, _bearer(foreign)), 401, "TOKEN_INVALID")


def test_a_validly_signed_token_must_name_the_users_own_session(
    world: World, client: httpx.Client, settings: Settings
) -> None:
    tenant = world.org("alpha")
    agent = world.user(tenant.id, Role.AGENT)
    admin_sid = _session_id(settings, tenant.admin.headers["Authorization"].split()[1])
    # the agent's id with the admin's session: no such pair exists
    mixed, _ = issue_access_token(
        key=settings.signing_key(),
        user_id=agent.id,
        session_id=admin_sid,
        organization_id=tenant.id,
        minutes=15,
    )
    assert_error(_me(client, _bearer(mixed)), 401, "TOKEN_INVALID")


def test_logout_revokes_the_access_token_and_its_refresh_token(
    world: World, client: httpx.Client
) -> None:
    tenant = world.org("alpha")
    agent = world.user(tenant.id, Role.AGENT, login=False)
    first = _signed_in(client, agent.email)
    second = _signed_in(client, agent.email)

    response = client.post("/api/auth/logout", headers=_bearer(first["accessToken"]))
    assert response.status_code == 200, response.text
    assert_error(_me(client, _bearer(first["accessToken"])), 401, "TOKEN_REVOKED")
    refreshed = client.post("/api/auth/refresh", json={"refreshToken": first["refreshToken"]})
    assert_error(refreshed, 401, "TOKEN_REVOKED")
    # signing out of one device leaves the others signed in
    assert _me(client, _bearer(second["accessToken"])).status_code == 200

    # sign-out by refresh token (a client whose access token already expired)
    response = client.post("/api/auth/logout", json={"refreshToken": second["refreshToken"]})
    assert response.status_code == 200, response.text
    assert_error(_me(client, _bearer(second["accessToken"])), 401, "TOKEN_REVOKED")
    # nothing to sign out of
    assert_error(client.post("/api/auth/logout"), 401)
    assert_error(
        client.post("/api/auth/logout", json={"refreshToken": "nope"}), 401, "TOKEN_INVALID"
    )


# --------------------------------------------------------------------------- refresh


def test_refresh_rotates_and_reuse_revokes_the_whole_family(
    world: World, client: httpx.Client
) -> None:
    tenant = world.org("alpha")
    agent = world.user(tenant.id, Role.AGENT, login=False)
    other_device = _signed_in(client, agent.email)
    first = _signed_in(client, agent.email)

    rotated = client.post("/api/auth/refresh", json={"refreshToken": first["refreshToken"]})
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()["data"]
    assert second["refreshToken"] != first["refreshToken"]
    assert second["user"]["id"] == str(agent.id)
    assert _me(client, _bearer(second["accessToken"])).status_code == 200
    third = client.post("/api/auth/refresh", json={"refreshToken": second["refreshToken"]})
    assert third.status_code == 200, third.text
    newest = third.json()["data"]

    # the first refresh token comes back: someone copied it
    reused = client.post("/api/auth/refresh", json={"refreshToken": first["refreshToken"]})
    assert_error(reused, 401, "TOKEN_REVOKED")
    again = client.post("/api/auth/refresh", json={"refreshToken": newest["refreshToken"]})
    assert_error(again, 401, "TOKEN_REVOKED")
    for access in (first["accessToken"], second["accessToken"], newest["accessToken"]):
        assert_error(_me(client, _bearer(access)), 401, "TOKEN_REVOKED")
    # another sign-in of the same person is a different family
    assert _me(client, _bearer(other_device["accessToken"])).status_code == 200

    events = _audit(client, tenant.admin.headers, "auth.refresh_reuse_detected")
    assert len(events) == 1
    assert events[0]["actorUserId"] == str(agent.id)
    assert events[0]["severity"] == "Critical"


def test_concurrent_refreshes_with_one_token_yield_one_new_session_at_most(
    world: World, client: httpx.Client, server_url: str
) -> None:
    tenant = world.org("alpha")
    agent = world.user(tenant.id, Role.AGENT, login=False)
    refresh = _signed_in(client, agent.email)["refreshToken"]
    barrier = threading.Barrier(4)

    def attempt() -> int:
        with httpx.Client(base_url=server_url, timeout=30) as own:
            barrier.wait()
            return own.post("/api/auth/refresh", json={"refreshToken": refresh}).status_code

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = sorted(pool.map(lambda _: attempt(), range(4)))
    assert statuses.count(200) <= 1, statuses
    assert set(statuses) <= {200, 401}, statuses


def test_refresh_with_unknown_token_is_refused(world: World, client: httpx.Client) -> None:
    world.org("alpha")
    assert_error(
        client.post("/api/auth/refresh", json={"refreshToken": "x.y"}), 401, "TOKEN_INVALID"
    )
    assert_error(client.post("/api/auth/refresh", json={}), 422, "VALIDATION_ERROR")


def test_refresh_after_idle_timeout_or_expiry_is_refused(
    world: World, client: httpx.Client, db: Database, settings: Settings
) -> None:
    tenant = world.org("alpha")
    agent = world.user(tenant.id, Role.AGENT, login=False)
    _set_policy(client, tenant.admin.headers, sessionTimeoutMinutes=30)

    idle = _signed_in(client, agent.email)
    expired = _signed_in(client, agent.email)
    fresh = _signed_in(client, agent.email)
    with db.transaction(tenant=ALL_TENANTS) as s:
        s.execute(
            update(AuthSession)
            .where(AuthSession.id == _session_id(settings, idle["accessToken"]))
            .values(last_used_at=utcnow() - timedelta(minutes=31))
        )
        s.execute(
            update(AuthSession)
            .where(AuthSession.id == _session_id(settings, expired["accessToken"]))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    for tokens in (idle, expired):
        response = client.post("/api/auth/refresh", json={"refreshToken": tokens["refreshToken"]})
        assert_error(response, 401, "TOKEN_EXPIRED")
    response = client.post("/api/auth/refresh", json={"refreshToken": fresh["refreshToken"]})
    assert response.status_code == 200, response.text


# --------------------------------------------------------------------------- lockout


def _refused_while_locked(client: httpx.Client, email: str) -> None:
    """The right password is refused, in the words a wrong one or an unknown email get."""
    refused = assert_error(_login(client, email), 401, "INVALID_CREDENTIALS")
    assert refused["message"] == "Invalid email or password" and not refused["details"]


def test_a_locked_account_and_an_unknown_email_get_the_same_answer(
    world: World, client: httpx.Client
) -> None:
    """Five failures, then the same answer whether the address has an account or not:
    the lock does not tell anyone which emails exist."""
    tenant = world.org("alpha")
    agent = world.user(tenant.id, Role.AGENT, login=False)
    answers = {}
    for email in (agent.email, "nobody-here@alpha.example"):
        for _ in range(5):
            assert_error(_login(client, email, "Not-the-password-1"), 401)
        response = _login(client, email)
        answers[email] = (response.status_code, {**response.json()["error"], "requestId": None})
    assert answers[agent.email] == answers["nobody-here@alpha.example"]
    shown = client.get(f"/api/users/{agent.id}", headers=tenant.admin.headers).json()["data"]
    assert shown["lockedUntil"] is not None  # the account is locked all the same


def test_repeated_failures_lock_the_account_until_the_lockout_ends(
    world: World, client: httpx.Client, db: Database
) -> None:
    tenant = world.org("alpha")
    agent = world.user(tenant.id, Role.AGENT, login=False)
    policy = _set_policy(client, tenant.admin.headers, maxFailedLoginAttempts=3, lockoutMinutes=5)
    assert policy["maxFailedLoginAttempts"] == 3

    for _ in range(3):
        assert_error(_login(client, agent.email, "Not-the-password-1"), 401, "INVALID_CREDENTIALS")
    _refused_while_locked(client, agent.email)
    told = _emails(db, agent.email)
    assert [e.subject for e in told] == ["Sign-in to your District Resolve account is paused"]
    assert "5 minutes" in told[0].body_text and "3 failed sign-ins" in told[0].body_text
    shown = client.get(f"/api/users/{agent.id}", headers=tenant.admin.headers).json()["data"]
    assert shown["lockedUntil"] is not None
    events = _audit(client, tenant.admin.headers, "auth.account_locked")
    assert [e["entityId"] for e in events] == [str(agent.id)]

    _set_user(db, agent.id, locked_until=utcnow() - timedelta(seconds=1))
    assert _signed_in(client, agent.email)["user"]["lockedUntil"] is None
    # the counter started again: two more failures do not lock
    for _ in range(2):
        assert_error(_login(client, agent.email, "Not-the-password-1"), 401)
    assert _signed_in(client, agent.email)


def test_a_successful_sign_in_resets_the_failure_count(world: World, client: httpx.Client) -> None:
    tenant = world.org("alpha")
    agent = world.user(tenant.id, Role.AGENT, login=False)
    _set_policy(client, tenant.admin.headers, maxFailedLoginAttempts=3)
    for _ in range(2):
        assert_error(_login(client, agent.email, "Not-the-password-1"), 401)
    assert _signed_in(client, agent.email)
    for _ in range(2):
        assert_error(_login(client, agent.email, "Not-the-password-1"), 401)
    assert _signed_in(client, agent.email)


def test_lockout_policy_is_per_organization(world: World, client: httpx.Client) -> None:
    alpha = world.org("alpha")
    beta = world.org("beta")
    a = world.user(alpha.id, Role.AGENT, login=False)
    b = world.user(beta.id, Role.AGENT, login=False)
    _set_policy(client, alpha.admin.headers, maxFailedLoginAttempts=3)
    for email in (a.email, b.email):
        for _ in range(3):
            assert_error(_login(client, email, "Not-the-password-1"), 401)
    _refused_while_locked(client, a.email)
    assert _signed_in(client, b.email)  # beta keeps the default of 5


def test_password_reset_unlocks_a_locked_account(
    world: World, client: httpx.Client, db: Database
) -> None:
    tenant = world.org("alpha")
    agent = world.user(tenant.id, Role.AGENT, login=False)
    _set_policy(client, tenant.admin.headers, maxFailedLoginAttempts=3)
    for _ in range(3):
        assert_error(_login(client, agent.email, "Not-the-password-1"), 401)
    _refused_while_locked(client, agent.email)
    _ask_reset(world, agent.email)
    token = _code_in(_emails(db, agent.email)[-1])
    response = client.post(
        "/api/auth/password-reset/confirm", json={"token": token, "newPassword": NEW_PASSWORD}
    )
    assert response.status_code == 200, response.text
    assert _signed_in(client, agent.email, NEW_PASSWORD)


def test_admin_activate_clears_a_lockout(world: World, client: httpx.Client) -> None:
    tenant = world.org("alpha")
    agent = world.user(tenant.id, Role.AGENT, login=False)
    _set_policy(client, tenant.admin.headers, maxFailedLoginAttempts=3)
    for _ in range(3):
        assert_error(_login(client, agent.email, "Not-the-password-1"), 401)
    _refused_while_locked(client, agent.email)
    response = client.post(f"/api/users/{agent.id}/activate", headers=tenant.admin.headers)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["lockedUntil"] is None
    assert _signed_in(client, agent.email)


def test_security_settings_are_validated_and_audited(world: World, client: httpx.Client) -> None:
    tenant = world.org("alpha")
    agent = world.user(tenant.id, Role.AGENT)
    current = client.get("/api/security/settings", headers=tenant.admin.headers)
    assert current.status_code == 200, current.text
    policy = current.json()["data"]["policy"]
    assert policy["maxFailedLoginAttempts"] == 5
    assert policy["requireMfaForAdmins"] is False

    bad = client.patch(
        "/api/security/settings", headers=tenant.admin.headers, json={"maxFailedLoginAttempts": 2}
    )
    assert_error(bad, 422, "VALIDATION_ERROR")
    assert_error(client.get("/api/security/settings", headers=agent.headers), 403)
    assert_error(
        client.patch("/api/security/settings", headers=agent.headers, json={"lockoutMinutes": 30}),
        403,
    )
    _set_policy(client, tenant.admin.headers, lockoutMinutes=30)
    after = client.get("/api/security/settings", headers=tenant.admin.headers).json()["data"]
    assert after["policy"]["lockoutMinutes"] == 30
    assert after["policy"]["maxFailedLoginAttempts"] == 5  # untouched fields stay
    events = _audit(client, tenant.admin.headers, "security.settings_updated")
    assert len(events) == 1
    assert events[0]["details"]["changes"]["lockoutMinutes"] == {"from": 15, "to": 30}


def test_ip_allowlist_is_enforced_for_sign_in_and_tokens(
    world: World, client: httpx.Client, db: Database
) -> None:
    from server.organizations.models import Organization

    alpha = world.org("alpha")
    beta = world.org("beta")
    agent = world.user(alpha.id, Role.AGENT)
    refresh = _signed_in(client, agent.email)["refreshToken"]
    raw = _new_token(client, alpha.admin.headers, ["users:read"])["token"]
    # the test client comes from 127.0.0.1: an admin cannot shut themselves out
    response = client.patch(
        "/api/security/settings", headers=alpha.admin.headers, json={"ipAllowlist": ["10.0.0.0/8"]}
    )
    assert_error(response, 422)
    policy = _set_policy(client, alpha.admin.headers, ipAllowlist=["127.0.0.0/8", "10.0.0.0/8"])
    assert policy["ipAllowlist"] == ["127.0.0.0/8", "10.0.0.0/8"]
    assert _me(client, agent.headers).status_code == 200

    # then the network changes under them (set in the database, as another admin might)
    with db.transaction(tenant=ALL_TENANTS) as s:
        org = s.get(Organization, alpha.id)
        assert org is not None
        security = {**org.settings["security"], "ipAllowlist": ["10.0.0.0/8"]}
        org.settings = {**org.settings, "security": security}
    assert_error(_login(client, agent.email), 403, "PERMISSION_DENIED")
    assert_error(_me(client, agent.headers), 403, "PERMISSION_DENIED")
    assert_error(client.get("/api/users", headers=_bearer(raw)), 403, "PERMISSION_DENIED")
    assert_error(client.post("/api/auth/refresh", json={"refreshToken": refresh}), 403)
    failed = client.get(
        "/api/audit-logs",
        headers=world.super_admin().headers,
        params={"action": "auth.login_failed", "organizationId": str(alpha.id)},
    ).json()["data"]
    assert [e["details"]["reason"] for e in failed] == ["ip_not_allowed"]
    # other organizations are not affected
    assert _me(client, beta.admin.headers).status_code == 200


# --------------------------------------------------------------------------- MFA


def test_mfa_enrolment_and_sign_in_with_a_code(world: World, client: httpx.Client) -> None:
    tenant = world.org("alpha")
    agent = world.user(tenant.id, Role.AGENT)

    response = client.post("/api/auth/mfa/enable", headers=agent.headers)
    assert response.status_code == 200, response.text
    enrollment = response.json()["data"]
    secret = enrollment["secret"]
    assert enrollment["otpauthUri"].startswith("otpauth://totp/")
    assert f"secret={secret}" in enrollment["otpauthUri"]
    assert "issuer=District%20Resolve" in enrollment["otpauthUri"]
    codes = enrollment["backupCodes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    # not on until a code proves the authenticator works
    assert _me(client, agent.headers).json()["data"]["user"]["mfaEnabled"] is False
    assert _signed_in(client, agent.email)

    now = pyotp.TOTP(secret).now()
    wrong = client.post(
        "/api/auth/mfa/verify", headers=agent.headers, json={"code": _other_code(now)}
    )
    assert_error(wrong, 400, "MFA_INVALID")
    verified = client.post("/api/auth/mfa/verify", headers=agent.headers, json={"code": now})
    assert verified.status_code == 200, verified.text
    assert _me(client, agent.headers).json()["data"]["user"]["mfaEnabled"] is True
    assert len(_audit(client, tenant.admin.headers, "auth.mfa_enabled")) == 1
    assert_error(client.post("/api/auth/mfa/enable", headers=agent.headers), 409)

    required = assert_error(_login(client, agent.email), 401, "MFA_REQUIRED")
    assert required["details"]["mfaRequired"] is True
    # a wrong password is still just a wrong password
    assert_error(
        _login(client, agent.email, "Not-the-password-1", mfaCode=pyotp.TOTP(secret).now()),
        401,
        "INVALID_CREDENTIALS",
    )
    bad_code = _login(client, agent.email, mfaCode=_other_code(pyotp.TOTP(secret).now()))
    assert_error(bad_code, 401, "MFA_INVALID")
    data = _signed_in(client, agent.email, mfaCode=_next_code(secret))
    assert data["user"]["mfaEnabled"] is True
    assert _me(client, _bearer(data["accessToken"])).status_code == 200
    failed = _audit(client, tenant.admin.headers, "auth.login_failed")
    assert sorted(e["details"]["reason"] for e in failed) == ["bad_mfa_code", "bad_password"]


def test_wrong_mfa_codes_count_towards_lockout(world: World, client: httpx.Client) -> None:
    tenant = world.org("alpha")
    agent = world.user(tenant.id, Role.AGENT)
    _set_policy(client, tenant.admin.headers, maxFailedLoginAttempts=3)
    secret = _enrol_mfa(client, agent.headers)["secret"]
    # asking for the code is not a failure
    for _ in range(4):
        assert_error(_login(client, agent.email), 401, "MFA_REQUIRED")
    for _ in range(3):
        code = _other_code(pyotp.TOTP(secret).now())
        assert_error(_login(client, agent.email, mfaCode=code), 401, "MFA_INVALID")
    locked = _login(client, agent.email, mfaCode=pyotp.TOTP(secret).now())
    assert_error(locked, 401, "INVALID_CREDENTIALS")


def test_a_backup_code_signs_in_once(world: World, client: httpx.Client) -> None:
    tenant = world.org("alpha")
    agent = world.user(tenant.id, Role.AGENT)
    codes = _enrol_mfa(client, agent.headers)["backupCodes"]
    assert _signed_in(client, agent.email, mfaCode=codes[0])
    assert_error(_login(client, agent.email, mfaCode=codes[0]), 401, "MFA_INVALID")
    # the others are untouched, and typing them in capitals is fine
    assert _signed_in(client, agent.email, mfaCode=codes[1].upper())


def test_disabling_mfa_needs_a_valid_code(world: World, client: httpx.Client) -> None:
    tenant = world.org("alpha")
    agent = world.user(tenant.id, Role.AGENT)
    secret = _enrol_mfa(client, agent.headers)["secret"]
    wrong = client.post(
        "/api/auth/mfa/disable",
        headers=agent.headers,
        json={"code": _other_code(pyotp.TOTP(secret).now())},
    )
    assert_error(wrong, 400, "MFA_INVALID")
    assert_error(_login(client, agent.email), 401, "MFA_REQUIRED")
    response = client.post(
        "/api/auth/mfa/disable", headers=agent.headers, json={"code": _next_code(secret)}
    )
    assert response.status_code == 200, response.text
    assert _me(client, agent.headers).json()["data"]["user"]["mfaEnabled"] is False
    assert _signed_in(client, agent.email)  # no code needed any more
    assert len(_audit(client, tenant.admin.headers, "auth.mfa_disabled")) == 1
    assert_error(
        client.post("/api/auth/mfa/disable", headers=agent.headers, json={"code": "1"}), 409
    )


def test_admins_must_enrol_when_the_policy_requires_mfa(world: World, client: httpx.Client) -> None:
    tenant = world.org("alpha")
    agent = world.user(tenant.id, Role.AGENT, login=False)
    _set_policy(client, tenant.admin.headers, requireMfaForAdmins=True)

    data = _signed_in(client, tenant.admin.email)
    assert data["mfaEnrollmentRequired"] is True
    headers = _bearer(data["accessToken"])
    blocked = client.get("/api/users", headers=headers)
    assert_error(blocked, 403, "MFA_ENROLLMENT_REQUIRED")
    assert_error(
        client.get("/api/security/settings", headers=headers), 403, "MFA_ENROLLMENT_REQUIRED"
    )
    # who am I still answers, and so does a refresh, which keeps the restriction
    assert _me(client, headers).status_code == 200
    rotated = client.post("/api/auth/refresh", json={"refreshToken": data["refreshToken"]})
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["data"]["mfaEnrollmentRequired"] is True
    headers = _bearer(rotated.json()["data"]["accessToken"])
    assert_error(client.get("/api/users", headers=headers), 403, "MFA_ENROLLMENT_REQUIRED")
    # the policy is for administrators only
    assert _signed_in(client, agent.email)["mfaEnrollmentRequired"] is False

    secret = _enrol_mfa(client, headers)["secret"]
    # the same access token is now a full session
    assert client.get("/api/users", headers=headers).status_code == 200
    # and the policy keeps an administrator from turning MFA off
    response = client.post(
        "/api/auth/mfa/disable", headers=headers, json={"code": pyotp.TOTP(secret).now()}
    )
    assert_error(response, 422)
    later = _signed_in(client, tenant.admin.email, mfaCode=_next_code(secret))
    assert later["mfaEnrollmentRequired"] is False


def test_an_api_token_cannot_manage_its_creators_mfa(world: World, client: httpx.Client) -> None:
    tenant = world.org("alpha")
    raw = _new_token(client, tenant.admin.headers, ["*"])["token"]
    assert_error(client.post("/api/auth/mfa/enable", headers=_bearer(raw)), 403)
    assert _me(client, tenant.admin.headers).json()["data"]["user"]["mfaEnabled"] is False
    # the admin can still enrol from their own session afterwards
    assert _enrol_mfa(client, tenant.admin.headers)


# --------------------------------------------------------------------------- API tokens


def test_api_token_is_shown_once_and_works_as_a_bearer(world: World, client: httpx.Client) -> None:
    tenant = world.org("alpha")
    response = _create_token(client, tenant.admin.headers, ["users:read", "tickets:read"])
    assert response.status_code == 201, response.text
    created = response.json()["data"]
    raw = created["token"]
    assert raw.startswith("drt_") and len(raw) > 30
    assert created["tokenPrefix"] == raw[:12]
    assert created["scopes"] == ["tickets:read", "users:read"]
    assert created["organizationId"] == str(tenant.id)
    assert created["createdById"] == str(tenant.admin.id)

    listing = client.get("/api/api-tokens", headers=tenant.admin.headers)
    assert listing.status_code == 200, listing.text
    [listed] = listing.json()["data"]
    assert listed["id"] == created["id"]
    assert "token" not in listed and "tokenHash" not in listed
    assert raw not in listing.text and raw[12:] not in listing.text

    me = _me(client, _bearer(raw))
    assert me.status_code == 200, me.text
    assert me.json()["data"]["viaApiToken"] is True
    assert me.json()["data"]["scopes"] == ["tickets:read", "users:read"]
    events = _audit(client, tenant.admin.headers, "api_token.created")
    assert [e["entityId"] for e in events] == [created["id"]]


def test_api_token_scopes_limit_what_it_can_do(world: World, client: httpx.Client) -> None:
    tenant = world.org("alpha")
    headers = _bearer(_new_token(client, tenant.admin.headers, ["users:read"])["token"])
    assert client.get("/api/users", headers=headers).status_code == 200
    created = client.post(
        "/api/users", headers=headers, json={"email": "x@alpha.example", "password": PASSWORD}
    )
    error = assert_error(created, 403, "INSUFFICIENT_SCOPE")
    assert error["details"]["requiredScope"] == "users:write"
    assert_error(client.get("/api/security/settings", headers=headers), 403, "INSUFFICIENT_SCOPE")
    assert_error(client.get("/api/api-tokens", headers=headers), 403, "INSUFFICIENT_SCOPE")

    wide = _bearer(_new_token(client, tenant.admin.headers, ["*:read"])["token"])
    assert client.get("/api/security/settings", headers=wide).status_code == 200
    patched = client.patch("/api/security/settings", headers=wide, json={"lockoutMinutes": 30})
    assert_error(patched, 403, "INSUFFICIENT_SCOPE")


def test_api_token_input_is_validated(world: World, client: httpx.Client) -> None:
    tenant = world.org("alpha")
    headers = tenant.admin.headers
    assert_error(_create_token(client, headers, ["users:destroy"]), 422, "VALIDATION_ERROR")
    assert_error(_create_token(client, headers, ["auth:mfa-enrollment"]), 422, "VALIDATION_ERROR")
    assert_error(_create_token(client, headers, []), 422, "VALIDATION_ERROR")
    assert_error(_create_token(client, headers, ["users:read"], name=""), 422, "VALIDATION_ERROR")
    past = (utcnow() - timedelta(minutes=1)).isoformat()
    assert_error(_create_token(client, headers, ["users:read"], expiresAt=past), 422)
    naive = (utcnow() + timedelta(days=1)).replace(tzinfo=None).isoformat()
    assert_error(_create_token(client, headers, ["users:read"], expiresAt=naive), 422)
    assert client.get("/api/api-tokens", headers=headers).json()["data"] == []
    future = (utcnow() + timedelta(days=30)).isoformat()
    created = _create_token(client, headers, ["users:read"], expiresAt=future)
    assert created.status_code == 201, created.text
    assert created.json()["data"]["expiresAt"] is not None


def test_expired_and_revoked_api_tokens_are_refused(
    world: World, client: httpx.Client, db: Database
) -> None:
    tenant = world.org("alpha")
    expiring = _new_token(client, tenant.admin.headers, ["users:read"])
    revoking = _new_token(client, tenant.admin.headers, ["users:read"])
    with db.transaction(tenant=ALL_TENANTS) as s:
        s.execute(
            update(ApiToken)
            .where(ApiToken.id == uuid.UUID(expiring["id"]))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert_error(_me(client, _bearer(expiring["token"])), 401, "TOKEN_EXPIRED")

    assert _me(client, _bearer(revoking["token"])).status_code == 200
    url = f"/api/api-tokens/{revoking['id']}/revoke"
    response = client.patch(url, headers=tenant.admin.headers)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["revokedAt"] is not None
    assert_error(_me(client, _bearer(revoking["token"])), 401, "TOKEN_REVOKED")
    assert_error(client.patch(url, headers=tenant.admin.headers), 409, "RESOURCE_CONFLICT")
    listed = client.get("/api/api-tokens", headers=tenant.admin.headers).json()["data"]
    assert revoking["id"] not in {t["id"] for t in listed}
    with_revoked = client.get(
        "/api/api-tokens", headers=tenant.admin.headers, params={"includeRevoked": "true"}
    ).json()["data"]
    assert revoking["id"] in {t["id"] for t in with_revoked}
    assert len(_audit(client, tenant.admin.headers, "api_token.revoked")) == 1


def test_only_admins_manage_api_tokens(world: World, client: httpx.Client) -> None:
    tenant = world.org("alpha")
    agent = world.user(tenant.id, Role.AGENT)
    token = _new_token(client, tenant.admin.headers, ["users:read"])
    assert_error(_create_token(client, agent.headers, ["users:read"]), 403, "PERMISSION_DENIED")
    assert_error(client.get("/api/api-tokens", headers=agent.headers), 403)
    assert_error(client.patch(f"/api/api-tokens/{token['id']}/revoke", headers=agent.headers), 403)
    assert _me(client, _bearer(token["token"])).status_code == 200


def test_api_tokens_are_confined_to_their_organization(world: World, client: httpx.Client) -> None:
    alpha = world.org("alpha")
    beta = world.org("beta")
    token = _new_token(client, alpha.admin.headers, ["*"])
    assert client.get("/api/api-tokens", headers=beta.admin.headers).json()["data"] == []
    url = f"/api/api-tokens/{token['id']}/revoke"
    assert_error(client.patch(url, headers=beta.admin.headers), 404, "RESOURCE_NOT_FOUND")
    assert_error(
        client.patch(f"/api/api-tokens/{uuid.uuid4()}/revoke", headers=alpha.admin.headers), 404
    )
    assert _me(client, _bearer(token["token"])).status_code == 200
    # naming another organization does not help
    cross = _create_token(client, alpha.admin.headers, ["*"], organizationId=str(beta.id))
    assert_error(cross, 403)
    users = client.get(
        "/api/users", headers=_bearer(token["token"]), params={"organizationId": str(beta.id)}
    )
    assert_error(users, 403)


def test_a_super_admins_token_stays_inside_its_organization(
    world: World, client: httpx.Client
) -> None:
    alpha = world.org("alpha")
    beta = world.org("beta")
    root = world.super_admin()
    created = _create_token(client, root.headers, ["*"], organizationId=str(alpha.id))
    assert created.status_code == 201, created.text
    headers = _bearer(created.json()["data"]["token"])
    emails = {u["email"] for u in client.get("/api/users", headers=headers).json()["data"]}
    assert alpha.admin.email in emails
    assert beta.admin.email not in emails
    other = client.get("/api/users", headers=headers, params={"organizationId": str(beta.id)})
    assert_error(other, 403)
    assert_error(client.get("/api/organizations", headers=headers), 403)


def test_a_token_cannot_mint_a_token_wider_than_itself(world: World, client: httpx.Client) -> None:
    tenant = world.org("alpha")
    headers = _bearer(
        _new_token(client, tenant.admin.headers, ["tokens:write", "users:read"])["token"]
    )
    assert_error(_create_token(client, headers, ["*"]), 403, "INSUFFICIENT_SCOPE")
    assert_error(_create_token(client, headers, ["users:write"]), 403, "INSUFFICIENT_SCOPE")
    assert_error(_create_token(client, headers, ["*:read"]), 403, "INSUFFICIENT_SCOPE")
    narrower = _create_token(client, headers, ["users:read"])
    assert narrower.status_code == 201, narrower.text


def test_api_token_stops_working_when_its_creator_is_deactivated(
    world: World, client: httpx.Client
) -> None:
    tenant = world.org("alpha")
    second_admin = world.user(tenant.id, Role.ORG_ADMIN)
    raw = _new_token(client, second_admin.headers, ["users:read"])["token"]
    assert client.get("/api/users", headers=_bearer(raw)).status_code == 200
    response = client.post(f"/api/users/{second_admin.id}/deactivate", headers=tenant.admin.headers)
    assert response.status_code == 200, response.text
    assert_error(client.get("/api/users", headers=_bearer(raw)), 401, "ACCOUNT_DISABLED")


# --------------------------------------------------------------------------- password reset


def test_password_reset_sets_a_new_password_and_ends_sessions(
    world: World, client: httpx.Client, db: Database
) -> None:
    tenant = world.org("alpha")
    agent = world.user(tenant.id, Role.AGENT)
    refresh = _signed_in(client, agent.email)["refreshToken"]

    _ask_reset(world, agent.email.upper())
    [mail] = _emails(db, agent.email)
    assert mail.kind == "password_reset"
    assert mail.organization_id == tenant.id
    token = _code_in(mail)
    # the raw token is not stored
    with db.transaction(tenant=ALL_TENANTS) as s:
        stored = s.scalars(select(PasswordResetToken.token_hash)).all()
    assert token not in stored

    confirm = client.post(
        "/api/auth/password-reset/confirm", json={"token": token, "newPassword": NEW_PASSWORD}
    )
    assert confirm.status_code == 200, confirm.text
    assert_error(_login(client, agent.email), 401, "INVALID_CREDENTIALS")
    assert _signed_in(client, agent.email, NEW_PASSWORD)
    assert_error(_me(client, agent.headers), 401, "TOKEN_REVOKED")
    assert_error(
        client.post("/api/auth/refresh", json={"refreshToken": refresh}), 401, "TOKEN_REVOKED"
    )

    again = client.post(
        "/api/auth/password-reset/confirm",
        json={"token": token, "newPassword": "Yet-another-Pass-9"},
    )
    assert_error(again, 400, "TOKEN_INVALID")
    assert _signed_in(client, agent.email, NEW_PASSWORD)
    assert len(_audit(client, tenant.admin.headers, "auth.password_reset_completed")) == 1


def test_reset_request_for_unknown_or_disabled_accounts_sends_nothing(
    world: World, client: httpx.Client, db: Database
) -> None:
    tenant = world.org("alpha")
    agent = world.user(tenant.id, Role.AGENT, login=False)
    known = _ask_reset(world, agent.email)
    unknown = _ask_reset(world, "ghost@alpha.example")
    assert known.json() == unknown.json()
    assert _emails(db, "ghost@alpha.example") == []
    assert len(_emails(db, agent.email)) == 1

    _set_user(db, agent.id, is_active=False)
    _ask_reset(world, agent.email)
    assert len(_emails(db, agent.email)) == 1
    bad = client.post("/api/auth/password-reset/request", json={"email": "not-an-email"})
    assert_error(bad, 422, "VALIDATION_ERROR")


def test_a_reset_request_does_the_same_work_whether_or_not_the_account_exists(
    world: World, client: httpx.Client, db: Database
) -> None:
    """The request only queues the address: the same SQL statements, the same status and
    the same body for an account, an unknown email, a deactivated account and an account
    of a suspended organization, so neither the answer nor its timing tells them apart."""
    tenant = world.org("alpha")
    agent = world.user(tenant.id, Role.AGENT, login=False)
    disabled = world.user(tenant.id, Role.AGENT, login=False, is_active=False)
    suspended = world.org("bravo")
    with db.transaction(tenant=ALL_TENANTS) as s:
        s.execute(
            update(Organization)
            .where(Organization.id == suspended.id)
            .values(status=OrganizationStatus.SUSPENDED)
        )
    client.post("/api/auth/password-reset/request", json={"email": "warm@up.example"})

    def ask(email: str) -> tuple[httpx.Response, list[str]]:
        with count_statements(db) as statements:
            response = client.post("/api/auth/password-reset/request", json={"email": email})
        return response, list(statements)

    real, real_sql = ask(agent.email)
    assert real.status_code == 202, real.text
    assert real_sql, "the request writes its queue row"
    for email in ("ghost@alpha.example", disabled.email, suspended.admin.email):
        other, other_sql = ask(email)
        assert other.status_code == real.status_code
        assert other.json() == real.json()
        assert other.headers.keys() == real.headers.keys()
        assert other_sql == real_sql, email
    # Nothing was looked up or sent yet: the outbox job does that.
    assert _emails(db, agent.email) == []
    with db.transaction(tenant=ALL_TENANTS) as s:
        assert s.scalars(select(PasswordResetToken)).all() == []


def _rows_mentioning(db: Database, text: str) -> list[str]:
    """Every table whose rows hold ``text`` anywhere."""
    with db.engine.connect() as conn:
        return [
            table.name
            for table in Base.metadata.sorted_tables
            for row in conn.execute(table.select())
            if any(text in str(value) for value in row)
        ]


def test_the_outbox_job_mails_a_real_account_and_keeps_no_trace_of_an_unknown_one(
    world: World, client: httpx.Client, db: Database
) -> None:
    tenant = world.org("alpha")
    agent = world.user(tenant.id, Role.AGENT, login=False)
    for email in (agent.email, "ghost@alpha.example"):
        response = client.post("/api/auth/password-reset/request", json={"email": email})
        assert response.status_code == 202, response.text
    assert _emails(db, agent.email) == []  # queued, not yet looked up

    deliver_email(db, world.settings)
    [mail] = _emails(db, agent.email)
    assert mail.kind == "password_reset" and mail.holds_secret
    confirm = client.post(
        "/api/auth/password-reset/confirm",
        json={"token": _code_in(mail), "newPassword": NEW_PASSWORD},
    )
    assert confirm.status_code == 200, confirm.text
    assert _signed_in(client, agent.email, NEW_PASSWORD)
    [requested] = _audit(client, tenant.admin.headers, "auth.password_reset_requested")
    assert requested["actorEmail"] == agent.email and requested["ipAddress"] == "127.0.0.1"

    # The unknown address got nothing and is written nowhere, not even in the queue.
    assert _rows_mentioning(db, "ghost@alpha.example") == []
    with db.transaction(tenant=ALL_TENANTS) as s:
        assert s.scalars(select(PasswordResetToken.user_id)).all() == [agent.id]
    deliver_email(db, world.settings)
    assert len(_emails(db, agent.email)) == 1, "a request is turned into mail once"


def test_expired_reset_token_is_refused(world: World, client: httpx.Client, db: Database) -> None:
    tenant = world.org("alpha")
    agent = world.user(tenant.id, Role.AGENT, login=False)
    _ask_reset(world, agent.email)
    token = _code_in(_emails(db, agent.email)[0])
    with db.transaction(tenant=ALL_TENANTS) as s:
        s.execute(
            update(PasswordResetToken)
            .where(PasswordResetToken.user_id == agent.id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    response = client.post(
        "/api/auth/password-reset/confirm", json={"token": token, "newPassword": NEW_PASSWORD}
    )
    assert_error(response, 400, "TOKEN_INVALID")
    assert _signed_in(client, agent.email)
    garbage = client.post(
        "/api/auth/password-reset/confirm", json={"token": "nope", "newPassword": NEW_PASSWORD}
    )
    assert_error(garbage, 400, "TOKEN_INVALID")


def test_weak_new_password_is_refused_and_changes_nothing(
    world: World, client: httpx.Client, db: Database
) -> None:
    tenant = world.org("alpha")
    agent = world.user(tenant.id, Role.AGENT)
    _ask_reset(world, agent.email)
    token = _code_in(_emails(db, agent.email)[0])
    weak_passwords = [
        "short-1",
        "aaaaaaaaaaaaaaaa",
        " Leading-space-pw-1",
        "Trailing-space-pw-1 ",
        "x" * 129,
        agent.email,
    ]
    for weak in weak_passwords:
        response = client.post(
            "/api/auth/password-reset/confirm", json={"token": token, "newPassword": weak}
        )
        assert_error(response, 422, "VALIDATION_ERROR")
    assert _me(client, agent.headers).status_code == 200  # sessions untouched
    assert _signed_in(client, agent.email)  # old password still works
    # the link was not used up by the refused attempts
    ok = client.post(
        "/api/auth/password-reset/confirm", json={"token": token, "newPassword": NEW_PASSWORD}
    )
    assert ok.status_code == 200, ok.text


def test_passwords_are_taken_exactly_as_typed(world: World, client: httpx.Client) -> None:
    tenant = world.org("alpha")
    agent = world.user(tenant.id, Role.AGENT, login=False)
    assert_error(_login(client, agent.email, f" {PASSWORD} "), 401, "INVALID_CREDENTIALS")
    assert _signed_in(client, agent.email)


def test_using_one_reset_link_voids_the_others(
    world: World, client: httpx.Client, db: Database
) -> None:
    tenant = world.org("alpha")
    agent = world.user(tenant.id, Role.AGENT, login=False)
    for _ in range(2):
        _ask_reset(world, agent.email)
    older, newer = (_code_in(m) for m in _emails(db, agent.email))
    assert older != newer
    response = client.post(
        "/api/auth/password-reset/confirm", json={"token": newer, "newPassword": NEW_PASSWORD}
    )
    assert response.status_code == 200, response.text
    response = client.post(
        "/api/auth/password-reset/confirm",
        json={"token": older, "newPassword": "Yet-another-Pass-9"},
    )
    assert_error(response, 400, "TOKEN_INVALID")
    assert _signed_in(client, agent.email, NEW_PASSWORD)


def test_invitation_lets_the_new_user_choose_a_password(
    world: World, client: httpx.Client, db: Database
) -> None:
    tenant = world.org("alpha")
    response = client.post(
        "/api/users",
        headers=tenant.admin.headers,
        json={"email": "New.Person@alpha.example", "role": "technician", "firstName": "Nia"},
    )
    assert response.status_code == 201, response.text
    email = "new.person@alpha.example"
    [mail] = _emails(db, email)
    assert mail.kind == "invitation"
    assert_error(_login(client, email), 401, "INVALID_CREDENTIALS")
    token = _code_in(mail)
    confirm = client.post(
        "/api/auth/password-reset/confirm", json={"token": token, "newPassword": NEW_PASSWORD}
    )
    assert confirm.status_code == 200, confirm.text
    data = _signed_in(client, email, NEW_PASSWORD)
    assert data["user"]["role"] == "technician"
    assert data["user"]["organizationId"] == str(tenant.id)
    again = client.post(
        "/api/auth/password-reset/confirm",
        json={"token": token, "newPassword": "Yet-another-Pass-9"},
    )
    assert_error(again, 400, "TOKEN_INVALID")


# --------------------------------------------------------------------------- Google domain matching


def test_google_domain_matching_finds_the_organization(world: World, client: httpx.Client) -> None:
    alpha = world.org("alpha")
    beta = world.org("beta")
    root = world.super_admin()
    response = client.patch(
        f"/api/organizations/{alpha.id}",
        headers=alpha.admin.headers,
        json={"domains": ["alpha-schools.org", "alpha.k12.us"]},
    )
    assert response.status_code == 200, response.text

    match = client.post("/api/auth/google", json={"email": "Teacher@Alpha-Schools.org"})
    assert match.status_code == 200, match.text
    data = match.json()["data"]
    assert data["organizationId"] == str(alpha.id)
    assert data["slug"] == "alpha"
    assert data["domain"] == "alpha-schools.org"
    by_domain = client.post("/api/auth/google", json={"domain": "alpha.k12.us"})
    assert by_domain.json()["data"]["organizationId"] == str(alpha.id)

    assert_error(client.post("/api/auth/google", json={"email": "x@unknown.example"}), 404)
    assert_error(client.post("/api/auth/google", json={}), 422)
    # a domain belongs to one organization
    taken = client.patch(
        f"/api/organizations/{beta.id}",
        headers=beta.admin.headers,
        json={"domains": ["alpha.k12.us"]},
    )
    assert_error(taken, 409)
    # a suspended organization is not offered
    client.patch(
        f"/api/organizations/{alpha.id}", headers=root.headers, json={"status": "suspended"}
    )
    assert_error(client.post("/api/auth/google", json={"domain": "alpha.k12.us"}), 404)


def test_an_authenticator_code_works_only_once(world: World, client: httpx.Client) -> None:
    """A code seen over someone's shoulder cannot be replayed within its window."""
    import pyotp

    tenant = world.org("replay")
    headers = tenant.admin.headers
    secret = client.post("/api/auth/mfa/enable", headers=headers).json()["data"]["secret"]
    totp = pyotp.TOTP(secret)
    code = totp.now()
    assert (
        client.post("/api/auth/mfa/verify", headers=headers, json={"code": code}).status_code == 200
    )
    body = {"email": tenant.admin.email, "password": PASSWORD, "mfaCode": code}
    assert_error(client.post("/api/auth/login", json=body), 401, "MFA_INVALID")
    later = totp.at(time.time() + 30)
    assert client.post("/api/auth/login", json={**body, "mfaCode": later}).status_code == 200
    assert_error(
        client.post("/api/auth/login", json={**body, "mfaCode": later}), 401, "MFA_INVALID"
    )


def test_api_token_use_is_recorded_coarsely(world: World, client: httpx.Client) -> None:
    """Admins see when an integration last used its token (not a write per request)."""
    tenant = world.org("usage")
    created = client.post(
        "/api/api-tokens",
        headers=tenant.admin.headers,
        json={"name": "sis-sync", "scopes": ["users:read"]},
    ).json()["data"]
    assert created["lastUsedAt"] is None
    token_headers = {"Authorization": f"Bearer {created['token']}"}
    assert client.get("/api/users", headers=token_headers).status_code == 200
    listed = client.get("/api/api-tokens", headers=tenant.admin.headers).json()["data"]
    first_use = next(t for t in listed if t["id"] == created["id"])["lastUsedAt"]
    assert first_use is not None
    for _ in range(3):
        assert client.get("/api/users", headers=token_headers).status_code == 200
    listed = client.get("/api/api-tokens", headers=tenant.admin.headers).json()["data"]
    assert next(t for t in listed if t["id"] == created["id"])["lastUsedAt"] == first_use


def test_an_organization_can_require_mfa_of_platform_administrators(
    world: World, client: httpx.Client
) -> None:
    import pyotp

    strict, relaxed = world.org("strict"), world.org("relaxed")
    _set_policy(client, strict.admin.headers, requireMfaForSuperAdmins=True)
    root = world.super_admin()
    on_strict = {"organizationId": str(strict.id)}
    refused = client.get("/api/users", headers=root.headers, params=on_strict)
    assert_error(refused, 403, "MFA_ENROLLMENT_REQUIRED")
    body = {"organizationId": str(strict.id), "name": "Sneaky"}
    assert_error(client.post("/api/departments", headers=root.headers, json=body), 403)
    # other organizations, and platform-wide work, are unaffected
    assert (
        client.get(
            "/api/users", headers=root.headers, params={"organizationId": str(relaxed.id)}
        ).status_code
        == 200
    )
    assert client.get("/api/organizations", headers=root.headers).status_code == 200
    # after enrolling, a new sign-in with a code may act on the strict organization
    secret = client.post("/api/auth/mfa/enable", headers=root.headers).json()["data"]["secret"]
    code = pyotp.TOTP(secret).now()
    assert (
        client.post("/api/auth/mfa/verify", headers=root.headers, json={"code": code}).status_code
        == 200
    )
    headers = world.login(root.email, mfaCode=_next_code(secret))
    assert client.get("/api/users", headers=headers, params=on_strict).status_code == 200
