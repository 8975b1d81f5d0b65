"""Debian's headless Chromium, driven by Playwright, for the tests of the two HTML pages.

Never a browser Playwright downloads: the `chromium` on PATH (.ci/run installs Debian's). The
`browser` fixture skips only when there is none, saying so; CI has it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    binary = shutil.which("chromium")
    if binary is None:
        pytest.skip("no chromium on PATH: install Debian's chromium (.ci/run does) to test the HTML pages")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # Playwright gives every launch a new empty profile (--user-data-dir) and runs it headless.
        b = p.chromium.launch(executable_path=binary, args=CHROMIUM_FLAGS)
        yield b
        b.close()
