"""The pages in headless Chromium (Debian chromium + chromium-driver, driven by Selenium)."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.browser import headless_chromium, needs_chromium
from tests.opro.conftest import Opro

SCREENSHOTS = Path(os.environ.get("OPRO_SCREENSHOT_DIR", tempfile.gettempdir()))

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    flags = ("--disable-quic", "--disable-component-update", "--disable-sync", "--window-size=1400,900", "--lang=en-US")
    with headless_chromium(*flags, log_requests=True) as driver:
        yield driver


def requested_urls(driver) -> list[str]:
    """Every URL the browser asked the network for since the last call (DevTools performance log);
    chrome:// and data: URLs (the browser's own start page, inline data) never leave the machine."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if url.split(":", 1)[0] in ("http", "https", "ws", "wss", "ftp"):
                urls.append(url)
    return urls


def wait_for(driver, css: str, timeout: float = 240):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    visible = expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, css))
    return WebDriverWait(driver, timeout).until(visible)


def test_ui_asks_shows_candidates_selects_one_and_shows_the_answer(browser, opro: Opro) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(f"{opro.url}/")  # the redirect to /ui/
    assert driver.current_url == f"{opro.url}/ui/"
    driver.execute_script("localStorage.setItem('opro-lang', 'en')")
    driver.refresh()
    wait_for(driver, "#model-picker option[value='smollm2:135m']", 30)
    driver.find_element(By.ID, "question").send_keys("How do I keep apples fresh?")
    driver.find_element(By.ID, "send").click()
    wait_for(driver, "#status.busy", 10)  # progress while the model works
    first = wait_for(driver, ".candidate .select-btn")
    candidates = [node.text for node in driver.find_elements(By.CSS_SELECTOR, ".candidate .text")]
    assert 1 <= len(candidates) <= 5
    assert driver.find_element(By.ID, "detail-original").text == "How do I keep apples fresh?"
    driver.save_screenshot(str(SCREENSHOTS / "opro-ui-candidates.png"))
    first.click()
    wait_for(driver, "#conversation .msg.assistant")
    assert driver.find_element(By.ID, "detail-selected").text == candidates[0]
    answer = driver.find_elements(By.CSS_SELECTOR, "#conversation .msg.assistant")[-1]
    assert answer.text.strip()
    driver.save_screenshot(str(SCREENSHOTS / "opro-ui-answer.png"))
    urls = requested_urls(driver)
    assert all(url.startswith(opro.url) for url in urls), urls


def test_ui_shows_errors_from_the_envelope_and_switches_language(browser, opro: Opro) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(f"{opro.url}/ui/")
    driver.execute_script("localStorage.setItem('opro-lang', 'en')")
    driver.refresh()
    wait_for(driver, "#question", 30)
    too_long = "x" * (opro.settings.max_query_chars + 1)
    driver.execute_script("document.getElementById('question').value = arguments[0]", too_long)
    driver.find_element(By.ID, "send").click()
    assert "longer than" in wait_for(driver, "#error", 30).text
    driver.find_element(By.ID, "lang-toggle").click()
    assert driver.find_element(By.ID, "send").text == "发送"
    driver.execute_script("localStorage.setItem('opro-lang', 'en')")


def test_offline_page_requests_nothing_but_its_own_api(browser, opro: Opro) -> None:
    driver = browser
    requested_urls(driver)  # drain
    driver.get(f"{opro.url}/ui/offline")
    wait_for(driver, "#model-picker option[value='smollm2:135m']", 30)
    urls = requested_urls(driver)
    assert urls and all(url.startswith(opro.url) for url in urls), urls
    assets = [url for url in urls if url.rsplit("?", 1)[0].endswith((".js", ".css", ".png", ".woff2", ".svg"))]
    assert assets == []
    page = httpx.get(f"{opro.url}/ui/offline").text
    assert "src=" not in page and "href=" not in page


def test_react_page_renders_with_react_served_by_opro(browser, opro: Opro) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    requested_urls(driver)
    for path in ("/ui/react", "/react"):
        driver.get(f"{opro.url}{path}")
        wait_for(driver, "#question", 30)
        assert driver.find_element(By.TAG_NAME, "h1").text.startswith(("灵犀", "lingxi"))
    urls = requested_urls(driver)
    assert any(url.endswith("/ui/assets/vendor/react.production.min.js") for url in urls)
    assert all(url.startswith(opro.url) for url in urls), urls


def test_optimize_view_uploads_examples_plots_each_step_and_compares_start_with_best(
    browser, opro: Opro, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    shipped = Path(__file__).parent.parent / "data" / "opro" / "arithmetic.jsonl"
    examples = tmp_path / "arithmetic-8.jsonl"
    examples.write_text("\n".join(shipped.read_text().splitlines()[:8]) + "\n")

    driver = browser
    requested_urls(driver)
    driver.get(f"{opro.url}/ui/#optimize")
    driver.execute_script("localStorage.setItem('opro-lang', 'en')")
    driver.refresh()
    wait_for(driver, "#opt-form", 30)
    assert driver.find_element(By.ID, "tab-optimize").text == "Optimize (OPRO)"
    wait_for(driver, "#opt-scorer-model option[value='smollm2:135m']", 30)
    driver.find_element(By.ID, "opt-file").send_keys(str(examples))
    Select(driver.find_element(By.ID, "opt-scorer")).select_by_value("numeric")
    for field, value in (("opt-steps", "2"), ("opt-candidates", "1"), ("opt-max-tokens", "16"), ("opt-train", "0.5")):
        box = driver.find_element(By.ID, field)
        box.clear()
        box.send_keys(value)
    driver.find_element(By.ID, "opt-start").click()
    WebDriverWait(driver, 30).until(
        lambda d: d.find_elements(By.ID, "job-status") or d.find_element(By.ID, "opt-error").is_displayed()
    )
    assert not driver.find_element(By.ID, "opt-error").is_displayed(), driver.find_element(By.ID, "opt-error").text
    assert driver.find_element(By.ID, "job-cancel").is_displayed()  # running: it can be cancelled

    def status_and_points() -> tuple[str, int]:  # read in one go: the view is redrawn every second
        return tuple(
            driver.execute_script(
                "return [document.getElementById('job-status').textContent,"
                " document.querySelectorAll('#score-plot .plot-point').length]"
            )
        )

    points_seen = []
    deadline = time.monotonic() + 300
    status, points = status_and_points()
    while "completed" not in status:
        assert time.monotonic() < deadline and "failed" not in status, status
        points_seen.append(points)
        time.sleep(0.5)
        status, points = status_and_points()
    final_points = len(driver.find_elements(By.CSS_SELECTOR, "#score-plot .plot-point"))
    with opro.client() as http:
        job_id = max(http.get("/optimize").json()["data"]["jobs"], key=lambda job: job["created_at"])["job_id"]
        trajectory = http.get(f"/optimize/{job_id}").json()["data"]["trajectory"]
    # step 0 and each step's proposal, one point per instruction (a reply the optimizer could not parse has none)
    assert [entry["step"] for entry in trajectory] == [0, 1, 2]
    assert final_points == sum(len(entry["instructions"]) for entry in trajectory) >= 2
    assert min(points_seen) < final_points  # the plot grew while the run went on
    assert driver.find_elements(By.CSS_SELECTOR, "#score-plot .plot-best")

    initial = driver.find_element(By.CSS_SELECTOR, "#compare-initial .instruction").text
    assert initial == "Let's solve the problem."
    assert "test" in driver.find_element(By.CSS_SELECTOR, "#compare-best .scores").text
    rows = driver.find_elements(By.CSS_SELECTOR, "#compare-table tbody tr")
    assert len(rows) == 4
    assert len(rows[0].find_elements(By.TAG_NAME, "td")) == 4
    assert driver.find_element(By.CSS_SELECTOR, "#job-list .job-item.active").text.startswith("arithmetic-8.jsonl")
    assert not driver.find_elements(By.ID, "job-cancel")
    driver.save_screenshot(str(SCREENSHOTS / "opro-ui-optimize.png"))
    urls = requested_urls(driver)
    assert all(url.startswith(opro.url) for url in urls), urls


def test_optimize_view_resumes_and_cancels_a_run(browser, opro: Opro) -> None:

    shipped = Path(__file__).parent.parent / "data" / "opro" / "arithmetic.jsonl"
    examples = [json.loads(line) for line in shipped.read_text().splitlines()[:4]]
    with opro.client() as http:
        task = {"examples": examples, "scorer": "numeric", "steps": 100, "scorer_max_tokens": 8, "name": "to resume"}
        job_id = http.post("/optimize", json=task).json()["data"]["job_id"]
        assert http.delete(f"/optimize/{job_id}").json()["data"]["status"] == "cancelled"

    driver = browser
    driver.get(f"{opro.url}/ui/#optimize")
    driver.execute_script("localStorage.setItem('opro-lang', 'en')")
    driver.refresh()
    wait_for(driver, f"#job-list .job-item[data-job='{job_id}']", 30).click()
    wait_for(driver, "#job-resume", 30).click()
    wait_for(driver, "#job-cancel", 30).click()
    wait_for(driver, "#job-resume", 30)
    with opro.client() as http:
        job = http.get(f"/optimize/{job_id}").json()["data"]
    assert job["status"] == "cancelled" and job["resumed"] == 1
