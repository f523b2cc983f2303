"""What a rendering worker does with a print run, step by step, each step its own transaction.

A run is leased by the one protocol of trace/platform/leases.py: only the attempt holding a live
lease records progress or the finished file, and a worker killed mid-run leaves a lease that expires,
so the run is claimed again (the codes were registered at creation: a second rendering prints the same
codes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import IO

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from trace.designations import claims
from trace.digital_link import lot_uri, unit_uri
from trace.lots import Lot
from trace.platform import leases
from trace.platform.timeutil import utcnow
from trace.printing import artefacts
from trace.printing.models import PrintArtefact, PrintKind, PrintRun, PrintStatus
from trace.printing.runs import source_run
from trace.products import Product
from trace.units import Unit, UnitStatus, display_code


@dataclass(frozen=True)
class PrintLabel:
    """What one label says (the worker hands these to labels/ as they are)."""

    uri: str
    human_code: str
    product_name: str
    lot_code: str
    packed_on: date | None = None
    expiry: date | None = None
    designation: str | None = None
    extra_line: str | None = None


LEASE = leases.Lease(
    model=PrintRun,
    queued=PrintStatus.QUEUED,
    working=PrintStatus.RENDERING,
    done=PrintStatus.DONE,
    failed=PrintStatus.FAILED,
    progress="done",
    started="started_at",
)
new_token = leases.new_token


def claim(*, session: Session, run_id: int, token: str, lease_seconds: int) -> PrintRun | None:
    """Take the run if it is queued or its last renderer's lease ran out; None when it is not ours
    to render (finished, cancelled, unknown, or another worker holds a live lease)."""
    return leases.claim(session=session, lease=LEASE, job_id=run_id, token=token, lease_seconds=lease_seconds)  # type: ignore[no-any-return]


def labels_for(*, session: Session, run: PrintRun) -> list[PrintLabel]:
    """Every label of a run, in print order: its codes (voided ones left out of a reprint)."""
    lot = session.get(Lot, run.lot_id)
    assert lot is not None
    product = session.get(Product, lot.product_id)
    assert product is not None
    # The badge is judged on the run's day: a claim whose right lapsed since is not printed.
    common = {
        "product_name": product.name_vi,
        "lot_code": lot.lot_code,
        "packed_on": run.packed_on,
        "expiry": run.expiry,
        "designation": claims.badges(session=session, lot=lot, on=claims.local_date(run.created_at)),
    }
    if run.kind == PrintKind.LOT:
        uri = lot_uri(base_url=run.base_url, gtin=lot.gtin, lot=lot.lot_code)
        return [PrintLabel(uri=uri, human_code=lot.lot_code, **common)] * run.quantity  # type: ignore[arg-type]
    source = source_run(session=session, run=run)
    query = select(col(Unit.serial), col(Unit.code)).where(Unit.print_run_id == source.id)  # type: ignore[arg-type]
    if run.reprint_of_id is not None:
        query = query.where(Unit.status == UnitStatus.ACTIVE)  # type: ignore[arg-type]
    rows = session.execute(query.order_by(col(Unit.id))).all()
    return [
        PrintLabel(
            uri=unit_uri(base_url=run.base_url, gtin=lot.gtin, lot=lot.lot_code, serial=serial),
            human_code=display_code(code),
            **common,  # type: ignore[arg-type]
        )
        for serial, code in rows
    ]


def heartbeat(*, session: Session, run_id: int, token: str, done: int, lease_seconds: int) -> bool:
    """Record progress and renew the lease; False when the run is no longer ours."""
    return leases.heartbeat(
        session=session, lease=LEASE, job_id=run_id, token=token, progress=done, lease_seconds=lease_seconds
    )


def finish(
    *, session: Session, run_id: int, token: str, content: IO[bytes], done: int, media_type: str, filename: str
) -> bool:
    """Store the file ``content`` (read from where it stands to its end, a chunk at a time) and mark the
    run done, if the lease is still ours; False otherwise.

    The conditional update and the inserts share one transaction: a worker that lost its lease
    between its last heartbeat and here changes nothing, and no reader ever sees half a file.
    """
    now = utcnow()
    if not leases.finish(session=session, lease=LEASE, job_id=run_id, token=token, done=done):
        return False
    try:
        with session.begin_nested():
            # The row first (the chunks refer to it), its figures once every chunk is in.
            stored = PrintArtefact(
                print_run_id=run_id, media_type=media_type, filename=filename, size=0, sha256="", created_at=now
            )
            session.add(stored)
            session.flush()
            stored.size, stored.sha256 = artefacts.store(session=session, run_id=run_id, content=content)
            session.flush()
    except IntegrityError:
        pass  # an earlier attempt stored it (same codes, same bytes): one artefact per run
    return True


def fail(*, session: Session, run_id: int, token: str, error: str) -> None:
    """Mark the run failed (a fault retrying will not cure), if the lease is ours."""
    leases.fail(session=session, lease=LEASE, job_id=run_id, token=token, error=error)


def due(*, session: Session, queued_for_seconds: int = 0) -> list[int]:
    """Runs a worker should (re)start: queued ones older than ``queued_for_seconds`` and those
    whose renderer's lease ran out (a worker killed mid-run)."""
    return leases.due(session=session, lease=LEASE, queued_for_seconds=queued_for_seconds)
