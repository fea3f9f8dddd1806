"""The dashboard at ``/`` in a real headless browser (Debian's Chromium and
ChromeDriver, driven by selenium) against a real superd.

The page lists the processes with their states; its buttons stop and start
them (superd's own status confirms it); a change made elsewhere shows up by
itself (the event stream); a process's live output shows a line printed
after the view opened; the event view shows new events; refusals are shown;
a phone-sized window needs no sideways scrolling.
"""

from __future__ import annotations

import os
import shutil
import signal

import pytest

from tests.conftest import kill_tree, skip_or_fail, wait_until
from tests.system.test_http import PASSWORD, PROGRAMS, USER, start
from tests.system.test_http_streams import POKED

pytestmark = pytest.mark.timeout(120)

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CRASH = """
[program.crash]
command = ["sh", "-c", "exit 3"]
autostart = false
startsecs = 1
startretries = 0
"""


@pytest.fixture
def browser(tmp_path):
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        skip_or_fail(f"needs {CHROMIUM} and {CHROMEDRIVER} (Debian: apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        skip_or_fail("needs selenium (the test extra installs it)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1280,1000"):
        options.add_argument(argument)
    service = Service(CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        pid = service.process.pid if service.process else None
        try:
            driver.quit()
        finally:
            if pid is not None:
                kill_tree(pid)  # chromedriver and the browser it started, by pid
            shutil.rmtree(tmp_path / "chromium", ignore_errors=True)


def text_of(driver, selector: str) -> str:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    try:
        return driver.find_element("css selector", selector).text
    except (NoSuchElementException, StaleElementReferenceException):
        return ""


def state_in_page(driver, name: str) -> str:
    return text_of(driver, f'tr[data-name="{name}"] td.state').lower()


def click(driver, name: str, action: str) -> None:
    button = driver.find_element("css selector", f'tr[data-name="{name}"] button[data-action="{action}"]')
    # Where a user would have it: in the middle of the window, clear of the sticky header.
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    button.click()


def test_the_dashboard_in_a_browser(graceful_superd, browser):
    handle = start(graceful_superd, programs=PROGRAMS + POKED + CRASH)
    browser.get(f"http://{USER}:{PASSWORD}@127.0.0.1:{handle.port}/")

    # Every process, grouped, with its state.
    wait_until(lambda: state_in_page(browser, "app") == "running", timeout=20, what="app running in the page")
    wait_until(lambda: "live" == text_of(browser, "#live"), what="the event stream connected")
    for name, state in (("worker_0", "running"), ("worker_1", "running"), ("idle", "stopped"),
                        ("crash", "stopped")):
        assert state_in_page(browser, name) == state
    workers = browser.find_elements("css selector", 'section[data-group="worker"] tr[data-name]')
    assert [row.get_attribute("data-name") for row in workers] == ["worker_0", "worker_1"]
    app_pid = str(handle.status("app")["app"]["pid"])
    assert text_of(browser, 'tr[data-name="app"] td.pid') == app_pid

    # Stop and start with the buttons; superd itself confirms.
    click(browser, "app", "stop")
    wait_until(lambda: state_in_page(browser, "app") == "stopped", what="app stopped in the page")
    assert handle.state_of("app") == "stopped"
    wait_until(lambda: "app: stopped" in text_of(browser, "#messages"), what="the stop's result shown")
    click(browser, "app", "start")
    wait_until(lambda: state_in_page(browser, "app") == "running", what="app running again in the page")
    assert handle.state_of("app") == "running"
    new_pid = str(handle.status("app")["app"]["pid"])
    wait_until(lambda: text_of(browser, 'tr[data-name="app"] td.pid') == new_pid, what="app's new pid")

    # The event view shows what just happened.
    wait_until(lambda: "app: stopping → stopped" in text_of(browser, "#event-list"), what="the stop's event")

    # A change made elsewhere (superctl) shows up by itself, from the event stream.
    handle.call("stop", names=["worker_1"])
    wait_until(lambda: state_in_page(browser, "worker_1") == "stopped", what="worker_1 stopped in the page")
    wait_until(lambda: "worker_1: stopping → stopped" in text_of(browser, "#event-list"),
               what="worker_1's event")

    # Refusals and failures are shown, not swallowed.
    click(browser, "app", "start")
    wait_until(lambda: "app: already running" in text_of(browser, "#messages"), what="already running shown")
    click(browser, "crash", "start")
    wait_until(lambda: "crash" in text_of(browser, "#messages .message.error"), timeout=20,
               what="the failed start shown as an error")

    # A process's live output: a line printed after the view opened arrives.
    click(browser, "poked", "output")
    wait_until(lambda: "poked ready" in text_of(browser, "#output-lines"), what="poked's output")
    os.kill(handle.status("poked")["poked"]["pid"], signal.SIGUSR1)
    wait_until(lambda: "poked 1" in text_of(browser, "#output-lines"), what="a new line of poked")
    click(browser, "app", "output")
    wait_until(lambda: text_of(browser, "#output-name") == "app" and "hello from app" in
               text_of(browser, "#output-lines"), what="app's output")
    browser.find_element("css selector", "#output-stream option[value='stderr']").click()
    wait_until(lambda: "oops" in text_of(browser, "#output-lines"), what="app's stderr")
    browser.find_element("css selector", "#output-close").click()
    wait_until(lambda: not browser.find_element("css selector", "#output").is_displayed(), what="output closed")

    # A phone: no sideways scrolling; the buttons still work.
    browser.set_window_size(390, 844)
    wait_until(lambda: browser.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth"), what="the page fits a phone")
    click(browser, "worker_1", "start")
    wait_until(lambda: state_in_page(browser, "worker_1") == "running", what="worker_1 started from a phone")
    assert handle.state_of("worker_1") == "running"
