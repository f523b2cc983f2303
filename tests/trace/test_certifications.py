"""Certifications: who may record and revoke them, what they may cover, and which lots they are
shown as valid for (harvested inside the validity, in scope, not revoked by then)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlmodel import Session

from tests import factories as f
from trace.access import Actor, Role
from trace.certifications import (
    Certification,
    CertificationCreate,
    CertificationKind,
    RevokeIn,
    certificates_for_lot,
    record_certification,
    revoke_certification,
    to_public,
)
from trace.errors import Conflict, DomainError, Forbidden, RuleViolation
from trace.lots import Lot
from trace.organisations import Organisation
from trace.platform.timeutil import local_zone
from trace.platform.timeutil import today as local_today

DAY = timedelta(days=1)
DOC = "https://example.test/chung-nhan/vietgap-0001.pdf"


def refused(code: str, fn: Callable[[], Any], kind: type[DomainError] = DomainError) -> DomainError:
    with pytest.raises(kind) as info:
        fn()
    assert info.value.code == code, info.value.message
    return info.value


def grower(session: Session) -> tuple[Organisation, Lot]:
    """A cooperative and a lot it harvested five days ago."""
    o = f.org(session)
    lot = session.get(Lot, f.harvest(session, o, "100", days_ago=5).lot_ids[0])
    assert lot is not None
    return o, lot


def cert_data(o: Organisation, valid_from: date, valid_to: date, **extra: Any) -> CertificationCreate:
    extra.setdefault("kind", CertificationKind.VIETGAP)
    extra.setdefault("number", f"VietGAP-TT-{f.tax_code()[-6:]}")
    extra.setdefault("issuer", "Trung tâm Chứng nhận VietGAP (dữ liệu mẫu)")
    return CertificationCreate(organisation_id=o.id, valid_from=valid_from, valid_to=valid_to, **extra)


def certify(session: Session, o: Organisation, valid_from: date, valid_to: date, **extra: Any) -> Certification:
    return record_certification(session=session, actor=f.ADMIN, data=cert_data(o, valid_from, valid_to, **extra))


def shown(session: Session, lot: Lot, today: date | None = None) -> dict[int, tuple[bool, bool, bool]]:
    return {
        s.certification_id: (s.valid_at_harvest, s.valid_today, s.shown)
        for s in certificates_for_lot(session=session, lot=lot, today=today)
    }


def local_noon(day: date) -> datetime:
    return datetime.combine(day, time(12), local_zone()).astimezone(UTC)


# --------------------------------------------------------------------------- validity at harvest


def test_a_harvest_on_the_last_valid_day_is_covered_and_a_day_after_is_not(session: Session) -> None:
    o, lot = grower(session)
    harvest = lot.production_date
    ends_on_harvest = certify(session, o, harvest - 365 * DAY, harvest)
    ended_the_day_before = certify(session, o, harvest - 365 * DAY, harvest - DAY)
    starts_on_harvest = certify(session, o, harvest, harvest + 365 * DAY)
    starts_the_day_after = certify(session, o, harvest + DAY, harvest + 365 * DAY)

    seen = shown(session, lot)

    assert seen[ends_on_harvest.id] == (True, False, True)  # type: ignore[index]
    assert seen[ended_the_day_before.id] == (False, False, False)  # type: ignore[index]
    assert seen[starts_on_harvest.id] == (True, True, True)  # type: ignore[index]
    assert seen[starts_the_day_after.id] == (False, True, False)  # type: ignore[index]


def test_valid_today_follows_the_date_it_is_judged_on(session: Session) -> None:
    o, lot = grower(session)
    cert = certify(session, o, lot.production_date, lot.production_date + 30 * DAY)

    assert shown(session, lot, today=cert.valid_to)[cert.id] == (True, True, True)  # type: ignore[index]
    assert shown(session, lot, today=cert.valid_to + DAY)[cert.id] == (True, False, True)  # type: ignore[index]


def test_the_lot_reads_public_fields_only(session: Session) -> None:
    o, lot = grower(session)
    certify(
        session,
        o,
        lot.production_date,
        lot.production_date,
        document_url=DOC,
        kind=CertificationKind.OCOP,
        stars=4,
        number="OCOP-HY-2026-017",
    )

    [status] = certificates_for_lot(session=session, lot=lot)

    body = status.model_dump()
    assert body["kind"] == "ocop" and body["stars"] == 4 and body["number"] == "OCOP-HY-2026-017"
    assert DOC not in repr(body) and "document_url" not in body and "revoked_reason" not in body


# --------------------------------------------------------------------------- scope


def test_a_certificate_for_another_product_or_place_is_not_shown(session: Session) -> None:
    o, lot = grower(session)
    other_product, other_place = f.product(session, o), f.location(session, o)
    harvest = lot.production_date
    whole_org = certify(session, o, harvest, harvest)
    this_product = certify(session, o, harvest, harvest, product_ids=[lot.product_id])
    this_place = certify(session, o, harvest, harvest, location_ids=[lot.origin_location_id])
    certify(session, o, harvest, harvest, product_ids=[other_product.id])
    certify(session, o, harvest, harvest, location_ids=[other_place.id])
    certify(session, o, harvest, harvest, product_ids=[lot.product_id], location_ids=[other_place.id])
    certify(session, f.org(session), harvest, harvest)  # another organisation's certificate

    assert set(shown(session, lot)) == {whole_org.id, this_product.id, this_place.id}


def test_scope_must_belong_to_the_certified_organisation(session: Session) -> None:
    o, lot = grower(session)
    stranger = f.org(session)
    their_product, their_place = f.product(session, stranger), f.location(session, stranger)
    day = lot.production_date

    error = refused(
        "product_not_in_organisation",
        lambda: certify(session, o, day, day, product_ids=[lot.product_id, their_product.id]),
        RuleViolation,
    )
    assert error.details["ids"] == [their_product.id]
    refused(
        "location_not_in_organisation",
        lambda: certify(session, o, day, day, location_ids=[their_place.id]),
        RuleViolation,
    )
    refused("product_not_in_organisation", lambda: certify(session, o, day, day, product_ids=[10**9]), RuleViolation)


# --------------------------------------------------------------------------- revocation


def test_a_revoked_certificate_still_covers_lots_harvested_before_the_revocation(session: Session) -> None:
    o, lot = grower(session)
    harvest = lot.production_date
    later = certify(session, o, harvest - 30 * DAY, harvest + 365 * DAY)
    same_day = certify(session, o, harvest - 30 * DAY, harvest + 365 * DAY)

    revoke_certification(
        session=session,
        actor=f.ADMIN,
        certification_id=later.id,  # type: ignore[arg-type]
        data=RevokeIn(reason="Mẫu kiểm tra vượt dư lượng", revoked_at=local_noon(harvest + DAY)),
    )
    revoke_certification(
        session=session,
        actor=f.ADMIN,
        certification_id=same_day.id,  # type: ignore[arg-type]
        data=RevokeIn(reason="Mẫu kiểm tra vượt dư lượng", revoked_at=local_noon(harvest)),
    )

    seen = shown(session, lot)
    assert seen[later.id] == (True, False, True)  # type: ignore[index]
    assert seen[same_day.id] == (False, False, False)  # type: ignore[index]
    statuses = {s.certification_id: s for s in certificates_for_lot(session=session, lot=lot)}
    assert statuses[later.id].revoked_on == harvest + DAY  # type: ignore[index]


def test_revocation_needs_a_reason_is_once_only_and_not_in_the_future(session: Session) -> None:
    o, lot = grower(session)
    cert = certify(session, o, lot.production_date, lot.production_date + 365 * DAY)

    with pytest.raises(ValidationError):
        RevokeIn(reason="")
    refused(
        "revoked_in_future",
        lambda: revoke_certification(
            session=session,
            actor=f.ADMIN,
            certification_id=cert.id,  # type: ignore[arg-type]
            data=RevokeIn(reason="Hết hiệu lực", revoked_at=datetime.now(UTC) + DAY),
        ),
        RuleViolation,
    )
    assert cert.revoked_at is None
    revoke_certification(
        session=session,
        actor=f.ADMIN,
        certification_id=cert.id,  # type: ignore[arg-type]
        data=RevokeIn(reason="Tổ chức chứng nhận thu hồi"),
    )
    assert cert.revoked_reason == "Tổ chức chứng nhận thu hồi"
    assert cert.revoked_at is not None and cert.revoked_at <= datetime.now(UTC)
    refused(
        "already_revoked",
        lambda: revoke_certification(
            session=session,
            actor=f.ADMIN,
            certification_id=cert.id,  # type: ignore[arg-type]
            data=RevokeIn(reason="Lần nữa"),
        ),
        Conflict,
    )
    assert shown(session, lot)[cert.id][1] is False  # type: ignore[index]


# --------------------------------------------------------------------------- who may record


@pytest.mark.parametrize(
    ("who", "document", "allowed"),
    [
        ("admin", None, True),
        ("own org_admin", DOC, True),
        ("own member", DOC, False),
        ("other org_admin", DOC, False),
        ("other member", DOC, False),
        ("inspector", DOC, False),
    ],
)
def test_who_may_record_a_certificate(session: Session, who: str, document: str | None, allowed: bool) -> None:
    o, lot = grower(session)
    other, authority = f.org(session), f.org(session, "authority")
    actors: dict[str, Actor] = {
        "admin": f.ADMIN,
        "own org_admin": f.member(o, Role.ORG_ADMIN),
        "own member": f.member(o),
        "other org_admin": f.member(other, Role.ORG_ADMIN),
        "other member": f.member(other),
        "inspector": f.member(authority, Role.INSPECTOR),
    }
    data = cert_data(o, lot.production_date, lot.production_date, document_url=document)

    if allowed:
        cert = record_certification(session=session, actor=actors[who], data=data)
        assert cert.organisation_id == o.id
        assert list(shown(session, lot)) == [cert.id]
    else:
        refused(
            "not_certification_manager",
            lambda: record_certification(session=session, actor=actors[who], data=data),
            Forbidden,
        )
        assert shown(session, lot) == {}


def test_an_organisation_certifies_itself_only_through_its_admin_with_the_document(session: Session) -> None:
    o, lot = grower(session)
    day = lot.production_date
    own_admin = f.member(o, Role.ORG_ADMIN)
    undocumented = cert_data(o, day, day).model_copy(update={"organisation_id": None})

    refused(
        "document_required",
        lambda: record_certification(session=session, actor=own_admin, data=undocumented),
        RuleViolation,
    )
    refused(
        "not_certification_manager",
        lambda: record_certification(session=session, actor=f.member(o), data=cert_data(o, day, day, document_url=DOC)),
        Forbidden,
    )
    cert = record_certification(
        session=session, actor=own_admin, data=undocumented.model_copy(update={"document_url": DOC})
    )
    assert cert.organisation_id == o.id  # defaulted to the admin's own organisation


def test_who_may_revoke(session: Session) -> None:
    o, lot = grower(session)
    cert = certify(session, o, lot.production_date, lot.production_date)
    reason = RevokeIn(reason="Không tái đánh giá")
    for stranger in (f.member(o), f.member(f.org(session), Role.ORG_ADMIN)):
        refused(
            "not_certification_manager",
            lambda a=stranger: revoke_certification(  # type: ignore[misc]
                session=session, actor=a, certification_id=cert.id, data=reason
            ),
            Forbidden,
        )
    assert cert.revoked_at is None
    revoke_certification(
        session=session,
        actor=f.member(o, Role.ORG_ADMIN),
        certification_id=cert.id,  # type: ignore[arg-type]
        data=reason,
    )
    assert cert.revoked_at is not None


def test_the_document_is_private_to_the_organisation(session: Session) -> None:
    o, lot = grower(session)
    cert = certify(session, o, lot.production_date, lot.production_date, document_url=DOC)
    inspector = f.member(f.org(session, "authority"), Role.INSPECTOR)

    assert to_public(actor=f.member(o), cert=cert).document_url == DOC
    assert to_public(actor=inspector, cert=cert).document_url == DOC
    assert to_public(actor=f.member(f.org(session)), cert=cert).document_url is None
    assert to_public(actor=None, cert=cert).document_url is None


# --------------------------------------------------------------------------- what a certificate says


def test_validity_runs_forwards(session: Session) -> None:
    o, _ = grower(session)
    today = local_today()

    refused("invalid_validity", lambda: certify(session, o, today, today - DAY), RuleViolation)
    assert certify(session, o, today, today).valid_to == today  # a one-day certificate is fine


def test_ocop_carries_three_to_five_stars_and_nothing_else_carries_stars(session: Session) -> None:
    o, _ = grower(session)
    today = local_today()
    ocop = CertificationKind.OCOP

    refused("stars_required", lambda: certify(session, o, today, today, kind=ocop), RuleViolation)
    for bad in (0, 2, 6):
        with pytest.raises(ValidationError):
            cert_data(o, today, today, kind=ocop, stars=bad)
    for stars in (3, 4, 5):
        assert certify(session, o, today, today, kind=ocop, stars=stars).stars == stars
    for kind in (CertificationKind.VIETGAP, CertificationKind.ORGANIC, CertificationKind.GLOBALGAP):
        refused(
            "stars_not_allowed",
            lambda k=kind: certify(session, o, today, today, kind=k, stars=3),  # type: ignore[misc]
            RuleViolation,
        )


def test_the_same_certificate_is_recorded_once(session: Session) -> None:
    o, _ = grower(session)
    today = local_today()
    first = certify(session, o, today, today, number="VG-0042")

    error = refused("certification_exists", lambda: certify(session, o, today, today, number="VG-0042"), Conflict)
    assert error.details["certification_id"] == first.id
    assert certify(session, o, today, today, number="VG-0043").id != first.id
