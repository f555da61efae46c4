"""The dashboard page in real headless Chromium (Debian's chromium and chromium-driver,
driven by selenium): it loads and shows the workers, a submitted task appears live
without a reload, the cancel button cancels a scheduled task, a failed task's
traceback is visible, and a page behind a token asks for it once.

Screenshots go to the test's tmp_path (and to $FASTWORKER_SCREENSHOTS if set).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import trio
from dash_support import run_system

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

# CI installs them (.ci/run): there a missing browser fails the tests instead.
pytestmark = pytest.mark.skipif(
    (CHROMIUM is None or CHROMEDRIVER is None) and not os.environ.get("CI"),
    reason="needs Debian's chromium and chromium-driver (apt-get install -y chromium "
    "chromium-driver; .ci/run installs them)",
)


@contextmanager
def browser(tmp_path: Path, width: int = 1280, height: int = 1000) -> Iterator[object]:
    """A headless Chromium with a fresh profile, ended when the block ends."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        driver.set_page_load_timeout(30)
        yield driver
    finally:
        driver.quit()


def shot(driver: object, tmp_path: Path, name: str) -> Path:
    """Save a screenshot (also to $FASTWORKER_SCREENSHOTS when set)."""
    path = tmp_path / f"{name}.png"
    driver.save_screenshot(str(path))  # type: ignore[attr-defined]
    extra = os.environ.get("FASTWORKER_SCREENSHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(extra) / path.name)
    return path


def wait_for(driver: object, predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    """Poll the page (blocking, in a thread) until ``predicate(driver)`` is truthy."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(predicate, message=what)


async def test_page_shows_workers_live_tasks_cancel_and_traceback(tmp_path: Path) -> None:
    """Loads and shows the workers; a submitted task appears within 2 s without a reload;
    Cancel cancels a scheduled task; a failed task's detail page shows its traceback."""
    from selenium.webdriver.common.by import By

    async with run_system() as system, system.http() as http:
        stats = (await http.get("/api/v1/stats")).json()
        worker = next(w["id"] for w in stats["workers"] if w["id"] != "local")
        with browser(tmp_path) as driver:
            await trio.to_thread.run_sync(driver.get, system.base + "/")
            await trio.to_thread.run_sync(
                wait_for,
                driver,
                lambda d: "on" in d.find_element(By.ID, "live").get_attribute("class"),
                20,
                "the live stream connects",
            )
            workers = driver.find_element(By.ID, "workers").text
            assert worker in workers
            driver.execute_script("window.notReloaded = true;")

            task_id = (
                await http.post("/api/v1/tasks", json={"task": "dash.add", "args": [2, 2]})
            ).json()["id"]
            began = time.monotonic()
            await trio.to_thread.run_sync(
                wait_for,
                driver,
                lambda d: d.find_elements(By.CSS_SELECTOR, f"tr[data-id='{task_id}']"),
                2.0,
                "the submitted task appears within 2 s",
            )
            assert time.monotonic() - began < 2.0
            assert driver.execute_script("return window.notReloaded === true;")

            later = (
                await http.post(
                    "/api/v1/tasks", json={"task": "dash.nap", "args": [1], "countdown": 600}
                )
            ).json()["id"]
            failed = (
                await http.post("/api/v1/tasks", json={"task": "dash.boom", "args": ["kaboom"]})
            ).json()["id"]
            await http.get(f"/api/v1/tasks/{failed}?wait=30")
            button = await trio.to_thread.run_sync(
                wait_for,
                driver,
                lambda d: d.find_element(
                    By.CSS_SELECTOR, f"tr[data-id='{later}'] button[data-action='cancel']"
                ),
                10,
                "the scheduled task has a cancel button",
            )
            shot(driver, tmp_path, "dashboard")
            button.click()
            await trio.to_thread.run_sync(
                wait_for,
                driver,
                lambda d: (
                    d.find_element(By.CSS_SELECTOR, f"tr[data-id='{later}']").get_attribute(
                        "data-status"
                    )
                    == "cancelled"
                ),
                10,
                "the row turns cancelled",
            )
            assert (await http.get(f"/api/v1/tasks/{later}")).json()["status"] == "cancelled"
            shot(driver, tmp_path, "dashboard-after-cancel")

            await trio.to_thread.run_sync(driver.get, f"{system.base}/tasks/{failed}")
            traceback = driver.find_element(By.CSS_SELECTOR, "pre.traceback").text
            assert "ValueError: kaboom" in traceback and "inner" in traceback
            assert "retry" in driver.find_element(By.CSS_SELECTOR, "p.actions").text.lower()
            shot(driver, tmp_path, "task-detail")

        with browser(tmp_path, 390, 844) as phone:
            await trio.to_thread.run_sync(phone.get, system.base + "/")
            width = phone.execute_script("return document.documentElement.scrollWidth;")
            viewport = phone.execute_script("return window.innerWidth;")
            assert width <= viewport + 1, "the page fits a phone's width (tables scroll inside)"
            shot(phone, tmp_path, "dashboard-phone")


async def test_page_behind_a_token_asks_once(tmp_path: Path) -> None:
    """With a token the page asks for it, then loads; later pages use the kept token."""
    from selenium.webdriver.common.by import By

    token_file = tmp_path / "token"
    token_file.write_text("browser-token-123\n")
    async with run_system(
        "--dashboard-token-file", str(token_file), token="browser-token-123"
    ) as system:
        with browser(tmp_path) as driver:
            await trio.to_thread.run_sync(driver.get, system.base + "/")
            field = driver.find_element(By.ID, "token")
            field.send_keys("browser-token-123")
            driver.find_element(By.CSS_SELECTOR, "#login button").click()
            await trio.to_thread.run_sync(
                wait_for,
                driver,
                lambda d: (
                    d.find_elements(By.ID, "workers")
                    and "on" in d.find_element(By.ID, "live").get_attribute("class")
                ),
                20,
                "the page loads with the token and goes live",
            )
            await trio.to_thread.run_sync(driver.get, system.base + "/?status=failure")
            await trio.to_thread.run_sync(
                wait_for,
                driver,
                lambda d: d.find_elements(By.ID, "workers"),
                20,
                "the kept token opens the next page without asking",
            )
