"""The voice page (``/ui/voice``) in headless Chromium with a fake microphone playing a WAV of Mandarin speech:
the page hears it through ``WS /v1/realtime``, shows both transcripts in Chinese and plays the answer's audio."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llm.app import create_app
from llm.config import Settings
from tests.browser import headless_chromium, needs_chromium
from tests.llm.conftest import LOAD_TIMEOUT_S, Running, serve

SCREENSHOTS = Path(os.environ.get("LINGXI_SCREENSHOT_DIR", tempfile.gettempdir()))
CJK = re.compile(r"[\u4e00-\u9fff]")

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def lingxi(asr_service: str, tts_service: str) -> Iterator[Running]:
    """The default Qwen with the real asr and tts services as siblings, and a key, as a user would run it."""
    settings = Settings(embedding_url="", asr_url=asr_service, tts_url=tts_service, max_tokens=48, api_key="page-key")
    with serve(create_app(settings), ready_timeout_s=LOAD_TIMEOUT_S) as running:
        yield running


@pytest.fixture(scope="module")
def question_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Mandarin question after 1.5 s of silence (the page connects while the fake microphone already plays)."""
    folder = tmp_path_factory.mktemp("microphone")
    speech, wav = folder / "speech.wav", folder / "question.wav"
    subprocess.run(["espeak-ng", "-v", "cmn-latn-pinyin", "-s", "120", "-w", str(speech), "我爱我的妈妈。"], check=True)
    subprocess.run(["sox", str(speech), "-r", "48000", "-c", "1", "-b", "16", str(wav), "pad", "1.5", "3"], check=True)
    return wav


@pytest.fixture
def browser(question_wav: Path) -> Iterator[object]:
    with headless_chromium(
        "--window-size=1000,800",
        "--use-fake-ui-for-media-stream",  # the microphone permission is granted
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={question_wav}%noloop",
        "--autoplay-policy=no-user-gesture-required",
    ) as driver:
        yield driver


def test_the_page_is_served_without_the_key_and_its_socket_needs_it(lingxi: Running) -> None:
    page = httpx.get(f"{lingxi.url}/ui/voice")
    assert page.status_code == 200 and "/v1/realtime" in httpx.get(f"{lingxi.url}/ui/voice/assets/voice.js").text
    assert httpx.post(f"{lingxi.url}/v1/chat/completions", json={}).status_code == 401


def test_a_spoken_mandarin_question_is_transcribed_answered_and_played(lingxi: Running, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    browser.get(f"{lingxi.url}/ui/voice")
    browser.find_element(By.ID, "key").send_keys("page-key")
    Select(browser.find_element(By.ID, "language")).select_by_value("zh")
    browser.find_element(By.ID, "connect").click()

    def answered(driver) -> bool:
        stats = driver.execute_script("return window.voiceStats")
        assert not stats["errors"], stats["errors"]
        return bool(stats["events"].get("response.done"))

    WebDriverWait(browser, 240, poll_frequency=0.5).until(answered)
    heard = browser.find_element(By.CSS_SELECTOR, "#conversation li.user").text
    said = browser.find_element(By.CSS_SELECTOR, "#conversation li.assistant").text
    assert CJK.search(heard), heard
    assert CJK.search(said), said
    stats = browser.execute_script("return window.voiceStats")
    assert stats["audioBytes"] > 48_000 * 0.3, stats  # at least 0.3 s of the answer's PCM16 24 kHz reached the page
    assert any("CJK" in font["familyName"] and font["glyphCount"] for font in fonts_of(browser, "li.assistant"))
    shot = SCREENSHOTS / "lingxi-voice-page.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000


def fonts_of(browser, css: str) -> list[dict]:
    """The fonts Chromium drew the element's text with (DevTools' CSS.getPlatformFontsForNode): a CJK font,
    not boxes, when the system has one."""
    browser.execute_cdp_cmd("DOM.enable", {})
    browser.execute_cdp_cmd("CSS.enable", {})
    root = browser.execute_cdp_cmd("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
    node = browser.execute_cdp_cmd("DOM.querySelector", {"nodeId": root, "selector": css})["nodeId"]
    return browser.execute_cdp_cmd("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
