"""The scoping layer and the sync conventions of the base model, tested without HTTP."""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import select

from common.enums import Role
from common.ids import uuid7, uuid7_timestamp_ms
from server.core.engine import Database
from server.core.tenancy import (
    ALL_TENANTS,
    CrossTenantWrite,
    TenantNotBound,
    bind_tenant,
    current_change_position,
    soft_delete,
)
from server.organizations.models import Department, Organization
from server.users.models import User


def _org(db: Database, slug: str) -> uuid.UUID:
    with db.transaction(tenant=ALL_TENANTS) as s:
        org = Organization(name=slug, slug=slug, settings={})
        s.add(org)
        s.flush()
        return org.id


def test_uuid7_is_time_ordered_and_unique() -> None:
    ids = [uuid7() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids), "ids made later must sort later"
    assert all(i.version == 7 for i in ids)
    assert uuid7_timestamp_ms(ids[-1]) >= uuid7_timestamp_ms(ids[0])


def test_session_bound_to_a_tenant_sees_only_its_rows(db: Database) -> None:
    a, b = _org(db, "alpha"), _org(db, "bravo")
    with db.transaction(tenant=ALL_TENANTS) as s:
        s.add_all(
            [
                Department(organization_id=a, name="A-Tech"),
                Department(organization_id=b, name="B-Tech"),
            ]
        )
    with db.transaction(tenant=a) as s:
        assert [d.name for d in s.scalars(select(Department))] == ["A-Tech"]
        other = s.scalar(select(Department.id).where(Department.name == "B-Tech"))
        assert other is None
    with db.transaction(tenant=ALL_TENANTS) as s:
        assert sorted(d.name for d in s.scalars(select(Department))) == ["A-Tech", "B-Tech"]


def test_unbound_session_refuses_tenant_tables(db: Database) -> None:
    session = db.session()
    try:
        with pytest.raises(TenantNotBound):
            session.scalars(select(User)).all()
        # platform tables stay readable
        session.scalars(select(Organization)).all()
    finally:
        session.close()


def test_new_rows_are_stamped_and_cross_tenant_writes_refused(db: Database) -> None:
    a, b = _org(db, "alpha"), _org(db, "bravo")
    with db.transaction(tenant=a) as s:
        dept = Department(name="Stamped")
        s.add(dept)
        s.flush()
        assert dept.organization_id == a
    with pytest.raises(CrossTenantWrite), db.transaction(tenant=a) as s:
        s.add(Department(organization_id=b, name="Sneaky"))
        s.flush()
    with db.transaction(tenant=ALL_TENANTS) as s:
        assert s.scalar(select(Department).where(Department.name == "Sneaky")) is None


def test_changes_get_increasing_positions_and_deletes_leave_tombstones(db: Database) -> None:
    a = _org(db, "alpha")
    with db.transaction(tenant=a) as s:
        d1, d2 = Department(name="One"), Department(name="Two")
        s.add_all([d1, d2])
        s.flush()
        first = {d1.change_position, d2.change_position}
    assert first == {1, 2}
    with db.transaction(tenant=a) as s:
        d1 = s.scalar(select(Department).where(Department.name == "One"))
        assert d1 is not None
        d1.description = "edited"
    with db.transaction(tenant=a) as s:
        d1 = s.scalar(select(Department).where(Department.name == "One"))
        assert d1 is not None and d1.change_position == 3
        soft_delete(d1)
    with db.transaction(tenant=a) as s:
        assert s.scalar(select(Department).where(Department.name == "One")) is None, (
            "tombstones are hidden"
        )
        tomb = s.scalar(
            select(Department)
            .where(Department.name == "One")
            .execution_options(include_deleted=True)
        )
        assert tomb is not None and tomb.deleted_at is not None and tomb.change_position == 4
        assert current_change_position(s, a) == 4
        changed = s.scalars(
            select(Department.name)
            .where(Department.change_position > 2)
            .execution_options(include_deleted=True)
        ).all()
        assert changed == ["One"]


def test_hard_delete_of_replicated_rows_is_refused(db: Database) -> None:
    a = _org(db, "alpha")
    with db.transaction(tenant=a) as s:
        s.add(Department(name="Keep"))
    with pytest.raises(RuntimeError, match="soft_delete"), db.transaction(tenant=a) as s:
        dept = s.scalar(select(Department))
        s.delete(dept)
        s.flush()


def test_positions_of_separate_organizations_are_independent(db: Database) -> None:
    a, b = _org(db, "alpha"), _org(db, "bravo")
    with db.transaction(tenant=a) as s:
        s.add(Department(name="A1"))
    with db.transaction(tenant=b) as s:
        s.add(Department(name="B1"))
    with db.transaction(tenant=ALL_TENANTS) as s:
        assert current_change_position(s, a) == 1
        assert current_change_position(s, b) == 1


@pytest.mark.postgres_only
def test_a_commit_after_a_pull_never_lands_at_or_below_its_cursor(db: Database) -> None:
    """Concurrent writers commit out of order; the counter row lock keeps positions in
    commit order, so a pull that saw cursor N can never miss a later commit <= N."""
    org = _org(db, "alpha")
    slow_has_position = threading.Event()
    release_slow = threading.Event()
    errors: list[BaseException] = []

    def slow_writer() -> None:
        try:
            with db.transaction(tenant=org) as s:
                s.add(Department(name="slow"))
                s.flush()  # takes a position and holds the counter row lock
                slow_has_position.set()
                release_slow.wait(10)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def fast_writer() -> None:
        try:
            with db.transaction(tenant=org) as s:
                s.add(Department(name="fast"))
                s.flush()
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    slow = threading.Thread(target=slow_writer)
    slow.start()
    assert slow_has_position.wait(10)
    fast = threading.Thread(target=fast_writer)
    fast.start()
    fast.join(1.0)
    # The fast writer must wait for the slow one instead of committing a higher position first.
    assert fast.is_alive(), "second writer committed while the first held a lower position"

    # A pull now sees neither uncommitted change: its cursor stays where it was.
    with db.transaction(tenant=org) as s:
        cursor = s.scalar(
            select(Department.change_position).order_by(Department.change_position.desc()).limit(1)
        )
    assert cursor is None

    release_slow.set()
    slow.join(10)
    fast.join(10)
    assert not errors, errors
    with db.transaction(tenant=org) as s:
        rows = {n: p for n, p in s.execute(select(Department.name, Department.change_position))}
    assert rows == {"slow": 1, "fast": 2}


def test_super_admin_rows_belong_to_no_tenant(db: Database) -> None:
    a = _org(db, "alpha")
    with db.transaction(tenant=ALL_TENANTS) as s:
        s.add(User(organization_id=None, email="root@platform.example", role=Role.SUPER_ADMIN))
        s.add(User(organization_id=a, email="admin@alpha.example", role=Role.ORG_ADMIN))
    with db.transaction(tenant=a) as s:
        assert [u.email for u in s.scalars(select(User))] == ["admin@alpha.example"]
    session = db.session()
    bind_tenant(session, ALL_TENANTS)
    try:
        assert len(session.scalars(select(User)).all()) == 2
    finally:
        session.close()
