"""Fixed-window rate limits per endpoint class, shared by processes through Redis.

Without Redis each process keeps its own counters and enforces its share of the
budget (the limit divided by the number of worker processes), so the total across a
multi-worker server stays near the documented limit. Counters never touch the database.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from server.core.config import Settings, parse_rate

log = logging.getLogger(__name__)

ENDPOINT_CLASSES = ("auth", "read", "write", "search", "upload", "reports")


@dataclass(frozen=True, slots=True)
class RateResult:
    allowed: bool
    limit: int
    remaining: int
    reset_at: int  # unix seconds when the window ends

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.remaining)),
            "X-RateLimit-Reset": str(self.reset_at),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, self.reset_at - int(time.time())))
        return headers


class Counter(Protocol):
    def incr(self, key: str, window: int, now: float) -> int: ...


class MemoryCounter:
    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._window_of_prune = 0.0

    def incr(self, key: str, window: int, now: float) -> int:
        with self._lock:
            if now - self._window_of_prune > 60:
                self._prune(now)
            value = self._counts.get(key, 0) + 1
            self._counts[key] = value
            return value

    def _prune(self, now: float) -> None:
        # keys end with ":<window start>:<window length>"; drop the finished windows
        self._window_of_prune = now
        dead = []
        for key in self._counts:
            start, length = key.rsplit(":", 2)[-2:]
            if int(start) + int(length) <= now:
                dead.append(key)
        for key in dead:
            del self._counts[key]


class RedisCounter:
    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)

    def incr(self, key: str, window: int, now: float) -> int:
        pipe = self._redis.pipeline()
        pipe.incr("rl:" + key)
        pipe.expire("rl:" + key, window + 1)
        value, _ = pipe.execute()
        return int(value)


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limit_enabled
        self.shared = bool(settings.redis_url)
        self.counter: Counter = (
            RedisCounter(settings.redis_url) if settings.redis_url else MemoryCounter()
        )
        self._fallback = MemoryCounter()
        self._share = 1 if self.shared else settings.workers
        self.rates: dict[str, tuple[int, int]] = {
            "auth": parse_rate(settings.rate_limit_auth),
            "read": parse_rate(settings.rate_limit_read),
            "write": parse_rate(settings.rate_limit_write),
            "search": parse_rate(settings.rate_limit_search),
            "upload": parse_rate(settings.rate_limit_upload),
            "reports": parse_rate(settings.rate_limit_reports),
            "login_account": parse_rate(settings.rate_limit_login_account),
            "login_address": parse_rate(settings.rate_limit_login_address),
        }

    def hit(self, rate_name: str, subject: str, *, now: float | None = None) -> RateResult:
        limit, window = self.rates[rate_name]
        now = time.time() if now is None else now
        start = int(now // window * window)
        reset = start + window
        if not self.enabled:
            return RateResult(True, limit, limit, reset)
        local_limit = max(1, math.ceil(limit / self._share))
        key = f"{rate_name}:{subject}:{start}:{window}"
        try:
            count = self.counter.incr(key, window, now)
        except Exception as exc:  # Redis down: keep serving, count locally
            log.warning("rate limit store unavailable, counting locally: %s", exc)
            count = self._fallback.incr(key, window, now)
            local_limit = max(1, math.ceil(limit / max(1, self._share)))
        # report the organization-wide figures, scaled from this process's share
        scale = limit / local_limit
        remaining = math.floor((local_limit - count) * scale)
        return RateResult(count <= local_limit, limit, remaining, reset)


def classify(method: str, path: str) -> str:
    """The endpoint class of a request, from the rate-limit tables of the spec documents."""
    if path.startswith("/api/auth"):
        return "auth"
    if path.startswith("/api/uploads") or path.endswith("/attachments"):
        return "upload"
    if path.startswith(("/api/reports", "/api/exports")):
        return "reports"
    if path.endswith("/search"):
        return "search"
    if method in ("GET", "HEAD", "OPTIONS"):
        return "read"
    return "write"
