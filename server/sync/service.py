"""Pull and hydrate: what a replica receives (docs/sync-protocol.md).

A pull reads the organization's committed change position first and answers at
once when the replica's cursor is already there (guarantee 2). Otherwise it
reads, through indexes that start with the scope's key and end with
``change_position``, the lookups and the scope's tickets changed above the
cursor, each ticket with its changed children (a child's change moves its
ticket, ``ReplicatedMixin.__change_parent__``), then the exits from the scope.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from common.enums import Role
from common.errors import ErrorCode
from common.workflow import StatusCategory
from server.assets.models import Asset, AssetStatusLabel, AssetType, TicketAsset
from server.core.config import Settings
from server.core.db import utcnow
from server.core.errors import ApiError, NotFound, ValidationFailed
from server.core.tenancy import Caller, current_change_position
from server.inventory.models import Part, StockLevel, StockLocation, StockMovement
from server.organizations.models import Department
from server.sites.models import Building, Room, Site
from server.sla.models import BusinessCalendar, Holiday, SlaRule
from server.sync import retention, wire
from server.sync.models import SyncConflict, SyncDevice, SyncScopeExit
from server.teams import service as teams
from server.teams.models import Team, TeamMember
from server.tickets.models import Ticket, TicketAttachment, TicketComment, TicketEvent, TicketLink
from server.tickets.visibility import STAFF_ONLY_EVENTS, is_desk, visible_filter
from server.users.models import User
from sync.wire import PROTOCOL_VERSION

PROTOCOL_VERSIONS = range(1, PROTOCOL_VERSION + 1)
MAX_LIMIT = 500
#: how stale ``last_seen_at`` may get before a pull writes it again
SEEN_EVERY = timedelta(minutes=5)

#: every user's lookups, and the staff's
#: every user's lookups: what any signed-in person reads through the API
LOOKUPS: tuple[Table, ...] = tuple(
    model.__table__  # type: ignore[misc]
    for model in (Department, Site, Building, Room, AssetType, AssetStatusLabel)
)
#: the staff's: people, teams, calendars, SLA rules, parts and stock locations (a
#: requester reads the names of the people on their own tickets instead)
STAFF_LOOKUPS: tuple[Table, ...] = tuple(
    model.__table__  # type: ignore[misc]
    for model in (
        User,
        Team,
        TeamMember,
        BusinessCalendar,
        Holiday,
        SlaRule,
        Part,
        StockLocation,
    )
)
USERS: Table = cast(Table, User.__table__)
#: the rows that travel with their ticket
TICKET_CHILDREN: tuple[Table, ...] = tuple(
    model.__table__  # type: ignore[misc]
    for model in (
        TicketComment,
        TicketEvent,
        TicketAttachment,
        TicketLink,
        TicketAsset,
        SyncConflict,
    )
)
STAFF_TICKET_CHILDREN: tuple[Table, ...] = (cast(Table, StockMovement.__table__),)
TICKETS: Table = Ticket.__table__  # type: ignore[assignment]
ASSETS: Table = cast(Table, Asset.__table__)
STOCK_LEVELS: Table = cast(Table, StockLevel.__table__)
#: assets are small rows without children: a page carries this many per ticket
ASSETS_PER_TICKET = 5

_CURSOR = re.compile(
    r"^p(?P<since>\d{1,18}|n)"
    r"(?:-(?P<target>\d{1,18})-(?P<stage>[ta])(?P<after>\d{1,18})-(?P<id>[0-9a-f]{32}))?$"
)
#: the paged stages of a pull, in order: the scope's tickets, then its site's assets
STAGES = ("t", "a")


class ResyncRequired(ApiError):
    status_code = 410
    code = ErrorCode.RESYNC_REQUIRED


class UpgradeRequired(ApiError):
    status_code = 426
    code = ErrorCode.UPGRADE_REQUIRED


class DeviceWiped(ApiError):
    status_code = 410
    code = ErrorCode.DEVICE_WIPED
    keep_changes = True  # when the wipe was carried out is recorded


@dataclass(frozen=True)
class Cursor:
    """Where a replica stands: every change of its scope at or below ``since`` is in
    it. While a pull is paged, ``target`` is the position the pull will end at,
    ``stage`` the table being paged (tickets, then assets) and (``after_position``,
    ``after_id``) the last row of it sent."""

    since: int | None
    target: int | None = None
    stage: str = "t"
    after_position: int = 0
    after_id: uuid.UUID | None = None

    @classmethod
    def parse(cls, text: str | None) -> Cursor:
        if text is None:
            return cls(None)
        match = _CURSOR.match(text)
        if match is None:
            raise ValidationFailed(
                "cursor is not one this server gave out", details={"field": "cursor"}
            )
        since = None if match["since"] == "n" else int(match["since"])
        if match["target"] is None:
            if since is None:
                raise ValidationFailed("cursor is incomplete", details={"field": "cursor"})
            return cls(since)
        return cls(
            since,
            int(match["target"]),
            match["stage"],
            int(match["after"]),
            uuid.UUID(match["id"]),
        )

    @property
    def paging(self) -> bool:
        return self.target is not None

    def after(self, stage: str) -> tuple[int, uuid.UUID] | None:
        """Where paging of ``stage`` resumes; None to start it."""
        if self.target is None or self.stage != stage or self.after_id is None:
            return None
        return self.after_position, self.after_id

    def text(self) -> str:
        since = "n" if self.since is None else str(self.since)
        if self.target is None:
            return f"p{since}"
        assert self.after_id is not None
        return f"p{since}-{self.target}-{self.stage}{self.after_position}-{self.after_id.hex}"


@dataclass
class Page:
    cursor: str
    has_more: bool = False
    changes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    removals: dict[str, list[str]] = field(default_factory=dict)
    scope: list[str] | None = None
    wipe: bool = False
    #: every ticket of the page comes with all its children (a first download)
    complete: bool = False
    last_sequence: int = 0
    #: on the first page of a first download: how many tickets it will bring
    tickets_total: int | None = None

    def add(self, table: str, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.changes.setdefault(table, []).extend(rows)

    def remove(self, table: str, ids: Iterable[uuid.UUID]) -> None:
        listed = [str(i) for i in ids]
        if listed:
            self.removals.setdefault(table, []).extend(listed)


def versions(settings: Settings) -> dict[str, Any]:
    """What this server serves: the protocol range and the desktop versions."""
    return {
        "min_protocol": max(PROTOCOL_VERSIONS[0], settings.sync_min_protocol),
        "max_protocol": PROTOCOL_VERSIONS[-1],
        "min_client_version": settings.sync_min_client_version,
        "latest_client_version": settings.sync_latest_client_version,
    }


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def check_protocol(version: int, settings: Settings, client_version: str | None = None) -> None:
    """Refuse, with what to do, a client this server no longer serves (guarantee 12)."""
    served = versions(settings)
    too_old_app = client_version is not None and _version(client_version) < _version(
        settings.sync_min_client_version
    )
    if not served["min_protocol"] <= version <= served["max_protocol"] or too_old_app:
        raise UpgradeRequired(
            "This version of the app can no longer sync with the server: update it to "
            f"{settings.sync_latest_client_version} or later. Changes not yet sent are kept "
            "and sent after the update.",
            details={
                "minProtocol": served["min_protocol"],
                "maxProtocol": served["max_protocol"],
                "minClientVersion": served["min_client_version"],
                "latestClientVersion": served["latest_client_version"],
            },
        )


# --- devices -----------------------------------------------------------------------


def working_device(
    session: Session, caller: Caller, device_id: uuid.UUID, client: str
) -> SyncDevice:
    """The caller's device for a push, hydrate or verify: refused with 410
    DEVICE_WIPED, applying nothing, once a wipe was ordered (a pull answers
    ``wipe: true`` instead, so the client deletes its replica)."""
    device = device_for(session, caller, device_id, client)
    if device.wipe_requested_at is not None:
        device.wiped_at = utcnow()
        raise DeviceWiped(
            "An administrator ordered this device's copy of your work deleted; "
            "it is deleted now. Sign in again to start afresh.",
            details={"wipeRequestedAt": wire.timestamp(device.wipe_requested_at)},
        )
    return device


def device_for(session: Session, caller: Caller, device_id: uuid.UUID, client: str) -> SyncDevice:
    """The caller's device, registered at its first contact. A device id is one
    user's: another account's id is refused (and another organization's looks the
    same: already in use)."""
    if caller.organization_id is None:
        raise ValidationFailed(
            "A replica holds one organization's data: name it with organizationId",
            details={"field": "organizationId"},
        )
    device = session.get(SyncDevice, device_id)
    if device is None:
        device = SyncDevice(id=device_id, user_id=caller.user_id, client=client[:200])
        try:
            with session.begin_nested():
                session.add(device)
                session.flush()
        except IntegrityError:
            device = None
    if device is None or device.user_id != caller.user_id:
        raise ValidationFailed(
            "deviceId is in use by another account; make a new one",
            details={"field": "deviceId"},
        )
    now = utcnow()
    if now - device.last_seen_at > SEEN_EVERY:
        device.last_seen_at = now
    return device


# --- scope -------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """Whose tickets a replica holds: desk staff the organization's open tickets,
    technicians theirs, their teams' and their own requests, requesters their own."""

    caller: Caller
    team_ids: tuple[uuid.UUID, ...]
    #: a technician's home site, whose rooms' assets the replica holds
    site_id: uuid.UUID | None = None
    #: the stock locations whose levels the replica holds: the user's own (van, bag)
    #: and, for a technician, those of their home site (closets, storage)
    location_ids: tuple[uuid.UUID, ...] = ()

    @classmethod
    def of(cls, session: Session, caller: Caller) -> Scope:
        if not caller.role.is_staff:
            return cls(caller, ())
        desk = is_desk(caller)
        team_ids = () if desk else tuple(teams.team_ids_of(session, caller.user_id))
        site_id = (
            None if desk else session.scalar(select(User.site_id).where(User.id == caller.user_id))
        )
        locations = cast(Table, StockLocation.__table__)
        loc = locations.c
        places = [loc.holder_user_id == caller.user_id]
        if site_id is not None:
            places.append(loc.site_id == site_id)
        location_ids = tuple(
            session.execute(select(loc.id).where(_org(locations, caller), or_(*places))).scalars()
        )
        return cls(caller, team_ids, site_id, location_ids)

    @property
    def desk(self) -> bool:
        return is_desk(self.caller)

    @property
    def staff(self) -> bool:
        return self.caller.role.is_staff

    @property
    def principals(self) -> tuple[uuid.UUID, ...]:
        """Whose exits concern this replica: the user, their teams and their site."""
        site = (self.site_id,) if self.site_id is not None else ()
        return (self.caller.user_id, *self.team_ids, *site)

    def holds(self) -> ColumnElement[bool]:
        """The tickets of the scope, tombstones aside (SQL over ``tickets``)."""
        t = TICKETS.c
        if self.desk:
            return t.status_category != StatusCategory.CLOSED.value
        me = self.caller.user_id
        own = or_(t.requester_id == me, t.created_by_id == me)
        if self.caller.role is Role.TECHNICIAN:
            mine = [own, t.assignee_id == me]
            if self.team_ids:
                mine.append(t.team_id.in_(self.team_ids))
            return or_(*mine)
        return own

    def changed(self, since: int | None) -> ColumnElement[bool]:
        """Tickets a pull looks at: for desk staff every change (a ticket that was
        closed leaves the scope), for others those of the scope, whose keys lead
        the sync indexes."""
        t = TICKETS.c
        if since is None:
            return and_(self.holds(), t.deleted_at.is_(None))
        above = t.change_position > since
        if self.desk:
            return above
        # One index range per scope key, (key, change_position): changes by others
        # cost nothing but empty ranges. Written as a union because SQLite's planner
        # turns an OR of them into a scan of everything the organization changed.
        me = self.caller.user_id
        keys = [t.assignee_id == me, t.requester_id == me, t.created_by_id == me]
        keys += [t.team_id == team for team in self.team_ids]
        org = _org(TICKETS, self.caller)
        ranges = [select(t.id).where(key, above, org) for key in keys]
        return t.id.in_(ranges[0].union(*ranges[1:]))


def _org(table: Table, caller: Caller) -> ColumnElement[bool]:
    org_id = caller.organization_id
    return table.c.organization_id == org_id if org_id is not None else false()


def _children_filter(table: Table, scope: Scope) -> ColumnElement[bool]:
    if scope.staff:
        return true()
    c = table.c
    if table.name in ("ticket_comments", "ticket_attachments"):
        return c.is_internal.is_(False)
    if table.name == "sync_conflicts":
        return c.user_id == scope.caller.user_id
    if table.name == "ticket_events":
        return and_(c.is_internal.is_(False), c.kind.not_in(sorted(STAFF_ONLY_EVENTS)))
    return true()


# --- pull --------------------------------------------------------------------------


def pull(
    session: Session,
    caller: Caller,
    *,
    device_id: uuid.UUID,
    cursor: str | None,
    limit: int,
    client: str = "",
) -> Page:
    device = device_for(session, caller, device_id, client)
    if device.wipe_requested_at is not None:
        device.wiped_at = utcnow()
        return Page(cursor=cursor or Cursor(None).text(), wipe=True)
    assert caller.organization_id is not None
    position = current_change_position(session, caller.organization_id)
    at = Cursor.parse(cursor)
    if at.since is not None and (at.since > position or (at.target or 0) > position):
        raise ResyncRequired(
            "This replica is ahead of the server's data (was the server restored from a "
            "backup?); download it again.",
        )
    if not at.paging and at.since == position:
        # nothing new: one indexed read (guarantee 2)
        return Page(cursor=at.text(), last_sequence=device.last_sequence)

    if at.since is not None and at.since < retention.horizon_of(session, caller.organization_id):
        raise ResyncRequired(
            "This replica was away longer than the server keeps deleted records; it "
            "downloads its tickets again, and changes not yet sent are kept.",
        )
    scope = Scope.of(session, caller)
    target = at.target if at.target is not None else position
    page = Page(
        cursor=Cursor(target).text(),
        complete=at.since is None,
        last_sequence=device.last_sequence,
    )
    if at.since is None and not at.paging:
        t = TICKETS.c
        page.tickets_total = session.scalar(
            select(func.count()).where(_org(TICKETS, caller), t.deleted_at.is_(None), scope.holds())
        )
    if not at.paging:
        _lookups(session, scope, at.since, page)
        if not scope.staff:
            _people_on_my_tickets(session, scope, at.since, page)
    limit = min(limit, MAX_LIMIT)
    if at.stage == "t":
        last = _tickets(session, scope, at, limit, page)
        if last is not None:
            page.has_more = True
            page.cursor = Cursor(at.since, target, "t", *last).text()
            return page
    site_since = at.since if device.scope_site_id == scope.site_id else None
    last = _site_assets(session, scope, site_since, at.after("a"), limit * ASSETS_PER_TICKET, page)
    if last is not None:
        page.has_more = True
        page.cursor = Cursor(at.since, target, "a", *last).text()
        return page
    if site_since is None and device.scope_site_id not in (None, scope.site_id):
        _leave_site(session, scope, device.scope_site_id, page)
    _stock_levels(session, scope, at.since, page)
    _exits(session, scope, at.since, page)
    if at.since is not None and _scope_definition_changed(session, scope, device, at.since):
        page.scope = [str(i) for i in _scope_ids(session, scope)]
    device.scope_role = caller.role.value
    device.scope_site_id = scope.site_id
    return page


def _lookups(session: Session, scope: Scope, since: int | None, page: Page) -> None:
    tables: Sequence[Table] = LOOKUPS + (STAFF_LOOKUPS if scope.staff else ())
    if since is not None:
        tables = _changed_tables(session, scope, tables, since)
    for table in tables:
        stmt = select(table).where(_org(table, scope.caller))
        if since is None:
            stmt = stmt.where(table.c.deleted_at.is_(None))
        else:
            stmt = stmt.where(table.c.change_position > since)
        rows = session.execute(stmt.order_by(table.c.change_position)).mappings()
        page.add(table.name, wire.projection(table).rows(rows))


def _changed_tables(
    session: Session, scope: Scope, tables: Sequence[Table], since: int
) -> list[Table]:
    """Which of ``tables`` changed above ``since``, in one statement (one indexed
    probe per table): lookups change rarely, and reading each to find nothing is
    most of what a sync after others' work costs."""
    probes = [
        select(literal(table.name)).where(
            exists().where(_org(table, scope.caller), table.c.change_position > since)
        )
        for table in tables
    ]
    changed = set(session.execute(union_all(*probes)).scalars())
    return [table for table in tables if table.name in changed]


def _people_of(scope: Scope) -> Select[Any]:
    """The people a requester reads about on their own tickets: themselves, whoever
    filed for them or works on them, and who wrote or did what their timelines show."""
    t, c, e = TICKETS.c, TicketComment.__table__.c, TicketEvent.__table__.c
    mine = select(t.id).where(_org(TICKETS, scope.caller), t.deleted_at.is_(None), scope.holds())
    named = [
        select(t.requester_id).where(t.id.in_(mine)),
        select(t.created_by_id).where(t.id.in_(mine)),
        select(t.assignee_id).where(t.id.in_(mine)),
        select(c.author_id).where(c.ticket_id.in_(mine), c.is_internal.is_(False)),
        select(e.actor_id).where(
            e.ticket_id.in_(mine),
            e.is_internal.is_(False),
            e.kind.not_in(sorted(STAFF_ONLY_EVENTS)),
        ),
    ]
    people = named[0].union(*named[1:]).subquery()
    return select(people.c[0])


def _people_on_my_tickets(session: Session, scope: Scope, since: int | None, page: Page) -> None:
    """A requester's people, by name only (``wire.NAME_COLUMNS``; their own row in
    full): all of them whenever one of their tickets changed, since a new name may
    appear on a ticket without that person's row changing."""
    if since is not None:
        t = TICKETS.c
        changed = session.execute(
            select(t.id)
            .where(_org(TICKETS, scope.caller), scope.holds(), t.change_position > since)
            .limit(1)
        ).first()
        if changed is None:
            return
    u = USERS.c
    rows = session.execute(
        select(USERS).where(
            _org(USERS, scope.caller),
            u.deleted_at.is_(None),
            or_(u.id == scope.caller.user_id, u.id.in_(_people_of(scope))),
        )
    ).mappings()
    page.add("users", wire.people_rows(rows, me=scope.caller.user_id))


def changed_tickets(scope: Scope, at: Cursor, limit: int) -> Select[Any]:
    """The next ``limit`` tickets of the scope changed above the cursor, in
    (change_position, id) order from where paging stopped."""
    t = TICKETS.c
    stmt = select(TICKETS).where(scope.changed(at.since))
    if scope.desk or at.since is None:  # scoped ranges carry the organization themselves
        stmt = stmt.where(_org(TICKETS, scope.caller))
    if at.paging:
        stmt = stmt.where(tuple_(t.change_position, t.id) > tuple_(at.after_position, at.after_id))
    return stmt.order_by(t.change_position, t.id).limit(limit)


def _tickets(
    session: Session, scope: Scope, at: Cursor, limit: int, page: Page
) -> tuple[int, uuid.UUID] | None:
    """One page of the scope's changed tickets with their children; the last
    (position, id) sent when more follow."""
    t = TICKETS.c
    records = list(session.execute(changed_tickets(scope, at, limit + 1)).mappings())
    more = len(records) > limit
    records = records[:limit]
    held = session.execute(
        select(t.id).where(t.id.in_([r["id"] for r in records]), scope.holds())
    ).scalars()
    in_scope = set(held)
    sent = [r for r in records if r["id"] in in_scope or r["deleted_at"] is not None]
    if scope.desk:  # a desk replica drops what was closed since
        page.remove("tickets", (r["id"] for r in records if r["id"] not in in_scope))
    page.add("tickets", wire.ticket_projection(TICKETS, staff=scope.staff).rows(sent))
    live = [r["id"] for r in sent if r["deleted_at"] is None]  # a tombstone takes its children
    _children(session, scope, live, at.since, page)
    if more:
        return records[-1]["change_position"], records[-1]["id"]
    return None


def _site_assets(
    session: Session,
    scope: Scope,
    since: int | None,
    after: tuple[int, uuid.UUID] | None,
    limit: int,
    page: Page,
) -> tuple[int, uuid.UUID] | None:
    """One page of the home site's assets changed above ``since`` (all of them when
    the replica has none yet); the last (position, id) sent when more follow."""
    if scope.site_id is None:
        return None
    a = ASSETS.c
    stmt = select(ASSETS).where(_org(ASSETS, scope.caller), a.site_id == scope.site_id)
    stmt = stmt.where(a.deleted_at.is_(None) if since is None else a.change_position > since)
    if after is not None:
        stmt = stmt.where(tuple_(a.change_position, a.id) > tuple_(*after))
    records = list(
        session.execute(stmt.order_by(a.change_position, a.id).limit(limit + 1)).mappings()
    )
    more = len(records) > limit
    records = records[:limit]
    page.add("assets", wire.projection(ASSETS).rows(records))
    if more:
        return records[-1]["change_position"], records[-1]["id"]
    return None


def _leave_site(session: Session, scope: Scope, old_site: uuid.UUID, page: Page) -> None:
    """The technician's home site changed: the old site's assets leave the replica."""
    a = ASSETS.c
    ids = session.execute(
        select(a.id).where(_org(ASSETS, scope.caller), a.site_id == old_site)
    ).scalars()
    page.remove("assets", ids)


def _stock_levels(session: Session, scope: Scope, since: int | None, page: Page) -> None:
    """Levels at the scope's locations changed above the cursor, and every level of
    a location whose own row changed (handed to this technician, moved to their
    site): its levels did not change, but they are new to the replica."""
    if not scope.location_ids:
        return
    c = STOCK_LEVELS.c
    stmt = select(STOCK_LEVELS).where(
        _org(STOCK_LEVELS, scope.caller), c.location_id.in_(scope.location_ids)
    )
    if since is None:
        stmt = stmt.where(c.deleted_at.is_(None))
    else:
        loc = cast(Table, StockLocation.__table__).c
        arrived = select(loc.id).where(loc.id.in_(scope.location_ids), loc.change_position > since)
        stmt = stmt.where(
            or_(c.change_position > since, and_(c.location_id.in_(arrived), c.deleted_at.is_(None)))
        )
    rows = session.execute(stmt.order_by(c.change_position)).mappings()
    page.add("stock_levels", wire.projection(STOCK_LEVELS).rows(rows))


def _children(
    session: Session,
    scope: Scope,
    ticket_ids: Sequence[uuid.UUID],
    since: int | None,
    page: Page,
) -> None:
    if not ticket_ids:
        return
    tables = TICKET_CHILDREN + (STAFF_TICKET_CHILDREN if scope.staff else ())
    for table in tables:
        c = table.c
        stmt = select(table).where(
            _org(table, scope.caller), c.ticket_id.in_(ticket_ids), _children_filter(table, scope)
        )
        stmt = stmt.where(c.deleted_at.is_(None) if since is None else c.change_position > since)
        rows = session.execute(stmt.order_by(c.change_position)).mappings()
        page.add(table.name, wire.projection(table).rows(rows))
    if scope.staff:  # the devices the tickets are about, as they are now
        links = TicketAsset.__table__.c
        a = ASSETS.c
        linked = select(links.asset_id).where(
            links.ticket_id.in_(ticket_ids), links.deleted_at.is_(None)
        )
        rows = session.execute(
            select(ASSETS).where(_org(ASSETS, scope.caller), a.id.in_(linked))
        ).mappings()
        page.add("assets", wire.projection(ASSETS).rows(rows))


def _exits(session: Session, scope: Scope, since: int | None, page: Page) -> None:
    """Tickets that left a technician's or requester's scope above the cursor and
    that they can no longer see."""
    if since is None or scope.desk:
        return
    x = SyncScopeExit.__table__.c
    exits = session.execute(
        select(x.ticket_id, x.asset_id, x.location_id).where(
            _org(SyncScopeExit.__table__, scope.caller),  # type: ignore[arg-type]
            x.principal_id.in_(scope.principals),
            x.change_position > since,
        )
    ).all()
    left = {e.ticket_id for e in exits if e.ticket_id is not None}
    if left:
        t = TICKETS.c
        still = set(session.execute(select(t.id).where(t.id.in_(left), scope.holds())).scalars())
        page.remove("tickets", sorted(left - still))
    handed = {e.location_id for e in exits if e.location_id is not None}
    gone = handed - set(scope.location_ids)
    if gone:
        c = STOCK_LEVELS.c
        page.remove(
            "stock_levels",
            session.execute(
                select(c.id).where(_org(STOCK_LEVELS, scope.caller), c.location_id.in_(gone))
            ).scalars(),
        )
    moved = {e.asset_id for e in exits if e.asset_id is not None}
    if moved:
        a = ASSETS.c
        here = set(
            session.execute(
                select(a.id).where(a.id.in_(moved), a.site_id == scope.site_id)
            ).scalars()
        )
        page.remove("assets", sorted(moved - here))


def _scope_definition_changed(
    session: Session, scope: Scope, device: SyncDevice, since: int
) -> bool:
    """The user's role changed, or they joined or left a team, since the cursor."""
    if device.scope_role != scope.caller.role.value:
        return True
    m = TeamMember.__table__.c
    return (
        session.execute(
            select(m.id)
            .where(
                _org(TeamMember.__table__, scope.caller),  # type: ignore[arg-type]
                m.user_id == scope.caller.user_id,
                m.change_position > since,
            )
            .limit(1)
        ).first()
        is not None
    )


def _scope_ids(session: Session, scope: Scope) -> list[uuid.UUID]:
    t = TICKETS.c
    stmt = select(t.id).where(_org(TICKETS, scope.caller), t.deleted_at.is_(None), scope.holds())
    return list(session.execute(stmt.order_by(t.id)).scalars())


# --- hydrate -----------------------------------------------------------------------


def hydrate(
    session: Session, caller: Caller, *, device_id: uuid.UUID, ticket_ids: Sequence[uuid.UUID]
) -> Page:
    """The named tickets the caller's scope holds, each with every child row."""
    working_device(session, caller, device_id, "")
    return hydrate_page(session, caller, ticket_ids)


def hydrate_page(
    session: Session,
    caller: Caller,
    ticket_ids: Sequence[uuid.UUID],
    *,
    changed_after: int | None = None,
) -> Page:
    """The named tickets the caller's scope holds with their children: every child,
    or (``changed_after``) those changed above that position — what a push just
    wrote, for its answer."""
    scope = Scope.of(session, caller)
    t = TICKETS.c
    records = list(
        session.execute(
            select(TICKETS).where(
                _org(TICKETS, caller),
                t.id.in_(list(ticket_ids)),
                t.deleted_at.is_(None),
                scope.holds(),
            )
        ).mappings()
    )
    assert caller.organization_id is not None
    page = Page(cursor="")
    page.add("tickets", wire.ticket_projection(TICKETS, staff=scope.staff).rows(records))
    _children(session, scope, [r["id"] for r in records], changed_after, page)
    return page


# --- conflicts and devices ----------------------------------------------------------


def query_conflicts(caller: Caller, *, status: str) -> Select[Any]:
    """Conflicts on tickets the caller may see: staff see all of those, others their
    own. ``status``: open, resolved or all."""
    stmt: Select[Any] = cast(
        Select[Any],
        select(SyncConflict, Ticket.number)
        .join(Ticket, Ticket.id == SyncConflict.ticket_id)
        .where(visible_filter(caller)),
    )
    if not caller.role.is_staff:
        stmt = stmt.where(SyncConflict.user_id == caller.user_id)
    if status == "open":
        stmt = stmt.where(SyncConflict.resolved_at.is_(None))
    elif status == "resolved":
        stmt = stmt.where(SyncConflict.resolved_at.is_not(None))
    return stmt


def query_devices(caller: Caller) -> Select[Any]:
    """The caller's replicas; an organization admin sees everyone's."""
    stmt = select(SyncDevice)
    if caller.role not in (Role.ORG_ADMIN, Role.SUPER_ADMIN):
        stmt = stmt.where(SyncDevice.user_id == caller.user_id)
    return stmt


def order_wipe(session: Session, caller: Caller, device_id: uuid.UUID) -> SyncDevice:
    """Order a remote wipe: the device deletes its replica and sign-in at its next
    contact. A user may wipe their own devices; an organization admin any."""
    device = session.scalar(query_devices(caller).where(SyncDevice.id == device_id))
    if device is None:
        raise NotFound("Device")
    if device.wipe_requested_at is None:
        device.wipe_requested_at = utcnow()
    session.flush()
    return device


# --- verify ------------------------------------------------------------------------


@dataclass(frozen=True)
class TableDigest:
    table: str
    count: int
    sha256: str


def verify(
    session: Session, caller: Caller, *, device_id: uuid.UUID, cursor: str | None
) -> tuple[bool, list[TableDigest]]:
    """What the caller's replica should hold now, per table: the row count and the
    SHA-256 of the sorted ``id:changePosition`` lines. ``stale`` when the
    organization changed after the cursor: sync, then verify again."""
    working_device(session, caller, device_id, "")
    assert caller.organization_id is not None
    at = Cursor.parse(cursor)
    stale = at.paging or at.since != current_change_position(session, caller.organization_id)
    scope = Scope.of(session, caller)
    t = TICKETS.c
    held = select(t.id).where(_org(TICKETS, caller), t.deleted_at.is_(None), scope.holds())
    selections: list[tuple[str, Select[Any]]] = [("tickets", held)]
    for table in TICKET_CHILDREN + (STAFF_TICKET_CHILDREN if scope.staff else ()):
        c = table.c
        selections.append(
            (
                table.name,
                select(c.id, c.change_position).where(
                    _org(table, caller),
                    c.deleted_at.is_(None),
                    c.ticket_id.in_(held),
                    _children_filter(table, scope),
                ),
            )
        )
    for table in LOOKUPS + (STAFF_LOOKUPS if scope.staff else ()):
        c = table.c
        selections.append(
            (
                table.name,
                select(c.id, c.change_position).where(_org(table, caller), c.deleted_at.is_(None)),
            )
        )
    if not scope.staff:
        u = USERS.c
        selections.append(
            (
                "users",
                select(u.id, u.change_position).where(
                    _org(USERS, caller),
                    u.deleted_at.is_(None),
                    or_(u.id == caller.user_id, u.id.in_(_people_of(scope))),
                ),
            )
        )
    if scope.staff:
        a, links = ASSETS.c, TicketAsset.__table__.c
        linked = select(links.asset_id).where(links.ticket_id.in_(held), links.deleted_at.is_(None))
        mine: ColumnElement[bool] = a.id.in_(linked)
        if scope.site_id is not None:
            mine = or_(mine, a.site_id == scope.site_id)
        selections.append(
            (
                "assets",
                select(a.id, a.change_position).where(
                    _org(ASSETS, caller), a.deleted_at.is_(None), mine
                ),
            )
        )
        s = STOCK_LEVELS.c
        selections.append(
            (
                "stock_levels",
                select(s.id, s.change_position).where(
                    _org(STOCK_LEVELS, caller),
                    s.deleted_at.is_(None),
                    s.location_id.in_(scope.location_ids),
                ),
            )
        )
    digests = []
    for name, stmt in selections:
        if name == "tickets":
            stmt = select(t.id, t.change_position).where(t.id.in_(held))
        lines = sorted(f"{row[0]}:{row[1]}\n" for row in session.execute(stmt))
        digest = hashlib.sha256("".join(lines).encode()).hexdigest()
        digests.append(TableDigest(name, len(lines), digest))
    return stale, digests
