"""Workspace page for packing: scan or type the units' codes (one per line) into a carton or pallet, once.

Thin: trace.packing reads the lines and the carton's code and packs through the same capture as the JSON
API's pack; this page says each refused line in words beside its number, and a pack recorded once
answers 303 to what went in. A phone's barcode-scanner keyboard types a code and Enter: one line each.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from sqlmodel import Session

from api import i18n
from api.deps import SessionDep
from api.web.context import N_, Member, Visitor, check_form, product_names, render
from api.web.forms import Posted, choice, day, event_time, once_key, raw, refused, refusing, see_other, text, values_of
from api.web.words import WORDS, fill, say, t
from trace import digital_link, lots, packing
from trace.errors import DomainError, Forbidden, NotFound
from trace.events.models import EventType
from trace.events.query import get_event
from trace.locations import list_locations
from trace.platform.timeutil import localise
from trace.units import display_code
from trace.verification import find

router = APIRouter(include_in_schema=False)

# Why a line is refused, in words for people: the codes the domain raises have their words in the catalogue;
# the others are the packing check's own findings about one line.
LINE_WORDS: dict[str, str] = {
    "unreadable": WORDS["unreadable"],
    "code_mistyped": N_("A character of this code is mistyped: check it against the label."),
    "not_our_link": N_("This QR code was not issued by this system."),
    "not_a_unit": WORDS["not_a_unit"],
    "unknown_unit": WORDS["unknown_unit"],
    "duplicate": N_("Same package as line %(first)s."),
    "void": N_("This code was voided."),
    "not_held": N_("This package is of a lot your organisation does not hold."),
    "already_packed": WORDS["already_packed"],
    "lot_on_hold": WORDS["lot_on_hold"],
    "lot_recalled": WORDS["lot_recalled"],
    "lot_cancelled": WORDS["lot_cancelled"],
    "is_parent": N_("This is the carton's own label."),
}
# A pack checked line by line and then refused as a whole: a package changed between the check and the
# recording (another pack, a void). The lines' words would name a line the form no longer shows.
MEANWHILE: dict[str, str] = {
    "unknown_unit": N_("A package was changed meanwhile: send the form again to see which."),
    "already_packed": N_("A package was packed meanwhile: send the form again to see which."),
}


def _page(
    request: Request,
    session: Session,
    who: Visitor,
    *,
    status: int = 200,
    typed: dict[str, str] | None = None,
    lines: list[dict[str, Any]] | None = None,
    errors: dict[str, str] | None = None,
    error: str | None = None,
    idem: str | None = None,
) -> Response:
    org = who.actor.organisation_id
    places = (
        [(p.id, p.name) for p in list_locations(session=session, organisation_id=org, limit=200) if p.active]
        if org
        else []
    )
    return render(
        request,
        "app/handling/pack.html",
        who,
        status=status,
        places=places,
        typed=typed or {"parent": "", "codes": "", "location_id": "", "day": ""},
        lines=lines or [],
        errors=errors or {},
        error=error,
        idem=idem or once_key(),
        max_units=packing.MAX_UNITS,
    )


@router.get("/app/pack")
def pack_form(
    request: Request, session: SessionDep, who: Member, parent: Annotated[str, Query(max_length=200)] = ""
) -> Response:
    """Scan or type the carton's code, then each package's code, one per line."""
    return _page(request, session, who, typed={"parent": parent, "codes": "", "location_id": "", "day": ""})


@router.post("/app/pack")
def pack(request: Request, form: Posted, session: SessionDep, who: Member) -> Response:
    """Pack every line's unit into the carton (once, however often the form is sent), or show each refused line."""
    check_form(who, text(form, "csrf"))
    lang, idem = who.lang, text(form, "idem")
    # the codes as typed: a refused line is named by its number in the text the packer sees
    typed = {**values_of(form, "parent", "location_id", "day"), "codes": raw(form, "codes")}
    errors: dict[str, str] = {}
    when = event_time(day(typed["day"], lang, errors, "day"))
    place = choice(typed["location_id"], lang, errors, "location_id", N_("Choose a place."), required=False)
    if errors:
        return _page(request, session, who, status=422, typed=typed, errors=errors, idem=idem)
    try:
        result = packing.pack(
            session=session,
            actor=who.actor,
            parent=typed["parent"],
            codes=typed["codes"],
            event_time=when,
            location_id=place,
            idempotency_key=idem or None,
        )
    except packing.PackRefused as refusal:
        if refusal.parent is not None:
            errors["parent"] = say(refusal.parent, lang)
        lines = [
            {
                "line": p.line,
                "text": p.text,
                "why": fill(LINE_WORDS[p.code], lang, p.details) or t(lang, LINE_WORDS[p.code]).split(" %(")[0],
                "code": p.code,
            }
            for p in refusal.problems
        ]
        summary = (
            t(
                lang,
                N_(
                    "%(bad)s of %(total)s lines cannot be packed: nothing was recorded. "
                    "Correct or remove them and send again."
                ),
            )
            % {"bad": i18n.number(len(lines), lang), "total": i18n.number(refusal.lines, lang)}
            if lines
            else None
        )
        return _page(
            request, session, who, status=422, typed=typed, lines=lines, errors=errors, error=summary, idem=idem
        )
    except (NotFound, Forbidden) as error:
        return refused(request, who, error)
    except DomainError as error:
        said = t(lang, MEANWHILE[error.code]) if error.code in MEANWHILE else say(error, lang)
        field = {
            "no_codes": "codes",
            "too_many_codes": "codes",
            "event_in_future": "day",
            "before_lot_exists": "day",
            "not_your_location": "location_id",
            "location_inactive": "location_id",
        }.get(error.code)
        return _page(
            request,
            session,
            who,
            status=422,
            typed=typed,
            errors={field: said} if field else {},
            error=None if field else said,
            idem=idem,
        )
    return see_other(f"/app/pack/{result.event_ids[0]}")


@router.get("/app/pack/{event_id}")
@refusing(refused)
def packed(
    request: Request, session: SessionDep, who: Member, event_id: Annotated[str, Path(min_length=1, max_length=36)]
) -> Response:
    """What a pack put in its carton: how many units, of which lots."""
    event = get_event(session=session, actor=who.actor, event_id=event_id)
    if event.type != EventType.PACK:
        raise NotFound(f"Pack {event_id} not found")
    counts = packing.contents(event.payload)
    found = lots.lots_by_id(session=session, ids=counts)
    names = product_names(session, {lot.product_id for lot in found.values()}, who.lang)
    parent = event.payload.get("parent_id", "")
    sscc = parent.isdigit() and len(parent) == 18
    label = None
    if not sscc:
        try:  # a carton label of ours: show its code as printed
            label = (
                display_code(unit.code) if (unit := find(session=session, link=digital_link.parse(parent))[1]) else None
            )
        except DomainError:
            label = None
    return render(
        request,
        "app/handling/pack_done.html",
        who,
        when=localise(event.event_time, event.event_tz_offset),
        parent=parent,
        label=label,
        sscc=sscc,
        total=sum(counts.values()),
        lots=[
            (found[lot_id], names.get(found[lot_id].product_id, ""), n)
            for lot_id, n in counts.items()
            if lot_id in found
        ],
    )
