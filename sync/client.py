"""HTTP client for the District Resolve server API (no Qt: the desktop runs it in workers).

``ApiClient`` signs in, keeps the access and refresh tokens, refreshes the access
token once when the server answers 401 ``TOKEN_EXPIRED``, and turns every error
answer ``{"error": {code, message, details, requestId}}`` into an ``ApiError``.
Refresh tokens rotate on every use: pass ``on_tokens`` to persist the new one
(``sync.credentials``), or the next start finds a token that was already spent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from common import __version__
from common.errors import ErrorCode

DEFAULT_SERVER_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = httpx.Timeout(20.0, connect=5.0)

#: Codes the client itself gives to failures that never reached the server's error shape.
SERVER_UNREACHABLE = "SERVER_UNREACHABLE"
UNEXPECTED_RESPONSE = "UNEXPECTED_RESPONSE"
NOT_SIGNED_IN = "NOT_SIGNED_IN"


class ApiError(Exception):
    """An error answer from the server, or a failure to get one.

    ``code`` is the server's error code (``common.errors.ErrorCode`` values), or one of
    ``SERVER_UNREACHABLE``, ``UNEXPECTED_RESPONSE``, ``NOT_SIGNED_IN`` for failures on
    this side; ``status`` is the HTTP status (None when no answer came back).
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        details: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.request_id = request_id
        self.details = details
        #: seconds the server asked us to wait (``Retry-After`` of a 429 or 503)
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return (
            f"ApiError(code={self.code!r}, message={self.message!r}, status={self.status!r}, "
            f"request_id={self.request_id!r})"
        )

    @property
    def transient(self) -> bool:
        """Worth trying again later unchanged: no answer, a server error, or too many requests."""
        return self.status is None or self.status >= 500 or self.status == 429

    @property
    def session_ended(self) -> bool:
        """The stored sign-in is no longer usable: the user has to sign in again."""
        return self.code in {
            ErrorCode.TOKEN_EXPIRED,
            ErrorCode.TOKEN_INVALID,
            ErrorCode.TOKEN_REVOKED,
            ErrorCode.ACCOUNT_DISABLED,
            ErrorCode.ORGANIZATION_SUSPENDED,
            ErrorCode.AUTHENTICATION_REQUIRED,
            NOT_SIGNED_IN,
        }


class ServerUnreachable(ApiError):
    """No answer: connection refused, DNS failure, timeout, TLS failure."""

    def __init__(self, base_url: str, reason: str) -> None:
        super().__init__(SERVER_UNREACHABLE, f"Cannot reach the server at {base_url}: {reason}")


def normalize_server_url(text: str) -> str:
    """``"host:8000/"`` -> ``"http://host:8000"``; raises ValueError for what is no URL."""
    url = text.strip()
    if not url:
        raise ValueError("Enter the server address")
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{text.strip()!r} is not a server address (http://host:port)")
    if parts.query or parts.fragment:
        raise ValueError(f"{text.strip()!r} is not a server address (http://host:port)")
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{parts.netloc}{path}"


# --------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class User:
    id: str
    email: str
    first_name: str
    last_name: str
    full_name: str
    role: str
    organization_id: str | None
    mfa_enabled: bool
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def display_name(self) -> str:
        return self.full_name.strip() or self.email

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> User:
        return cls(
            id=str(data["id"]),
            email=str(data["email"]),
            first_name=str(data.get("firstName") or ""),
            last_name=str(data.get("lastName") or ""),
            full_name=str(data.get("fullName") or ""),
            role=str(data["role"]),
            organization_id=str(data["organizationId"]) if data.get("organizationId") else None,
            mfa_enabled=bool(data.get("mfaEnabled")),
            raw=dict(data),
        )


@dataclass(frozen=True, slots=True)
class Organization:
    id: str
    name: str
    slug: str
    status: str

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Organization:
        return cls(
            id=str(data["id"]),
            name=str(data.get("name") or ""),
            slug=str(data.get("slug") or ""),
            status=str(data.get("status") or ""),
        )


@dataclass(frozen=True, slots=True)
class Me:
    """``GET /api/me``: who the token belongs to."""

    user: User
    organization: Organization | None
    scopes: tuple[str, ...]
    via_api_token: bool

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Me:
        org = data.get("organization")
        return cls(
            user=User.from_api(data["user"]),
            organization=Organization.from_api(org) if org else None,
            scopes=tuple(data.get("scopes") or ()),
            via_api_token=bool(data.get("viaApiToken")),
        )


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str | None
    refresh_token: str
    #: ``time.monotonic()`` deadline of the access token (0 when unknown)
    access_expires_at: float = 0.0


@dataclass(frozen=True, slots=True)
class LoginResult:
    user: User
    tokens: Tokens
    #: the organization requires MFA for this admin: the session may only enrol MFA
    mfa_enrollment_required: bool


@dataclass(frozen=True, slots=True)
class Check:
    status: str
    detail: str | None


@dataclass(frozen=True, slots=True)
class Health:
    status: str
    version: str
    checks: Mapping[str, Check]
    current_revision: str | None
    head_revision: str | None

    @property
    def usable(self) -> bool:
        """Database reachable and migrated: the server can serve clients."""
        return all(
            self.checks.get(name, Check("down", None)).status == "ok"
            for name in ("database", "migrations")
        )

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Health:
        names = ("database", "migrations", "email", "redis")
        checks = {
            name: Check(status=str(data[name].get("status")), detail=data[name].get("detail"))
            for name in names
            if isinstance(data.get(name), Mapping)
        }
        return cls(
            status=str(data.get("status")),
            version=str(data.get("version") or ""),
            checks=checks,
            current_revision=data.get("currentRevision"),
            head_revision=data.get("headRevision"),
        )


# --------------------------------------------------------------------------- client


TokenListener = Callable[[Tokens | None], None]


class ApiClient:
    """One server, one signed-in user. Safe to share between threads."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        on_tokens: TokenListener | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = normalize_server_url(base_url)
        self.on_tokens = on_tokens
        self._tokens: Tokens | None = None
        self._lock = threading.RLock()
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            headers={
                "User-Agent": f"DistrictResolve/{__version__} (sync client)",
                "Accept": "application/json",
            },
        )

    # ---------------------------------------------------------------- lifecycle

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def tokens(self) -> Tokens | None:
        return self._tokens

    @tokens.setter
    def tokens(self, tokens: Tokens | None) -> None:
        """Set the tokens without telling ``on_tokens`` (they come from the listener's store)."""
        with self._lock:
            self._tokens = tokens

    def resume(self, refresh_token: str) -> None:
        """Continue a stored sign-in: the first authenticated call refreshes the access token."""
        self.tokens = Tokens(access_token=None, refresh_token=refresh_token)

    @property
    def signed_in(self) -> bool:
        return self._tokens is not None

    def forget(self) -> None:
        """Drop the tokens here and tell ``on_tokens`` (the stored sign-in goes too),
        without asking the server (see ``logout``)."""
        self._set_tokens(None)

    # ---------------------------------------------------------------- auth

    def login(self, email: str, password: str, mfa_code: str | None = None) -> LoginResult:
        body: dict[str, Any] = {"email": email.strip(), "password": password}
        if mfa_code:
            body["mfaCode"] = mfa_code.strip().replace(" ", "")
        data = self._send("POST", "/api/auth/login", json=body)
        tokens = self._store_token_answer(data)
        return LoginResult(
            user=User.from_api(data["user"]),
            tokens=tokens,
            mfa_enrollment_required=bool(data.get("mfaEnrollmentRequired")),
        )

    def refresh(self) -> Tokens:
        """Trade the refresh token for new tokens (the old refresh token is spent)."""
        with self._lock:
            current = self._tokens
            if current is None:
                raise ApiError(NOT_SIGNED_IN, "Not signed in")
            try:
                data = self._send(
                    "POST", "/api/auth/refresh", json={"refreshToken": current.refresh_token}
                )
            except ApiError as exc:
                if exc.status is not None and exc.session_ended:
                    self._set_tokens(None)
                raise
            return self._store_token_answer(data)

    def logout(self) -> None:
        """End the session on the server and forget the tokens (also when the server refuses)."""
        with self._lock:
            current = self._tokens
            if current is None:
                return
            try:
                self._send("POST", "/api/auth/logout", json={"refreshToken": current.refresh_token})
            except ApiError as exc:
                if exc.status is not None:
                    # Revoked, expired or unknown already: signed out all the same.
                    self._set_tokens(None)
                    if exc.session_ended:
                        return
                raise
            self._set_tokens(None)

    # ---------------------------------------------------------------- reads

    def me(self) -> Me:
        return Me.from_api(self.request("GET", "/api/me"))

    def health(self) -> Health:
        """``GET /api/platform/health``; a server whose database is down answers 503 with data."""
        try:
            response = self._http.request("GET", "/api/platform/health")
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.base_url, _reason(exc)) from exc
        body = _json(response)
        if isinstance(body, Mapping) and isinstance(body.get("data"), Mapping):
            return Health.from_api(body["data"])
        raise _error_from(response, body)

    # ---------------------------------------------------------------- plumbing

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """An authenticated call; returns the ``data`` member of the answer.

        With no access token yet (after ``resume``) it refreshes first; on 401
        ``TOKEN_EXPIRED`` it refreshes once and repeats the call.
        """
        with self._lock:
            if self._tokens is None:
                raise ApiError(NOT_SIGNED_IN, "Not signed in")
            if self._tokens.access_token is None:
                self.refresh()
            sent_with = self._tokens
        try:
            return self._send(method, path, auth=sent_with, **kwargs)
        except ApiError as exc:
            if exc.code != ErrorCode.TOKEN_EXPIRED:
                raise
        with self._lock:
            if self._tokens is None:
                raise ApiError(NOT_SIGNED_IN, "Not signed in")
            if self._tokens is sent_with:  # nobody refreshed meanwhile
                self.refresh()
            retry_with = self._tokens
        return self._send(method, path, auth=retry_with, **kwargs)

    def upload(
        self,
        url: str,
        content: bytes | Iterable[bytes],
        *,
        size: int,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """``PUT`` a file's bytes to a signed upload URL (``POST /api/uploads/presign``
        answers it); returns the upload (``data``). No bearer token goes with it: the
        signature in the URL is the credential. ``url`` may be absolute (another host,
        such as object storage) or a path on this server."""
        sent = {**dict(headers or {}), "Content-Length": str(size)}
        try:
            response = self._http.request("PUT", url, content=content, headers=sent)
        except httpx.TransportError as exc:
            parts = urlsplit(url)
            where = f"{parts.scheme}://{parts.netloc}" if parts.netloc else self.base_url
            raise ServerUnreachable(where, _reason(exc)) from exc
        body = _json(response)
        if response.is_success and isinstance(body, Mapping) and "data" in body:
            return body["data"]
        raise _error_from(response, body)

    def download(self, path: str, write: Callable[[bytes], None]) -> None:
        """An authenticated ``GET`` of a file (an attachment's download), handing its
        bytes to ``write`` chunk by chunk; refreshes the access token once as
        ``request`` does. An error answer raises ``ApiError`` before anything is
        written."""
        with self._lock:
            if self._tokens is None:
                raise ApiError(NOT_SIGNED_IN, "Not signed in")
            if self._tokens.access_token is None:
                self.refresh()
            sent_with = self._tokens
        try:
            self._stream(path, sent_with, write)
            return
        except ApiError as exc:
            if exc.code != ErrorCode.TOKEN_EXPIRED:
                raise
        with self._lock:
            if self._tokens is None:
                raise ApiError(NOT_SIGNED_IN, "Not signed in")
            if self._tokens is sent_with:
                self.refresh()
            retry_with = self._tokens
        self._stream(path, retry_with, write)

    def _stream(self, path: str, auth: Tokens | None, write: Callable[[bytes], None]) -> None:
        headers = {"Accept": "*/*"}
        if auth is not None and auth.access_token:
            headers["Authorization"] = f"Bearer {auth.access_token}"
        try:
            with self._http.stream("GET", path, headers=headers) as response:
                if not response.is_success:
                    response.read()
                    raise _error_from(response, _json(response))
                for chunk in response.iter_bytes():
                    write(chunk)
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.base_url, _reason(exc)) from exc

    def _send(self, method: str, path: str, *, auth: Tokens | None = None, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", None) or {})
        if auth is not None and auth.access_token:
            headers["Authorization"] = f"Bearer {auth.access_token}"
        try:
            response = self._http.request(method, path, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.base_url, _reason(exc)) from exc
        body = _json(response)
        if response.is_success and isinstance(body, Mapping) and "data" in body:
            return body["data"]
        raise _error_from(response, body)

    def _store_token_answer(self, data: Mapping[str, Any]) -> Tokens:
        try:
            tokens = Tokens(
                access_token=str(data["accessToken"]),
                refresh_token=str(data["refreshToken"]),
                access_expires_at=time.monotonic() + float(data.get("expiresIn") or 0),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ApiError(UNEXPECTED_RESPONSE, "The server sent no tokens") from exc
        self._set_tokens(tokens)
        return tokens

    def _set_tokens(self, tokens: Tokens | None) -> None:
        with self._lock:
            self._tokens = tokens
            if self.on_tokens is not None:
                self.on_tokens(tokens)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error_from(response: httpx.Response, body: Any) -> ApiError:
    request_id = response.headers.get("x-request-id")
    retry_after = _retry_after(response.headers.get("retry-after"))
    error = body.get("error") if isinstance(body, Mapping) else None
    if isinstance(error, Mapping) and error.get("code"):
        return ApiError(
            str(error["code"]),
            str(error.get("message") or f"The server answered {response.status_code}"),
            status=response.status_code,
            request_id=str(error.get("requestId") or request_id or "") or None,
            details=error.get("details"),
            retry_after=retry_after,
        )
    reason = response.reason_phrase or "unexpected answer"
    return ApiError(
        UNEXPECTED_RESPONSE,
        f"The server answered {response.status_code} {reason}; is this a District Resolve server?",
        status=response.status_code,
        request_id=request_id,
        retry_after=retry_after,
    )


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (the server sends a number; an HTTP date is honoured too)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _reason(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "no answer in time"
    if isinstance(exc, httpx.ConnectError):
        text = str(exc)
        if "refused" in text.lower():
            return "connection refused"
        return text or "connection failed"
    return str(exc) or type(exc).__name__
