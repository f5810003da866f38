"""Pagination totals are right whether or not the count query runs."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from server.core.engine import Database
from server.core.listing import ListParams, paginate
from server.core.tenancy import ALL_TENANTS
from server.organizations.models import Department, Organization


def _departments(db: Database, count: int) -> None:
    """An organization with departments D0, D1, ... to page through."""
    with db.transaction(tenant=ALL_TENANTS) as s:
        org = Organization(name="Alpha", slug="alpha", settings={})
        s.add(org)
        s.flush()
        s.add_all(Department(organization_id=org.id, name=f"D{i}") for i in range(count))


@pytest.mark.parametrize(
    ("page", "per_page", "names", "total", "pages", "has_next"),
    [
        (1, 10, ["D0", "D1", "D2", "D3", "D4"], 5, 1, False),  # short first page: no count
        (1, 5, ["D0", "D1", "D2", "D3", "D4"], 5, 1, False),  # exactly full: counted
        (1, 2, ["D0", "D1"], 5, 3, True),
        (3, 2, ["D4"], 5, 3, False),  # short last page: no count
        (4, 2, [], 5, 3, False),  # past the end: counted
    ],
)
def test_pagination_totals(
    db: Database, page: int, per_page: int, names: list[str], total: int, pages: int, has_next: bool
) -> None:
    _departments(db, 5)
    with db.transaction(tenant=ALL_TENANTS) as s:
        stmt = select(Department).order_by(Department.name)
        rows, pagination = paginate(
            s, stmt, ListParams(page=page, per_page=per_page, sort=None, q=None)
        )
    assert [d.name for d in rows] == names
    assert pagination.total == total
    assert pagination.total_pages == pages
    assert pagination.has_next is has_next
    assert pagination.has_prev is (page > 1)


def test_an_empty_list(db: Database) -> None:
    with db.transaction(tenant=ALL_TENANTS) as s:
        rows, pagination = paginate(
            s, select(Department), ListParams(page=1, per_page=25, sort=None, q=None)
        )
    assert rows == []
    assert (pagination.total, pagination.total_pages, pagination.has_next) == (0, 0, False)


@pytest.mark.parametrize(
    ("page", "per_page", "total", "capped", "has_next"),
    [
        (1, 2, 4, True, True),  # 7 rows, counted up to 4: a lower bound, more pages
        (1, 7, 7, False, False),  # one full page: the count covers the page
        (3, 3, 7, False, False),  # a short last page knows the total exactly
        (2, 3, 6, True, True),  # beyond the cap the bound grows with the pages seen
    ],
)
def test_a_capped_count_is_a_lower_bound(
    db: Database, page: int, per_page: int, total: int, capped: bool, has_next: bool
) -> None:
    _departments(db, 7)
    with db.transaction(tenant=ALL_TENANTS) as s:
        stmt = select(Department).order_by(Department.name)
        rows, pagination = paginate(
            s,
            stmt,
            ListParams(page=page, per_page=per_page, sort=None, q=None),
            count_limit=4,
            count_stmt=stmt.with_only_columns(Department.id),
        )
    assert len(rows) == min(per_page, 7 - (page - 1) * per_page)
    assert (pagination.total, pagination.total_capped, pagination.has_next) == (
        total,
        capped,
        has_next,
    )
