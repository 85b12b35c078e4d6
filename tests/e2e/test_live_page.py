"""The push worker's live page in headless Chromium: notes appear, change, go.

Drives Debian's chromium through chromedriver (selenium). The page asks for
an API key (a wrong one is refused and asked for again), then writes notes
through the API (real gunicorn), watches the page apply each change, stops
the push worker and starts it again on the same port to see the page
reconnect with Last-Event-ID, with a fresh ticket (they last 2 s here), and
catch up; a reload asks for no key again. No CSP violation in the console.
Saves a screenshot at var/live-page.png (docs/user/push.md shows a copy,
docs/live-page.png).
"""

import requests

from tests.support.browser import csp_violations
from tests.support.browser import provoke_csp_violation
from tests.support.browser import requires_chromium
from tests.support.live import ROOT
from tests.support.live import PushWorkerProcess
from tests.support.live import make_key

SCREENSHOT = ROOT / "var" / "live-page.png"

pytestmark = requires_chromium


def test_the_page_shows_the_notes_and_applies_each_change(
    live_server, push_worker, browser, tmp_path
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    api = live_server()
    short_tickets = {"STREAM_TICKET_TTL": "2"}
    worker = push_worker(short_tickets)
    key = make_key(tmp_path, "read", name="viewer")

    def post(title, body=""):
        answer = requests.post(
            api.url + "/notes", json={"title": title, "body": body}, timeout=10
        )
        assert answer.status_code == 201
        return answer.json()["id"]

    def shown():
        """Note id -> (title, body), as the page shows them."""
        return {
            item.get_attribute("data-id"): (
                item.find_element(By.TAG_NAME, "h2").text,
                item.find_element(By.TAG_NAME, "p").text,
            )
            for item in browser.find_elements(By.CSS_SELECTOR, "#notes li[data-id]")
        }

    def wait(predicate, what):
        WebDriverWait(browser, 20, poll_frequency=0.1).until(
            lambda _: predicate(), message=what
        )

    def state():
        return browser.find_element(By.ID, "state").get_attribute("data-state")

    def transport():
        return browser.find_element(By.ID, "state").get_attribute("data-transport")

    def enter_key(text):
        field = browser.find_element(By.ID, "key")
        wait(field.is_displayed, "the page asks for a key")
        field.send_keys(text)
        browser.find_element(By.CSS_SELECTOR, "#key-form button").click()

    groceries = post("Groceries", "milk, eggs")
    browser.get(worker.sse_url + "/")
    wait(lambda: state() == "key", "the page asks for a key")
    enter_key("fpa_" + "0" * 38)
    wait(
        lambda: "unknown" in browser.find_element(By.ID, "key-error").text,
        "a wrong key is refused, and asked for again",
    )
    enter_key(key)
    wait(lambda: state() == "live", "the page goes live")
    assert not browser.find_element(By.ID, "key-form").is_displayed()
    assert transport() == "websocket"  # Chromium has WebSocket: GET /ws
    wait(lambda: groceries in shown(), "the snapshot shows the existing note")

    call = post("Call the plumber", "before Friday")
    wait(lambda: shown().get(call) == ("Call the plumber", "before Friday"), "created")

    changed = requests.patch(
        api.url + f"/notes/{groceries}", json={"body": "milk, eggs, bread"}, timeout=10
    )
    assert changed.status_code == 200
    wait(lambda: shown()[groceries][1] == "milk, eggs, bread", "updated")

    assert requests.delete(api.url + f"/notes/{call}", timeout=10).status_code == 204
    wait(lambda: call not in shown(), "deleted")
    assert set(shown()) == {groceries}

    # The worker goes away: the page says so, and resumes after the last
    # event it applied when the worker is back (same port), so the notes
    # written meanwhile arrive too.
    worker.stop()
    wait(lambda: state() != "live", "the page notices the worker is gone")
    missed = post("Written while the worker was down", "caught up on reconnect")
    back = PushWorkerProcess(
        tmp_path,
        env={
            "PUSH_SSE_BIND": worker.sse_url[len("http://") :],
            "PUSH_PUB_ENDPOINT": worker.pub_endpoint,
            **short_tickets,
        },
    )
    back.sse_url = worker.sse_url
    back.start()
    try:
        wait(lambda: state() == "live", "the page reconnects")
        wait(lambda: missed in shown(), "the missed note arrives")
        for title, body in (
            ("Book club", "chapter 4 of The Left Hand of Darkness"),
            ("Bike", "pump the tyres"),
        ):
            post(title, body)
        wait(lambda: len(shown()) == 4, "every note shown")
        summary = browser.find_element(By.ID, "summary").text
        assert summary.startswith("4 notes") and summary.endswith("WebSocket")
        wait(
            lambda: not browser.find_elements(By.CSS_SELECTOR, "#notes .fresh"),
            "the highlights of the new notes fade",
        )
        SCREENSHOT.parent.mkdir(exist_ok=True)
        assert browser.save_screenshot(str(SCREENSHOT))
        # The key went into no URL: the requests carried tickets.
        urls = browser.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name);"
        )
        assert any("ticket=" in url for url in urls)
        assert not any(key in url for url in urls)
        # A reload asks for no key: this tab keeps it.
        browser.refresh()
        wait(lambda: state() == "live", "live again without a prompt")
        wait(lambda: len(shown()) == 4, "every note shown again")
        assert csp_violations(browser) == []
        provoke_csp_violation(browser)  # the check can fail
        assert any("inline script" in message for message in csp_violations(browser))
    finally:
        back.stop()


def test_without_websocket_the_page_falls_back_to_sse(
    live_server, push_worker, browser, tmp_path
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    api = live_server()
    worker = push_worker()
    # A browser without WebSocket: the page must use GET /events.
    browser.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument", {"source": "delete window.WebSocket;"}
    )
    browser.get(worker.sse_url + "/")
    field = browser.find_element(By.ID, "key")
    WebDriverWait(browser, 20, poll_frequency=0.1).until(
        lambda _: field.is_displayed(), message="the page asks for a key"
    )
    field.send_keys(make_key(tmp_path, "read", name="viewer"))
    browser.find_element(By.CSS_SELECTOR, "#key-form button").click()
    state = browser.find_element(By.ID, "state")
    WebDriverWait(browser, 20, poll_frequency=0.1).until(
        lambda _: state.get_attribute("data-state") == "live", message="live"
    )
    assert state.get_attribute("data-transport") == "sse"
    answer = requests.post(
        api.url + "/notes", json={"title": "Over SSE", "body": ""}, timeout=10
    )
    assert answer.status_code == 201
    note_id = answer.json()["id"]
    WebDriverWait(browser, 20, poll_frequency=0.1).until(
        lambda _: browser.find_elements(
            By.CSS_SELECTOR, f'#notes li[data-id="{note_id}"]'
        ),
        message="the note arrives over SSE",
    )
    assert browser.find_element(By.ID, "summary").text.endswith("SSE")
    assert csp_violations(browser) == []
