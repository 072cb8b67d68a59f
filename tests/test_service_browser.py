"""The web page in a real browser: Debian's Chromium, driven by Selenium through Debian's
chromium-driver (nothing is downloaded). A file is uploaded and its transcript checked on
the page (words, seeking, highlighting, a download); then a WAV file is fed to Chromium as
the microphone and the live transcript must appear while it records.

``WAV2VEC2_SCREENSHOTS=DIR`` keeps screenshots of the page there (``service.png`` after the
upload, ``service-live.png`` while recording; docs/img has them)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
import srt

from service_support import engine as demo_engine
from service_support import needs_tts, running_server, speech, wav_bytes

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
webdriver = pytest.importorskip("selenium.webdriver")
pytestmark = [
    needs_tts,
    pytest.mark.skipif(
        not (Path(CHROMIUM).exists() and Path(DRIVER).exists()),
        reason="needs Debian's chromium and chromium-driver (scripts/install-system-deps.sh)",
    ),
    pytest.mark.timeout(300),
]


def chromium(tmp_path: Path, microphone: Path):
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        # headless as root (CI containers): no sandbox, no GPU, no network chatter
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1000,760",
        # the microphone: this WAV file, allowed without asking
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone}",
        "--autoplay-policy=no-user-gesture-required",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    driver.set_script_timeout(30)
    return driver


def wait_for(driver, script: str, timeout: float = 60.0):
    """Poll the page until ``script`` (a JS expression) is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(f"return {script}")
        if value:
            return value
        time.sleep(0.1)
    status = driver.execute_script("return document.getElementById('status').textContent")
    raise AssertionError(f"timed out waiting for {script!r}; status: {status!r}")


def screenshot(driver, name: str) -> None:
    if os.environ.get("WAV2VEC2_SCREENSHOTS"):
        driver.save_screenshot(str(Path(os.environ["WAV2VEC2_SCREENSHOTS"]) / name))


WORDS = "[...document.querySelectorAll('#transcript .word')].map(w => w.textContent)"


def test_the_page_transcribes_a_file_and_live_from_the_microphone(tmp_path):
    engine = demo_engine()
    wave = speech(2)
    path = tmp_path / "speech.wav"
    path.write_bytes(wav_bytes(wave))
    (expected,) = engine.transcribe([path])
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with running_server(engine) as url:
        driver = chromium(tmp_path, path)
        try:
            driver.execute_cdp_cmd(
                "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
            )
            driver.get(url)
            driver.find_element("id", "file").send_keys(str(path))
            wait_for(driver, f"{WORDS}.length && !document.querySelector('#transcript.partial')")
            assert driver.execute_script(f"return {WORDS}") == expected.text.split()
            assert "words in" in driver.find_element("id", "status").text

            # a word carries its time: clicking it seeks there, and playback highlights it
            third = driver.find_elements("css selector", "#transcript .word")[2]
            third.click()
            wait_for(driver, "document.querySelector('.word.current')", 10)
            now = driver.execute_script("return document.getElementById('player').currentTime")
            assert now >= expected.words[2].start - 0.01
            driver.execute_script("document.getElementById('player').pause()")

            driver.find_element("css selector", ".downloads [data-format=srt]").click()
            deadline = time.monotonic() + 20
            while not (downloads / "transcript.srt").exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            cues = list(srt.parse((downloads / "transcript.srt").read_text()))
            assert " ".join(c.content for c in cues) == expected.text
            screenshot(driver, "service.png")

            # the microphone (the WAV, looped): partials appear while it records
            driver.find_element("id", "record").click()
            live = wait_for(
                driver, f"document.querySelector('#transcript.partial') && {WORDS}.length", 60
            )
            assert live >= 1
            assert "Recording" in driver.find_element("id", "status").text
            screenshot(driver, "service-live.png")
            time.sleep(2)
            driver.find_element("id", "stop").click()
            wait_for(driver, "document.getElementById('status').textContent.startsWith('Recorded')")
            final = driver.execute_script(f"return {WORDS}")
            assert len(final) >= 3 and set(final) & set(expected.text.split())
        finally:
            driver.quit()
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)


def test_with_an_api_key_the_page_asks_for_it_and_then_transcribes(tmp_path):
    """A service started with --api-key: the page shows its key box when the API answers
    401, refuses the upload with that error, and once the key is typed in transcribes the
    same file (the key goes in the Authorization header)."""
    from wav2vec2.service import ServiceConfig

    engine = demo_engine()
    path = tmp_path / "speech.wav"
    path.write_bytes(wav_bytes(speech(2)[: 3 * 16000]))
    (expected,) = engine.transcribe([path])
    with running_server(engine, ServiceConfig(api_key="s3cret-key")) as url:
        driver = chromium(tmp_path, path)
        try:
            driver.get(url)
            wait_for(driver, "!document.getElementById('key-box').hidden", 20)
            driver.find_element("id", "file").send_keys(str(path))
            status = "document.getElementById('status').textContent"
            wait_for(driver, f"{status}.startsWith('Error 401')")
            assert driver.execute_script(f"return {WORDS}") == []
            box = driver.find_element("id", "key")
            box.send_keys("s3cret-key")
            driver.execute_script("arguments[0].dispatchEvent(new Event('change'))", box)
            driver.execute_script("document.getElementById('file').value = ''")
            driver.find_element("id", "file").send_keys(str(path))
            wait_for(driver, f"{WORDS}.length && !document.querySelector('#transcript.partial')")
            assert driver.execute_script(f"return {WORDS}") == expected.text.split()
        finally:
            driver.quit()
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)
