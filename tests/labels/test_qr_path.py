"""The one-pass PDF path of a QR draws exactly the modules of the rectangle-by-rectangle one."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from labels.qr import pdf_path, pdf_qr_path, qr_matrix, rectangles

URIS = st.text(alphabet="ABCDEFGHJKMNPQRSTVWXYZ0123456789%/-._", min_size=1, max_size=20).map(
    lambda tail: "https://truyxuat.example.vn/01/09520002000019/10/LN2607/21/" + tail
)


@settings(max_examples=60, deadline=None)
@given(uri=URIS)
def test_the_one_pass_path_equals_the_rectangle_path_and_covers_every_dark_module(uri: str) -> None:
    side, path = pdf_qr_path(uri)
    assert (side, path) == (rectangles(uri)[0], pdf_path(rectangles(uri)[1]))
    # and painting its rectangles gives back the symbol, module for module
    painted = [[False] * side for _ in range(side)]
    ops = path.removesuffix(" f").split(" re")
    for op in filter(None, (o.strip() for o in ops)):
        x, y, w, h = map(int, op.split())
        assert h == 1 and w >= 1
        for dx in range(w):
            assert not painted[y][x + dx]
            painted[y][x + dx] = True
    assert painted == qr_matrix(uri)
