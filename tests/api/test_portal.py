"""The national portal's pulls over HTTP: who may pull, pages that follow ``next``, the ZIP file,
and read-only portal keys issued by the province administrator."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session

from tests import factories as f
from tests.api.helpers import assert_problem, bearer, headers_for, snapshot
from trace.access import Role
from trace.lots import Lot
from trace.products import Product

API = "/api/v1"


@pytest.fixture(autouse=True)
def _no_settling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYTRACE_PORTAL_SETTLE_SECONDS", "0")


def _portal_key(client: TestClient, session: Session) -> tuple[dict[str, str], dict[str, Any]]:
    dost = f.org(session, "authority", name="Sở Khoa học và Công nghệ (thử)")
    admin = headers_for(session, None, Role.ADMIN)
    session.commit()
    response = client.post(
        f"{API}/portal/keys", headers=admin, json={"name": "Cổng quốc gia", "organisation_id": dost.id}
    )
    assert response.status_code == 201, response.text
    key = response.json()
    assert key["role"] == "portal" and key["key"].startswith("hyk_")
    return bearer(key["key"]), key


def test_a_portal_key_pages_through_a_feed_by_following_next(client: TestClient, session: Session) -> None:
    # given
    grower = f.org(session)
    for _ in range(5):
        f.harvest(session, grower)
    key, _ = _portal_key(client, session)
    # when
    url: str | None = f"{API}/portal/products?limit=2"
    gtins, pages = [], 0
    while url:
        response = client.get(url, headers=key)
        assert response.status_code == 200, response.text
        body = response.json()
        gtins += [item["ma_truy_xuat_san_pham"] for item in body["items"]]
        url, pages = body["next"], pages + 1
    # then
    assert sorted(gtins) == sorted(session.execute(select(Product.gtin)).scalars()) and len(set(gtins)) == len(gtins)
    assert pages == 3
    # and the last cursor, sent later, gives nothing new
    later = client.get(f"{API}/portal/products", headers=key, params={"cursor": body["cursor"]}).json()
    assert (later["items"], later["next"], later["cursor"]) == ([], None, body["cursor"])


def test_the_export_file_downloads_as_a_zip_with_its_manifest(client: TestClient, session: Session) -> None:
    grower = f.org(session)
    f.harvest(session, grower)
    f.harvest(session, grower)
    key, _ = _portal_key(client, session)
    response = client.get(f"{API}/portal/export.zip", headers=key)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"].startswith('attachment; filename="hytrace-portal-')
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    manifest = json.loads(archive.read("manifest.json"))
    rows = {e["name"]: e["rows"] for e in manifest["files"]}
    assert rows["ma_truy_xuat.csv"] == session.execute(select(func.count()).select_from(Lot)).scalar_one() == 2
    assert sorted(archive.namelist()) == sorted([*rows, "manifest.json"])


def test_without_a_key_401_and_for_a_cooperative_403(client: TestClient, session: Session) -> None:
    coop = f.org(session)
    member, org_admin = headers_for(session, coop), headers_for(session, coop, Role.ORG_ADMIN)
    inspector = headers_for(session, f.org(session, "authority"), Role.INSPECTOR)
    session.commit()
    for path in ("/portal/products", "/portal/trace-codes", "/portal/export.zip"):
        assert_problem(client.get(API + path), 401, "no_credentials")
        for who in (member, org_admin, inspector):
            assert_problem(client.get(API + path, headers=who), 403, "portal_only")


def test_a_portal_key_reads_and_writes_nothing_else(client: TestClient, session: Session) -> None:
    grower = f.org(session)
    lot_id = f.harvest(session, grower).lot_ids[0]
    key, issued = _portal_key(client, session)
    assert_problem(client.post(f"{API}/events/sell", headers=key, json={"lot_id": lot_id, "quantity": "1"}), 403)
    assert_problem(
        client.post(
            f"{API}/portal/keys", headers=key, json={"name": "more", "organisation_id": issued["organisation_id"]}
        ),
        403,
        "admin_only",
    )
    assert client.get(f"{API}/lots/{lot_id}", headers=key).status_code == 404
    # revoked like any key
    admin = headers_for(session, None, Role.ADMIN)
    session.commit()
    revoked = client.delete(f"{API}/organisations/{issued['organisation_id']}/api-keys/{issued['id']}", headers=admin)
    assert revoked.status_code == 200, revoked.text
    assert_problem(client.get(f"{API}/portal/products", headers=key), 401, "bad_api_key")


def test_only_the_province_admin_issues_portal_keys_to_an_authority(client: TestClient, session: Session) -> None:
    coop = f.org(session)
    dost = f.org(session, "authority")
    admin, coop_admin = headers_for(session, None, Role.ADMIN), headers_for(session, dost, Role.ORG_ADMIN)
    session.commit()
    before = snapshot(session)
    assert_problem(
        client.post(f"{API}/portal/keys", headers=admin, json={"name": "x", "organisation_id": coop.id}),
        422,
        "not_an_authority",
    )
    assert_problem(
        client.post(f"{API}/portal/keys", headers=coop_admin, json={"name": "x", "organisation_id": dost.id}),
        403,
        "admin_only",
    )
    assert_problem(client.post(f"{API}/portal/keys", headers=admin, json={"name": "x", "organisation_id": 999999}), 404)
    assert snapshot(session) == before


def test_bad_parameters_are_422_with_a_code(client: TestClient, session: Session) -> None:
    admin = headers_for(session, None, Role.ADMIN)
    session.commit()
    assert_problem(client.get(f"{API}/portal/products", headers=admin, params={"cursor": "bm9wZQ"}), 422, "bad_cursor")
    assert_problem(client.get(f"{API}/portal/lots", headers=admin), 422, "validation_error")
    assert_problem(client.get(f"{API}/portal/products", headers=admin, params={"limit": 0}), 422, "validation_error")
    assert_problem(client.get(f"{API}/portal/products", headers=admin, params={"since": "yesterday"}), 422)
    assert_problem(
        client.get(
            f"{API}/portal/export.zip",
            headers=admin,
            params={"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        ),
        422,
        "bad_period",
    )
    assert client.get(f"{API}/portal/organisations", headers=admin).status_code == 200
