"""Shared pagination, sorting and filtering for every list endpoint."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query
from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import Session

from server.core.errors import ValidationFailed
from server.core.schemas import Pagination

MAX_PER_PAGE = 100
RowT = TypeVar("RowT")


@dataclass(frozen=True, slots=True)
class ListParams:
    page: int
    per_page: int
    sort: str | None
    q: str | None


def _list_params(
    page: Annotated[int, Query(ge=1, le=1_000_000, description="Page number, from 1")] = 1,
    per_page: Annotated[
        int, Query(alias="perPage", ge=1, le=MAX_PER_PAGE, description="Rows per page")
    ] = 25,
    sort: Annotated[
        str | None,
        Query(max_length=200, description="Comma-separated fields, '-' for descending"),
    ] = None,
    q: Annotated[str | None, Query(max_length=200, description="Free-text search")] = None,
) -> ListParams:
    return ListParams(page=page, per_page=per_page, sort=sort, q=(q or "").strip() or None)


ListQuery = Annotated[ListParams, Depends(_list_params)]


def apply_sort(
    stmt: Select[Any],
    sort: str | None,
    fields: Mapping[str, ColumnElement[Any] | Any],
    default: Sequence[Any],
    tiebreak: Any,
) -> Select[Any]:
    """Order by ``sort`` (e.g. ``-createdAt,email``) using only whitelisted fields."""
    order: list[Any] = []
    for raw in (sort or "").split(","):
        name = raw.strip()
        if not name:
            continue
        descending = name.startswith("-")
        name = name.lstrip("-+")
        column = fields.get(name)
        if column is None:
            raise ValidationFailed(
                f"Cannot sort by '{name}'",
                details={"sort": name, "allowed": sorted(fields)},
            )
        order.append(column.desc() if descending else column.asc())
    if not order:
        order = list(default)
    return stmt.order_by(*order, tiebreak)


def like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def text_filter(q: str, *columns: Any) -> ColumnElement[bool]:
    pattern = like_pattern(q)
    return or_(*(col.ilike(pattern, escape="\\") for col in columns))


def paginate(
    session: Session,
    stmt: Select[Any],
    params: ListParams,
    *,
    scalars: bool = True,
    count_limit: int | None = None,
    count_stmt: Select[Any] | None = None,
) -> tuple[list[Any], Pagination]:
    """Run one page of ``stmt`` (already filtered and sorted) and count the whole.

    A page that is neither full nor empty ends the list, so its total is known
    without the count query (most lists in a district are short). With
    ``count_limit`` the count stops there (``totalCapped``), so a page of a list
    of a million rows costs what a page of a list of ``count_limit`` does.
    ``count_stmt`` selects the same rows as ``stmt`` with fewer columns (e.g. only
    the id), so the database can count from an index alone.
    """
    offset = (params.page - 1) * params.per_page
    result = session.execute(stmt.limit(params.per_page).offset(offset))
    rows = list(result.scalars().all() if scalars else result.all())
    capped = False
    if 0 < len(rows) < params.per_page or (not rows and params.page == 1):
        total = offset + len(rows)
    else:
        counted = (stmt if count_stmt is None else count_stmt).order_by(None)
        if count_limit is not None:
            limit = max(count_limit, offset + len(rows))
            counted = counted.limit(limit + 1)
        total = session.execute(select(func.count()).select_from(counted.subquery())).scalar_one()
        if count_limit is not None and total > max(count_limit, offset + len(rows)):
            total, capped = total - 1, True
    total_pages = max(1, math.ceil(total / params.per_page)) if total else 0
    return rows, Pagination(
        page=params.page,
        per_page=params.per_page,
        total=total,
        total_pages=total_pages,
        has_next=params.page < total_pages or (capped and len(rows) == params.per_page),
        has_prev=params.page > 1,
        total_capped=capped,
    )
