"""Headless Chromium for the page tests: Debian's chromium through chromedriver.

``requires_chromium`` skips a test module when either is missing (``make
test`` installs both when run as root); the e2e ``browser`` fixture drives
one made by :func:`chromium_driver`, whose console :func:`csp_violations`
reads.
"""

import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

requires_chromium = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="no chromium and chromedriver: apt-get install chromium chromium-driver "
    "(make test installs them when run as root)",
)


def chromium_driver():
    """A selenium driver of headless Chromium, 1200x760; quit it when done."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in CI
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1200,760",
    ):
        options.add_argument(argument)
    # The console, for csp_violations().
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    return driver


def csp_violations(driver) -> list:
    """The console messages since the last call that report a CSP violation."""
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if "Content Security Policy" in entry["message"]
    ]


def provoke_csp_violation(driver) -> None:
    """Run an inline script on the page: a page whose CSP allows none reports it."""
    driver.execute_script(
        "const s = document.createElement('script');"
        "s.textContent = 'window.inlineRan = true;';"
        "document.body.append(s);"
    )
