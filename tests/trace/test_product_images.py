"""Product images: only the owner sets them; every upload is re-encoded upright, small, as WebP
without metadata; bad files are refused with a reason; the demo products have pictures."""

from __future__ import annotations

import hashlib
import io
import random
import struct
import zlib

import pytest
from PIL import ExifTags, Image, ImageCms, ImageOps
from sqlmodel import Session, select

from tests import factories as f
from tests.api.helpers import count
from trace import demo, product_images
from trace.access import Actor, Role
from trace.demo import images as demo_images
from trace.errors import Forbidden, NotFound, RuleViolation
from trace.product_images import ProductImage
from trace.products import Product

GPS = {1: "N", 2: (20.0, 39.0, 30.5), 3: "E", 4: (106.0, 3.0, 12.0)}  # a farmer's house, say
METADATA_CHUNKS = {b"EXIF", b"XMP ", b"ICCP"}


def photo(size: tuple[int, int] = (2000, 1000), orientation: int = 6) -> bytes:
    """A camera-like JPEG: left half red, right half blue, with EXIF (orientation, GPS, make), ICC and a comment."""
    image = Image.new("RGB", size, "blue")
    image.paste("red", (0, 0, size[0] // 2, size[1]))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "Điện thoại của nông dân"
    exif.get_ifd(ExifTags.IFD.GPSInfo).update(GPS)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, exif=exif, icc_profile=icc, comment=b"nha rieng")
    return out.getvalue()


def webp_chunks(data: bytes) -> list[bytes]:
    """The chunk ids of a RIFF/WebP file, read by hand (independent of Pillow)."""
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    chunks, at = [], 12
    while at + 8 <= len(data):
        kind, size = data[at : at + 4], struct.unpack("<I", data[at + 4 : at + 8])[0]
        chunks.append(kind)
        at += 8 + size + (size & 1)
    assert at == len(data)
    return chunks


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares a huge canvas (a decompression bomb's calling card)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


@pytest.fixture
def owned(session: Session) -> tuple[int, Actor]:
    org = f.org(session)
    product = f.product(session, org)
    assert product.id is not None
    return product.id, f.member(org)


def test_an_upload_is_stored_upright_within_640px_as_webp_without_any_metadata(
    session: Session, owned: tuple[int, Actor]
) -> None:
    # given a phone photo whose EXIF holds GPS and says "rotate 90° to view"
    product_id, actor = owned
    data = photo()
    original = Image.open(io.BytesIO(data))
    assert original.getexif().get_ifd(ExifTags.IFD.GPSInfo) and "icc_profile" in original.info
    # when its organisation's member uploads it
    row = product_images.set_image(session=session, actor=actor, product_id=product_id, data=data)
    # then the stored file is a WebP within 640 px, turned upright as a viewer would show it
    stored = Image.open(io.BytesIO(row.content))
    assert stored.format == "WEBP" and row.media_type == "image/webp"
    assert stored.size == (row.width, row.height) == (320, 640)
    upright = ImageOps.exif_transpose(original)
    assert upright is not None and upright.size == (1000, 2000)
    for y in (60, 580):  # the top is red and the bottom blue, as in the upright original
        expected = upright.getpixel((500, y * 2000 // 640))
        got = stored.convert("RGB").getpixel((160, y))
        assert isinstance(expected, tuple) and isinstance(got, tuple)
        assert all(abs(a - b) < 40 for a, b in zip(got, expected, strict=True)), (y, got, expected)
    # and it carries no EXIF (so no GPS), no XMP and no ICC profile, by Pillow's reading and by the RIFF chunks
    assert not stored.getexif() and not METADATA_CHUNKS & set(webp_chunks(row.content))
    assert {"exif", "xmp", "icc_profile", "comment"}.isdisjoint(stored.info)
    assert b"Exif" not in row.content and b"nha rieng" not in row.content
    # and it is small, and named by its content
    assert len(row.content) < 40_000
    assert row.digest == hashlib.sha256(row.content).hexdigest()
    assert product_images.image_info(session=session, product_id=product_id) == (
        f"/media/products/{product_id}/{row.digest[:16]}.webp",
        320,
        640,
    )


def test_a_small_image_keeps_its_size_and_transparency_becomes_white(
    session: Session, owned: tuple[int, Actor]
) -> None:
    product_id, actor = owned
    image = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    image.paste((0, 128, 0, 255), (0, 0, 150, 200))
    row = product_images.set_image(session=session, actor=actor, product_id=product_id, data=encoded(image))
    stored = Image.open(io.BytesIO(row.content)).convert("RGB")
    assert stored.size == (300, 200)
    right, left = stored.getpixel((250, 100)), stored.getpixel((50, 100))
    assert isinstance(right, tuple) and isinstance(left, tuple)
    assert min(right) > 235  # transparent -> white, not black
    assert left[1] > 100 and left[0] < 40 and left[2] < 40


@pytest.mark.parametrize("role", [Role.MEMBER, Role.ORG_ADMIN, Role.ADMIN])
def test_the_owning_organisation_and_the_province_admin_may_set_the_image(session: Session, role: Role) -> None:
    org = f.org(session)
    product = f.product(session, org)
    actor = f.ADMIN if role == Role.ADMIN else f.member(org, role)
    row = product_images.set_image(session=session, actor=actor, product_id=product.id, data=photo())  # type: ignore[arg-type]
    assert product_images.get_image(session=session, product_id=product.id) is row  # type: ignore[arg-type]


@pytest.mark.parametrize("who", ["other_member", "other_admin", "inspector"])
def test_no_one_else_may_set_or_delete_it(session: Session, owned: tuple[int, Actor], who: str) -> None:
    product_id, owner = owned
    other = f.org(session)
    actor = {
        "other_member": f.member(other),
        "other_admin": f.member(other, Role.ORG_ADMIN),
        "inspector": Actor(role=Role.INSPECTOR, organisation_id=other.id),
    }[who]
    with pytest.raises(Forbidden):
        product_images.set_image(session=session, actor=actor, product_id=product_id, data=photo())
    assert count(session, ProductImage) == 0
    product_images.set_image(session=session, actor=owner, product_id=product_id, data=photo())
    with pytest.raises(Forbidden):
        product_images.delete_image(session=session, actor=actor, product_id=product_id)
    assert product_images.get_image(session=session, product_id=product_id) is not None


def test_an_unknown_product_is_not_found(session: Session) -> None:
    with pytest.raises(NotFound):
        product_images.set_image(session=session, actor=f.ADMIN, product_id=2_000_000_000, data=photo())


def _forged_bomb() -> bytes:
    return png_header_only(30_000, 30_000)


def _real_bomb() -> bytes:
    # 48 megapixels of one colour compress to a few KB
    return encoded(Image.new("1", (8000, 6000)))


def _truncated() -> bytes:
    return photo()[:600]


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda: b"", "image_empty"),
        (lambda: b"this is not an image at all" * 10, "image_unreadable"),
        (_truncated, "image_unreadable"),
        (lambda: encoded(Image.new("RGB", (50, 50)), "GIF"), "image_unreadable"),  # a real image, not an allowed format
        (lambda: encoded(Image.new("RGB", (50, 50)), "BMP"), "image_unreadable"),
        (_forged_bomb, "image_too_large"),
        (_real_bomb, "image_too_large"),
        (lambda: b"\xff\xd8\xff" + b"\x00" * product_images.MAX_BYTES, "image_too_large"),
    ],
)
def test_bad_files_are_refused_with_a_reason_and_nothing_is_stored(
    session: Session, owned: tuple[int, Actor], make: object, code: str
) -> None:
    product_id, actor = owned
    with pytest.raises(RuleViolation) as refused:
        product_images.set_image(session=session, actor=actor, product_id=product_id, data=make())  # type: ignore[operator]
    assert refused.value.code == code
    assert refused.value.message  # a reason a person can read
    assert count(session, ProductImage) == 0


def test_a_bad_upload_leaves_the_previous_image_in_place(session: Session, owned: tuple[int, Actor]) -> None:
    product_id, actor = owned
    before = product_images.set_image(session=session, actor=actor, product_id=product_id, data=photo()).digest
    with pytest.raises(RuleViolation):
        product_images.set_image(session=session, actor=actor, product_id=product_id, data=b"garbage")
    assert product_images.get_image(session=session, product_id=product_id).digest == before  # type: ignore[union-attr]


def test_a_new_image_gets_a_new_path_and_the_old_one_is_no_longer_served(
    session: Session, owned: tuple[int, Actor]
) -> None:
    product_id, actor = owned
    first = product_images.set_image(session=session, actor=actor, product_id=product_id, data=photo())
    old_digest = first.digest
    assert product_images.served(session=session, product_id=product_id, digest=old_digest[:16]) == (
        first.content,
        old_digest,
    )
    second = product_images.set_image(
        session=session, actor=actor, product_id=product_id, data=photo((800, 800), orientation=1)
    )
    assert second.digest != old_digest and second.width == second.height == 640
    assert product_images.served(session=session, product_id=product_id, digest=old_digest[:16]) is None
    assert product_images.served(session=session, product_id=product_id, digest=second.digest[:16]) is not None
    assert product_images.served(session=session, product_id=product_id, digest=second.digest) is None  # 16 chars only


def test_deleting_removes_the_image_and_is_harmless_when_there_is_none(
    session: Session, owned: tuple[int, Actor]
) -> None:
    product_id, actor = owned
    row = product_images.set_image(session=session, actor=actor, product_id=product_id, data=photo())
    digest = row.digest
    assert product_images.delete_image(session=session, actor=actor, product_id=product_id) is True
    assert product_images.get_image(session=session, product_id=product_id) is None
    assert product_images.image_info(session=session, product_id=product_id) is None
    assert product_images.served(session=session, product_id=product_id, digest=digest[:16]) is None
    assert product_images.delete_image(session=session, actor=actor, product_id=product_id) is False


def test_every_demo_product_has_its_own_picture(session: Session) -> None:
    demo.load_demo(session=session)
    digests = set()
    for key in demo.PRODUCTS:
        product = session.exec(select(Product).where(Product.gtin == demo.demo_gtin(key))).one()
        assert product.id is not None
        info = product_images.image_info(session=session, product_id=product.id)
        assert info is not None, key
        row = product_images.get_image(session=session, product_id=product.id)
        assert row is not None
        picture = Image.open(io.BytesIO(row.content))
        assert picture.format == "WEBP" and picture.size == (info[1], info[2]) and max(picture.size) <= 640
        assert len(picture.getcolors(1 << 16) or range(1 << 16)) > 2  # drawn, not a blank card
        digests.add(row.digest)
    assert len(digests) == len(demo.PRODUCTS)


def test_demo_pictures_are_the_same_on_every_load() -> None:
    for category in demo_images.PICTURES:
        assert demo_images.picture(category).tobytes() == demo_images.picture(category).tobytes()
    assert demo_images.picture("longan_fresh").tobytes() != demo_images.picture("longan_dried").tobytes()


def test_damaged_files_are_refused_as_unreadable_never_with_another_error(
    session: Session, owned: tuple[int, Actor]
) -> None:
    # given valid small files of each accepted kind, with bytes flipped, cut or spliced at random (seeded)
    product_id, actor = owned
    rng = random.Random(5)
    sources = [
        photo((64, 48)),
        encoded(Image.new("RGBA", (64, 48), (10, 200, 30, 128))),
        encoded(Image.new("RGB", (64, 48), "purple"), "WEBP"),
    ]
    accepted = refused = 0
    for n in range(240):
        data = bytearray(sources[n % len(sources)])
        for _ in range(rng.randint(1, 8)):
            at = rng.randrange(len(data))
            data[at] = rng.randrange(256)
        if n % 4 == 0:
            data = data[: rng.randrange(8, len(data))]
        # when each is uploaded, then it is stored or refused with a reason: nothing else escapes
        try:
            with session.begin_nested():
                product_images.set_image(session=session, actor=actor, product_id=product_id, data=bytes(data))
            accepted += 1
        except RuleViolation as error:
            assert error.code in {"image_unreadable", "image_too_large"}, error.code
            refused += 1
    assert refused > 0 and accepted + refused == 240
