"""Headless Chromium driven by chromedriver (Debian's chromium and chromium-driver) via selenium.

One browser per test session. It never reaches beyond this machine: every host name but
127.0.0.1 resolves to nothing, and Chromium's own background traffic (updates, sync, field
trials) is switched off.

    def test_page(browser: Browser) -> None:
        browser.phone()
        browser.driver.get("http://127.0.0.1:9838/")
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PHONE = (375, 812)  # CSS pixels, an iPhone X-sized viewport
PAGE_LOAD_TIMEOUT = 20.0
ARGUMENTS = (
    "--headless=new",
    "--no-sandbox",  # the tests may run as root (CI, containers), where the sandbox refuses
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-field-trial-config",
    "--metrics-recording-only",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)


def binaries() -> tuple[str, str] | None:
    """(chromium, chromedriver) from PATH, or None when either is missing."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


@dataclass
class Browser:
    """A running headless Chromium, and the viewport it emulates."""

    driver: WebDriver

    def viewport(self, width: int, height: int, mobile: bool) -> None:
        """Emulate a screen of this size in CSS pixels (mobile: honour the viewport meta tag)."""
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
        )

    def phone(self) -> None:
        """A 375 x 812 phone."""
        self.viewport(*PHONE, mobile=True)

    def credentials(self, user: str | None, password: str = "") -> None:
        """Send basic auth credentials with every request from now on (None: send none)."""
        headers = {}
        if user is not None:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        self.driver.execute_cdp_cmd("Network.enable", {})
        self.driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": headers})

    def full_page_screenshot(self, name: str, width: int, mobile: bool) -> Path:
        """A PNG of the whole page at this width, saved under test-artifacts/."""
        self.viewport(width, PHONE[1], mobile)  # the layout at this width, then all of it
        height = int(self.driver.execute_script("return document.documentElement.scrollHeight"))
        self.viewport(width, height, mobile)
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        data = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
        )
        path.write_bytes(base64.b64decode(data["data"]))
        return path


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """Headless Chromium for the session; a failure when it is not installed (make test
    installs it), never a skip."""
    found = binaries()
    if found is None:
        message = "chromium or chromedriver not found (apt-get install chromium chromium-driver)"
        pytest.fail(message, pytrace=False)
    chromium, chromedriver = found
    options = Options()
    options.binary_location = chromium
    for argument in ARGUMENTS:
        options.add_argument(argument)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium')}")
    log = tmp_path_factory.mktemp("chromedriver") / "chromedriver.log"
    service = Service(executable_path=chromedriver, log_output=str(log))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT)
        yield Browser(driver)
    finally:
        driver.quit()
