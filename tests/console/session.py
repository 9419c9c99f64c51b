"""Driving the console in a browser: signing in, waiting for text, and saving screenshots of the
views into the test output (`$BERTH_TEST_OUTPUT/console/`, else `test-output/console/` at the
top of the checkout)."""
from __future__ import annotations

import json
import os
from pathlib import Path

from berth_process import ACCESS_KEY, SECRET_KEY, BerthProcess
from console.chromium import Chromium

ROOT = Path(__file__).resolve().parents[2]


def sign_in(browser: Chromium, berth: BerthProcess, secret: str = SECRET_KEY,
            path: str = "") -> None:
    browser.navigate(f"{berth.endpoint}/console/{path}")
    browser.wait_for("!document.getElementById('signin-view').hidden")
    browser.fill("#access-key", ACCESS_KEY)
    browser.fill("#secret-key", secret)
    browser.click("#signin button[type=submit]")


def signed_in(browser: Chromium, berth: BerthProcess, path: str = "") -> None:
    sign_in(browser, berth, path=path)
    browser.wait_for("document.getElementById('signin-view').hidden")


def wait_text(browser: Chromium, selector: str, pattern: str, timeout: float = 20) -> str:
    """Wait until the element's text matches the regex; return the text."""
    browser.wait_for(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                     f" return e && new RegExp({json.dumps(pattern)}).test(e.textContent); }})()",
                     timeout)
    return browser.text(selector)


def screenshot_dir() -> Path:
    out = Path(os.environ.get("BERTH_TEST_OUTPUT") or ROOT / "test-output") / "console"
    out.mkdir(parents=True, exist_ok=True)
    return out


def screenshot(browser: Chromium, name: str) -> Path:
    """Save the page as `<name>.png` in the test output; fails on a blank capture."""
    path = screenshot_dir() / f"{name}.png"
    data = browser.screenshot(path)
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, name
    return path
