"""Product images: checked and re-encoded on upload (small WebP, no metadata), served from our own host."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from datetime import datetime

from PIL import Image, ImageCms, UnidentifiedImageError
from sqlalchemy import Column, LargeBinary
from sqlmodel import Field, Session, SQLModel, select

from trace.access import Actor, require_member_of
from trace.errors import RuleViolation
from trace.platform.timeutil import utcnow
from trace.products import get_product

MAX_BYTES = 8 * 1024 * 1024  # an upload larger than this is refused before decoding
MAX_PIXELS = 40_000_000  # a small file may declare a huge canvas (decompression bomb)
MAX_SIDE = 640  # the stored image fits in MAX_SIDE x MAX_SIDE: plenty for a phone page
QUALITY = 75
MEDIA_TYPE = "image/webp"
URL_DIGEST = 16  # hex characters of the sha256 in the public URL
# Only these decoders ever see uploaded bytes: Pillow's rarer formats are attack surface we don't need.
FORMATS = ("JPEG", "PNG", "WEBP")
# EXIF orientation -> the transposition that puts the picture upright.
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_ORIENTATION = 0x0112
_SRGB = ImageCms.createProfile("sRGB")


class ProductImage(SQLModel, table=True):
    """The one image of a product, as served: WebP, at most 640 px a side, no metadata."""

    __tablename__ = "product_image"

    product_id: int = Field(foreign_key="product.id", primary_key=True)
    media_type: str = Field(default=MEDIA_TYPE, max_length=40)
    width: int
    height: int
    digest: str = Field(max_length=64, description="sha256 (hex) of content")
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)


class ProductImagePublic(SQLModel):
    url: str = Field(description="Path of the image on this host; it changes whenever the image does")
    width: int
    height: int
    bytes: int = Field(description="Size of the stored WebP file")


@dataclass(frozen=True)
class Encoded:
    """An image ready to store."""

    content: bytes
    width: int
    height: int


def image_path(product_id: int, digest: str) -> str:
    """The public path of a product's image; a new image gets a new path (served as immutable)."""
    return f"/media/products/{product_id}/{digest[:URL_DIGEST]}.webp"


def to_public(row: ProductImage) -> ProductImagePublic:
    """What the API returns about a stored image."""
    return ProductImagePublic(
        url=image_path(row.product_id, row.digest), width=row.width, height=row.height, bytes=len(row.content)
    )


def normalise(data: bytes) -> Encoded:
    """Check an uploaded image and re-encode it: upright, RGB, within 640 px, WebP, all metadata dropped."""
    if not data:
        raise RuleViolation("Không có ảnh — the body is empty; send a JPEG, PNG or WebP image", code="image_empty")
    if len(data) > MAX_BYTES:
        raise RuleViolation(
            f"Ảnh quá lớn — the file is over {MAX_BYTES // (1024 * 1024)} MB",
            code="image_too_large",
            max_bytes=MAX_BYTES,
        )
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise RuleViolation(
                f"Ảnh quá lớn — {width}x{height} is over {MAX_PIXELS // 1_000_000} megapixels",
                code="image_too_large",
                max_pixels=MAX_PIXELS,
            )
        orientation = image.getexif().get(_ORIENTATION, 1)
        # A JPEG decodes straight to a reduced scale (still at least 640 px): big photos stay cheap.
        image.draft(None, (MAX_SIDE, MAX_SIDE))
        picture = _rgb(image)
    except RuleViolation:
        raise
    except Image.DecompressionBombError:
        raise RuleViolation(
            "Ảnh quá lớn — the image declares far too many pixels", code="image_too_large", max_pixels=MAX_PIXELS
        ) from None
    except UnidentifiedImageError:
        raise RuleViolation("Không đọc được ảnh — not a JPEG, PNG or WebP image", code="image_unreadable") from None
    except Exception as error:  # decoders raise many kinds on damaged or crafted files: none may become a 500
        raise RuleViolation(
            f"Không đọc được ảnh — the image is damaged or unsupported ({type(error).__name__})",
            code="image_unreadable",
        ) from None
    if orientation in _UPRIGHT:
        picture = picture.transpose(_UPRIGHT[orientation])
    return encode(picture)


def encode(picture: Image.Image) -> Encoded:
    """An RGB picture, fitted within 640 px, as WebP without any metadata."""
    picture = picture.convert("RGB")
    if max(picture.size) > MAX_SIDE:
        picture.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    # A fresh image carries pixels only: no EXIF (GPS of a farmer's house), XMP, ICC or comments.
    clean = Image.frombytes("RGB", picture.size, picture.tobytes())
    out = io.BytesIO()
    clean.save(out, "WEBP", quality=QUALITY, method=4)
    return Encoded(out.getvalue(), clean.width, clean.height)


def _rgb(image: Image.Image) -> Image.Image:
    """The picture in sRGB with transparency flattened onto white (loads the pixels)."""
    icc = image.info.get("icc_profile")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
    elif image.mode.startswith("I"):
        image = image.point(lambda v: v / 256).convert("L")  # 16-bit grey: keep the top 8 bits
    if icc and image.mode in ("RGB", "CMYK"):
        # Colours in a camera's wide-gamut (Display P3) or a CMYK profile would be off once it is dropped.
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(image, source, _SRGB, outputMode="RGB")
            if converted is not None:
                return converted
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass
    return image.convert("RGB")


def _may_edit(actor: Actor, organisation_id: int) -> None:
    if not actor.is_admin:
        require_member_of(actor, organisation_id)


def store(*, session: Session, product_id: int, encoded: Encoded) -> ProductImage:
    """Put an encoded image in place of the product's current one (no access check: callers do it)."""
    digest = hashlib.sha256(encoded.content).hexdigest()
    row = session.get(ProductImage, product_id)
    if row is None:
        row = ProductImage(
            product_id=product_id, width=encoded.width, height=encoded.height, digest=digest, content=encoded.content
        )
    else:
        row.width, row.height, row.digest, row.content = encoded.width, encoded.height, digest, encoded.content
        row.media_type, row.updated_at = MEDIA_TYPE, utcnow()
    session.add(row)
    session.flush()
    return row


def set_image(*, session: Session, actor: Actor, product_id: int, data: bytes) -> ProductImage:
    """Replace a product's image with an uploaded file (its organisation's members, or the province admin)."""
    product = get_product(session=session, product_id=product_id)
    _may_edit(actor, product.organisation_id)
    return store(session=session, product_id=product_id, encoded=normalise(data))


def set_picture(*, session: Session, actor: Actor, product_id: int, picture: Image.Image) -> ProductImage:
    """Replace a product's image with one drawn in process (the demo), under the same access rule."""
    product = get_product(session=session, product_id=product_id)
    _may_edit(actor, product.organisation_id)
    return store(session=session, product_id=product_id, encoded=encode(picture))


def delete_image(*, session: Session, actor: Actor, product_id: int) -> bool:
    """Remove a product's image; False if it had none."""
    product = get_product(session=session, product_id=product_id)
    _may_edit(actor, product.organisation_id)
    row = session.get(ProductImage, product_id)
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def get_image(*, session: Session, product_id: int) -> ProductImage | None:
    """A product's stored image, or None."""
    return session.get(ProductImage, product_id)


def image_info(*, session: Session, product_id: int) -> tuple[str, int, int] | None:
    """(path, width, height) of a product's image for a page, without reading its bytes; None if it has none."""
    row = session.exec(
        select(ProductImage.digest, ProductImage.width, ProductImage.height).where(
            ProductImage.product_id == product_id
        )
    ).first()
    if row is None:
        return None
    return image_path(product_id, row[0]), row[1], row[2]


def served(*, session: Session, product_id: int, digest: str) -> tuple[bytes, str] | None:
    """The bytes and full digest behind a public image path, or None if the path is unknown or outdated."""
    row = session.exec(
        select(ProductImage.content, ProductImage.digest).where(ProductImage.product_id == product_id)
    ).first()
    if row is None or len(digest) != URL_DIGEST or row[1][:URL_DIGEST] != digest:
        return None
    return row[0], row[1]
