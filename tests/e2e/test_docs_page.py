"""Swagger UI (``/docs``) renders the document: every operation, no error.

Headless Chromium loads ``/docs`` from real gunicorn; Swagger UI fetches
``/openapi.json`` and must show one block per operation (method and path)
and no error box, which is what it shows for a document it cannot read or
resolve. The list of notes, opened, names the seed alias. A screenshot is
saved at var/docs-page.png. All of it under the page's Content-Security-
Policy, with no violation in the console; and the Authorize button takes a
key that "Try it out" then sends.
"""

import requests

from tests.support.browser import csp_violations
from tests.support.browser import provoke_csp_violation
from tests.support.browser import requires_chromium
from tests.support.live import ROOT
from tests.support.live import LiveServer
from tests.support.live import make_key

SCREENSHOT = ROOT / "var" / "docs-page.png"
METHODS = ("get", "post", "put", "patch", "delete")

pytestmark = requires_chromium


def test_swagger_ui_shows_every_operation(live_server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    server = live_server()
    spec = requests.get(server.url + "/openapi.json", timeout=10).json()
    documented = {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in METHODS
        if method in item
    }
    browser.get(server.url + "/docs")

    def blocks():
        return browser.find_elements(By.CSS_SELECTOR, ".opblock")

    WebDriverWait(browser, 30, poll_frequency=0.2).until(
        lambda _: len(blocks()) >= len(documented),
        message=f"Swagger UI showed {len(blocks())} of {len(documented)} operations",
    )
    shown = {
        (
            block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text,
            block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute(
                "data-path"
            ),
        )
        for block in blocks()
    }
    assert shown == documented
    assert not browser.find_elements(By.CSS_SELECTOR, ".errors-wrapper")

    listing = browser.find_element(By.ID, "operations-notes-getNotes")
    listing.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    WebDriverWait(browser, 10, poll_frequency=0.2).until(
        lambda _: "getNotesById" in listing.text,
        message="the list of notes does not name the seed alias",
    )
    SCREENSHOT.parent.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOT))
    assert csp_violations(browser) == []
    # The check can fail: an inline script is refused, and reported.
    provoke_csp_violation(browser)
    assert not browser.execute_script("return window.inlineRan === true;")
    assert any("inline script" in message for message in csp_violations(browser))


def test_the_authorize_button_takes_a_key_that_try_it_out_sends(
    browser, tmp_path, database_url
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    # "Try it out" calls the document's server, PUBLIC_BASE_URL: this one.
    server = LiveServer(tmp_path, {"AUTH": "on"})
    server.env["PUBLIC_BASE_URL"] = server.url
    server.start()
    try:
        key = make_key(tmp_path, "read", name="swagger")
        browser.get(server.url + "/docs")

        def wait(predicate, what, timeout=20):
            return WebDriverWait(browser, timeout, poll_frequency=0.2).until(
                lambda _: predicate(), message=what
            )

        def find(selector, within=browser):
            return within.find_element(By.CSS_SELECTOR, selector)

        listing = wait(
            lambda: browser.find_elements(By.ID, "operations-notes-getNotes"),
            "GET /notes shown",
        )[0]
        find(".opblock-summary-control", listing).click()
        wait(lambda: listing.find_elements(By.CSS_SELECTOR, ".try-out__btn"), "open")
        find(".try-out__btn", listing).click()

        def execute_status():
            find(".execute", listing).click()
            cell = wait(
                lambda: listing.find_elements(
                    By.CSS_SELECTOR,
                    ".live-responses-table tr.response .response-col_status",
                ),
                "an answer",
            )[0]
            wait(lambda: cell.text.strip()[:3].isdigit(), "a status")
            status = cell.text.strip()[:3]
            find(".btn-clear", listing).click()
            return status

        assert execute_status() == "401"  # no key yet

        find(".auth-wrapper .authorize").click()
        modal = wait(
            lambda: browser.find_elements(By.CSS_SELECTOR, ".modal-ux"), "the dialog"
        )[0]
        find(".auth-container input", modal).send_keys(key)
        find(".auth-btn-wrapper .authorize", modal).click()
        wait(lambda: "Logout" in modal.text, "authorized")
        find(".btn-done", modal).click()

        assert execute_status() == "200"
        assert csp_violations(browser) == []
    finally:
        server.stop()
