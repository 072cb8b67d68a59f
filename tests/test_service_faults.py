"""Faults: killing the service mid-request leaves nothing on disk, and it serves again on
restart; bad input against the upload endpoints (the CLI's bad-input cases, then
hypothesis) always gets a JSON 4xx, and the next request is served."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service_support import MODEL, needs_tts, served, speech, wav_bytes
from service_support import engine as demo_engine
from test_bad_inputs import BAD_AUDIO
from wav2vec2.service import ServiceConfig, create_app

pytestmark = [needs_tts, pytest.mark.timeout(300)]


def tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


def test_killed_mid_request_leaves_nothing_on_disk_and_a_restart_serves(tmp_path):
    model_before = tree(MODEL)
    scratch, work = tmp_path / "tmp", tmp_path / "cwd"
    scratch.mkdir(), work.mkdir()
    wave = speech(2)
    big = wav_bytes(np.tile(wave, 6))  # 41 s, 1.3 MB: over the 1 MiB a form keeps in memory
    boundary = "b0undary"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
            "Content-Type: audio/wav\r\n\r\n").encode()  # fmt: skip
    body = head + big + f"\r\n--{boundary}--\r\n".encode()
    env = {"TMPDIR": str(scratch)}
    with served(MODEL, env=env, cwd=work) as (url, process):
        before = sorted(scratch.rglob("*"))  # torch's own (empty) cache folder, at import

        def slow_upload():  # most of the body at once, the rest never: the form is on disk
            yield body[: len(body) - 1000]
            time.sleep(60)
            yield body[-1000:]

        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        transcribe = f"{url}/v1/transcribe"
        uploads = [
            # one still arriving (its form spooled to disk), one being transcribed
            threading.Thread(target=_quietly, args=(transcribe, slow_upload(), headers)),
            threading.Thread(target=_quietly, args=(transcribe, big, {})),
        ]
        for t in uploads:
            t.daemon = True
            t.start()
        spooled = _wait_for_spooled_file(process.pid, scratch)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    assert spooled  # the upload was on disk when killed: an unlinked file, gone with the process
    assert sorted(scratch.rglob("*")) == before and list(work.iterdir()) == []
    assert tree(MODEL) == model_before
    with served(MODEL, env=env, cwd=work) as (url, _):
        r = httpx.post(f"{url}/v1/transcribe", content=wav_bytes(wave), timeout=60)
        assert r.status_code == 200 and r.json()["words"]
    assert sorted(scratch.rglob("*")) == before


def _quietly(url, content, headers):
    try:
        httpx.post(url, content=content, headers=headers, timeout=90)
    except httpx.TransportError:
        pass  # the server was killed under it


def _wait_for_spooled_file(pid: int, folder: Path, timeout: float = 30) -> bool:
    """True once the process holds an open file in ``folder`` (an anonymous temporary file:
    /proc shows it, the folder does not)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd).startswith(str(folder)):
                    return True
            except OSError:
                continue
        time.sleep(0.05)
    return False


# -- bad input -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client():
    app = create_app(demo_engine(), ServiceConfig(max_upload_mb=1, max_audio_seconds=30))
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def good() -> bytes:
    return wav_bytes(speech(1)[:24000])  # 1.5 s: a few words, quickly


def served_normally(client, good: bytes) -> None:
    r = client.post("/v1/transcribe", content=good, headers={"Content-Type": "audio/wav"})
    assert r.status_code == 200 and r.json()["duration"] == 1.5


def json_4xx(r) -> str:
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.headers["content-type"] == "application/json"
    message = r.json()["error"]["message"]
    assert message and "\n" not in message and "Traceback" not in message
    return message


@pytest.mark.parametrize("case", sorted(BAD_AUDIO))
@pytest.mark.parametrize("endpoint", ["/v1/transcribe", "/v1/audio/transcriptions"])
def test_the_clis_bad_audio_gets_a_json_4xx_and_the_next_request_is_served(
    client, good, tmp_path, case, endpoint
):
    make, message = BAD_AUDIO[case]
    path = make(tmp_path)
    if path.is_file():
        data = path.read_bytes()
    else:  # a folder, a pipe, a missing file: the service takes no paths, so send the path
        data, message = str(path).encode(), "unreadable audio"
    r = client.post(endpoint, files={"file": (path.name, data)})
    got = json_4xx(r)
    assert r.status_code == 422 and message in got and f"upload '{path.name}'" in got
    served_normally(client, good)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=st.one_of(
        st.binary(max_size=3000),
        st.builds(
            lambda head, tail: head + tail,
            st.sampled_from([b"RIFF", b"fLaC", b"OggS", b"RIFF\x24\x00\x00\x00WAVEfmt "]),
            st.binary(max_size=3000),
        ),  # fmt: skip
    ),
    endpoint=st.sampled_from(["/v1/transcribe", "/v1/audio/transcriptions"]),
    content_type=st.sampled_from(["audio/wav", "application/octet-stream", "text/plain", ""]),
    as_form=st.booleans(),
    fmt=st.sampled_from(["json", "text", "srt", "vtt", "verbose_json", "", "xml"]),
)
def test_fuzzed_uploads_get_a_json_4xx_or_a_transcript(
    client, good, body, endpoint, content_type, as_form, fmt
):
    if as_form:
        r = client.post(endpoint, files={"file": ("x", body, content_type or None)},
                        data={"response_format": fmt} if fmt else {})  # fmt: skip
    else:
        r = client.post(endpoint, content=body, headers={"Content-Type": content_type})
    if r.status_code != 200:  # random bytes may decode as (very short) audio
        json_4xx(r)
    assert client.get("/health").status_code == 200


def test_after_the_fuzzing_the_service_still_serves(client, good):
    served_normally(client, good)


@pytest.mark.parametrize(
    "content_type, body, status",
    [
        ("multipart/form-data", b"--x\r\n\r\nabc", 400),  # no boundary
        ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data\r\n", 400),
        ("multipart/mixed; boundary=x", b"--x--\r\n", 415),
        ("application/x-www-form-urlencoded", b"file=abc", 415),
    ],
)
def test_malformed_forms_get_a_json_4xx(client, good, content_type, body, status):
    for endpoint in ("/v1/transcribe", "/v1/audio/transcriptions"):
        r = client.post(endpoint, content=body, headers={"Content-Type": content_type})
        assert r.status_code == status and json_4xx(r)
    served_normally(client, good)
