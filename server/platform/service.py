from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from common import __version__
from server.core.config import Settings
from server.core.engine import Database
from server.migrations import current_revision, head_revision
from server.platform.schemas import Check, HealthOut


def health(db: Database, settings: Settings) -> HealthOut:
    head = head_revision()
    current: str | None = None
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        database = Check(status="ok", detail=db.engine.dialect.name)
        current = current_revision(db.engine)
        migrations = (
            Check(status="ok")
            if current == head
            else Check(status="degraded", detail=f"database at {current}, code expects {head}")
        )
    except SQLAlchemyError as exc:
        database = Check(status="down", detail=type(exc).__name__)
        migrations = Check(status="down", detail="database unreachable")
    email = (
        Check(status="ok", detail=f"SMTP {settings.smtp_host}:{settings.smtp_port}")
        if settings.smtp_configured
        else Check(status="not_configured", detail="outgoing mail stays in the outbox")
    )
    redis = _redis_check(settings)
    checks = [database, migrations, redis]
    if any(c.status == "down" for c in (database, migrations)):
        overall = "down"
    elif any(c.status in ("degraded", "down") for c in checks):
        overall = "degraded"
    else:
        overall = "ok"
    return HealthOut(
        status=overall,
        version=__version__,
        database=database,
        migrations=migrations,
        email=email,
        redis=redis,
        current_revision=current,
        head_revision=head,
    )


def _redis_check(settings: Settings) -> Check:
    if not settings.redis_url:
        return Check(status="not_configured", detail="rate limits are counted per process")
    try:
        import redis

        redis.Redis.from_url(settings.redis_url, socket_timeout=0.5).ping()
    except Exception as exc:  # any failure means "not reachable" to an operator
        return Check(status="degraded", detail=f"unreachable: {type(exc).__name__}")
    return Check(status="ok")
