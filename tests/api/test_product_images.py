"""Product images over HTTP: upload (raw or multipart) and delete under /api/v1; the public,
immutable file under /media with ETag/304; refusals are problem+json and write nothing."""

from __future__ import annotations

import io

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import ExifTags, Image
from sqlmodel import Session

from tests import factories as f
from tests.api.helpers import assert_problem, headers_for, party, snapshot
from tests.trace.test_product_images import (
    METADATA_CHUNKS,
    encoded,
    photo,
    png_header_only,
    webp_chunks,
)
from trace.access import Role

IMMUTABLE = "public, max-age=31536000, immutable"


def _product(client: TestClient, session: Session) -> tuple[int, dict[str, str]]:
    org, headers = party(session)
    product = f.product(session, org)
    session.commit()  # a refused request rolls back to here, not past the set-up
    assert product.id is not None
    return product.id, headers


def _put(
    client: TestClient, product_id: int, data: bytes, headers: dict[str, str], media_type: str = "image/jpeg"
) -> httpx.Response:
    return client.put(
        f"/api/v1/products/{product_id}/image", content=data, headers={**headers, "Content-Type": media_type}
    )


def test_the_owner_uploads_a_photo_and_anyone_gets_a_small_clean_webp(client: TestClient, session: Session) -> None:
    # given a product and a phone photo with GPS in its EXIF
    product_id, headers = _product(client, session)
    data = photo()
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(ExifTags.IFD.GPSInfo)
    # when its organisation's member uploads the raw bytes
    response = _put(client, product_id, data, headers)
    # then the answer names the public file, its size and its weight
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["url"].startswith(f"/media/products/{product_id}/") and body["url"].endswith(".webp")
    assert (body["width"], body["height"]) == (320, 640)
    # and anyone (no credentials) gets that file: WebP, within 640 px, no EXIF, cacheable for a year
    served = client.get(body["url"])
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/webp"
    assert served.headers["cache-control"] == IMMUTABLE
    assert len(served.content) == body["bytes"] < 40_000
    picture = Image.open(io.BytesIO(served.content))
    assert picture.format == "WEBP" and picture.size == (320, 640) and max(picture.size) <= 640
    assert not picture.getexif() and not METADATA_CHUNKS & set(webp_chunks(served.content))
    # and a repeat visit with its ETag costs nothing
    etag = served.headers["etag"]
    again = client.get(body["url"], headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert client.get(body["url"], headers={"If-None-Match": '"something-else"'}).status_code == 200


def test_a_multipart_form_with_a_file_field_works_too(client: TestClient, session: Session) -> None:
    product_id, headers = _product(client, session)
    png = encoded(Image.new("RGB", (1280, 640), "orange"))
    response = client.put(
        f"/api/v1/products/{product_id}/image", headers=headers, files={"file": ("anh.png", png, "image/png")}
    )
    assert response.status_code == 200, response.text
    assert (response.json()["width"], response.json()["height"]) == (640, 320)
    assert client.get(response.json()["url"]).status_code == 200


def test_a_form_without_the_file_field_is_refused(client: TestClient, session: Session) -> None:
    product_id, headers = _product(client, session)
    response = client.put(
        f"/api/v1/products/{product_id}/image",
        headers=headers,
        data={"anh": "x"},
        files={"other": ("a.png", b"x", "image/png")},
    )
    assert_problem(response, 422, "image_missing")


@pytest.mark.parametrize("role", [Role.MEMBER, Role.ORG_ADMIN])
def test_another_organisation_may_neither_set_nor_delete_it(client: TestClient, session: Session, role: Role) -> None:
    product_id, owner = _product(client, session)
    _, stranger = party(session, role=role)
    session.commit()
    before = snapshot(session)
    assert_problem(_put(client, product_id, photo(), stranger), 403, "not_your_organisation")
    assert snapshot(session) == before
    url = _put(client, product_id, photo(), owner).json()["url"]
    before = snapshot(session)
    assert_problem(client.delete(f"/api/v1/products/{product_id}/image", headers=stranger), 403)
    assert snapshot(session) == before and client.get(url).status_code == 200


def test_the_province_admin_may_set_it(client: TestClient, session: Session) -> None:
    product_id, _ = _product(client, session)
    admin = headers_for(session, None, Role.ADMIN)
    assert _put(client, product_id, photo(), admin).status_code == 200


def test_without_credentials_it_is_401(client: TestClient, session: Session) -> None:
    product_id, _ = _product(client, session)
    assert_problem(_put(client, product_id, photo(), {}), 401)
    assert_problem(client.delete(f"/api/v1/products/{product_id}/image"), 401)


@pytest.mark.parametrize(
    ("data", "media_type", "status", "code"),
    [
        (b"", "image/jpeg", 422, "image_empty"),
        (b"GIF89a not really" * 20, "image/png", 422, "image_unreadable"),
        (png_header_only(30_000, 30_000), "image/png", 422, "image_too_large"),
        (encoded(Image.new("1", (8000, 6000))), "image/png", 422, "image_too_large"),
        (b"\xff\xd8\xff" + b"\x00" * (8 * 1024 * 1024), "image/jpeg", 422, "image_too_large"),
        (b"hello", "text/plain", 415, "unsupported_media_type"),
        (b"", "application/json", 415, "unsupported_media_type"),
    ],
)
def test_bad_uploads_get_a_reason_and_write_nothing(
    client: TestClient, session: Session, data: bytes, media_type: str, status: int, code: str
) -> None:
    product_id, headers = _product(client, session)
    before = snapshot(session)
    body = assert_problem(_put(client, product_id, data, headers, media_type), status, code)
    assert body["detail"]
    assert snapshot(session) == before


def test_an_unknown_or_impossible_product_id(client: TestClient, session: Session) -> None:
    _, headers = _product(client, session)
    assert_problem(_put(client, 2_000_000_000, photo(), headers), 404)
    assert_problem(_put(client, 2**40, photo(), headers), 422)


def test_a_replaced_image_has_a_new_url_and_the_old_one_is_404(client: TestClient, session: Session) -> None:
    product_id, headers = _product(client, session)
    old = _put(client, product_id, photo(), headers).json()["url"]
    new = _put(client, product_id, encoded(Image.new("RGB", (100, 80), "green")), headers).json()["url"]
    assert new != old
    assert_problem(client.get(old), 404, "image_not_found")
    assert client.get(new).status_code == 200


def test_deleting_the_image_makes_its_url_404(client: TestClient, session: Session) -> None:
    product_id, headers = _product(client, session)
    url = _put(client, product_id, photo(), headers).json()["url"]
    response = client.delete(f"/api/v1/products/{product_id}/image", headers=headers)
    assert response.status_code == 204 and response.content == b""
    assert_problem(client.get(url), 404, "image_not_found")
    assert client.delete(f"/api/v1/products/{product_id}/image", headers=headers).status_code == 204


@pytest.mark.parametrize(
    "path",
    [
        "/media/products/2000000000/0123456789abcdef.webp",  # no such product
        "/media/products/abc/0123456789abcdef.webp",
        "/media/products/99999999999999999999/0123456789abcdef.webp",
        "/media/products/-1/0123456789abcdef.webp",
        "/media/products/1/..%2F..%2Fetc.webp",
    ],
)
def test_unknown_media_paths_are_404_problems(client: TestClient, path: str) -> None:
    assert_problem(client.get(path), 404)


def test_a_product_without_an_image_and_a_wrongly_spelled_id_are_404(client: TestClient, session: Session) -> None:
    product_id, headers = _product(client, session)
    digest = _put(client, product_id, photo(), headers).json()["url"].rsplit("/", 1)[1]
    other_id, _ = _product(client, session)
    assert_problem(client.get(f"/media/products/{other_id}/{digest}"), 404)
    assert_problem(client.get(f"/media/products/0{product_id}/{digest}"), 404)
    assert client.get(f"/media/products/{product_id}/{digest}").status_code == 200


def test_an_oversized_upload_without_a_declared_length_is_refused(client: TestClient, session: Session) -> None:
    # given a body streamed in chunks (no Content-Length), past the 8 MB limit
    product_id, headers = _product(client, session)
    before = snapshot(session)
    chunks = (b"\x00" * (1024 * 1024) for _ in range(10))
    response = client.put(
        f"/api/v1/products/{product_id}/image", content=chunks, headers={**headers, "Content-Type": "image/png"}
    )
    assert "content-length" not in response.request.headers
    # the body guard stops reading past the uploads' limit (api/bodyguard.py), before the route
    assert_problem(response, 413, "payload_too_large")
    assert snapshot(session) == before
