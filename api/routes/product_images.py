"""Product images: upload and removal under /api/v1, and the public, immutable image files under /media."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from api.deps import CurrentActor, DbId, SessionDep
from api.problems import problem
from trace import product_images
from trace.errors import NotFound, RuleViolation

router = APIRouter(tags=["master data"])
media = APIRouter(tags=["public"])

RAW_TYPES = ("image/jpeg", "image/png", "image/webp")
MULTIPART_SLACK = 64 * 1024  # room for the multipart boundaries and part headers around the file
IMMUTABLE = "public, max-age=31536000, immutable"


async def _read(request: Request, limit: int) -> bytes:
    """The request body, refused as soon as it passes ``limit`` (never held whole in memory beyond it)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise RuleViolation(
            f"Ảnh quá lớn — the upload is over {product_images.MAX_BYTES // (1024 * 1024)} MB",
            code="image_too_large",
            max_bytes=product_images.MAX_BYTES,
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RuleViolation(
                f"Ảnh quá lớn — the upload is over {product_images.MAX_BYTES // (1024 * 1024)} MB",
                code="image_too_large",
                max_bytes=product_images.MAX_BYTES,
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def _once(body: bytes) -> AsyncGenerator[bytes, None]:
    yield body


async def image_upload(request: Request) -> bytes | None:
    """The uploaded image's bytes: the raw body, or the ``file`` part of a form; None for another media type."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type in RAW_TYPES:
        # One byte over the limit is enough for the domain to refuse it with its own reason.
        return await _read(request, product_images.MAX_BYTES + 1)
    if media_type != "multipart/form-data":
        return None
    body = await _read(request, product_images.MAX_BYTES + MULTIPART_SLACK)
    try:
        form = await MultiPartParser(request.headers, _once(body), max_files=1, max_fields=10).parse()
    except MultiPartException as error:
        raise RuleViolation(
            f"Biểu mẫu hỏng — the form could not be read: {error.message}", code="form_invalid"
        ) from None
    upload = form.get("file")
    try:
        if not isinstance(upload, UploadFile):
            raise RuleViolation("Thiếu tệp ảnh — send the image as the form field 'file'", code="image_missing")
        return await upload.read()
    finally:
        await form.close()


@router.put(
    "/products/{product_id}/image",
    response_model=product_images.ProductImagePublic,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                **{t: {"schema": {"type": "string", "format": "binary"}} for t in RAW_TYPES},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                },
            },
        }
    },
    responses={415: {"description": "Not an image upload (send image/jpeg, image/png, image/webp or a form)"}},
)
def put_image(
    data: Annotated[bytes | None, Depends(image_upload)], session: SessionDep, actor: CurrentActor, product_id: DbId
) -> product_images.ProductImagePublic | Response:
    """Set the product's image (JPEG, PNG or WebP up to 8 MB): stored as a small WebP without metadata."""
    # ``data`` comes first: a slow upload is read before this request holds a database connection.
    if data is None:
        return problem(
            415,
            "Send the image itself as image/jpeg, image/png or image/webp, or a multipart form with a 'file' field",
            "unsupported_media_type",
            f"/api/v1/products/{product_id}/image",
        )
    row = product_images.set_image(session=session, actor=actor, product_id=product_id, data=data)
    return product_images.to_public(row)


@router.delete("/products/{product_id}/image", status_code=204)
def delete_image(session: SessionDep, actor: CurrentActor, product_id: DbId) -> Response:
    """Remove the product's image (nothing to remove is not an error)."""
    product_images.delete_image(session=session, actor=actor, product_id=product_id)
    return Response(status_code=204)


@media.get(
    "/media/products/{product_id}/{digest}.webp",
    response_class=Response,
    responses={200: {"content": {product_images.MEDIA_TYPE: {}}}, 304: {"description": "Not modified"}},
)
def product_image(session: SessionDep, request: Request, product_id: str, digest: str) -> Response:
    """A product's image (public); its path names its content, so it may be cached for a year."""
    found = None
    # One spelling per image (no leading zeros), and only ids either database can hold.
    if product_id.isascii() and product_id.isdigit() and product_id[0] != "0" and int(product_id) <= 2_147_483_647:
        found = product_images.served(session=session, product_id=int(product_id), digest=digest)
    if found is None:
        raise NotFound(
            "Không có ảnh này — no such image (the product has none, or it has changed)", code="image_not_found"
        )
    content, full_digest = found
    etag = f'"{full_digest}"'
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE, "X-Content-Type-Options": "nosniff"}
    wanted = {tag.strip().removeprefix("W/") for tag in request.headers.get("if-none-match", "").split(",")}
    if etag in wanted or "*" in wanted:
        return Response(status_code=304, headers=headers)
    return Response(content, media_type=product_images.MEDIA_TYPE, headers=headers)
