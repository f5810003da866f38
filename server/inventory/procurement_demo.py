"""Demo vendors and purchase orders: the suppliers a district really deals with, and a
handful of orders in every status, received through the stock ledger.

``seed_demo`` goes through the same services as the API (audit events, totals, the
state machine, ledger movements), acting as the district's own staff.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.enums import Role
from server.core.tenancy import TENANT_KEY, Caller, bind_tenant, bound_tenant
from server.inventory import purchasing
from server.inventory import vendors as vendor_service
from server.inventory.models import Part, StockLocation
from server.inventory.procurement_schemas import (
    LineItemIn,
    PurchaseOrderCreate,
    ReceiveBody,
    ReceiveLine,
    VendorCreate,
)
from server.inventory.vendor_models import PurchaseOrder, PurchaseOrderStatus, Vendor
from server.organizations.models import Department, Organization
from server.users.models import User


@dataclass(frozen=True)
class DemoVendor:
    name: str
    vendor_type: str
    departments: tuple[str, ...]
    contact: str
    email: str
    phone: str
    website: str
    terms: str
    rating: int
    status: str = "active"
    #: part names or categories (lower case, regular expression) this vendor supplies
    supplies: str = ""
    notes: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


VENDORS: tuple[DemoVendor, ...] = (
    DemoVendor(
        "Keystone Government Technology",
        "reseller",
        ("Technology",),
        "Alicia Brandt",
        "k12team@keystonegov.example",
        "+1 800 555 0142",
        "https://www.keystonegov.example",
        "Net 30",
        5,
        status="preferred",
        supplies=r"charger|adapter|dock|mouse|headset|keyboard|laptop|desktop|monitor",
        notes="State cooperative contract pricing; quote number required on every PO.",
    ),
    DemoVendor(
        "Chromebook Repair Depot",
        "repair_depot",
        ("Technology",),
        "Marcus Oyelaran",
        "rma@cbrepairdepot.example",
        "+1 888 555 0177",
        "https://cbrepairdepot.example",
        "Net 30",
        4,
        supplies=r"chromebook|screen|lcd|display|hinge|battery|bezel|palmrest|motherboard",
        notes="Google-authorised parts; 5-day depot turnaround; ship with RMA label.",
    ),
    DemoVendor(
        "BrightBeam Projector Lamps",
        "supplier",
        ("Technology",),
        "Dana Liu",
        "sales@brightbeamlamps.example",
        "+1 877 555 0119",
        "https://brightbeamlamps.example",
        "Net 15",
        4,
        supplies=r"lamp|projector|filter kit|remote",
    ),
    DemoVendor(
        "TonerWorks Supply",
        "supplier",
        (),
        "Greg Hollis",
        "orders@tonerworks.example",
        "+1 866 555 0160",
        "https://tonerworks.example",
        "Net 30",
        3,
        status="review",
        supplies=r"toner|drum|ink|fuser|printer|paper",
        notes="Two late deliveries this spring: under review.",
    ),
    DemoVendor(
        "Prairie HVAC Supply",
        "supplier",
        ("Facilities",),
        "Tomás Reyes",
        "counter@prairiehvac.example",
        "+1 800 555 0190",
        "https://prairiehvac.example",
        "Net 30",
        4,
        supplies=r"hvac|air filter|merv|belt|thermostat|capacitor|contactor|refrigerant",
    ),
    DemoVendor(
        "Midwest Facilities & Janitorial",
        "supplier",
        ("Facilities",),
        "Renee Powell",
        "schools@midwestfacilities.example",
        "+1 877 555 0135",
        "https://midwestfacilities.example",
        "Net 45",
        3,
        supplies=r"bulb|ballast|led tube|light|lock|door|janitorial|paint",
    ),
    DemoVendor(
        "Lakeside Cabling & Network",
        "contractor",
        ("Technology",),
        "Sam Okafor",
        "service@lakesidecabling.example",
        "+1 888 555 0108",
        "https://lakesidecabling.example",
        "Net 30",
        5,
        supplies=r"cable|patch|network|switch|access point|sfp|keystone|hdmi|usb-c",
        extra={"insurance": "yes"},
    ),
    DemoVendor(
        "Evergreen Bus Parts",
        "supplier",
        ("Transportation",),
        "Jill Anders",
        "parts@evergreenbus.example",
        "+1 800 555 0187",
        "https://evergreenbus.example",
        "Net 30",
        2,
        status="inactive",
        supplies=r"bus|brake|wiper|mirror",
        notes="Replaced by the regional cooperative contract in 2025.",
    ),
)

#: The statuses the demo orders end in, in the order they are made.
ORDER_PLAN: tuple[PurchaseOrderStatus, ...] = (
    PurchaseOrderStatus.RECEIVED,
    PurchaseOrderStatus.RECEIVED,
    PurchaseOrderStatus.PARTIAL,
    PurchaseOrderStatus.SENT,
    PurchaseOrderStatus.APPROVED,
    PurchaseOrderStatus.PENDING_APPROVAL,
    PurchaseOrderStatus.DRAFT,
    PurchaseOrderStatus.CANCELLED,
)


@dataclass
class DemoProcurement:
    vendors: list[Vendor]
    purchase_orders: list[PurchaseOrder]


def seed_demo(
    session: Session,
    organization: Organization,
    parts: Sequence[Part],
    locations: Sequence[StockLocation],
    users: Sequence[User],
    rng: random.Random,
) -> DemoProcurement:
    """Vendors, links from the demo parts to their vendors, and purchase orders in every
    status. Skips (returns what exists) when the organization has vendors already.

    The session may be bound to the organization or to all tenants; the work runs
    bound to the organization, as a request would, and the binding is restored.
    """
    previous = bound_tenant(session)
    bind_tenant(session, organization.id)
    try:
        existing = list(session.scalars(select(Vendor)))
        if existing:
            return DemoProcurement(existing, list(session.scalars(select(PurchaseOrder))))
        return _seed(session, organization, parts, locations, users, rng)
    finally:
        if previous is not None:
            bind_tenant(session, previous)
        else:
            session.info.pop(TENANT_KEY, None)


def _caller(user: User) -> Caller:
    assert user.organization_id is not None
    return Caller(
        user_id=user.id, organization_id=user.organization_id, role=user.role, email=user.email
    )


def _seed(
    session: Session,
    organization: Organization,
    parts: Sequence[Part],
    locations: Sequence[StockLocation],
    users: Sequence[User],
    rng: random.Random,
) -> DemoProcurement:
    org_users = [u for u in users if u.organization_id == organization.id and u.is_active]
    admins = [u for u in org_users if u.role is Role.ORG_ADMIN]
    staff = [u for u in org_users if u.role in (Role.AGENT, Role.TECHNICIAN)]
    if not admins:
        return DemoProcurement([], [])
    admin = _caller(admins[0])
    departments = {d.name: d.id for d in session.scalars(select(Department))}

    made: list[Vendor] = []
    for spec in VENDORS:
        vendor = vendor_service.create_vendor(
            session,
            caller=admin,
            organization_id=organization.id,
            department_id=None,
            data=VendorCreate(
                name=spec.name,
                vendor_type=spec.vendor_type,
                status=spec.status,
                contact_name=spec.contact,
                email=spec.email,
                phone=spec.phone,
                website=spec.website,
                payment_terms=spec.terms,
                account_number=f"MUSD-{rng.randint(10000, 99999)}",
                performance_rating=spec.rating,
                w9_on_file=True,
                insurance_on_file=bool(spec.extra.get("insurance")) or spec.rating >= 4,
                notes=spec.notes,
                department_ids=[departments[d] for d in spec.departments if d in departments],
            ),
        )
        made.append(vendor)

    # Parts without a vendor get the one that supplies their kind (reseller otherwise).
    by_name = {v.name: v for v in made}
    supplied: dict[uuid.UUID, list[Part]] = {v.id: [] for v in made}
    for part in parts:
        if part.organization_id != organization.id:
            continue
        if part.vendor_id is None:
            part.vendor_id = _vendor_for(part, by_name).id
        if part.vendor_id in supplied:
            supplied[part.vendor_id].append(part)
    session.flush()

    warehouse = next((loc for loc in locations if loc.kind == "warehouse"), None) or (
        locations[0] if locations else None
    )
    orders: list[PurchaseOrder] = []
    buying = [v for v in made if v.status.value != "inactive"]
    for index, goal in enumerate(ORDER_PLAN):
        vendor = buying[index % len(buying)]
        stock = supplied.get(vendor.id) or []
        if goal in (PurchaseOrderStatus.PARTIAL, PurchaseOrderStatus.RECEIVED) and (
            warehouse is None or not stock
        ):
            continue  # nothing to put on a shelf
        requester = _requester(session, vendor, staff, index) or admin
        orders.append(
            _order(session, organization, admin, requester, vendor, stock, warehouse, goal, rng)
        )
    return DemoProcurement(made, orders)


def _requester(
    session: Session, vendor: Vendor, staff: Sequence[User], index: int
) -> Caller | None:
    """A staff member who may order from the vendor (of a department it serves)."""
    serves = set(vendor_service.department_ids_of(session, [vendor.id]).get(vendor.id, []))
    fits = [u for u in staff if not serves or u.department_id in serves]
    return _caller(fits[index % len(fits)]) if fits else None


def _vendor_for(part: Part, vendors: dict[str, Vendor]) -> Vendor:
    text = f"{part.name} {part.category or ''}".lower()
    for spec in VENDORS:
        if spec.status != "inactive" and spec.supplies and re.search(spec.supplies, text):
            return vendors[spec.name]
    return vendors[VENDORS[0].name]


def _order(
    session: Session,
    organization: Organization,
    admin: Caller,
    requester: Caller,
    vendor: Vendor,
    stock: Sequence[Part],
    warehouse: StockLocation | None,
    goal: PurchaseOrderStatus,
    rng: random.Random,
) -> PurchaseOrder:
    S = PurchaseOrderStatus
    chosen = rng.sample(list(stock), k=min(len(stock), rng.randint(1, 3))) if stock else []
    lines = [
        LineItemIn(
            part_id=part.id,
            description=part.name[:500],
            part_number=part.part_number,
            quantity=max(part.reorder_quantity, rng.randint(2, 12)),
            unit_cost=Decimal(part.unit_cost_cents or rng.randint(500, 9000)) / 100,
        )
        for part in chosen
    ] or [
        LineItemIn(
            description=f"Service call: {vendor.name}",
            quantity=1,
            unit_cost=Decimal(rng.randint(150, 900)),
        )
    ]
    # The requester's own department, or none (the demo's staff may have none).
    own = session.scalar(select(User.department_id).where(User.id == requester.user_id))
    po = purchasing.create_purchase_order(
        session,
        caller=requester,
        organization_id=organization.id,
        own_department_id=own,
        data=PurchaseOrderCreate(
            vendor_id=vendor.id,
            ship_to_location_id=warehouse.id if warehouse else None,
            description=f"{vendor.name}: {', '.join(line.description for line in lines)}"[:2000],
            funding_source=rng.choice(["General Fund", "E-Rate", "Title IV-A", "ESSER III"]),
            shipping=Decimal(rng.choice([0, 0, 12, 25, 40])),
            line_items=lines,
        ),
    )
    if goal is S.DRAFT:
        return po
    purchasing.submit(session, caller=requester, po=po)
    if goal is S.PENDING_APPROVAL:
        return po
    if goal is S.CANCELLED:
        return purchasing.cancel(session, caller=requester, po=po, reason="Duplicate of a quote")
    purchasing.approve(session, caller=admin, po=po, note="Within budget")
    if goal is S.APPROVED:
        return po
    purchasing.send(session, caller=requester, po=po, note="Emailed to the vendor")
    if goal is S.SENT or warehouse is None:
        return po
    order_lines = purchasing.lines_of(session, po)
    if goal is S.PARTIAL:
        first = order_lines[0]  # part lines order at least two: half of it arrives
        receipt = [ReceiveLine(line_id=first.id, quantity=max(1, first.quantity_ordered // 2))]
    else:
        receipt = [
            ReceiveLine(line_id=line.id, quantity=line.quantity_ordered) for line in order_lines
        ]
    return purchasing.receive(
        session,
        caller=requester,
        po=po,
        data=ReceiveBody(location_id=warehouse.id, lines=receipt, note="Checked in at receiving"),
    )
