"""Sign-in, token refresh and revocation, bearer authentication, MFA and password reset."""

from __future__ import annotations

import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from hashlib import sha256
from typing import Any

import pyotp
from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from common.enums import AuditCategory, AuditSeverity, OrganizationStatus, Role
from common.errors import ErrorCode
from common.scopes import MFA_ENROLLMENT_SCOPE, scope_covers
from server.audit import service as audit
from server.auth.models import (
    ApiToken,
    AuthSession,
    PasswordResetRequest,
    PasswordResetToken,
    RefreshToken,
)
from server.core.config import Settings
from server.core.context import client_ip_var, request_id_var, user_agent_var
from server.core.db import utcnow
from server.core.errors import (
    ApiError,
    AuthenticationRequired,
    BusinessRuleViolation,
    Conflict,
    PermissionDenied,
)
from server.core.security import (
    TokenError,
    decode_access_token,
    digest,
    hash_password,
    issue_access_token,
    looks_like_api_token,
    new_secret,
    verify_password,
)
from server.core.tenancy import Caller
from server.mail import service as mail
from server.organizations.models import Organization
from server.security.service import SETTINGS_KEY, address_allowed, policy_of
from server.users.models import User

ISSUER = "District Resolve"
BACKUP_CODE_COUNT = 10
API_TOKEN_TOUCH_INTERVAL = timedelta(minutes=5)
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 128
INVITE_VALID_DAYS = 7


class AuthFailure(ApiError):
    """A refused sign-in whose bookkeeping (failed count, lockout, audit) must persist."""

    status_code = 401
    keep_changes = True


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    user: User
    session: AuthSession

    @property
    def mfa_enrollment_required(self) -> bool:
        return self.session.mfa_enrollment_only


# --------------------------------------------------------------------------- passwords


def check_password_strength(password: str, *, email: str | None = None) -> None:
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        problems.append(f"at most {MAX_PASSWORD_LENGTH} characters")
    if password.strip() != password or not password.strip():
        problems.append("no leading or trailing spaces")
    if email and password.lower() == email.lower():
        problems.append("different from the email address")
    if len(set(password)) < 4:
        problems.append("more than three distinct characters")
    if problems:
        raise BusinessRuleViolation(
            "Password is too weak: it needs " + ", ".join(problems),
            code=ErrorCode.VALIDATION_ERROR,
            details={"field": "password", "rules": problems},
        )


def set_password(user: User, password: str) -> None:
    check_password_strength(password, email=user.email)
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    user.failed_login_count = 0
    user.locked_until = None


# --------------------------------------------------------------------------- sign-in


def _load_account(session: Session, email: str) -> tuple[User, Organization | None] | None:
    row = session.execute(
        select(User, Organization)
        .outerjoin(Organization, Organization.id == User.organization_id)
        .where(User.email == email.strip().lower())
    ).first()
    return (row[0], row[1]) if row else None


#: the one answer to a refused password, an unknown email and a locked account alike
SIGN_IN_REFUSED = "Invalid email or password"


def _fail(
    session: Session,
    *,
    user: User | None,
    email: str,
    org: Organization | None,
    reason: str,
    code: ErrorCode = ErrorCode.INVALID_CREDENTIALS,
    message: str = SIGN_IN_REFUSED,
    status_code: int = 401,
    details: dict[str, object] | None = None,
) -> AuthFailure:
    audit.record(
        session,
        action="auth.login_failed",
        category=AuditCategory.AUTHENTICATION,
        severity=AuditSeverity.WARNING,
        organization_id=org.id if org else None,
        actor_user_id=user.id if user else None,
        actor_email=email[:320],
        entity_type="user" if user else None,
        entity_id=user.id if user else None,
        message=f"Failed sign-in for {email[:320]}: {reason}",
        details={"reason": reason},
    )
    return AuthFailure(message, code=code, status_code=status_code, details=details)


def _register_failure(
    session: Session,
    *,
    user: User,
    org: Organization | None,
    reason: str,
    code: ErrorCode = ErrorCode.INVALID_CREDENTIALS,
    message: str = SIGN_IN_REFUSED,
) -> AuthFailure:
    policy = policy_of(org) if org else None
    max_attempts = policy.max_failed_login_attempts if policy else 5
    lockout_minutes = policy.lockout_minutes if policy else 15
    user.failed_login_count += 1
    if user.failed_login_count >= max_attempts:
        user.failed_login_count = 0
        user.locked_until = utcnow() + timedelta(minutes=lockout_minutes)
        audit.record(
            session,
            action="auth.account_locked",
            category=AuditCategory.SECURITY,
            severity=AuditSeverity.CRITICAL,
            organization_id=org.id if org else None,
            actor_user_id=user.id,
            actor_email=user.email,
            entity_type="user",
            entity_id=user.id,
            message=f"{user.email} locked for {lockout_minutes} minutes after "
            f"{max_attempts} failed sign-ins",
        )
        mail.enqueue(
            session,
            to=user.email,
            subject="Sign-in to your District Resolve account is paused",
            body=(
                f"Hello {user.full_name},\n\n"
                f"After {max_attempts} failed sign-ins, your District Resolve account "
                f"will not accept sign-ins for {lockout_minutes} minutes "
                "(until it does, even the right password is refused).\n\n"
                "If this was you, wait and try again, or reset your password, which "
                "ends the pause. If it was not you, reset your password and tell your "
                "district's IT team.\n"
            ),
            kind="account_locked",
            organization_id=user.organization_id,
        )
    return _fail(
        session, user=user, email=user.email, org=org, reason=reason, code=code, message=message
    )


def _accept_totp(user: User, code: str) -> bool:
    """A current authenticator code that was not used before.

    Codes are valid for one 30-second step either side of now; remembering the last
    step used means a code seen over someone's shoulder cannot be replayed.
    """
    if not (user.mfa_secret and code.isdigit() and len(code) == 6):
        return False
    totp = pyotp.TOTP(user.mfa_secret)
    now = utcnow()
    current = totp.timecode(now)
    for step in (current - 1, current, current + 1):
        if step <= (user.mfa_last_step or -1):
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            user.mfa_last_step = step
            return True
    return False


def _verify_second_factor(user: User, code: str) -> bool:
    code = code.strip().replace(" ", "")
    if _accept_totp(user, code):
        return True
    hashed = _backup_code_hash(user, code)
    if hashed in (user.mfa_backup_codes or []):
        user.mfa_backup_codes = [c for c in user.mfa_backup_codes if c != hashed]
        return True
    return False


def login(
    session: Session,
    *,
    settings: Settings,
    email: str,
    password: str,
    mfa_code: str | None,
    ip_address: str | None,
    user_agent: str | None,
) -> IssuedTokens:
    email = email.strip().lower()
    account = _load_account(session, email)
    if account is None:
        verify_password(None, password)  # the same work as for a real account
        raise _fail(session, user=None, email=email, org=None, reason="unknown_account")
    user, org = account
    now = utcnow()
    if user.locked_until and user.locked_until > now:
        # Answered like a wrong password or an unknown email, after the same work: a
        # distinct answer told anyone which addresses have accounts. The owner was
        # told of the lock by email when it began.
        verify_password(user.password_hash, password)
        raise _fail(session, user=user, email=email, org=org, reason="locked")
    if not verify_password(user.password_hash, password):
        raise _register_failure(session, user=user, org=org, reason="bad_password")
    if not user.is_active:
        raise _fail(
            session,
            user=user,
            email=email,
            org=org,
            reason="deactivated",
            code=ErrorCode.ACCOUNT_DISABLED,
            status_code=403,
            message="This account is deactivated",
        )
    if org is not None and org.status is not OrganizationStatus.ACTIVE:
        raise _fail(
            session,
            user=user,
            email=email,
            org=org,
            reason=f"organization_{org.status.value}",
            code=ErrorCode.ORGANIZATION_SUSPENDED,
            status_code=403,
            message=f"The organization is {org.status.value}; sign-in is disabled",
        )
    if org is not None and not _allowed_from(org.settings, ip_address):
        raise _fail(
            session,
            user=user,
            email=email,
            org=org,
            reason="ip_not_allowed",
            code=ErrorCode.PERMISSION_DENIED,
            status_code=403,
            message="Your organization does not allow sign-in from this network",
            details={"address": ip_address},
        )
    if user.mfa_enabled:
        if not mfa_code:
            # Not a failed attempt: the password was right and a code is asked for.
            raise AuthFailure(
                "A code from your authenticator app is required",
                code=ErrorCode.MFA_REQUIRED,
                details={"mfaRequired": True},
            )
        if not _verify_second_factor(user, mfa_code):
            # The password was right (MFA_REQUIRED already told so): say what was wrong.
            raise _register_failure(
                session,
                user=user,
                org=org,
                reason="bad_mfa_code",
                code=ErrorCode.MFA_INVALID,
                message="The two-factor code is not valid",
            )
    enrollment_only = (
        org is not None
        and user.role is Role.ORG_ADMIN
        and not user.mfa_enabled
        and policy_of(org).require_mfa_for_admins
    )
    user.failed_login_count = 0
    user.locked_until = None
    user.last_login_at = now
    auth_session = AuthSession(
        user_id=user.id,
        expires_at=now + timedelta(days=settings.refresh_token_days),
        ip_address=ip_address,
        user_agent=(user_agent or "")[:300] or None,
        mfa_enrollment_only=enrollment_only,
    )
    session.add(auth_session)
    session.flush()
    audit.record(
        session,
        action="auth.login_succeeded",
        category=AuditCategory.AUTHENTICATION,
        organization_id=user.organization_id,
        actor_user_id=user.id,
        actor_email=user.email,
        entity_type="user",
        entity_id=user.id,
        message=f"{user.email} signed in"
        + (" (MFA enrolment required)" if enrollment_only else ""),
        details={"mfa": user.mfa_enabled, "sessionId": str(auth_session.id)},
    )
    return _issue(session, settings=settings, user=user, auth_session=auth_session)


def _issue(
    session: Session, *, settings: Settings, user: User, auth_session: AuthSession
) -> IssuedTokens:
    refresh_raw = f"{auth_session.id.hex}.{new_secret()}"
    session.add(RefreshToken(session_id=auth_session.id, token_hash=digest(refresh_raw)))
    access, expires = issue_access_token(
        key=settings.signing_key(),
        user_id=user.id,
        session_id=auth_session.id,
        organization_id=user.organization_id,
        minutes=settings.access_token_minutes,
    )
    session.flush()
    return IssuedTokens(
        access_token=access,
        refresh_token=refresh_raw,
        expires_in=int((expires - utcnow()).total_seconds()),
        user=user,
        session=auth_session,
    )


def revoke_session(session: Session, auth_session: AuthSession, reason: str) -> None:
    if auth_session.revoked_at is None:
        auth_session.revoked_at = utcnow()
        auth_session.revoked_reason = reason


def revoke_all_sessions(session: Session, user_id: uuid.UUID, reason: str) -> None:
    session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )


def refresh(
    session: Session, *, settings: Settings, refresh_token: str, ip_address: str | None = None
) -> IssuedTokens:
    row = session.execute(
        select(RefreshToken, AuthSession, User, Organization)
        .join(AuthSession, AuthSession.id == RefreshToken.session_id)
        .join(User, User.id == AuthSession.user_id)
        .outerjoin(Organization, Organization.id == User.organization_id)
        .where(RefreshToken.token_hash == digest(refresh_token))
    ).first()
    if row is None:
        raise AuthenticationRequired("Refresh token is not valid", code=ErrorCode.TOKEN_INVALID)
    token, auth_session, user, org = row
    now = utcnow()
    if token.used_at is not None:
        # A refresh token is good once. Seeing it again means it was copied: end the
        # whole family so neither the thief nor the owner can continue with it.
        if auth_session.revoked_at is None:
            revoke_session(session, auth_session, "refresh_reuse")
            audit.record(
                session,
                action="auth.refresh_reuse_detected",
                category=AuditCategory.SECURITY,
                severity=AuditSeverity.CRITICAL,
                organization_id=user.organization_id,
                actor_user_id=user.id,
                actor_email=user.email,
                entity_type="session",
                entity_id=auth_session.id,
                message="A refresh token was used twice; the session was revoked",
            )
        raise AuthFailure("Refresh token was already used", code=ErrorCode.TOKEN_REVOKED)
    if auth_session.revoked_at is not None:
        raise AuthFailure("Session was signed out", code=ErrorCode.TOKEN_REVOKED)
    if auth_session.expires_at <= now:
        raise AuthFailure("Session expired; sign in again", code=ErrorCode.TOKEN_EXPIRED)
    if org is not None:
        idle = timedelta(minutes=policy_of(org).session_timeout_minutes)
        if auth_session.last_used_at + idle <= now:
            revoke_session(session, auth_session, "idle_timeout")
            raise AuthFailure("Session timed out; sign in again", code=ErrorCode.TOKEN_EXPIRED)
    _check_account_usable(user, org)
    _check_allowlist(org.settings if org is not None else None, ip_address)
    # Claim the token with a conditional UPDATE: of two concurrent refreshes with the
    # same token only one matches (the other waits for the row lock, then sees used_at).
    claimed = session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == token.id, RefreshToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 1) != 1:
        raise AuthFailure("Refresh token was already used", code=ErrorCode.TOKEN_REVOKED)
    auth_session.last_used_at = now
    return _issue(session, settings=settings, user=user, auth_session=auth_session)


def logout(session: Session, *, refresh_token: str | None, caller: Caller | None) -> None:
    auth_session: AuthSession | None = None
    if refresh_token:
        auth_session = session.scalar(
            select(AuthSession)
            .join(RefreshToken, RefreshToken.session_id == AuthSession.id)
            .where(RefreshToken.token_hash == digest(refresh_token))
        )
    elif caller is not None and caller.session_id is not None:
        auth_session = session.get(AuthSession, caller.session_id)
    if auth_session is None:
        raise AuthenticationRequired("Nothing to sign out of", code=ErrorCode.TOKEN_INVALID)
    revoke_session(session, auth_session, "logout")
    session.flush()


def _account_problem(
    *, is_active: bool, deleted_at: datetime | None, org_status: OrganizationStatus | None
) -> tuple[ErrorCode, str] | None:
    """Why a signed-in account may no longer act, or None (one rule for every path)."""
    if not is_active or deleted_at is not None:
        return ErrorCode.ACCOUNT_DISABLED, "This account is deactivated"
    if org_status is not None and org_status is not OrganizationStatus.ACTIVE:
        return ErrorCode.ORGANIZATION_SUSPENDED, f"The organization is {org_status.value}"
    return None


def _check_account_usable(user: User, org: Organization | None) -> None:
    problem = _account_problem(
        is_active=user.is_active,
        deleted_at=user.deleted_at,
        org_status=org.status if org is not None else None,
    )
    if problem is not None:
        raise AuthFailure(problem[1], code=problem[0])


# --------------------------------------------------------------------------- bearer


def authenticate(
    session: Session, *, settings: Settings, token: str, ip_address: str | None = None
) -> Caller:
    """Turn a bearer token (access JWT or API token) into a Caller, or refuse it.

    ``ip_address``: the client's address, checked against the organization's allowlist.
    """
    if looks_like_api_token(token):
        return _authenticate_api_token(session, token, ip_address)
    try:
        claims = decode_access_token(token, key=settings.signing_key())
    except TokenError as exc:
        code = ErrorCode.TOKEN_EXPIRED if exc.reason == "expired" else ErrorCode.TOKEN_INVALID
        raise AuthenticationRequired(
            "Access token expired" if exc.reason == "expired" else "Access token is not valid",
            code=code,
        ) from exc
    row = session.execute(
        _BEARER_LOOKUP, {"user_id": claims.user_id, "session_id": claims.session_id}
    ).first()
    if row is None:
        raise AuthenticationRequired("Access token is not valid", code=ErrorCode.TOKEN_INVALID)
    if row.revoked_at is not None:
        raise AuthenticationRequired("Session was signed out", code=ErrorCode.TOKEN_REVOKED)
    problem = _account_problem(
        is_active=row.is_active, deleted_at=row.deleted_at, org_status=row.org_status
    )
    if problem is not None:
        raise AuthenticationRequired(problem[1], code=problem[0])
    _check_allowlist(row.org_settings, ip_address)
    scopes = frozenset({MFA_ENROLLMENT_SCOPE}) if row.mfa_enrollment_only else frozenset({"*"})
    return Caller(
        user_id=row.id,
        organization_id=row.organization_id,
        role=row.role,
        email=row.email,
        scopes=scopes,
        session_id=claims.session_id,
        mfa_enabled=row.mfa_enabled,
    )


# Built once: this runs on every request, and building the expression is a
# noticeable part of a small request. Columns, not entities: nothing to track.
_BEARER_LOOKUP = (
    select(
        User.id,
        User.organization_id,
        User.role,
        User.email,
        User.is_active,
        User.deleted_at,
        User.mfa_enabled,
        AuthSession.revoked_at,
        AuthSession.mfa_enrollment_only,
        Organization.status.label("org_status"),
        Organization.settings.label("org_settings"),
    )
    .join(AuthSession, AuthSession.user_id == User.id)
    .outerjoin(Organization, Organization.id == User.organization_id)
    .where(User.id == bindparam("user_id"), AuthSession.id == bindparam("session_id"))
)


def _allowed_from(org_settings: dict[str, Any] | None, ip_address: str | None) -> bool:
    """The organization's IP allowlist, read straight from its settings (most have none)."""
    security = (org_settings or {}).get(SETTINGS_KEY) or {}
    allowlist = security.get("ipAllowlist") or security.get("ip_allowlist")
    return not allowlist or address_allowed(list(allowlist), ip_address)


def _check_allowlist(org_settings: dict[str, Any] | None, ip_address: str | None) -> None:
    if not _allowed_from(org_settings, ip_address):
        raise PermissionDenied(
            "Your organization does not allow access from this network",
            details={"address": ip_address},
        )


def _check_bearer_account(user: User, org: Organization | None) -> None:
    problem = _account_problem(
        is_active=user.is_active,
        deleted_at=user.deleted_at,
        org_status=org.status if org is not None else None,
    )
    if problem is not None:
        raise AuthenticationRequired(problem[1], code=problem[0])


def _touch_api_token(session: Session, token: ApiToken, now: datetime) -> None:
    """Record when a token was last used: coarse (every few minutes, so a busy
    integration does not write on every request) and best effort — on a read
    request SQLite may refuse to upgrade to a write lock, and a stale "last used"
    is no reason to fail the request."""
    try:
        with session.begin_nested():
            session.execute(
                update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now)
            )
    except OperationalError:
        return


def _authenticate_api_token(session: Session, raw: str, ip_address: str | None) -> Caller:
    row = session.execute(
        select(ApiToken, User, Organization)
        .join(User, User.id == ApiToken.created_by_id)
        .join(Organization, Organization.id == ApiToken.organization_id)
        .where(ApiToken.token_hash == digest(raw))
    ).first()
    if row is None:
        raise AuthenticationRequired("API token is not valid", code=ErrorCode.TOKEN_INVALID)
    token, user, org = row
    now = utcnow()
    if token.revoked_at is not None:
        raise AuthenticationRequired("API token was revoked", code=ErrorCode.TOKEN_REVOKED)
    if token.expires_at is not None and token.expires_at <= now:
        raise AuthenticationRequired("API token expired", code=ErrorCode.TOKEN_EXPIRED)
    _check_bearer_account(user, org)
    _check_allowlist(org.settings, ip_address)
    # An organization's token acts inside that organization: a platform administrator's
    # token is an administrator of the token's organization, not of the platform.
    role = Role.ORG_ADMIN if user.role is Role.SUPER_ADMIN else user.role
    if token.last_used_at is None or now - token.last_used_at > API_TOKEN_TOUCH_INTERVAL:
        _touch_api_token(session, token, now)
    return Caller(
        user_id=user.id,
        organization_id=token.organization_id,
        role=role,
        email=user.email,
        scopes=frozenset(token.scopes),
        via_api_token=True,
        token_id=token.id,
    )


# --------------------------------------------------------------------------- MFA


def _backup_code_hash(user: User, code: str) -> str:
    normalized = code.strip().replace("-", "").lower()
    key = (user.mfa_secret or "").encode()
    return hmac.new(key, f"{user.id}:{normalized}".encode(), sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class MfaEnrollment:
    secret: str
    otpauth_uri: str
    backup_codes: list[str]


def begin_mfa_enrollment(session: Session, *, user: User) -> MfaEnrollment:
    if user.mfa_enabled:
        raise Conflict("MFA is already enabled; disable it first to enrol a new device")
    user.mfa_secret = pyotp.random_base32()
    user.mfa_last_step = None
    codes = [f"{secrets.token_hex(2)}-{secrets.token_hex(2)}" for _ in range(BACKUP_CODE_COUNT)]
    user.mfa_backup_codes = [_backup_code_hash(user, c) for c in codes]
    session.flush()
    uri = pyotp.TOTP(user.mfa_secret).provisioning_uri(name=user.email, issuer_name=ISSUER)
    return MfaEnrollment(secret=user.mfa_secret, otpauth_uri=uri, backup_codes=codes)


def confirm_mfa(session: Session, *, user: User, caller: Caller, code: str) -> None:
    if user.mfa_enabled:
        raise Conflict("MFA is already enabled")
    if not user.mfa_secret:
        raise BusinessRuleViolation("Start MFA enrolment first (POST /api/auth/mfa/enable)")
    if not _accept_totp(user, code.strip().replace(" ", "")):
        raise ApiError("The code does not match", code=ErrorCode.MFA_INVALID, status_code=400)
    user.mfa_enabled = True
    if caller.session_id is not None:
        auth_session = session.get(AuthSession, caller.session_id)
        if auth_session is not None:
            auth_session.mfa_enrollment_only = False
    audit.record(
        session,
        actor=caller,
        organization_id=user.organization_id,
        action="auth.mfa_enabled",
        category=AuditCategory.SECURITY,
        entity_type="user",
        entity_id=user.id,
        message=f"{user.email} enabled two-factor sign-in",
    )
    session.flush()


def disable_mfa(
    session: Session, *, user: User, caller: Caller, code: str, org: Organization | None
) -> None:
    if not user.mfa_enabled:
        raise Conflict("MFA is not enabled")
    if org is not None and user.role is Role.ORG_ADMIN and policy_of(org).require_mfa_for_admins:
        raise BusinessRuleViolation("Your organization requires MFA for administrators")
    if not _verify_second_factor(user, code):
        raise ApiError("The code does not match", code=ErrorCode.MFA_INVALID, status_code=400)
    user.mfa_enabled = False
    user.mfa_secret = None
    user.mfa_backup_codes = []
    audit.record(
        session,
        actor=caller,
        organization_id=user.organization_id,
        action="auth.mfa_disabled",
        category=AuditCategory.SECURITY,
        severity=AuditSeverity.WARNING,
        entity_type="user",
        entity_id=user.id,
        message=f"{user.email} disabled two-factor sign-in",
    )
    session.flush()


# --------------------------------------------------------------------------- password reset


def _new_reset_token(session: Session, *, user: User, purpose: str, valid_for: timedelta) -> str:
    raw = new_secret()
    session.add(
        PasswordResetToken(
            user_id=user.id,
            token_hash=digest(raw),
            purpose=purpose,
            expires_at=utcnow() + valid_for,
        )
    )
    return raw


def request_password_reset(session: Session, *, email: str) -> None:
    """Queue a reset for this address: one insert, whether or not it has an account.

    Looking the account up here would make a real account's request slower than an
    unknown one's; the outbox job does it instead (``mail_requested_resets``).
    """
    session.add(
        PasswordResetRequest(
            email=email.strip().lower(),
            ip_address=client_ip_var.get(),
            user_agent=(user_agent_var.get() or "")[:300] or None,
            request_id=request_id_var.get(),
        )
    )
    session.flush()


def mail_requested_resets(session: Session, *, settings: Settings, batch: int = 500) -> int:
    """Turn queued reset requests into reset mails; returns how many were mailed.

    A real, active account gets a single-use link (stored hashed) by email; an unknown
    address, a deactivated account or one of a suspended organization gets nothing.
    Every request taken is deleted, so an address without an account leaves no trace.
    Rows are claimed with SKIP LOCKED on PostgreSQL, as the outbox claims its mails.
    The caller commits.
    """
    stmt = select(PasswordResetRequest).order_by(PasswordResetRequest.id).limit(batch)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    requests = list(session.scalars(stmt))
    if not requests:
        return 0
    accounts = {
        user.email: (user, org)
        for user, org in session.execute(
            select(User, Organization)
            .outerjoin(Organization, Organization.id == User.organization_id)
            .where(User.email.in_({r.email for r in requests}), User.deleted_at.is_(None))
        )
    }
    session.execute(
        delete(PasswordResetRequest).where(PasswordResetRequest.id.in_([r.id for r in requests]))
    )
    mailed = 0
    for request in requests:
        account = accounts.get(request.email)
        if account is None:
            continue
        user, org = account
        if not user.is_active or (org is not None and org.status is not OrganizationStatus.ACTIVE):
            continue
        _mail_reset_link(session, settings=settings, user=user, request=request)
        mailed += 1
    session.flush()
    return mailed


def _mail_reset_link(
    session: Session, *, settings: Settings, user: User, request: PasswordResetRequest
) -> None:
    raw = _new_reset_token(
        session,
        user=user,
        purpose="reset",
        valid_for=timedelta(minutes=settings.password_reset_minutes),
    )
    mail.enqueue(
        session,
        to=user.email,
        subject="Reset your District Resolve password",
        body=(
            f"Hello {user.full_name},\n\n"
            "Someone asked to reset the password of your District Resolve account.\n"
            f"Use this link within {settings.password_reset_minutes} minutes:\n\n"
            f"{settings.base_url}/reset-password?token={raw}\n\n"
            f"or enter this code in the app: {raw}\n\n"
            "If it was not you, ignore this email; your password stays as it is.\n"
        ),
        kind="password_reset",
        organization_id=user.organization_id,
        holds_secret=True,
    )
    event = audit.record(
        session,
        action="auth.password_reset_requested",
        category=AuditCategory.AUTHENTICATION,
        organization_id=user.organization_id,
        actor_user_id=user.id,
        actor_email=user.email,
        entity_type="user",
        entity_id=user.id,
        message=f"Password reset requested for {user.email}",
    )
    # the job runs outside the request: the event names the request's client
    event.ip_address = request.ip_address
    event.user_agent = request.user_agent
    event.request_id = request.request_id


def send_invitation(session: Session, *, settings: Settings, user: User, inviter: Caller) -> None:
    raw = _new_reset_token(
        session, user=user, purpose="invite", valid_for=timedelta(days=INVITE_VALID_DAYS)
    )
    mail.enqueue(
        session,
        to=user.email,
        subject="You are invited to District Resolve",
        body=(
            f"Hello {user.full_name},\n\n"
            f"{inviter.email} invited you to District Resolve.\n"
            f"Choose your password within {INVITE_VALID_DAYS} days:\n\n"
            f"{settings.base_url}/reset-password?token={raw}\n\n"
            f"or enter this code in the app: {raw}\n"
        ),
        kind="invitation",
        organization_id=user.organization_id,
        holds_secret=True,
    )


def confirm_password_reset(session: Session, *, token: str, new_password: str) -> User:
    row = session.execute(
        select(PasswordResetToken, User)
        .join(User, User.id == PasswordResetToken.user_id)
        .where(PasswordResetToken.token_hash == digest(token))
    ).first()
    now = utcnow()
    if row is None or row[0].used_at is not None or row[0].expires_at <= now:
        raise ApiError(
            "This reset link is invalid or has expired; ask for a new one",
            code=ErrorCode.TOKEN_INVALID,
            status_code=400,
        )
    reset, user = row
    set_password(user, new_password)
    # Every outstanding link of this user dies with the one that was used.
    session.execute(
        update(PasswordResetToken)
        .where(PasswordResetToken.user_id == user.id, PasswordResetToken.used_at.is_(None))
        .values(used_at=now)
    )
    revoke_all_sessions(session, user.id, "password_reset")
    audit.record(
        session,
        action="auth.password_reset_completed",
        category=AuditCategory.AUTHENTICATION,
        severity=AuditSeverity.WARNING,
        organization_id=user.organization_id,
        actor_user_id=user.id,
        actor_email=user.email,
        entity_type="user",
        entity_id=user.id,
        message=f"Password of {user.email} was set through a {reset.purpose} link",
    )
    session.flush()
    return user


# --------------------------------------------------------------------------- API tokens


def create_api_token(
    session: Session,
    *,
    caller: Caller,
    organization_id: uuid.UUID,
    name: str,
    scopes: list[str],
    expires_at: datetime | None,
) -> tuple[ApiToken, str]:
    from server.core.security import new_api_token

    if expires_at is not None and expires_at <= utcnow():
        raise BusinessRuleViolation(
            "expiresAt must be in the future", code=ErrorCode.VALIDATION_ERROR
        )
    if caller.via_api_token:
        # A token may mint narrower tokens, never wider ones.
        wider = [s for s in scopes if not scope_covers(caller.scopes, s)]
        if wider:
            raise PermissionDenied(
                "An API token cannot create a token with scopes it does not have",
                code=ErrorCode.INSUFFICIENT_SCOPE,
                details={"scopes": sorted(set(wider))},
            )
    raw = new_api_token()
    token = ApiToken(
        organization_id=organization_id,
        name=name,
        token_prefix=raw[:12],
        token_hash=digest(raw),
        scopes=sorted(set(scopes)),
        created_by_id=caller.user_id,
        expires_at=expires_at,
    )
    session.add(token)
    session.flush()
    audit.record(
        session,
        actor=caller,
        organization_id=organization_id,
        action="api_token.created",
        category=AuditCategory.SECURITY,
        severity=AuditSeverity.WARNING,
        entity_type="api_token",
        entity_id=token.id,
        message=f"API token '{name}' created with scopes {', '.join(token.scopes)}",
        details={
            "scopes": token.scopes,
            "expiresAt": expires_at.isoformat() if expires_at else None,
        },
    )
    return token, raw


def revoke_api_token(session: Session, *, caller: Caller, token: ApiToken) -> ApiToken:
    if token.revoked_at is not None:
        raise Conflict("API token is already revoked")
    token.revoked_at = utcnow()
    token.revoked_by_id = caller.user_id
    audit.record(
        session,
        actor=caller,
        organization_id=token.organization_id,
        action="api_token.revoked",
        category=AuditCategory.SECURITY,
        severity=AuditSeverity.WARNING,
        entity_type="api_token",
        entity_id=token.id,
        message=f"API token '{token.name}' revoked",
    )
    session.flush()
    return token
