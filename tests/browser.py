"""Headless chromium for the console's browser tests: Debian's chromium driven by Playwright
(never a downloaded browser), the console's login form, a folder of screenshots kept after the
run to look at, and the 1366-pixel "no sideways scroll" check.

Open the browser after the test's rows are written: Playwright's sync API runs an event loop in
this thread, and Django refuses ORM calls inside one (write from another thread meanwhile).
"""

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
WIDTH = 1366  # the narrowest laptop screen the console is made for
PASSWORD = "pw-for-tests"  # every factory-made user's (tests.factories.UserFactory)


def playwright_or_skip():
    """Playwright's ``sync_playwright``; skips the test when chromium or Playwright is missing."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package to run the browser test")
    return pytest.importorskip("playwright.sync_api").sync_playwright


@contextmanager
def launch(*, extra_args: tuple[str, ...] = ()) -> Iterator:
    """A headless chromium browser, closed on the way out."""
    with playwright_or_skip()() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args])
        try:
            yield browser
        finally:
            browser.close()


def shots_dir(name: str) -> Path:
    """A folder for a test's screenshots under the system's temp dir, kept after the run."""
    path = Path(tempfile.gettempdir()) / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def login(page, base_url: str, username: str, password: str = PASSWORD, *, next_url: str = "") -> None:
    """Signs in through the console's login form (and waits for the page it leads to)."""
    page.goto(f"{base_url}/admin/login/" + (f"?next={next_url}" if next_url else ""))
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.locator("#login-form [type=submit]").click()


def page_width(page) -> int:
    """How wide the page's content is: more than the window means a sideways scroll bar."""
    return page.evaluate("document.documentElement.scrollWidth")


def assert_no_sideways_scroll(page, width: int = WIDTH) -> None:
    """The page fits ``width`` pixels (the window should be that wide)."""
    assert page_width(page) <= width, f"{page.url} is {page_width(page)} px wide, more than {width}"
