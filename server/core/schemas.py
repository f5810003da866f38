"""Base schemas: camelCase on the wire (snake_case accepted on input) and the envelopes."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

T = TypeVar("T")


class ApiModel(BaseModel):
    """Output model: camelCase names."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        from_attributes=True,
    )


class ApiInput(ApiModel):
    """Input model: camelCase or snake_case names; unknown fields are an error, not ignored."""

    # Services read model_dump() by Python field name; only output goes out camelCase.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, serialize_by_alias=False)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul_characters(cls, value: Any) -> Any:
        # PostgreSQL cannot store NUL in text, SQLite can: refuse it on every backend.
        return _reject_nul(value)


def _reject_nul(value: Any) -> Any:
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("must not contain NUL (\\u0000) characters")
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _reject_nul(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _reject_nul(key)
            _reject_nul(item)
    return value


class Pagination(ApiModel):
    page: int
    per_page: int
    total: int
    total_pages: int
    has_next: bool
    has_prev: bool
    #: the list is longer than the server counts exactly; ``total`` is a lower bound
    total_capped: bool = False


class DataResponse(ApiModel, Generic[T]):
    data: T


class ListResponse(ApiModel, Generic[T]):
    data: list[T]
    pagination: Pagination


class ErrorBody(ApiModel):
    code: str = Field(examples=["VALIDATION_ERROR"])
    message: str
    details: Any = None
    request_id: str | None = None


class ErrorResponse(ApiModel):
    error: ErrorBody


class MessageOut(ApiModel):
    message: str
