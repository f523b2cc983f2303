"""Every workspace page each demo user can reach, in a real headless Chromium on a 360 px phone: it
opens without an error, needs no sideways scrolling, breaks no rule of the page's CSP, its buttons
and fields are big enough to tap, and it passes the accessibility checks of tests/e2e/a11y.py (headings,
alt text, named controls, WCAG AA contrast). The pages are found as users find them (the menu, then the links on
each page), so a page added later is toured without changing this test. Screenshots go to
test-artifacts/workspace-tour/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e import a11y
from tests.e2e.live import ARTIFACTS, PHONE, Server, demo_server, phone, sign_in
from trace.demo.data import USERS
from trace.platform.config import get_settings

SHOTS = ARTIFACTS / "workspace-tour"
WAIT_MS = 10_000
PER_USER = 40  # pages toured per person at most (the menu's, then what they link to)
SMALLEST_TAP = 40  # CSS pixels: buttons, fields and menu links (WCAG's 44 less a little for borders)
# Links that change something or leave the workspace are not followed by a tour.
SKIP = re.compile(r"/(logout|file|reprint|cancel|trace\.(csv|xlsx))(\b|$)|\.(csv|xlsx|pdf|zip)$")
PEOPLE = [(email, role.value) for _, email, _, role in USERS] + [(get_settings().admin_email, "admin")]


@pytest.fixture(scope="module")
def server(databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    with demo_server(databases.new(), tmp_path_factory.mktemp("workspace-tour")) as running:
        yield running


def _problems(page: Any) -> list[str]:
    """What is wrong with the page in view: sideways scrolling, controls too small to tap, and what a
    screen reader or a low-vision reader would miss (tests/e2e/a11y.py)."""
    found = a11y.problems(page)
    width = page.evaluate("document.scrollingElement.scrollWidth")
    if width > PHONE["width"]:
        found.append(f"{width} px wide")
    small = page.evaluate(
        """(least) => [...document.querySelectorAll(
        'button, input:not([type=hidden]):not([type=checkbox]):not([type=radio]), select, textarea, nav a')]
        .filter(e => e.offsetParent !== null)
        .map(e => [e.tagName.toLowerCase() + (e.name ? '[name=' + e.name + ']' : '') + ' '
                   + (e.textContent || '').trim().slice(0, 30),
                   e.getBoundingClientRect().height])
        .filter(([, h]) => h < least)""",
        SMALLEST_TAP,
    )
    found += [f"{what!r} only {height:.0f} px high" for what, height in small]
    return found


def _kind(path: str) -> str:
    """/app/lots/12?direction=forward → /app/lots/N: the page a link leads to, whatever it shows."""
    return re.sub(r"\d+", "N", path.split("?")[0])


@pytest.mark.parametrize(("email", "role"), PEOPLE, ids=[email.split("@")[0] for email, _ in PEOPLE])
def test_every_page_a_person_reaches_fits_a_phone_and_keeps_to_its_rules(
    browser: Any, server: Server, email: str, role: str
) -> None:
    with phone(browser) as page:
        page.context.set_default_timeout(WAIT_MS)
        refused: list[str] = []  # the browser's console says when the CSP blocks anything
        page.on(
            "console",
            lambda message: (
                refused.append(f"{page.url}: {message.text} {message.location.get('url', '')}")
                if message.type == "error"
                else None
            ),
        )
        sign_in(page, server, email)

        menu = [a for a in page.eval_on_selector_all("nav.menu a", "links => links.map(a => a.getAttribute('href'))")]
        assert "/app" in menu and "/account/password" in menu
        queue, seen, problems = list(menu), set(), {}
        kinds = {_kind(path) for path in menu}
        while queue and len(seen) < PER_USER:
            path = queue.pop(0)
            if path in seen or SKIP.search(path):
                continue
            seen.add(path)
            response = page.goto(f"{server.base}{path}")
            assert response is not None and response.status < 400, (
                f"{email}: {path} answered {response and response.status}"
            )
            if wrong := _problems(page):
                problems[path] = wrong
            name = f"{role}-{email.split('@')[0]}-{re.sub(r'[^a-z0-9]+', '-', path.lower()).strip('-') or 'start'}"
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
            links = page.eval_on_selector_all(
                "main a[href^='/app'], main a[href^='/account']", "links => links.map(a => a.getAttribute('href'))"
            )
            # One of each kind of link (a lot, a right, a print run...) is enough to see that kind of page.
            for link in links:
                if _kind(link) not in kinds:
                    kinds.add(_kind(link))
                    queue.append(link)
        assert len(seen) >= len(menu) - 1, seen
        assert problems == {}, f"{email}: {problems}"
        assert refused == [], f"{email}: the browser reported {refused}"
