"""Headless Chromium for the page tests: Debian's chromium through chromedriver.

``requires_chromium`` skips a test module when either is missing (``make
test`` installs both when run as root); the e2e ``browser`` fixture drives
one made by :func:`chromium_driver`.
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
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    return driver
