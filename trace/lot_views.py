"""A lot as the API and the workspace show it: its custody (``trace.lots``) and the designations it carries
(``trace.designations.claims``). It sits above both, so that neither imports the other: claims are judged
from rights, rights record events, and events move lots."""

from __future__ import annotations

from sqlmodel import Session

from trace import lots
from trace.access import Actor
from trace.designations.claims import claims_for_lot


def to_public(*, session: Session, actor: Actor | None, lot: lots.Lot) -> lots.LotPublic:
    """The API shape of a lot; holder details only for those involved with it."""
    out = lots.LotPublic.model_validate(lot)
    out.claims = claims_for_lot(session=session, lot=lot)
    if actor is not None and actor.organisation_id is not None:
        out.held = lots.held_by(session=session, lot_id=lot.id, organisation_id=actor.organisation_id)  # type: ignore[arg-type]
    if actor is not None and lots.involved(session=session, actor=actor, lot=lot):
        out.holders = [
            lots.HoldingPublic(organisation_id=h.organisation_id, quantity=h.quantity)
            for h in lots.holders(session=session, lot_id=lot.id)  # type: ignore[arg-type]
        ]
    return out
