"""Room audits: a technician scans every tag in a room; the server answers with what
is present, missing (expected here, not scanned), misplaced (scanned here, recorded
elsewhere), unknown (no such tag) and checked out (expected here but with a person).

Confirming an audit, once, applies it through the ordinary asset changes (history
and audit log): misplaced assets move into the room, missing ones get the Missing
label, found assets that were labelled Missing go back to the default label, and
every found asset records that it was seen.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from common.enums import AuditCategory
from server.assets import service
from server.assets.models import (
    Asset,
    AssetStatusLabel,
    AssetType,
    Person,
    RoomAudit,
    RoomAuditScan,
)
from server.assets.schemas import (
    AuditConfirmIn,
    AuditIn,
    AuditLineOut,
    PlaceOut,
    RoomAuditOut,
    RoomAuditSummaryOut,
)
from server.audit import service as audit_log
from server.core.db import utcnow
from server.core.errors import BusinessRuleViolation, Conflict, NotFound, ValidationFailed
from server.core.tenancy import Caller
from server.sites.models import Room

OUTCOMES = ("present", "missing", "misplaced", "unknown", "checked_out")
#: status types of assets a room is expected to hold (missing, stolen and retired
#: assets are already known not to be there)
EXPECTED_TYPES = ("deployable", "in_repair")
_CHUNK = 500


def get_audit(session: Session, audit_id: uuid.UUID, *, for_update: bool = False) -> RoomAudit:
    audit = session.get(RoomAudit, audit_id, with_for_update=for_update or None)
    if audit is None or audit.deleted_at is not None:
        raise NotFound("Room audit")
    return audit


def query_audits(*, room_id: uuid.UUID) -> Select[Any]:
    return (
        select(RoomAudit)
        .where(RoomAudit.room_id == room_id)
        .order_by(RoomAudit.created_at.desc(), RoomAudit.id.desc())
    )


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def create_audit(session: Session, *, caller: Caller, room: Room, data: AuditIn) -> RoomAudit:
    """Record what was scanned in ``room`` and classify it (nothing changes yet)."""
    tags = list(dict.fromkeys(service.normalize_tag(t) for t in data.scanned_tags if t.strip()))
    by_tag: dict[str, Asset] = {}
    for chunk in _chunks(tags):
        stmt = select(Asset).where(
            Asset.organization_id == room.organization_id, Asset.asset_tag.in_(chunk)
        )
        for asset in session.scalars(stmt):
            by_tag[asset.asset_tag] = asset
    expected = session.execute(
        select(Asset, AssetStatusLabel.status_type)
        .join(AssetStatusLabel, AssetStatusLabel.id == Asset.status_label_id)
        .where(Asset.room_id == room.id)
    ).all()
    audit = RoomAudit(
        organization_id=room.organization_id,
        room_id=room.id,
        auditor_id=caller.user_id,
        notes=data.notes,
        status="open",
    )
    session.add(audit)
    session.flush()
    counts = dict.fromkeys(OUTCOMES, 0)
    scans: list[RoomAuditScan] = []

    def line(tag: str, outcome: str, asset: Asset | None, scanned: bool, **kw: Any) -> None:
        counts[outcome] += 1
        scans.append(
            RoomAuditScan(
                organization_id=room.organization_id,
                audit_id=audit.id,
                tag=tag,
                scanned=scanned,
                outcome=outcome,
                asset_id=asset.id if asset else None,
                **kw,
            )
        )

    for tag in tags:
        found = by_tag.get(tag)
        if found is None:
            line(tag, "unknown", None, True)
        elif found.room_id == room.id:
            line(tag, "present", found, True)
        else:
            recorded = (found.site_id, found.building_id, found.room_id)
            where = service.describe_place(session, recorded)
            line(tag, "misplaced", found, True, recorded_place=where)
    for asset, status_type in expected:
        if asset.asset_tag in by_tag or status_type not in EXPECTED_TYPES:
            continue
        outcome = "checked_out" if asset.assigned_person_id is not None else "missing"
        line(asset.asset_tag, outcome, asset, False)
    session.add_all(scans)
    audit.present_count = counts["present"]
    audit.missing_count = counts["missing"]
    audit.misplaced_count = counts["misplaced"]
    audit.unknown_count = counts["unknown"]
    audit.checked_out_count = counts["checked_out"]
    session.flush()
    audit_log.record(
        session,
        actor=caller,
        organization_id=room.organization_id,
        action="room_audit.recorded",
        category=AuditCategory.DATA,
        entity_type="room_audit",
        entity_id=audit.id,
        message=(
            f"{caller.email} audited room {room.number}: {counts['present']} present, "
            f"{counts['missing']} missing, {counts['misplaced']} misplaced, "
            f"{counts['unknown']} unknown"
        ),
        details={"roomId": str(room.id), "counts": _counts(audit)},
    )
    return audit


def _counts(audit: RoomAudit) -> dict[str, int]:
    return {
        "present": audit.present_count,
        "missing": audit.missing_count,
        "misplaced": audit.misplaced_count,
        "unknown": audit.unknown_count,
        "checkedOut": audit.checked_out_count,
    }


def summary_out(audit: RoomAudit) -> RoomAuditSummaryOut:
    return RoomAuditSummaryOut(
        id=audit.id,
        room_id=audit.room_id,
        auditor_id=audit.auditor_id,
        status=audit.status,
        created_at=audit.created_at,
        confirmed_at=audit.confirmed_at,
        counts=_counts(audit),
    )


def audit_out(session: Session, audit: RoomAudit) -> RoomAuditOut:
    """The audit and its answer, in one statement for the lines."""
    rows = session.execute(
        select(
            RoomAuditScan,
            Asset.name,
            AssetType.name,
            AssetStatusLabel.name,
            Person.name,
        )
        .outerjoin(Asset, Asset.id == RoomAuditScan.asset_id)
        .outerjoin(AssetType, AssetType.id == Asset.asset_type_id)
        .outerjoin(AssetStatusLabel, AssetStatusLabel.id == Asset.status_label_id)
        .outerjoin(Person, Person.id == Asset.assigned_person_id)
        .where(RoomAuditScan.audit_id == audit.id)
        .order_by(RoomAuditScan.tag, RoomAuditScan.id)
    ).all()
    lines: dict[str, list[AuditLineOut]] = {k: [] for k in OUTCOMES}
    for scan, asset_name, type_name, status_name, person_name in rows:
        lines[scan.outcome].append(
            AuditLineOut(
                tag=scan.tag,
                asset_id=scan.asset_id,
                asset_name=asset_name,
                asset_type_name=type_name,
                status_name=status_name,
                belongs_in=PlaceOut(
                    room_id=scan.recorded_place.get("roomId"),
                    room_number=scan.recorded_place.get("roomNumber"),
                    building_id=scan.recorded_place.get("buildingId"),
                    building_name=scan.recorded_place.get("buildingName"),
                    site_id=scan.recorded_place.get("siteId"),
                    site_name=scan.recorded_place.get("siteName"),
                )
                if scan.outcome == "misplaced"
                else None,
                assigned_person_name=person_name if scan.outcome == "checked_out" else None,
            )
        )
    return RoomAuditOut(
        id=audit.id,
        organization_id=audit.organization_id,
        room_id=audit.room_id,
        auditor_id=audit.auditor_id,
        notes=audit.notes,
        status=audit.status,
        created_at=audit.created_at,
        confirmed_at=audit.confirmed_at,
        confirmed_by_id=audit.confirmed_by_id,
        counts=_counts(audit),
        present=lines["present"],
        missing=lines["missing"],
        misplaced=lines["misplaced"],
        unknown=lines["unknown"],
        checked_out=lines["checked_out"],
        applied=audit.applied or {},
    )


def _missing_label(session: Session, audit: RoomAudit, data: AuditConfirmIn) -> AssetStatusLabel:
    if data.missing_status_label_id is not None:
        label = session.get(AssetStatusLabel, data.missing_status_label_id)
        if (
            label is None
            or label.deleted_at is not None
            or (label.organization_id != audit.organization_id)
        ):
            raise ValidationFailed(
                "missingStatusLabelId does not exist", details={"field": "missingStatusLabelId"}
            )
    else:
        service.ensure_defaults(session, audit.organization_id)
        found = service.label_by_key(session, "missing", audit.organization_id)
        if found is None:
            raise BusinessRuleViolation(
                "The organization has no Missing status: name missingStatusLabelId",
                details={"field": "missingStatusLabelId"},
            )
        label = found
    if label.requires_police_report:
        raise BusinessRuleViolation(
            f"'{label.name}' needs a police report number; set it asset by asset",
            details={"field": "missingStatusLabelId"},
        )
    if label.status_type in EXPECTED_TYPES:
        raise BusinessRuleViolation(
            f"'{label.name}' is {label.status_type}: a missing asset needs an undeployable "
            "or archived status",
            details={"field": "missingStatusLabelId"},
        )
    return label


def confirm_audit(
    session: Session, *, caller: Caller, audit: RoomAudit, data: AuditConfirmIn
) -> RoomAudit:
    """Apply the audit (once) as ordinary asset changes; returns it with ``applied``."""
    if audit.status == "confirmed":
        raise Conflict("This audit was already confirmed", details={"field": "id"})
    room = session.get(Room, audit.room_id)
    if room is None or room.deleted_at is not None:
        raise BusinessRuleViolation("The audited room no longer exists", details={"field": "id"})
    missing_label = _missing_label(session, audit, data) if data.mark_missing else None
    scans = list(session.scalars(select(RoomAuditScan).where(RoomAuditScan.audit_id == audit.id)))
    asset_ids = [s.asset_id for s in scans if s.asset_id is not None]
    assets: dict[uuid.UUID, Asset] = {}
    for start in range(0, len(asset_ids), _CHUNK):
        chunk = asset_ids[start : start + _CHUNK]
        assets.update((a.id, a) for a in session.scalars(select(Asset).where(Asset.id.in_(chunk))))
    labels = {
        label.id: label
        for label in session.scalars(
            select(AssetStatusLabel).where(
                AssetStatusLabel.organization_id == audit.organization_id
            )
        )
    }
    here = service.resolve_place(
        session, (None, None, None), {"room_id": room.id}, audit.organization_id
    )
    restore_to = None
    note = f"Room audit of {room.number}"
    applied: dict[str, list[str]] = {"moved": [], "markedMissing": [], "restored": [], "seen": []}
    now = utcnow()
    for scan in scans:
        asset = assets.get(scan.asset_id) if scan.asset_id else None
        if asset is None:
            continue
        if scan.outcome in ("present", "misplaced"):
            if (
                scan.outcome == "misplaced"
                and data.move_misplaced
                and asset.room_id != room.id
                and service.move_asset(session, caller=caller, asset=asset, place=here, note=note)
            ):
                applied["moved"].append(str(asset.id))
            label = labels.get(asset.status_label_id)
            if data.restore_found and label is not None and label.key == "missing":
                restore_to = restore_to or service.default_label(session, audit.organization_id)
                service.set_status(
                    session, caller=caller, asset=asset, label=restore_to, note=note, current=label
                )
                applied["restored"].append(str(asset.id))
            asset.last_audited_at = now
            service.record_event(
                session,
                asset,
                "audited",
                caller.user_id,
                auditId=audit.id,
                roomId=room.id,
                roomNumber=room.number,
                outcome=scan.outcome,
            )
            applied["seen"].append(str(asset.id))
        elif scan.outcome == "missing" and missing_label is not None:
            label = labels.get(asset.status_label_id)
            still_expected = (
                asset.room_id == room.id
                and asset.assigned_person_id is None
                and label is not None
                and label.status_type in EXPECTED_TYPES
            )
            if still_expected:
                service.set_status(
                    session,
                    caller=caller,
                    asset=asset,
                    label=missing_label,
                    note=note,
                    current=label,
                )
                applied["markedMissing"].append(str(asset.id))
    audit.status = "confirmed"
    audit.confirmed_at = now
    audit.confirmed_by_id = caller.user_id
    audit.applied = applied
    session.flush()
    audit_log.record(
        session,
        actor=caller,
        organization_id=audit.organization_id,
        action="room_audit.confirmed",
        category=AuditCategory.DATA,
        entity_type="room_audit",
        entity_id=audit.id,
        message=(
            f"{caller.email} confirmed the audit of room {room.number}: "
            f"{len(applied['moved'])} moved here, {len(applied['markedMissing'])} marked "
            f"missing, {len(applied['restored'])} found again"
        ),
        details={k: len(v) for k, v in applied.items()},
    )
    return audit
