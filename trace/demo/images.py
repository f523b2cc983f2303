"""Illustrative pictures of the demo products, drawn with simple shapes at load time (no photos, no text)."""

from __future__ import annotations

import random
from collections.abc import Callable

from PIL import Image, ImageDraw
from sqlmodel import Session, select

from trace.access import Actor
from trace.demo.data import PRODUCTS, SEED, demo_gtin
from trace.product_images import set_picture
from trace.products import Product

SIZE = (480, 360)
Draw = Callable[[ImageDraw.ImageDraw, random.Random], None]


def _longan(draw: ImageDraw.ImageDraw, rng: random.Random, *, dried: bool) -> None:
    """A cluster of round fruit: tan and smooth when fresh, dark and flattened when dried."""
    fill, rim = ("#6b3f1d", "#3f2410") if dried else ("#c9a063", "#8a6634")
    top, bottom = (170, 230) if dried else (130, 265)  # inside the box, or on the plate
    for _ in range(26):
        x, y = min(max(rng.gauss(240, 62), 130), 350), min(max(rng.gauss(200, 38), top), bottom)
        r = rng.uniform(24, 30)
        squash = rng.uniform(0.7, 0.85) if dried else 1.0
        draw.ellipse((x - r, y - r * squash, x + r, y + r * squash), fill=fill, outline=rim, width=3)
        draw.ellipse(
            (x - r * 0.5, y - r * 0.6 * squash, x - r * 0.1, y - r * 0.25 * squash),
            fill="#8c5a2e" if dried else "#e6c793",
        )  # a highlight


def _fresh(draw: ImageDraw.ImageDraw, rng: random.Random) -> None:
    draw.rectangle((0, 0, *SIZE), fill="#e4efd3")
    draw.ellipse((70, 230, 410, 330), fill="#f7f7f2", outline="#b9b9ae", width=4)  # the plate
    draw.line((240, 40, 232, 150), fill="#6d4b25", width=7)  # the stalk
    draw.polygon([(236, 70), (300, 40), (330, 60), (262, 86)], fill="#5f8f3a")  # a leaf
    draw.polygon([(232, 90), (168, 66), (144, 84), (214, 104)], fill="#4f7d30")
    _longan(draw, rng, dried=False)


def _dried(draw: ImageDraw.ImageDraw, rng: random.Random) -> None:
    draw.rectangle((0, 0, *SIZE), fill="#f4e6c7")
    draw.rectangle((90, 150, 390, 330), fill="#b8874f", outline="#7d5a30", width=5)  # the box
    draw.polygon([(90, 150), (60, 110), (140, 110), (160, 150)], fill="#caa06a")  # open flaps
    draw.polygon([(390, 150), (420, 110), (340, 110), (320, 150)], fill="#caa06a")
    _longan(draw, rng, dried=True)
    draw.rectangle((90, 240, 390, 330), fill="#b8874f", outline="#7d5a30", width=5)  # the box's front


def _meat(draw: ImageDraw.ImageDraw, rng: random.Random) -> None:
    draw.rectangle((0, 0, *SIZE), fill="#dde9f2")
    draw.rounded_rectangle((60, 80, 420, 300), radius=28, fill="#fafafa", outline="#a9b4bd", width=5)  # the tray
    for _ in range(7):
        x, y = rng.uniform(130, 350), rng.uniform(140, 240)
        w, h = rng.uniform(42, 62), rng.uniform(28, 40)
        draw.ellipse((x - w, y - h, x + w, y + h), fill="#f0b49c", outline="#c98670", width=3)
    draw.line((90, 110, 200, 100), fill="#ffffff", width=6)  # film sheen


def _chicken(draw: ImageDraw.ImageDraw, rng: random.Random) -> None:
    draw.rectangle((0, 0, *SIZE), fill="#e9f3dc")
    draw.rectangle((0, 290, SIZE[0], SIZE[1]), fill="#9cc56d")  # grass
    draw.rectangle((195, 230, 225, 310), fill="#d9763a")  # thick legs, as Đông Tảo chickens have
    draw.rectangle((255, 230, 285, 310), fill="#d9763a")
    draw.ellipse((130, 110, 350, 260), fill="#8a3b1c", outline="#5e2610", width=4)  # body
    draw.polygon([(130, 170), (80, 100), (110, 190)], fill="#2f2a25")  # tail
    draw.ellipse((300, 60, 380, 140), fill="#a04a24", outline="#5e2610", width=4)  # head
    for cx in (322, 340, 358):
        draw.ellipse((cx - 11, 42, cx + 11, 66), fill="#d8262b")  # comb
    draw.polygon([(378, 92), (410, 102), (376, 112)], fill="#f2b705")  # beak
    draw.ellipse((345, 84, 357, 96), fill="#1c1c1c")  # eye


def _card(draw: ImageDraw.ImageDraw, rng: random.Random) -> None:
    draw.rectangle((0, 0, *SIZE), fill="#eeeeee")
    draw.ellipse((170, 110, 310, 250), fill="#9aa89a")


PICTURES: dict[str, Draw] = {
    "longan_fresh": _fresh,
    "longan_dried": _dried,
    "chicken_meat": _meat,
    "chicken_live": _chicken,
}


def picture(category: str) -> Image.Image:
    """The demo picture for a product category (a plain card for one without its own)."""
    image = Image.new("RGB", SIZE)
    PICTURES.get(category, _card)(ImageDraw.Draw(image), random.Random(f"{SEED}:{category}"))
    return image


def add_demo_images(*, session: Session, actors: dict[str, Actor]) -> int:
    """Give each demo product its picture, stored by its own organisation's actor; returns how many."""
    for key, (org, *_) in PRODUCTS.items():
        product = session.exec(select(Product).where(Product.gtin == demo_gtin(key))).one()
        assert product.id is not None
        set_picture(session=session, actor=actors[org], product_id=product.id, picture=picture(product.category))
    return len(PRODUCTS)
