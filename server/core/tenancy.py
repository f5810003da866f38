"""Tenant scoping in one place.

Every session is bound to exactly one tenant before it touches tenant tables: an
organization id, or ``ALL_TENANTS`` for platform-level work (super admins, jobs, the
CLI). Every ORM SELECT, UPDATE and DELETE of a ``TenantMixin`` entity is then filtered
to that organization, tombstoned rows are hidden, and new rows are stamped with it.
A route cannot forget the filter, because no route writes it.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria
from sqlalchemy.orm.util import identity_key

from common.enums import Role
from server.core.db import ChangeCounter, ReplicatedMixin, TenantMixin, utcnow


class _AllTenants(enum.Enum):
    ALL = "all"


ALL_TENANTS = _AllTenants.ALL
TENANT_KEY = "tenant"
INCLUDE_DELETED = "include_deleted"


class TenantNotBound(RuntimeError):
    """A tenant table was queried on a session that was not bound to a tenant."""


class CrossTenantWrite(RuntimeError):
    """A row of one organization was written on a session bound to another."""


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is making a request: the typed value the scoping layer consumes."""

    user_id: uuid.UUID
    organization_id: uuid.UUID | None  # None only for super admins
    role: Role
    email: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    via_api_token: bool = False
    session_id: uuid.UUID | None = None
    token_id: uuid.UUID | None = None
    mfa_enabled: bool = False

    @property
    def is_super_admin(self) -> bool:
        return self.role is Role.SUPER_ADMIN


def bind_tenant(session: Session, tenant: uuid.UUID | _AllTenants) -> None:
    session.info[TENANT_KEY] = tenant


def bound_tenant(session: Session) -> uuid.UUID | _AllTenants | None:
    return session.info.get(TENANT_KEY)


@event.listens_for(Session, "do_orm_execute")
def _scope_orm_statements(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if state.is_column_load or state.is_relationship_load:
        return  # the parent query already carried the criteria
    tenant = state.session.info.get(TENANT_KEY)
    if tenant is None:
        if any(issubclass(m.class_, TenantMixin) for m in state.all_mappers):
            raise TenantNotBound("session is not bound to a tenant; call bind_tenant() first")
        return
    options: list[Any] = []
    if tenant is not ALL_TENANTS:
        options.append(_tenant_criteria(tenant))
    if not state.execution_options.get(INCLUDE_DELETED, False):
        options.append(_LIVE_ROWS)
    if options:
        state.statement = state.statement.options(*options)


# The options are built once per tenant and reused: building them is a measurable
# part of a small request, and SQLAlchemy caches the compiled SQL either way.
_LIVE_ROWS = with_loader_criteria(
    ReplicatedMixin, lambda cls: cls.deleted_at.is_(None), include_aliases=True
)


@lru_cache(maxsize=4096)
def _tenant_criteria(org_id: uuid.UUID) -> Any:
    return with_loader_criteria(
        TenantMixin, lambda cls: cls.organization_id == org_id, include_aliases=True
    )


@event.listens_for(Session, "before_flush")
def _stamp_tenant_rows(session: Session, _context: Any, _instances: Any) -> None:
    tenant = session.info.get(TENANT_KEY)
    changed_by_org: dict[uuid.UUID, list[ReplicatedMixin]] = {}
    for obj in session.new:
        if not isinstance(obj, TenantMixin):
            continue
        if tenant is None:
            raise TenantNotBound(f"new {type(obj).__name__} on an unbound session")
        if tenant is not ALL_TENANTS:
            if obj.organization_id is None:
                obj.organization_id = tenant
            elif obj.organization_id != tenant:
                raise CrossTenantWrite(f"{type(obj).__name__} for another organization")
        elif obj.organization_id is None and not obj.__tenant_optional__:
            raise CrossTenantWrite(f"new {type(obj).__name__} without an organization")
        if isinstance(obj, ReplicatedMixin) and obj.organization_id is not None:
            changed_by_org.setdefault(obj.organization_id, []).append(obj)
    for obj in session.dirty:
        if (
            isinstance(obj, ReplicatedMixin)
            and obj.organization_id is not None
            and session.is_modified(obj)
        ):
            if tenant is not ALL_TENANTS and obj.organization_id != tenant:
                raise CrossTenantWrite(f"{type(obj).__name__} of another organization")
            changed_by_org.setdefault(obj.organization_id, []).append(obj)
    for obj in session.deleted:
        if isinstance(obj, ReplicatedMixin):
            raise RuntimeError(
                f"{type(obj).__name__} is replicated: delete it with soft_delete() so "
                "replicas receive a tombstone"
            )
    for objs in changed_by_org.values():
        _move_parents_after_children(session, objs)
    for org_id, objs in changed_by_org.items():
        last = allocate_change_positions(session, org_id, len(objs))
        for offset, obj in enumerate(objs):
            obj.change_position = last - len(objs) + 1 + offset


def _move_parents_after_children(session: Session, objs: list[ReplicatedMixin]) -> None:
    """Add the parents of changed child rows (``__change_parent__``) to ``objs``, after
    every child, so each parent takes a position above its changed children."""
    wanted: dict[tuple[type[Any], Any], None] = {}
    for obj in objs:
        attribute = type(obj).__change_parent__
        if attribute is not None and (parent_id := getattr(obj, attribute)) is not None:
            wanted[(_parent_class(type(obj), attribute), parent_id)] = None
    if not wanted:
        return
    parents: list[ReplicatedMixin] = []
    by_class: dict[type[Any], list[Any]] = {}
    for parent_class, parent_id in wanted:
        by_class.setdefault(parent_class, []).append(parent_id)
    for parent_class, ids in by_class.items():
        loaded = [session.identity_map.get(identity_key(parent_class, i)) for i in ids]
        missing = [parent_id for parent_id, obj in zip(ids, loaded, strict=True) if obj is None]
        if missing:
            found = session.execute(
                select(parent_class)
                .where(parent_class.id.in_(missing))
                .execution_options(**{INCLUDE_DELETED: True})
            ).scalars()
            parents.extend(found)
        parents.extend(obj for obj in loaded if obj is not None)
    chosen = {id(parent) for parent in parents}
    objs[:] = [obj for obj in objs if id(obj) not in chosen] + parents


_PARENT_CLASSES: dict[tuple[str, str], type[Any]] = {}


def _parent_class(child: type[Any], attribute: str) -> type[Any]:
    """The mapped class the child's foreign key ``attribute`` points at."""
    key = (child.__name__, attribute)
    if key not in _PARENT_CLASSES:
        (foreign_key,) = child.__table__.c[attribute].foreign_keys
        table = foreign_key.column.table
        (mapper,) = (m for m in child.registry.mappers if m.local_table is table)
        _PARENT_CLASSES[key] = mapper.class_
    return _PARENT_CLASSES[key]


def allocate_change_positions(session: Session, organization_id: uuid.UUID, count: int) -> int:
    """Reserve ``count`` positions for an organization; returns the last one.

    The upsert takes the counter row's lock for the rest of the transaction.
    """
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    table = ChangeCounter.__table__  # a Table, typed as FromClause by the ORM
    stmt = (
        insert(table)  # type: ignore[arg-type]
        .values(organization_id=organization_id, position=count)
        .on_conflict_do_update(
            index_elements=[table.c.organization_id],
            set_={"position": table.c.position + count},
        )
        .returning(table.c.position)
    )
    return int(session.execute(stmt).scalar_one())


def soft_delete(obj: ReplicatedMixin) -> None:
    """Delete a replicated row by tombstone; it keeps its id and gets a new position."""
    obj.deleted_at = utcnow()


def current_change_position(session: Session, organization_id: uuid.UUID) -> int:
    value = session.execute(
        select(func.coalesce(func.max(ChangeCounter.position), 0)).where(
            ChangeCounter.organization_id == organization_id
        )
    ).scalar_one()
    return int(value)
