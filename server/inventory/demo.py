"""A realistic parts inventory for the demo district.

A catalogue of about forty repair parts (Chromebook screens, keyboards and chargers by
model, projector lamps, toner, cables, HVAC filters...), a district warehouse, a
closet in every building and a van for each of two technicians, with opening stock
recorded as receive movements (written in bulk: one flush, not one round trip per
movement) and the materialised figures set from them. A few parts start low, and
when tickets are given, parts are used on some of them through the ledger.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.orm import Session

from common.ids import uuid7
from server.core.db import utcnow
from server.inventory import ledger
from server.inventory.models import (
    LocationKind,
    MovementKind,
    Part,
    PartStatus,
    SourceType,
    StockLevel,
    StockLocation,
    StockMovement,
)
from server.organizations.models import Department, Organization
from server.sites.models import Building, Site
from server.tickets import timeline
from server.tickets.models import Ticket
from server.tickets.timeline import EventKind
from server.users.models import User

TECH = "Technology"
FAC = "Facilities"

# name, part number, manufacturer, category, unit cost (cents), compatible models,
# reorder point, reorder quantity, owning department (None: district-wide)
# fmt: off
CATALOGUE: list[tuple[str, str, str, str, int, list[str], int, int, str | None]] = [
    ("Chromebook 3100 LCD panel 11.6in", "DELL-3100-LCD", "Dell", "Screens", 4250,
     ["Dell Chromebook 3100", "Dell Chromebook 3100 2-in-1"], 6, 20, TECH),
    ("Chromebook 3110 LCD panel 11.6in", "DELL-3110-LCD", "Dell", "Screens", 4600,
     ["Dell Chromebook 3110"], 6, 20, TECH),
    ("Lenovo 100e Gen 3 LCD panel", "LEN-100E3-LCD", "Lenovo", "Screens", 3900,
     ["Lenovo 100e Chromebook Gen 3"], 4, 12, TECH),
    ("HP Chromebook 11 G9 touch assembly", "HP-11G9-TCH", "HP", "Screens", 7800,
     ["HP Chromebook x360 11 G9 EE"], 3, 8, TECH),
    ("Chromebook 3100 keyboard (US)", "DELL-3100-KB", "Dell", "Keyboards", 2800,
     ["Dell Chromebook 3100"], 8, 25, TECH),
    ("Chromebook 3110 keyboard (US)", "DELL-3110-KB", "Dell", "Keyboards", 2950,
     ["Dell Chromebook 3110"], 8, 25, TECH),
    ("Lenovo 100e Gen 3 keyboard palmrest", "LEN-100E3-KB", "Lenovo", "Keyboards", 3400,
     ["Lenovo 100e Chromebook Gen 3"], 5, 15, TECH),
    ("Chromebook key cap kit", "KEYCAP-KIT-CB", "Generic", "Keyboards", 450,
     ["Dell Chromebook 3100", "Dell Chromebook 3110"], 20, 100, TECH),
    ("USB-C 45W charger", "CHG-USBC-45W", "Dell", "Chargers", 1999,
     ["Dell Chromebook 3100", "Dell Chromebook 3110", "Lenovo 100e Chromebook Gen 3"],
     25, 60, TECH),
    ("USB-C 65W charger", "CHG-USBC-65W", "Lenovo", "Chargers", 2650,
     ["Lenovo ThinkPad L13", "Dell Latitude 3420"], 10, 30, TECH),
    ("Barrel 45W charger (4.5mm)", "CHG-BRL-45W", "HP", "Chargers", 2100,
     ["HP ProBook 440 G7"], 5, 15, TECH),
    ("Chromebook 3100 battery 42Wh", "DELL-3100-BAT", "Dell", "Batteries", 3800,
     ["Dell Chromebook 3100"], 5, 15, TECH),
    ("Chromebook hinge set (pair)", "DELL-3100-HNG", "Dell", "Hinges", 1200,
     ["Dell Chromebook 3100"], 8, 30, TECH),
    ("Chromebook bottom cover", "DELL-3100-BTM", "Dell", "Housings", 1900,
     ["Dell Chromebook 3100"], 4, 10, TECH),
    ("Epson ELPLP88 projector lamp", "V13H010L88", "Epson", "Projector lamps", 8900,
     ["Epson PowerLite 1781W", "Epson PowerLite 97H"], 3, 6, TECH),
    ("Epson ELPLP96 projector lamp", "V13H010L96", "Epson", "Projector lamps", 9400,
     ["Epson PowerLite 1286", "Epson PowerLite W49"], 3, 6, TECH),
    ("Epson ELPAF32 air filter", "V13H134A32", "Epson", "Projector lamps", 1500,
     ["Epson PowerLite 1781W"], 5, 10, TECH),
    ("Projector remote control", "EPS-REMOTE", "Epson", "Projector parts", 1800,
     ["Epson PowerLite 1781W", "Epson PowerLite W49"], 4, 10, TECH),
    ("Interactive panel pen (Promethean)", "PRM-PEN-AP7", "Promethean", "Panel parts", 2500,
     ["Promethean ActivPanel 7"], 6, 20, TECH),
    ("HP 58A black toner", "CF258A", "HP", "Toner", 11900,
     ["HP LaserJet Pro M404n", "HP LaserJet Pro MFP M428fdw"], 6, 12, None),
    ("HP 26X black toner (high yield)", "CF226X", "HP", "Toner", 17800,
     ["HP LaserJet Pro M402n"], 4, 8, None),
    ("Brother TN-760 toner", "TN760", "Brother", "Toner", 7900,
     ["Brother HL-L2395DW", "Brother MFC-L2750DW"], 4, 8, None),
    ("Brother DR-730 drum unit", "DR730", "Brother", "Toner", 9900,
     ["Brother HL-L2395DW"], 2, 4, None),
    ("Cat6 patch cord 3ft blue", "C6-PC-3-BL", "Monoprice", "Network cables", 250, [], 50, 200,
     TECH),
    ("Cat6 patch cord 7ft blue", "C6-PC-7-BL", "Monoprice", "Network cables", 350, [], 40, 150,
     TECH),
    ("Cat6 patch cord 14ft gray", "C6-PC-14-GR", "Monoprice", "Network cables", 550, [], 20, 60,
     TECH),
    ("Cat6 bulk cable 1000ft", "C6-BULK-1000", "Belden", "Network cables", 21500, [], 1, 2, TECH),
    ("RJ45 Cat6 connectors (100)", "RJ45-C6-100", "Panduit", "Network cables", 3200, [], 2, 5,
     TECH),
    ("HDMI cable 6ft", "HDMI-6", "Amazon Basics", "AV cables", 699, [], 15, 40, TECH),
    ("HDMI cable 25ft", "HDMI-25", "Amazon Basics", "AV cables", 1899, [], 5, 15, TECH),
    ("USB-C to HDMI adapter", "USBC-HDMI", "Anker", "AV cables", 1599, [], 10, 25, TECH),
    ("SFP+ 10G SR transceiver", "SFP-10G-SR", "Cisco", "Network gear", 3900,
     ["Cisco Catalyst 9300"], 2, 4, TECH),
    ("Wireless access point (spare)", "AP-C9120", "Cisco", "Network gear", 89500,
     ["Cisco Catalyst 9120AX"], 1, 2, TECH),
    ("Headset with boom mic (USB)", "HS-USB-MIC", "Logitech", "Peripherals", 2499, [], 10, 30,
     None),
    ("USB mouse", "MOUSE-USB", "Logitech", "Peripherals", 899, [], 15, 40, None),
    ("HVAC filter 20x25x1 MERV 13", "FLT-20251-M13", "Filtrete", "HVAC filters", 1450, [],
     24, 96, FAC),
    ("HVAC filter 16x25x2 MERV 11", "FLT-16252-M11", "Filtrete", "HVAC filters", 1650, [],
     24, 96, FAC),
    ("HVAC filter 24x24x2 MERV 8", "FLT-24242-M8", "Camfil", "HVAC filters", 1250, [],
     24, 96, FAC),
    ("RTU fan belt A48", "BELT-A48", "Gates", "HVAC parts", 1100, ["Carrier 48TC"], 4, 10, FAC),
    ("Thermostat (programmable)", "TSTAT-T6", "Honeywell", "HVAC parts", 12900, [], 2, 4, FAC),
    ("LED tube T8 4ft", "LED-T8-4", "Philips", "Lighting", 799, [], 40, 120, FAC),
    ("AA batteries (24 pack)", "BAT-AA-24", "Duracell", "Supplies", 1699, [], 10, 30, None),
]
# fmt: on

#: parts the demo starts at or below their reorder point, so "low stock" has rows
STARTS_LOW = {"DELL-3100-BAT", "V13H010L96", "CF258A", "FLT-16252-M11"}
#: what a technician's van carries, by category
VAN_CATEGORIES = {"Screens", "Keyboards", "Chargers", "Network cables", "AV cables"}
CLOSET_CATEGORIES = {"Chargers", "Network cables", "AV cables", "Toner", "Supplies", "Lighting"}


@dataclass
class DemoInventory:
    parts: list[Part] = field(default_factory=list)
    warehouse: StockLocation | None = None
    closets: list[StockLocation] = field(default_factory=list)
    vans: list[StockLocation] = field(default_factory=list)
    movements: int = 0


def seed_demo(
    session: Session,
    *,
    organization: Organization,
    buildings: Sequence[Building],
    technicians: Sequence[User],
    rng: random.Random,
    sites: Sequence[Site] = (),
    departments: Mapping[str, Department] | None = None,
    owner: User | None = None,
    tickets: Sequence[Ticket] = (),
) -> DemoInventory:
    """Create the demo inventory; works on a session bound to the organization or to
    all tenants (every row carries the organization's id)."""
    org_id = organization.id
    departments = departments or {}
    site_by_id = {site.id: site for site in sites}
    made = DemoInventory()
    now = utcnow()

    warehouse_building = next(
        (b for b in buildings if "warehouse" in b.name.lower()), buildings[0] if buildings else None
    )
    made.warehouse = StockLocation(
        organization_id=org_id,
        name="District Warehouse",
        kind=LocationKind.WAREHOUSE.value,
        site_id=warehouse_building.site_id if warehouse_building else None,
        building_id=warehouse_building.id if warehouse_building else None,
        notes="Central receiving; purchase orders ship here",
    )
    for building in buildings:
        if building is warehouse_building:
            continue
        site = site_by_id.get(building.site_id)
        prefix = (site.code or site.name) if site else str(building.site_id)[:8]
        made.closets.append(
            StockLocation(
                organization_id=org_id,
                name=f"{prefix} {building.name} closet",
                kind=LocationKind.CLOSET.value,
                site_id=building.site_id,
                building_id=building.id,
            )
        )
    for tech in list(technicians)[:2]:
        made.vans.append(
            StockLocation(
                organization_id=org_id,
                name=f"{tech.first_name or tech.email}'s van",
                kind=LocationKind.VAN.value,
                holder_user_id=tech.id,
            )
        )
    session.add_all([made.warehouse, *made.closets, *made.vans])

    for name, number, maker, category, cost, models, point, quantity, dept in CATALOGUE:
        department = departments.get(dept) if dept else None
        made.parts.append(
            Part(
                organization_id=org_id,
                name=name,
                part_number=number,
                manufacturer=maker,
                category=category,
                unit_cost_cents=cost,
                compatible_models=models,
                reorder_point=point,
                reorder_quantity=quantity,
                department_id=department.id if department else None,
                owner_user_id=owner.id if owner else None,
                status=PartStatus.ACTIVE.value,
                on_hand=0,
            )
        )
    session.add_all(made.parts)
    session.flush()

    # Opening stock: receive movements, and the levels and totals they add up to.
    received_at = now - timedelta(days=30)
    levels: dict[tuple[uuid.UUID, uuid.UUID], int] = defaultdict(int)
    movements: list[StockMovement] = []

    def receive(part: Part, location: StockLocation, count: int) -> None:
        if count <= 0:
            return
        levels[(part.id, location.id)] += count
        movements.append(
            StockMovement(
                id=uuid7(),
                organization_id=org_id,
                part_id=part.id,
                location_id=location.id,
                kind=MovementKind.RECEIVE.value,
                quantity=count,
                reason="Opening stock",
                actor_id=owner.id if owner else None,
                occurred_at=received_at,
                created_at=now,
                source_type=SourceType.MANUAL.value,
                unit_cost_cents=part.unit_cost_cents,
                balance_after=levels[(part.id, location.id)],
            )
        )

    for part in made.parts:
        point = part.reorder_point
        low = part.part_number in STARTS_LOW
        opening = rng.randint(0, point) if low else rng.randint(point + 2, point * 3 + 6)
        receive(part, made.warehouse, opening)
        if low:
            continue
        if part.category in CLOSET_CATEGORIES:
            for closet in made.closets:
                if rng.random() < 0.6:
                    receive(part, closet, rng.randint(1, max(2, point // 3)))
        if part.category in VAN_CATEGORIES:
            for van in made.vans:
                receive(part, van, rng.randint(1, 4))
    session.add_all(movements)
    level_rows = [
        StockLevel(organization_id=org_id, part_id=part_id, location_id=location_id, quantity=count)
        for (part_id, location_id), count in levels.items()
    ]
    session.add_all(level_rows)
    totals: dict[uuid.UUID, int] = defaultdict(int)
    for (part_id, _), count in levels.items():
        totals[part_id] += count
    for part in made.parts:
        part.on_hand = totals[part.id]
        part.status = ledger.next_status(PartStatus.ACTIVE.value, part.on_hand, part.reorder_point)
    session.flush()
    made.movements = len(movements)

    # A few parts used on tickets, through the ledger like any technician's.
    stocked = [p for p in made.parts if p.category in VAN_CATEGORIES and made.vans]
    for ticket in list(tickets)[:4]:
        if not stocked:
            break
        part = rng.choice(stocked)
        van = rng.choice(made.vans)
        actor = van.holder_user_id
        movement = ledger.consume(
            session,
            part_id=part.id,
            location_id=van.id,
            quantity=1,
            actor_id=actor,
            ticket_id=ticket.id,
            note="Demo repair",
        )
        ticket.parts_cost_cents = (ticket.parts_cost_cents or 0) + (movement.unit_cost_cents or 0)
        timeline.record(
            session,
            ticket,
            EventKind.PART_USED,
            actor_id=actor,
            movementId=str(movement.id),
            partId=str(part.id),
            partName=part.name,
            partNumber=part.part_number,
            locationId=str(van.id),
            locationName=van.name,
            quantity=1,
            assetId=None,
        )
        made.movements += 1
    session.flush()
    return made
