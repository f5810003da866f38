from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, EmailStr, Field, StringConstraints

from common.scopes import is_known_scope
from server.core.schemas import ApiInput, ApiModel
from server.users.schemas import UserOut

#: A password exactly as typed: inputs are stripped by default, passwords must not be
#: (a stripped password would be silently different from the one the user chose).
Password = Annotated[str, StringConstraints(strip_whitespace=False)]


class LoginIn(ApiInput):
    email: EmailStr = Field(max_length=320)
    password: Password = Field(min_length=1, max_length=256)
    mfa_code: str | None = Field(default=None, max_length=32)


class RefreshIn(ApiInput):
    refresh_token: str = Field(min_length=1, max_length=256)


class LogoutIn(ApiInput):
    refresh_token: str | None = Field(default=None, max_length=256)


class TokenOut(ApiModel):
    access_token: str
    refresh_token: str
    token_type: str = "Bearer"
    expires_in: int
    mfa_enrollment_required: bool = False
    user: UserOut


class PasswordResetRequestIn(ApiInput):
    email: EmailStr = Field(max_length=320)


class PasswordResetConfirmIn(ApiInput):
    token: str = Field(min_length=1, max_length=256)
    new_password: Password = Field(min_length=1, max_length=256)


class MfaEnrollmentOut(ApiModel):
    secret: str
    otpauth_uri: str
    backup_codes: list[str]


class MfaCodeIn(ApiInput):
    code: str = Field(min_length=1, max_length=32)


def _scope(value: str) -> str:
    if not is_known_scope(value):
        raise ValueError(f"unknown scope {value!r}")
    return value


Scope = Annotated[str, Field(max_length=40), AfterValidator(_scope)]


class ApiTokenCreate(ApiInput):
    organization_id: str | None = Field(default=None, max_length=64)
    name: str = Field(min_length=1, max_length=120)
    scopes: list[Scope] = Field(min_length=1, max_length=40)
    expires_at: AwareDatetime | None = None


class ApiTokenOut(ApiModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    token_prefix: str
    scopes: list[str]
    created_by_id: uuid.UUID
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiTokenCreatedOut(ApiTokenOut):
    token: str = Field(description="The raw token. It is shown once and cannot be read again.")
