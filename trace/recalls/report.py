"""The recall report: every lot a recall reached, its active units and who holds it now, with their
contact, as CSV and as an XLSX sortable spreadsheet (FSMA 204 style: one header row, one row per lot
and holder, frozen header, filters). Built from a handful of set-based queries, whatever the size."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from trace import csvfile, spreadsheets
from trace.access import Actor
from trace.errors import Forbidden
from trace.lots import Holding, Lot, Shipment, ShipmentStatus
from trace.organisations import Organisation, shown_party
from trace.platform.sqltypes import in_chunks
from trace.products import Product
from trace.recalls.models import Recall, RecallLot
from trace.recalls.recall import get_recall, may_report
from trace.units import Unit, UnitStatus

COLUMNS = (
    "recall_id",
    "traceability_lot_code",
    "gtin",
    "lot_code",
    "product_description",
    "depth",
    "lot_status",
    "lot_quantity",
    "unit_of_measure",
    "units_active",
    "holder_organisation_id",
    "holder_name",
    "holder_tax_code",
    "holder_gln",
    "holder_address",
    "holder_commune_code",
    "holder_phone",
    "holder_email",
    "quantity_held",
    "quantity_in_transit",
)
_WIDTHS = {
    "traceability_lot_code": 32,
    "product_description": 28,
    "holder_name": 30,
    "holder_address": 36,
    "holder_email": 26,
}
_Q = Decimal("0.001")
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _q(value: Any) -> Decimal:
    return Decimal(value or 0).quantize(_Q)


def rows(*, session: Session, actor: Actor, recall_id: int) -> tuple[Recall, list[dict[str, Any]]]:
    """The report's rows, by depth, lot and holder; a lot nobody holds gets one row without a holder.

    Holders are organisations holding some of the lot now, and receivers of shipments still in
    transit (they will hold it on receipt)."""
    found = get_recall(session=session, actor=actor, recall_id=recall_id)
    if not may_report(session=session, actor=actor, found=found):
        raise Forbidden(
            "The recall report is for authorities, the recalling organisation and the producer",
            code="report_not_allowed",
        )
    depth: dict[int, int] = dict(
        session.exec(  # type: ignore[call-overload]
            select(RecallLot.lot_id, RecallLot.depth).where(RecallLot.recall_id == found.id)
        ).all()
    )
    units: dict[int, int] = {}
    parties: dict[int, dict[int, list[Decimal]]] = defaultdict(dict)
    lots: list[Any] = []
    # Set-based, by lists of ids (a join to recall_lot leaves planners guessing: see recall.py).
    for chunk in in_chunks(sorted(depth)):
        lots += session.execute(
            sa_select(
                col(Lot.id),
                col(Lot.gtin),
                col(Lot.lot_code),
                col(Product.name_vi),
                col(Lot.status),
                col(Lot.quantity),
                col(Lot.unit),
            )
            .join(Product, col(Product.id) == Lot.product_id)
            .where(col(Lot.id).in_(chunk))
        ).all()
        units.update(
            session.exec(  # type: ignore[call-overload]
                select(Unit.lot_id, func.count())
                .where(col(Unit.lot_id).in_(chunk), Unit.status == UnitStatus.ACTIVE)
                .group_by(col(Unit.lot_id))
            ).all()
        )
        for lot_id, org_id, quantity in session.exec(
            select(col(Holding.lot_id), col(Holding.organisation_id), col(Holding.quantity)).where(
                col(Holding.lot_id).in_(chunk), Holding.quantity > 0
            )
        ):
            parties[lot_id][org_id] = [_q(quantity), _q(0)]
        for lot_id, org_id, quantity in session.execute(
            sa_select(
                col(Shipment.lot_id),
                col(Shipment.to_organisation_id),
                func.sum(col(Shipment.quantity) - col(Shipment.received_quantity)),
            )
            .where(col(Shipment.lot_id).in_(chunk), col(Shipment.status) == ShipmentStatus.OPEN)
            .group_by(col(Shipment.lot_id), col(Shipment.to_organisation_id))
        ):
            parties[lot_id].setdefault(org_id, [_q(0), _q(0)])[1] = _q(quantity)
    lots.sort(key=lambda row: (depth[row[0]], row[1], row[2]))
    orgs: dict[int | None, Organisation] = {}
    for chunk in in_chunks(sorted({org_id for by_org in parties.values() for org_id in by_org})):
        orgs.update((o.id, o) for o in session.exec(select(Organisation).where(col(Organisation.id).in_(chunk))))
    out: list[dict[str, Any]] = []
    for lot_id, gtin, lot_code, product, status, quantity, unit in lots:
        lot = {
            "recall_id": found.id,
            "traceability_lot_code": f"(01){gtin.zfill(14)}(10){lot_code}",
            "gtin": gtin,
            "lot_code": lot_code,
            "product_description": product,
            "depth": depth[lot_id],
            "lot_status": status.value,
            "lot_quantity": _q(quantity),
            "unit_of_measure": unit,
            "units_active": units.get(lot_id, 0),
        }
        holders = sorted(
            ((shown_party(orgs[o], actor), q) for o, q in parties.get(lot_id, {}).items()),
            key=lambda x: (x[0].name, x[0].id),
        )
        if not holders:
            out.append({**lot, **{c: None for c in COLUMNS if c not in lot}})
        for org, (held, flying) in holders:
            out.append(
                {
                    **lot,
                    "holder_organisation_id": org.id,
                    "holder_name": org.name,
                    "holder_tax_code": org.tax_code,
                    "holder_gln": org.gln,
                    "holder_address": org.address,
                    "holder_commune_code": org.commune_code,
                    "holder_phone": org.phone,
                    "holder_email": org.email,
                    "quantity_held": held,
                    "quantity_in_transit": flying,
                }
            )
    return found, out


def to_csv(report: list[dict[str, Any]]) -> str:
    """The report as CSV (UTF-8 text, one header row; text never becomes a formula)."""
    return csvfile.text(COLUMNS, ([row[c] for c in COLUMNS] for row in report))


def to_xlsx(report: list[dict[str, Any]], *, title: str) -> bytes:
    """The report as an XLSX workbook: bold frozen header, filters on every column, numbers as numbers."""
    return spreadsheets.workbook(report, columns=COLUMNS, title=title, widths=_WIDTHS)
