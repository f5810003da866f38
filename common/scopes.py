"""API token scopes: ``<area>:<read|write>``, plus wildcards ``<area>:*``, ``*:read``, ``*``.

A user's own session carries every scope its role allows; an API token carries only
the scopes it was created with, so a token can never do more than its creator.
"""

from __future__ import annotations

AREAS = (
    "users",
    "departments",
    "sites",
    "organizations",
    "security",
    "audit",
    "tokens",
    "tickets",
    "assets",
    "inventory",
    "reports",
    "sync",
)
ACTIONS = ("read", "write")

ALL_SCOPES: tuple[str, ...] = tuple(f"{a}:{b}" for a in AREAS for b in ACTIONS)
WILDCARDS: tuple[str, ...] = ("*", "*:read", "*:write", *(f"{a}:*" for a in AREAS))
#: Only for short-lived tokens of an admin who must enrol in MFA before anything else.
MFA_ENROLLMENT_SCOPE = "auth:mfa-enrollment"


def is_known_scope(scope: str) -> bool:
    return scope in ALL_SCOPES or scope in WILDCARDS


def scope_grants(granted: frozenset[str] | set[str], required: str) -> bool:
    """Whether the granted scopes include ``required`` (``area:action``)."""
    if "*" in granted or required in granted:
        return True
    area, _, action = required.partition(":")
    return f"{area}:*" in granted or f"*:{action}" in granted


def scope_covers(granted: frozenset[str] | set[str], requested: str) -> bool:
    """Whether the granted scopes include everything ``requested`` (a scope or wildcard) does.

    Used so that a token can only hand out scopes it holds itself.
    """
    if requested == "*":
        return "*" in granted
    area, _, action = requested.partition(":")
    areas = AREAS if area == "*" else (area,)
    actions = ACTIONS if action == "*" else (action,)
    return all(scope_grants(granted, f"{a}:{b}") for a in areas for b in actions)
