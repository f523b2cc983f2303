"""Workspace pages for market inspectors: verify a label (its code typed, or a photo of its QR), the
verdict and its checklist, then record an inspection, hold, release or recall the lot.

Thin: who may inspect, hold or recall is decided in trace/ (trace.inspector, trace.recalls); each form
is checked, validated, handed to the same function the API calls, and answered with a 303 back to the
verdict, which then shows the lot's new state.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from io import BytesIO
from typing import Annotated, Any
from urllib.parse import urlencode

import zxingcpp
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from PIL import Image
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from api import i18n
from api.deps import DbId, SessionDep
from api.i18n import translations
from api.web.context import N_, Member, Visitor, check_form, render
from api.web.forms import Posted, field_errors, missing, once_key, raw, refused, text
from api.web.words import WORDS, say, t
from trace import inspector
from trace.errors import DomainError, Forbidden
from trace.events.ledger import capture
from trace.events.models import EventType
from trace.events.query import list_events
from trace.events.schemas import InspectIn
from trace.lots import LotStatus
from trace.platform.timeutil import local_zone, localise
from trace.recalls import holds, recall
from trace.recalls.models import ReasonIn

router = APIRouter(include_in_schema=False)

PHOTO_MAX_BYTES = 8 * 1024 * 1024
PHOTO_MAX_PIXELS = 60_000_000  # a phone photo is 12-50 megapixels; a small file may declare a huge canvas
MULTIPART_SLACK = 64 * 1024  # the boundaries and part headers around the photo
URI_MAX = 300  # the longest label URI the verdict page takes (the API's limit too)
VERIFY = "/app/verify"

CODE_MAX = 40  # the longest code the verdict page takes (as its query)


# Why a photo gives no code, in words.
PHOTO_PROBLEMS: dict[str, str] = {
    "missing": N_("Choose a photo of the label first."),
    "too_large": N_("The photo is larger than 8 MB: take it again at a lower resolution."),
    "unreadable": N_("This file is not a picture that can be read: take a photo (JPEG or PNG) of the label."),
    "no_code": N_(
        "No QR code could be read in this photo: take it again closer, sharp and well lit, or type the code."
    ),
    "not_ours": N_("This QR code is not one of this system's labels."),
}

DONE: dict[str, str] = {
    "inspected": N_("The inspection was recorded."),
    "held": N_("The lot is on hold: it may not be moved or sold until it is released."),
    "released": N_("The hold was lifted."),
    "recalled": N_("The lot and everything made from it were recalled."),
}


# --- the photo of a label ----------------------------------------------------------------------------


@dataclass
class Photo:
    """A photo form as read: the picture's bytes, the form token, or why there is no picture."""

    data: bytes | None
    csrf: str
    problem: str | None = None


async def _once(body: bytes) -> AsyncGenerator[bytes, None]:
    yield body


async def photo_upload(request: Request) -> Photo:
    """The photo form, read before any database connection is held, refused past 8 MB without reading on."""
    limit = PHOTO_MAX_BYTES + MULTIPART_SLACK
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return Photo(None, "", "too_large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return Photo(None, "", "too_large")
        chunks.append(chunk)
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        return Photo(None, "", "missing")
    try:
        form = await MultiPartParser(request.headers, _once(b"".join(chunks)), max_files=1, max_fields=5).parse()
    except MultiPartException:
        return Photo(None, "", "unreadable")
    try:
        csrf, upload = form.get("csrf"), form.get("photo")
        token = csrf if isinstance(csrf, str) else ""
        if not isinstance(upload, UploadFile) or not upload.filename:
            return Photo(None, token, "missing")
        data = await upload.read()
    finally:
        await form.close()
    if len(data) > PHOTO_MAX_BYTES:
        return Photo(None, token, "too_large")
    return Photo(data, token)


def read_qr(data: bytes) -> str:
    """The text of the first QR code in a photo; ValueError naming the problem when there is none."""
    try:
        image = Image.open(BytesIO(data))
        width, height = image.size
        if width * height > PHOTO_MAX_PIXELS:
            raise ValueError("too_large")
        found = zxingcpp.read_barcodes(
            image.convert("L"), formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
        )
    except ValueError:
        raise
    except Image.DecompressionBombError:
        raise ValueError("too_large") from None
    except Exception:  # decoders raise many kinds on damaged or crafted files: none may become a 500
        raise ValueError("unreadable") from None
    texts = [result.text for result in found if result.text]
    if not texts:
        raise ValueError("no_code")
    return texts[0]


# --- the pages ---------------------------------------------------------------------------------------

# A check's evidence as people read it: each key by name, each record as a short line.
EVIDENCE_KEYS: dict[str, str] = {
    "code": N_("Code"),
    "uri": N_("Address in the QR code"),
    "reason": N_("Reason"),
    "serial": N_("Serial"),
    "gtin": N_("GTIN"),
    "lot": N_("Lot"),
    "status": N_("Status"),
    "claims": N_("Designations claimed"),
    "certificates": N_("Certificates"),
    "origins": N_("Harvests at the origin"),
    "holders": N_("Holding the lot now"),
    "lots": N_("Lots in the chain"),
    "holdings": N_("Holdings checked"),
    "level": N_("Counted for"),
    "count": N_("Scans"),
    "networks": N_("Networks"),
    "places": N_("Shared places"),
    "first_at": N_("First scan"),
    "last_at": N_("Last scan"),
    "reasons": N_("Why"),
}
EVIDENCE_VALUES: dict[str, str] = {
    "lot": N_("the lot code"),
    "unit": N_("this package's code"),
    "many_networks": N_("scanned from many networks"),
    "many_places": N_("scanned in many places"),
    "active": N_("active"),
    "on_hold": N_("on hold"),
    "recalled": N_("recalled"),
    "consumed": N_("used up"),
    "cancelled": N_("cancelled"),
    "void": N_("cancelled by its printer"),
}
YES, NO, AT_HARVEST, TODAY, LOT = N_("yes"), N_("no"), N_("valid at harvest"), N_("today"), N_("Lot")


def _evidence(evidence: dict[str, Any], lang: str) -> list[tuple[str, list[str]]]:
    """A check's evidence as lines to read: names translated, records as short sentences, numbers and
    times the local way; what it does not know stays as it is (compact JSON), never hidden."""
    t = translations(lang).gettext
    yes, no, at_harvest, today = t(YES), t(NO), t(AT_HARVEST), t(TODAY)

    def line(key: str, value: Any) -> str:
        if key == "claims":
            text = f"{value['badge']} — {at_harvest}: {yes if value['valid_at_harvest'] else no}"
            return (
                text
                + (f" ({value['problem_at_harvest']})" if value.get("problem_at_harvest") else "")
                + f"; {today}: {yes if value['valid_today'] else no}"
            )
        if key == "certificates":
            start, end = (i18n.day(date.fromisoformat(value[k]), lang) for k in ("valid_from", "valid_to"))
            span = f"{start}–{end}"
            return (
                f"{value['kind']} {value['number']} ({value['issuer']}), {span} — {at_harvest}: "
                f"{yes if value['valid_at_harvest'] else no}"
            )
        if key == "origins":
            return f"{t(LOT)} {value['lot_code']}" + (f" — {value['location']}" if value.get("location") else "")
        if key == "holders":
            holder = value.get("organisation") or value["organisation_id"]
            return f"{holder}: {i18n.number(Decimal(value['quantity']), lang)}"
        if key in ("first_at", "last_at"):
            return i18n.moment(datetime.fromisoformat(value).astimezone(local_zone()), lang)
        if isinstance(value, str):
            return t(EVIDENCE_VALUES[value]) if value in EVIDENCE_VALUES else value
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            return i18n.number(value, lang)
        return json.dumps(value, ensure_ascii=False, default=str)

    rows = []
    for key, value in evidence.items():
        if value is None or value == [] or value == {}:
            continue
        try:
            lines = [line(key, item) for item in value] if isinstance(value, list) else [line(key, value)]
        except (KeyError, TypeError, ValueError):  # a shape this page does not know: shown as it is
            lines = [json.dumps(value, ensure_ascii=False, default=str)]
        rows.append((t(EVIDENCE_KEYS[key]) if key in EVIDENCE_KEYS else key, lines))
    return rows


def _page(
    request: Request,
    session: SessionDep,
    who: Visitor,
    *,
    code: str = "",
    uri: str = "",
    status: int = 200,
    error: str | None = None,
    action: str | None = None,
    errors: dict[str, str] | None = None,
    sent: dict[str, str] | None = None,
    done: str = "",
) -> Response:
    """The verify form and, for a code or URI, the verdict with its checklist and what may be done next."""
    context: dict[str, Any] = {
        "code": code,
        "uri": uri,
        "error": error,
        "action": action,
        "errors": errors or {},
        "sent": sent or {},
        "done": t(who.lang, DONE[done]) if done in DONE else None,
        "result": None,
        "checks": [],
        "lot_id": None,
        "inspections": [],
        "recalled": None,
        "code_problem": None,
        "idem": once_key(),
    }
    if code or uri:
        try:
            found = inspector.inspect_code(
                session=session, actor=who.actor, code=code or None, uri=None if code else uri
            )
        except DomainError as refusal:
            return refused(request, who, refusal)
        context["result"] = found
        context["checks"] = [(check, _evidence(check.evidence, who.lang)) for check in found.checks]
        if found.code is None:
            reason = found.checks[0].evidence.get("reason") if found.checks else None
            context["code_problem"] = t(who.lang, WORDS.get(reason or "", WORDS["not_genuine"]))
        if found.trace is not None:
            lot_id = context["lot_id"] = found.trace.root_lot_id
            recorded = list_events(
                session=session, actor=who.actor, event_type=EventType.INSPECT, lot_id=lot_id, limit=20
            )
            # Each at the local time it was recorded (the log keeps UTC and the offset).
            context["inspections"] = [
                (localise(e.event_time, e.event_tz_offset), e.payload.get("result"), e.payload.get("note"))
                for e in recorded
            ]
            if found.code is not None and found.code.lot_status == LotStatus.RECALLED:
                context["recalled"] = recall.covering(session=session, lot_id=lot_id)
    return render(request, "app/inspection/verify.html", who, status=status, **context)


def _back(code: str, uri: str, done: str) -> RedirectResponse:
    """Back to the verdict (always this site's verify page: the code and URI only fill its query)."""
    query = {"code": code} if code else {"uri": uri} if uri else {}
    return RedirectResponse(f"{VERIFY}?{urlencode(query | {'done': done})}", status_code=303)


@router.get(VERIFY, response_class=HTMLResponse)
def verify(
    request: Request,
    session: SessionDep,
    who: Member,
    code: Annotated[str, Query(max_length=CODE_MAX)] = "",
    uri: Annotated[str, Query(max_length=URI_MAX)] = "",
    done: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """Type a code or send a photo of the label; with a code or URI, the verdict and its checklist."""
    return _page(request, session, who, code=code.strip(), uri=uri.strip(), done=done)


@router.post(f"{VERIFY}/photo", response_class=HTMLResponse)
def verify_photo(
    request: Request, photo: Annotated[Photo, Depends(photo_upload)], session: SessionDep, who: Member
) -> Response:
    """A photo of the label: its QR code decoded here, then the verdict on the URI it holds."""
    # ``photo`` comes first: a slow upload is read before this request holds a database connection.
    check_form(who, photo.csrf)
    problem = photo.problem
    if photo.data is not None:
        try:
            uri = read_qr(photo.data)
        except ValueError as found:
            problem = str(found)
        else:
            if len(uri) > URI_MAX or not uri.lower().startswith(("http://", "https://")):
                problem = "not_ours"
            else:
                return RedirectResponse(f"{VERIFY}?{urlencode({'uri': uri})}", status_code=303)
    status = 413 if problem == "too_large" else 422
    return _page(request, session, who, status=status, error=t(who.lang, PHOTO_PROBLEMS[problem or "missing"]))


@router.post(f"{VERIFY}/lot/{{lot_id}}/inspection", response_class=HTMLResponse)
def record_inspection(request: Request, form: Posted, session: SessionDep, who: Member, lot_id: DbId) -> Response:
    """Record the inspection of the lot (once, however often the form is sent), then back to the verdict."""
    check_form(who, text(form, "csrf"))
    code, uri = _label(form)
    idem, result, note = text(form, "idem"), text(form, "result"), text(form, "note")
    sent = {"result": result, "note": note}
    try:
        data = InspectIn(lot_id=lot_id, result=result, note=note or None)  # type: ignore[arg-type]
    except ValidationError as error:
        errors = field_errors(error, who.lang)
        if "result" in errors:
            errors["result"] = t(who.lang, N_("Choose a result."))
        return _page(
            request, session, who, code=code, uri=uri, status=422, action="inspection", errors=errors, sent=sent
        )
    try:
        capture(session=session, actor=who.actor, items=[(EventType.INSPECT, data)], idempotency_key=idem or None)
    except DomainError as error:
        return _refusal(request, session, who, error, code=code, uri=uri, action="inspection", sent=sent)
    return _back(code, uri, "inspected")


def _refusal(
    request: Request,
    session: SessionDep,
    who: Visitor,
    error: DomainError,
    *,
    code: str,
    uri: str,
    action: str,
    sent: dict[str, str],
) -> Response:
    """Access refused: a 403/404 page; any other rule: the verdict again with the reason at the top."""
    if isinstance(error, Forbidden) or missing(error):
        return refused(request, who, error)
    return _page(
        request, session, who, code=code, uri=uri, status=422, error=say(error, who.lang), action=action, sent=sent
    )


def _label(form: FormData) -> tuple[str, str]:
    """The label a form was sent from (its code, or the URI in its QR), to go back to its verdict: cut to what
    the verdict page takes, as the code and URI only fill its query."""
    return text(form, "code")[:CODE_MAX], text(form, "uri")[:URI_MAX]


def _stop(action: str, request: Request, form: FormData, session: SessionDep, who: Visitor, lot_id: int) -> Response:
    """Hold, release or recall: the reason checked, trace.recalls decides who may, then back to the verdict."""
    check_form(who, text(form, "csrf"))
    code, uri = _label(form)
    idem, reason = text(form, "idem"), raw(form, "reason")
    sent = {"reason": reason}
    try:
        data = ReasonIn(reason=reason)
    except ValidationError as error:
        return _page(
            request,
            session,
            who,
            code=code,
            uri=uri,
            status=422,
            action=action,
            errors=field_errors(error, who.lang),
            sent=sent,
        )
    try:
        key = idem or None  # a double tap or a resent form records once
        if action == "hold":
            holds.hold(session=session, actor=who.actor, lot_id=lot_id, data=data, idempotency_key=key)
        elif action == "release":
            holds.release(session=session, actor=who.actor, lot_id=lot_id, data=data, idempotency_key=key)
        else:  # a lot an earlier recall reached is not recalled twice: trace.recalls answers with that recall
            recall.recall(session=session, actor=who.actor, lot_id=lot_id, data=data, idempotency_key=key)
    except DomainError as error:
        return _refusal(request, session, who, error, code=code, uri=uri, action=action, sent=sent)
    return _back(code, uri, {"hold": "held", "release": "released", "recall": "recalled"}[action])


@router.post(f"{VERIFY}/lot/{{lot_id}}/hold", response_class=HTMLResponse)
def hold(request: Request, form: Posted, session: SessionDep, who: Member, lot_id: DbId) -> Response:
    """Put the lot on hold: it may not move until released."""
    return _stop("hold", request, form, session, who, lot_id)


@router.post(f"{VERIFY}/lot/{{lot_id}}/release", response_class=HTMLResponse)
def release(request: Request, form: Posted, session: SessionDep, who: Member, lot_id: DbId) -> Response:
    """Lift the lot's hold."""
    return _stop("release", request, form, session, who, lot_id)


@router.post(f"{VERIFY}/lot/{{lot_id}}/recall", response_class=HTMLResponse)
def recall_lot(request: Request, form: Posted, session: SessionDep, who: Member, lot_id: DbId) -> Response:
    """Recall the lot and everything made from it."""
    return _stop("recall", request, form, session, who, lot_id)
