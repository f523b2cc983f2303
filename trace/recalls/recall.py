"""Recalls: a lot and its whole forward trace marked recalled at once, and who is told about it."""

from __future__ import annotations

from collections import defaultdict, deque
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, or_, select

from trace import lineage
from trace.access import Actor
from trace.errors import Conflict, NotFound
from trace.events import rules as r
from trace.events.models import EventType
from trace.lineage import Direction
from trace.lots import Holding, Lot, LotEdge, LotStatus, Shipment, ShipmentStatus
from trace.organisations import party_names
from trace.platform.paging import Page, key_order, page, paged, start
from trace.platform.sqltypes import in_chunks
from trace.products import Product
from trace.recalls.holds import acting_organisation, locked_lot, record, remember, replayed
from trace.recalls.models import AffectedLotPublic, ReasonIn, Recall, RecallLot, RecallPublic
from trace.units import Unit, UnitStatus


def covering(*, session: Session, lot_id: int) -> Recall | None:
    """The first recall that reached a lot, if any."""
    return session.exec(
        select(Recall)
        .join(RecallLot, col(RecallLot.recall_id) == Recall.id)
        .where(RecallLot.lot_id == lot_id)
        .order_by(col(Recall.id))
        .limit(1)
    ).first()


def _depths(session: Session, root: int, ids: list[int]) -> dict[int, int]:
    """Fewest transformations from the root to each lot of its forward trace (breadth first)."""
    children: dict[int, list[int]] = defaultdict(list)
    for chunk in in_chunks(ids):
        query = select(LotEdge.parent_lot_id, LotEdge.child_lot_id).where(col(LotEdge.parent_lot_id).in_(chunk))
        for parent, child in session.exec(query):
            children[parent].append(child)
    depth, queue = {root: 0}, deque([root])
    while queue:
        lot = queue.popleft()
        for child in children[lot]:
            if child not in depth:
                depth[child] = depth[lot] + 1
                queue.append(child)
    return depth


def recall(
    *, session: Session, actor: Actor, lot_id: int, data: ReasonIn, idempotency_key: str | None = None
) -> Recall:
    """Recall a lot and every lot made from it, in one transaction; recalling a lot an earlier
    recall reached changes nothing and returns that recall (so does a retry with the same key)."""
    lot = locked_lot(session=session, lot_id=lot_id)
    org = acting_organisation(session=session, actor=actor, lot=lot, action="recall")
    first = replayed(
        session=session, organisation_id=org, key=idempotency_key, action="recall", lot_id=lot_id, data=data
    )
    if first is not None:
        return session.exec(select(Recall).where(Recall.event_id == first.id)).one()
    if lot.status == LotStatus.RECALLED:
        earlier = covering(session=session, lot_id=lot.id)  # type: ignore[arg-type]
        if earlier is not None:
            return earlier
    if lot.status == LotStatus.CANCELLED:
        raise Conflict(f"Lot {lot.lot_code} was cancelled: there is nothing to recall", code="lot_cancelled")
    previous = lot.status
    # The reach is read under its lots' locks: a transformation of a reached lot either committed first
    # (its outputs are found when the reach is read again) or waits and then finds the lot recalled.
    locked = {lot.id}
    while True:
        reach = lineage.lot_ids(session=session, lot_id=lot.id, direction=Direction.FORWARD)  # type: ignore[arg-type]
        if set(reach) <= locked:
            break
        r.lock_lots(session=session, lot_ids=set(reach) - locked, holdings=False)
        locked.update(reach)
    depths = _depths(session, lot.id, reach)  # type: ignore[arg-type]
    with session.begin_nested():
        found = Recall(
            lot_id=lot.id,  # type: ignore[arg-type]
            organisation_id=org,
            reason=data.reason,
            event_id="",
            lots_affected=len(depths),
        )
        session.add(found)
        session.flush()
        session.execute(
            insert(RecallLot),
            [{"recall_id": found.id, "lot_id": reached_id, "depth": depth} for reached_id, depth in depths.items()],
        )
        # By id lists, not a join to the rows just written: planners know nothing of those yet
        # (PostgreSQL chose a nested loop over every unit, 1.3 s for 100,000 of them). In id order,
        # so overlapping recalls lock shared lots in the same order.
        units = 0
        for chunk in in_chunks(sorted(depths)):
            session.execute(
                update(Lot)
                .where(col(Lot.id).in_(chunk), col(Lot.status) != LotStatus.CANCELLED)
                .values(status=LotStatus.RECALLED)
                .execution_options(synchronize_session="fetch")
            )
            units += session.exec(
                select(func.count())
                .select_from(Unit)
                .where(col(Unit.lot_id).in_(chunk), Unit.status == UnitStatus.ACTIVE)
            ).one()
        found.units_affected = units
        event = record(
            session=session,
            actor=actor,
            organisation_id=org,
            type=EventType.RECALL,
            lot=lot,
            also=sorted(reached for reached in depths if reached != lot.id),  # every reached lot shows the recall
            payload={
                "reason": data.reason,
                "previous_status": previous.value,
                "recall_id": found.id,
                "lots_affected": found.lots_affected,
                "units_affected": found.units_affected,
            },
        )
        found.event_id = event.id
        session.add(found)
        remember(
            session=session,
            organisation_id=org,
            key=idempotency_key,
            action="recall",
            lot_id=lot_id,
            data=data,
            event=event,
        )
    return found


def _involved(actor: Actor) -> object:
    """Recalls an organisation made, or of lots it produced (a filter over Recall joined to its lot)."""
    return or_(Recall.organisation_id == actor.organisation_id, Lot.producer_organisation_id == actor.organisation_id)


def public(*, session: Session, actor: Actor | None, recalls: list[Recall]) -> list[RecallPublic]:
    """API shapes of recalls, with the recalled lot's identifiers and the recaller's name as ``actor`` may see it."""
    if not recalls:
        return []
    names = dict(
        session.exec(
            select(Lot.id, Product.name_vi)
            .join(Product, col(Product.id) == Lot.product_id)  # type: ignore[call-overload]
            .where(col(Lot.id).in_({x.lot_id for x in recalls}))
        ).all()
    )
    lots = {x.id: x for x in session.exec(select(Lot).where(col(Lot.id).in_({x.lot_id for x in recalls})))}
    orgs = party_names(session=session, ids={x.organisation_id for x in recalls}, reader=actor)
    return [
        RecallPublic(
            id=x.id,  # type: ignore[arg-type]
            lot_id=x.lot_id,
            gtin=lots[x.lot_id].gtin,
            lot_code=lots[x.lot_id].lot_code,
            product_name=names[x.lot_id],
            organisation_id=x.organisation_id,
            organisation_name=orgs[x.organisation_id],
            reason=x.reason,
            event_id=x.event_id,
            lots_affected=x.lots_affected,
            units_affected=x.units_affected,
            created_at=x.created_at,
        )
        for x in recalls
    ]


RECALL_ORDER = key_order("recalls", (col(Recall.id), int, True))  # newest first


def list_recalls(
    *, session: Session, actor: Actor, cursor: str | None = None, offset: int = 0, limit: int = 50
) -> Page[Recall]:
    """Recalls, newest first: all for authorities; for others those they made or of lots they produced."""
    query = select(Recall).join(Lot, col(Lot.id) == Recall.lot_id)
    if not actor.reads_everything:
        query = query.where(_involved(actor))  # type: ignore[arg-type]
    rows = session.exec(paged(query, RECALL_ORDER, cursor=cursor, offset=offset, limit=limit))
    return page(rows, RECALL_ORDER, limit=limit, key=lambda x: (x.id,))


def may_report(*, session: Session, actor: Actor, found: Recall) -> bool:
    """Authorities, the recalling organisation and the recalled lot's producer read the full report."""
    if actor.reads_everything:
        return True
    lot = session.get(Lot, found.lot_id)
    return actor.organisation_id is not None and actor.organisation_id in (
        found.organisation_id,
        lot.producer_organisation_id if lot else None,
    )


def get_recall(*, session: Session, actor: Actor, recall_id: int) -> Recall:
    """One recall, for those who may read its report and for holders of lots it reached."""
    found = session.get(Recall, recall_id)
    if found is not None and may_report(session=session, actor=actor, found=found):
        return found
    if (
        found is not None
        and actor.organisation_id is not None
        and session.exec(
            select(Holding.lot_id)
            .join(RecallLot, col(RecallLot.lot_id) == Holding.lot_id)
            .where(RecallLot.recall_id == found.id, Holding.organisation_id == actor.organisation_id)
            .limit(1)
        ).first()
        is not None
    ):
        return found
    raise NotFound(f"Recall {recall_id} not found")


AFFECTING_ORDER = key_order(
    "affecting", (col(Recall.id), int, True), (col(RecallLot.depth), int, False), (col(Lot.id), int, False)
)


def affecting(
    *, session: Session, actor: Actor, cursor: str | None = None, offset: int = 0, limit: int = 100
) -> Page[AffectedLotPublic]:
    """Recalls reaching lots the actor's organisation holds, held, or has on its way to it (an
    open shipment addressed to it), one row per recall and lot, newest first."""
    after = start(AFFECTING_ORDER, cursor, offset)
    if actor.organisation_id is None:
        return Page()
    org = actor.organisation_id
    root = Lot.__table__.alias("root")  # type: ignore[attr-defined]
    columns = (
        col(Recall.id),
        col(Recall.created_at),
        col(Recall.reason),
        col(Recall.lot_id),
        root.c.gtin,
        root.c.lot_code,
        col(Lot.id),
        col(Lot.gtin),
        col(Lot.lot_code),
        col(Product.name_vi),
        col(RecallLot.depth),
        col(Lot.status),
    )

    def reached(query: Any) -> Any:
        query = (
            query.join(RecallLot, col(RecallLot.recall_id) == Recall.id)
            .join(Lot, col(Lot.id) == RecallLot.lot_id)
            .join(Product, col(Product.id) == Lot.product_id)
            .join(root, root.c.id == Recall.lot_id)
        )
        if after is not None:
            query = query.where(AFFECTING_ORDER.after(after))
        # Each of the two lists is cut as the merged one will be: enough rows for this page and one more.
        return query.order_by(*AFFECTING_ORDER.order_by()).limit(offset + limit + 1)

    held = session.execute(
        reached(sa_select(*columns, col(Holding.quantity), col(Lot.unit)).select_from(Recall)).join(
            Holding, (col(Holding.lot_id) == RecallLot.lot_id) & (col(Holding.organisation_id) == org)
        )
    )
    coming = session.execute(
        reached(
            sa_select(
                *columns, func.sum(col(Shipment.quantity) - col(Shipment.received_quantity)), col(Lot.unit)
            ).select_from(Recall)
        )
        .join(
            Shipment,
            (col(Shipment.lot_id) == RecallLot.lot_id)
            & (col(Shipment.to_organisation_id) == org)
            & (col(Shipment.status) == ShipmentStatus.OPEN),
        )
        .group_by(*columns, col(Lot.unit))
    )
    fields = list(AffectedLotPublic.model_fields)[:-1]
    rows: dict[tuple[int, int], AffectedLotPublic] = {}
    for row in held:
        found = AffectedLotPublic.model_validate(dict(zip(fields, row, strict=True)))
        rows[(found.recall_id, found.lot_id)] = found
    for row in coming:
        values = dict(zip(fields, row, strict=True))
        key = (values["recall_id"], values["lot_id"])
        if key in rows:
            rows[key].quantity_in_transit = Decimal(values["quantity_held"])
        else:
            rows[key] = AffectedLotPublic.model_validate(
                {**values, "quantity_held": Decimal(0), "quantity_in_transit": values["quantity_held"]}
            )
    ordered = sorted(rows.values(), key=lambda x: (-x.recall_id, x.depth, x.lot_id))
    return page(ordered[offset:], AFFECTING_ORDER, limit=limit, key=lambda x: (x.recall_id, x.depth, x.lot_id))
