"""Settings from the environment (prefix ``RESOLVE_``) or a ``.env`` file."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from platformdirs import user_data_dir
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common import __version__
from server.core.files import private_dir

SECRET_KEY_FILE = "secret_key"


@dataclass(frozen=True, slots=True)
class PasswordCost:
    """argon2id parameters. Each hash records its own, so a hash made at one cost
    verifies under any configured cost; the configured one applies to new hashes."""

    time_cost: int
    memory_kib: int
    parallelism: int


#: argon2-cffi's defaults (RFC 9106, low-memory profile): about a quarter of a
#: second per sign-in on a laptop core, which is the point.
PRODUCTION_PASSWORD_COST = PasswordCost(time_cost=3, memory_kib=65536, parallelism=4)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RESOLVE_", env_file=".env", extra="ignore", validate_default=True
    )

    data_dir: Path = Field(default_factory=lambda: Path(user_data_dir("district-resolve")))
    database_url: str = ""
    secret_key: SecretStr | None = None
    environment: Literal["development", "production", "test"] = "development"
    base_url: str = "http://127.0.0.1:8000"

    access_token_minutes: int = Field(default=15, ge=1, le=1440)
    refresh_token_days: int = Field(default=30, ge=1, le=365)
    password_reset_minutes: int = Field(default=60, ge=5, le=10080)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    #: how long deleted rows (tombstones) and judged sync edits are kept for replicas
    #: that were offline; a replica away longer downloads its scope again
    sync_retention_days: int = Field(default=90, ge=1, le=3650)
    #: the oldest sync protocol and desktop version this server still serves; raise
    #: them to make older apps ask their users to update (they keep their outbox)
    sync_min_protocol: int = Field(default=1, ge=1, le=1000)
    sync_min_client_version: str = Field(default="0.0.0", pattern=r"^\d+(\.\d+){0,3}$")
    #: the newest desktop version, which apps offer to update to
    sync_latest_client_version: str = Field(default=__version__, pattern=r"^\d+(\.\d+){0,3}$")

    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    smtp_from: str = "District Resolve <no-reply@district-resolve.local>"

    redis_url: str | None = None
    rate_limit_enabled: bool = True
    #: requests per window for each endpoint class, "<count>/<seconds>"
    rate_limit_auth: str = "60/60"  # per client address: districts sit behind one NAT
    rate_limit_read: str = "1000/3600"
    rate_limit_write: str = "1000/3600"
    rate_limit_search: str = "200/3600"
    rate_limit_upload: str = "100/3600"
    rate_limit_reports: str = "50/3600"
    rate_limit_login_account: str = "5/60"
    rate_limit_login_address: str = "30/60"
    #: number of server processes sharing the budget when there is no Redis
    workers: int = Field(default=1, ge=1, le=64)
    #: threads per process that run requests. Requests are mostly Python (CPU under
    #: the GIL), so a few threads serve more per second than many fighting over it.
    request_threads: int = Field(default=8, ge=1, le=200)

    #: argon2id cost of new password hashes. Below the production figures only with
    #: ``environment=test``, where suites sign in thousands of times.
    password_time_cost: int = Field(default=PRODUCTION_PASSWORD_COST.time_cost, ge=1, le=20)
    password_memory_kib: int = Field(
        default=PRODUCTION_PASSWORD_COST.memory_kib, ge=8, le=4 * 1024 * 1024
    )
    password_parallelism: int = Field(default=PRODUCTION_PASSWORD_COST.parallelism, ge=1, le=64)

    background_jobs: bool = True
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = True

    @field_validator(
        "rate_limit_auth",
        "rate_limit_read",
        "rate_limit_write",
        "rate_limit_search",
        "rate_limit_upload",
        "rate_limit_reports",
        "rate_limit_login_account",
        "rate_limit_login_address",
    )
    @classmethod
    def _rate(cls, value: str) -> str:
        parse_rate(value)
        return value

    @field_validator("database_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
        return value

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'resolve.db'}"
        if self.database_url.startswith("postgresql://"):
            self.database_url = "postgresql+psycopg://" + self.database_url.removeprefix(
                "postgresql://"
            )
        return self

    @model_validator(mode="after")
    def _password_cost_is_production_strength(self) -> Settings:
        cost = self.password_cost
        weaker = (
            cost.time_cost < PRODUCTION_PASSWORD_COST.time_cost
            or cost.memory_kib < PRODUCTION_PASSWORD_COST.memory_kib
        )
        if weaker and self.environment != "test":
            raise ValueError(
                "password hashing below time cost "
                f"{PRODUCTION_PASSWORD_COST.time_cost} and "
                f"{PRODUCTION_PASSWORD_COST.memory_kib} KiB is allowed only with "
                "RESOLVE_ENVIRONMENT=test"
            )
        return self

    @property
    def password_cost(self) -> PasswordCost:
        return PasswordCost(
            time_cost=self.password_time_cost,
            memory_kib=self.password_memory_kib,
            parallelism=self.password_parallelism,
        )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def smtp_configured(self) -> bool:
        return bool(self.smtp_host)

    def signing_key(self) -> str:
        """The secret key: from the environment, else persisted in the data directory."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.data_dir / SECRET_KEY_FILE
        if not path.exists():
            private_dir(self.data_dir)
            # O_EXCL: when several workers start together only one writes the key.
            try:
                fd = path.open("x", encoding="ascii")
            except FileExistsError:
                pass
            else:
                with fd:
                    fd.write(secrets.token_urlsafe(48))
                path.chmod(0o600)
        key = path.read_text(encoding="ascii").strip()
        self.secret_key = SecretStr(key)
        return key


def parse_rate(value: str) -> tuple[int, int]:
    """``"10/60"`` → (10 requests, 60 seconds)."""
    count, sep, seconds = value.partition("/")
    if not sep or not count.strip().isdigit() or not seconds.strip().isdigit():
        raise ValueError(f"{value!r} is not <count>/<seconds>")
    parsed = int(count), int(seconds)
    if parsed[0] < 1 or parsed[1] < 1:
        raise ValueError(f"{value!r} must be positive")
    return parsed


@lru_cache
def get_settings() -> Settings:
    return Settings()
