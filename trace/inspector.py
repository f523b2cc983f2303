"""An inspector's verdict on a scanned or typed code: genuine and compliant, warning, or violation,
with the checklist behind it and the evidence for each check, and the lot's backward trace."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, SQLModel, col

from trace import lineage, verification
from trace.access import Actor, Role
from trace.certifications import certificates_for_lot
from trace.designations.claims import claims_for_lot
from trace.errors import DomainError, Forbidden, NotFound
from trace.events.models import Event, EventLot, EventType
from trace.lineage import Direction
from trace.locations import Location, LocationKind
from trace.lots import Holding, Lot, LotEdge, LotStatus, Shipment, ShipmentStatus
from trace.organisations import party_names
from trace.platform.timeutil import utcnow
from trace.scans import record as scans
from trace.transparency import journey as transparency
from trace.units import Unit

_STATUS_VI = {
    "on_hold": "đang tạm dừng",
    "recalled": "đã bị thu hồi",
    "cancelled": "đã bị hủy",
    "consumed": "đã dùng hết",
}
TOLERANCE = Decimal("0.001")  # quantities are kept to three decimals


class Outcome(StrEnum):
    PASS = "pass"
    WARNING = "warning"
    VIOLATION = "violation"
    NOT_APPLICABLE = "not_applicable"
    NOT_AVAILABLE = "not_available"


class Verdict(StrEnum):
    GENUINE_AND_COMPLIANT = "genuine_and_compliant"
    WARNING = "warning"
    VIOLATION = "violation"


class Check(SQLModel):
    name: str
    outcome: Outcome
    summary: str
    evidence: dict[str, Any] = {}


class Inspection(SQLModel):
    verdict: Verdict
    checks: list[Check]
    code: verification.CodeCheck | None = None
    trace: lineage.Trace | None = None


def _may_inspect(actor: Actor) -> None:
    if actor.role not in (Role.INSPECTOR, Role.ADMIN):
        raise Forbidden("Verification with the checklist is for market inspectors", code="not_an_inspector")


def _code(session: Session, code: str | None, uri: str | None) -> verification.CodeCheck | Check:
    try:
        if code is not None:
            return verification.check_code(session=session, code=code)
        return verification.check_uri(session=session, uri=uri or "")
    except NotFound as error:
        return Check(
            name="code_known",
            outcome=Outcome.VIOLATION,
            summary="Mã không do hệ thống cấp (có thể là hàng giả) — "
            "unknown code: this label was not issued by the system (possible counterfeit)",
            evidence={"code": code, "uri": uri, "reason": error.code},
        )
    except DomainError as error:  # malformed: not ours, or mistyped (the check character says so)
        return Check(
            name="code_known",
            outcome=Outcome.VIOLATION if error.code == "dl_not_ours" else Outcome.WARNING,
            summary=str(error),
            evidence={"code": code, "uri": uri, "reason": error.code},
        )


def _code_check(found: verification.CodeCheck) -> Check:
    if found.status == "void":
        return Check(
            name="code_known",
            outcome=Outcome.VIOLATION,
            summary="Mã đã bị hủy: không được có trên bao bì — "
            "the code was cancelled (voided) by its printer: it must not be on a package",
            evidence={"code": found.code, "serial": found.serial, "status": found.status},
        )
    return Check(
        name="code_known",
        outcome=Outcome.PASS,
        summary="Mã do hệ thống cấp, đang sử dụng — code issued by the system and in use",
        evidence={"code": found.code, "serial": found.serial, "gtin": found.gtin, "lot": found.lot_code},
    )


def _lot_status(lot: Lot) -> Check:
    if lot.status in (LotStatus.RECALLED, LotStatus.ON_HOLD, LotStatus.CANCELLED):
        return Check(
            name="lot_status",
            outcome=Outcome.VIOLATION,
            summary=f"Lô {lot.lot_code} {_STATUS_VI.get(lot.status.value, lot.status.value)}: không được bán — "
            f"lot {lot.lot_code} is {lot.status.value.replace('_', ' ')}: it must not be sold",
            evidence={"status": lot.status.value},
        )
    return Check(
        name="lot_status",
        outcome=Outcome.PASS,
        summary="Lô không bị tạm dừng hay thu hồi — lot not held or recalled",
        evidence={"status": lot.status.value},
    )


def _claims(session: Session, lot: Lot) -> Check:
    claims = claims_for_lot(session=session, lot=lot)
    if not claims:
        return Check(
            name="designation",
            outcome=Outcome.NOT_APPLICABLE,
            summary="Lô không ghi chỉ dẫn địa lý hay nhãn hiệu — the lot claims no designation",
        )
    evidence = {"claims": [c.model_dump(mode="json") for c in claims]}
    bad = [c for c in claims if not c.valid_at_harvest]
    if bad:
        return Check(
            name="designation",
            outcome=Outcome.VIOLATION,
            evidence=evidence,
            summary="; ".join(
                f"{c.name}: không hợp lệ khi thu hoạch — not valid at harvest ({c.problem_at_harvest})" for c in bad
            ),
        )
    stale = [c for c in claims if not c.valid_today]
    if stale:
        return Check(
            name="designation",
            outcome=Outcome.WARNING,
            evidence=evidence,
            summary="; ".join(
                f"{c.name}: hợp lệ khi thu hoạch, nay không còn — valid at harvest, not today ({c.problem})"
                for c in stale
            ),
        )
    return Check(
        name="designation",
        outcome=Outcome.PASS,
        evidence=evidence,
        summary="; ".join(f"{c.badge}: hợp lệ khi thu hoạch và hôm nay — valid at harvest and today" for c in claims),
    )


def _certificates(session: Session, lot: Lot) -> Check:
    certs = certificates_for_lot(session=session, lot=lot)
    if not certs:
        return Check(
            name="certificates",
            outcome=Outcome.NOT_APPLICABLE,
            summary="Không có chứng nhận nào cho lô — no certificate covers the lot",
        )
    evidence = {"certificates": [c.model_dump(mode="json") for c in certs]}
    invalid = [c for c in certs if not c.valid_at_harvest]
    if invalid:
        # A certificate that did not cover the harvest must not appear on the package or its page.
        return Check(
            name="certificates",
            outcome=Outcome.WARNING,
            evidence=evidence,
            summary="; ".join(
                f"{c.kind.value} {c.number}: không hiệu lực khi thu hoạch — not valid at harvest "
                f"({c.valid_from:%d/%m/%Y}–{c.valid_to:%d/%m/%Y})"
                for c in invalid
            ),
        )
    return Check(
        name="certificates",
        outcome=Outcome.PASS,
        evidence=evidence,
        summary="; ".join(f"{c.kind.value} {c.number}: còn hiệu lực khi thu hoạch — valid at harvest" for c in certs),
    )


def _chain(session: Session, lot: Lot, ids: list[int]) -> Check:
    """Every origin is a harvest at a growing area, and everyone holding the lot now received it."""
    lots = {row.id: row for row in session.execute(select(Lot).where(col(Lot.id).in_(ids))).scalars()}
    parents = {
        child
        for (child,) in session.execute(select(col(LotEdge.child_lot_id)).where(col(LotEdge.child_lot_id).in_(ids)))
    }
    roots = [lots[i] for i in ids if i not in parents]
    problems: list[str] = []
    creators = dict(
        session.execute(
            select(col(Event.id), col(Event.type)).where(col(Event.id).in_([r.created_event_id for r in roots]))
        ).all()
    )
    for root in roots:
        place = session.get(Location, root.origin_location_id) if root.origin_location_id else None
        if creators.get(root.created_event_id) != EventType.HARVEST:
            problems.append(f"lô {root.lot_code} không có ghi nhận thu hoạch — lot {root.lot_code} has no harvest")
        elif place is None or place.kind != LocationKind.GROWING_AREA:
            problems.append(
                f"lô {root.lot_code} không được thu hoạch tại vùng trồng đã đăng ký — "
                f"lot {root.lot_code} was not harvested at a recorded growing area"
            )
    holders = session.execute(
        select(col(Holding.organisation_id), col(Holding.quantity)).where(
            Holding.lot_id == lot.id,  # type: ignore[arg-type]
            Holding.quantity > 0,  # type: ignore[arg-type]
        )
    ).all()
    received = {
        org
        for (org,) in session.execute(
            select(col(Shipment.to_organisation_id)).where(Shipment.lot_id == lot.id, Shipment.received_quantity > 0)  # type: ignore[arg-type]
        )
    }
    names = _names(session, [org for org, _ in holders])
    for org, _ in holders:
        if org != lot.producer_organisation_id and org not in received:
            problems.append(
                f"{names[org]} đang giữ lô {lot.lot_code} mà không có ghi nhận nhận hàng — "
                f"{names[org]} holds lot {lot.lot_code} without a recorded receipt"
            )
    places = {
        p.id: p.name
        for p in session.execute(
            select(Location).where(col(Location.id).in_([r.origin_location_id for r in roots if r.origin_location_id]))
        ).scalars()
    }
    evidence = {
        "origins": [
            {
                "lot_id": r.id,
                "lot_code": r.lot_code,
                "location_id": r.origin_location_id,
                "location": places.get(r.origin_location_id),
            }
            for r in roots
        ],  # type: ignore[arg-type]
        "holders": [{"organisation_id": o, "organisation": names[o], "quantity": str(q)} for o, q in holders],
    }
    if problems:
        return Check(name="chain", outcome=Outcome.VIOLATION, summary="; ".join(problems), evidence=evidence)
    return Check(
        name="chain",
        outcome=Outcome.PASS,
        evidence=evidence,
        summary=f"{len(roots)} lần thu hoạch tại vùng trồng đến {len(holders)} nơi đang giữ hàng, "
        "đủ ghi nhận giao nhận — "
        f"{len(roots)} harvest(s) at growing areas to {len(holders)} current holder(s), custody recorded",
    )


LOG_STALE = timedelta(minutes=10)  # an event this long out of the signed log: its sequencer has stopped


def _public_log(session: Session, ids: list[int]) -> Check:
    """Every event of the journey (the lot and every lot it came from) is in the newest signed checkpoint."""
    event_ids = list(
        session.execute(select(col(EventLot.event_id)).where(col(EventLot.lot_id).in_(ids)).distinct()).scalars()
    )
    found = transparency.status(session=session, event_ids=event_ids)
    evidence = {
        "events": found.events,
        "included": found.included,
        "pending": found.pending,
        "tree_size": found.tree_size,
        "signed_at": found.signed_at.isoformat() if found.signed_at else None,
        "witnesses": found.witnesses,
        "failed": found.failed,
    }
    if found.failed:
        return Check(
            name="public_log",
            outcome=Outcome.VIOLATION,
            evidence=evidence,
            summary=f"{len(found.failed)} sự kiện không khớp với sổ công khai đã ký (dữ liệu đã bị sửa) — "
            f"{len(found.failed)} event(s) do not match the signed public log (the record was altered)",
        )
    if found.pending:
        # Appended within seconds while a worker runs: only a log that stopped appending is a warning.
        oldest = found.oldest_pending
        waited = utcnow() - (oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)) if oldest else timedelta(0)
        return Check(
            name="public_log",
            outcome=Outcome.WARNING if waited > LOG_STALE else Outcome.NOT_AVAILABLE,
            evidence=evidence,
            summary=f"{found.pending} sự kiện chưa có trong điểm kiểm tra đã ký mới nhất (thường chỉ vài giây) — "
            f"{found.pending} event(s) not yet in the newest signed checkpoint (usually seconds)",
        )
    return Check(
        name="public_log",
        outcome=Outcome.PASS,
        evidence=evidence,
        summary=f"Cả {found.events} sự kiện của hành trình có trong điểm kiểm tra đã ký mới nhất "
        f"({found.tree_size} mục) — every one of the journey's {found.events} events is included in the latest "
        f"signed checkpoint ({found.tree_size} entries)",
    )


def _mass_balance(session: Session, ids: list[int]) -> Check:
    """For every lot of the chain, what its holders hold is what the (uncorrected) events say they
    should, and no lot holds or has in flight more than was made of it."""
    corrected = select(col(Event.corrects_event_id)).where(col(Event.corrects_event_id).is_not(None))
    logged: dict[tuple[int, int], Decimal] = defaultdict(Decimal)
    for lot_id, org, delta in session.execute(
        select(col(EventLot.lot_id), col(EventLot.organisation_id), func.sum(EventLot.delta))
        .where(
            col(EventLot.lot_id).in_(ids),
            col(EventLot.organisation_id).is_not(None),
            col(EventLot.event_id).not_in(corrected),
        )
        .group_by(col(EventLot.lot_id), col(EventLot.organisation_id))
    ):
        logged[(lot_id, org)] = Decimal(delta)
    held: dict[tuple[int, int], Decimal] = {
        (lot_id, org): Decimal(q)
        for lot_id, org, q in session.execute(
            select(col(Holding.lot_id), col(Holding.organisation_id), col(Holding.quantity)).where(
                col(Holding.lot_id).in_(ids)
            )
        )
    }
    flight: dict[int, Decimal] = defaultdict(Decimal)
    for lot_id, q, got in session.execute(
        select(col(Shipment.lot_id), col(Shipment.quantity), col(Shipment.received_quantity)).where(
            col(Shipment.lot_id).in_(ids),
            Shipment.status == ShipmentStatus.OPEN,  # type: ignore[arg-type]
        )
    ):
        flight[lot_id] += Decimal(q) - Decimal(got)
    made = dict(session.execute(select(col(Lot.id), col(Lot.quantity)).where(col(Lot.id).in_(ids))).all())
    problems = []
    codes = dict(session.execute(select(col(Lot.id), col(Lot.lot_code)).where(col(Lot.id).in_(ids))).all())
    names = _names(session, [org for _, org in set(logged) | set(held)])
    for key in sorted(set(logged) | set(held)):
        if abs(logged.get(key, Decimal(0)) - held.get(key, Decimal(0))) > TOLERANCE:
            code, name, has, says = codes.get(key[0], key[0]), names[key[1]], held.get(key, 0), logged.get(key, 0)
            problems.append(
                f"lô {code}: {name} đang giữ {has}, sổ sự kiện ghi {says} — "
                f"lot {code}: {name} holds {has}, the event log says {says}"
            )
    for lot_id, quantity in made.items():
        total = sum((q for (lid, _), q in held.items() if lid == lot_id), Decimal(0)) + flight[lot_id]
        if total - Decimal(quantity) > TOLERANCE:
            code = codes.get(lot_id, lot_id)
            problems.append(
                f"lô {code}: {total} đang giữ hoặc đang vận chuyển, chỉ sản xuất {quantity} — "
                f"lot {code}: {total} held or in flight, only {quantity} made"
            )
    evidence = {"lots": len(made), "holdings": len(held)}
    if problems:
        return Check(
            name="mass_balance", outcome=Outcome.VIOLATION, summary="; ".join(problems[:10]), evidence=evidence
        )
    return Check(
        name="mass_balance",
        outcome=Outcome.PASS,
        evidence=evidence,
        summary=f"Lượng hàng đang giữ của {len(made)} lô khớp sổ sự kiện, không vượt lượng sản xuất — "
        f"holdings of {len(made)} lot(s) match the event log and never exceed what was made",
    )


# Who reads a verdict's evidence: only inspectors and the admin get one (_may_inspect), with the right to
# see who every party is (trace.organisations.shown_party).
_OFFICIAL = Actor(role=Role.INSPECTOR, organisation_id=None, name="inspection")


def _names(session: Session, ids: list[int]) -> dict[int, str]:
    """Organisations' names by id (an id missing from the register still reads as something)."""
    found = party_names(session=session, ids=ids, reader=_OFFICIAL)
    return {i: found.get(i, f"#{i}") for i in ids}


def _scan_evidence(level: str, found: scans.ScanStats) -> dict[str, Any]:
    return {
        "level": level,
        "count": found.count,
        "networks": found.networks,
        "places": found.places,
        "first_at": found.first_at.isoformat() if found.first_at else None,
        "last_at": found.last_at.isoformat() if found.last_at else None,
        "reasons": found.reasons,
    }


def _scan_pattern(session: Session, lot: Lot, serial: str | None) -> Check:
    """A unit code scanned from many networks, or from new networks in many places, is likely copied onto
    other packages; one network scanning it again and again is not (scans.assess)."""
    if serial is None:
        # One lot code is printed on every package of the lot: many scans from many places are normal.
        found = scans.stats(session=session, lot_id=lot.id)
        return Check(
            name="scan_pattern",
            outcome=Outcome.PASS,
            evidence=_scan_evidence("lot", found),
            summary=f"Mã lô in trên mọi gói nên chỉ đếm, không đánh giá — a lot code is on every package: "
            f"the lot's {found.count} scan(s) from {found.networks} network(s) are counted, not judged",
        )
    unit_id = session.execute(select(col(Unit.id)).where(Unit.lot_id == lot.id, Unit.serial == serial)).scalar_one()  # type: ignore[arg-type]
    found = scans.stats(session=session, unit_id=unit_id)
    figures = (
        f"{found.count} scan(s) from {found.networks} network(s), {found.places} place(s) shared "
        f"from a network new to the code"
    )
    if found.suspicious:
        return Check(
            name="scan_pattern",
            outcome=Outcome.WARNING,
            evidence=_scan_evidence("unit", found),
            summary=f"Mã có thể bị sao chép sang gói khác — the code may be copied onto other packages: "
            f"{figures} ({', '.join(found.reasons)})",
        )
    return Check(
        name="scan_pattern",
        outcome=Outcome.PASS,
        evidence=_scan_evidence("unit", found),
        summary=f"Lượt quét bình thường — an ordinary scan pattern: {figures}",
    )


def inspect_code(*, session: Session, actor: Actor, code: str | None = None, uri: str | None = None) -> Inspection:
    """The verdict on one label: every check with its evidence, and the lot's backward trace."""
    _may_inspect(actor)
    found = _code(session, code, uri)
    if isinstance(found, Check):
        outcome = Verdict.VIOLATION if found.outcome == Outcome.VIOLATION else Verdict.WARNING
        return Inspection(verdict=outcome, checks=[found])
    lot = session.execute(select(Lot).where(Lot.gtin == found.gtin, Lot.lot_code == found.lot_code)).scalar_one()  # type: ignore[arg-type]
    ids = lineage.lot_ids(session=session, lot_id=lot.id, direction=Direction.BACKWARD)  # type: ignore[arg-type]
    checks = [
        _code_check(found)
        if found.serial
        else Check(
            name="code_known",
            outcome=Outcome.PASS,
            summary="Mã lô do hệ thống cấp — lot code issued by the system",
            evidence={"gtin": found.gtin, "lot": found.lot_code},
        ),
        _lot_status(lot),
        _claims(session, lot),
        _certificates(session, lot),
        _chain(session, lot, ids),
        _mass_balance(session, ids),
        _scan_pattern(session, lot, found.serial),
        _public_log(session, ids),
    ]
    outcomes = {c.outcome for c in checks}
    verdict = (
        Verdict.VIOLATION
        if Outcome.VIOLATION in outcomes
        else Verdict.WARNING
        if Outcome.WARNING in outcomes
        else Verdict.GENUINE_AND_COMPLIANT
    )
    return Inspection(
        verdict=verdict,
        checks=checks,
        code=found,
        trace=lineage.trace(session=session, actor=actor, lot_id=lot.id, direction=Direction.BACKWARD),
    )  # type: ignore[arg-type]
