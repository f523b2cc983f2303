"""The accessibility checker of the browser tests (tests/e2e/a11y.py) finds what it claims to find:
each fault on a page made for it, and nothing on a page without faults."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e import a11y

GOOD = """<!doctype html><html lang="vi"><head><title>Tốt</title></head>
<body style="background:#f6f5f1;color:#1b1b1b"><h1>Tiêu đề</h1><h2>Phần</h2><h3>Mục</h3>
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" alt="Ảnh sản phẩm" width="1" height="1">
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" alt="" aria-hidden="true" width="1" height="1">
<p style="color:#0b5394">Liên kết <a href="/x">xem thêm</a></p>
<label for="q">Mã</label><input id="q"><button>Kiểm tra</button>
<p style="background:#9b1c1c;color:#fff">ĐÃ THU HỒI</p>
<p style="font-size:24px;color:#767676">Chữ lớn 4,5:1 không cần</p>
<details><summary>Chi tiết</summary><p style="color:#eee">ẩn khi đóng</p></details>
</body></html>"""

FAULTS = {
    "no language": ("<html><head><title>t</title></head><body><h1>a</h1></body></html>", "names no language"),
    "no title": ('<html lang="vi"><head></head><body><h1>a</h1></body></html>', "has no title"),
    "two h1": ('<html lang="vi"><head><title>t</title></head><body><h1>a</h1><h1>b</h1></body></html>', "2 h1"),
    "skipped level": (
        '<html lang="vi"><head><title>t</title></head><body><h1>a</h1><h3>b</h3></body></html>',
        "heading h3 after h1",
    ),
    "image without alt": (
        '<html lang="vi"><head><title>t</title></head><body><h1>a</h1>'
        '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" width="9" height="9"></body></html>',
        "image without alt text",
    ),
    "unlabelled field": (
        '<html lang="vi"><head><title>t</title></head><body><h1>a</h1><input id="q"></body></html>',
        "control without a name",
    ),
    "empty link": (
        '<html lang="vi"><head><title>t</title></head><body><h1>a</h1><a href="/x"> </a>'
        '<a href="/y" style="display:inline-block;width:20px;height:20px"></a></body></html>',
        "control without a name",
    ),
    "grey on white": (
        '<html lang="vi"><head><title>t</title></head><body><h1>a</h1><p style="color:#999">nhạt</p></body></html>',
        "contrast 2.85:1 (needs 4.5:1)",
    ),
    "white on a light banner": (
        '<html lang="vi"><head><title>t</title></head><body><h1>a</h1>'
        '<div style="background:#f1a208"><p style="color:#fff">trắng</p></div></body></html>',
        "needs 4.5:1",
    ),
    "half-transparent text": (
        '<html lang="vi"><head><title>t</title></head><body><h1>a</h1>'
        '<p style="color:rgba(0,0,0,.3)">mờ</p></body></html>',
        "needs 4.5:1",
    ),
}


@pytest.fixture
def page(browser: Any) -> Any:
    context = browser.new_context()
    yield context.new_page()
    context.close()


def test_a_page_without_faults_has_no_problems(page: Any) -> None:
    page.set_content(GOOD)
    assert a11y.problems(page) == []


@pytest.mark.parametrize("name", FAULTS)
def test_each_fault_is_found(page: Any, name: str) -> None:
    html, expected = FAULTS[name]
    page.set_content(html)
    found = a11y.problems(page)
    assert any(expected in problem for problem in found), found
