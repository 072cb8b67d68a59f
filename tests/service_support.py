"""For the service's tests: the demo model's engine, real speech from the built-in TTS test
voices, and a real uvicorn server on a free loopback port."""

from __future__ import annotations

import contextlib
import io
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import uvicorn

from wav2vec2 import Wav2Vec2Inference
from wav2vec2.service import ServiceConfig, create_app

MODEL = Path(__file__).parent / "assets" / "demo_model"
RATE = 16_000
SENTENCES = [
    "THE OLD MAN WENT TO THE HOUSE AND SAT DOWN BY THE FIRE",
    "I DO NOT KNOW WHAT YOU MEAN BY THAT SAID SHE",
    "HE HAS BEEN HERE FOR A LONG TIME AND HE WILL NOT GO",
    "SHE WAS VERY GLAD TO SEE HIM AGAIN AFTER SO MANY YEARS",
]
needs_tts = pytest.mark.skipif(not shutil.which("espeak-ng"), reason="needs espeak-ng")


def speech(n: int = 2, voice_index: int = 0) -> np.ndarray:
    """``n`` of SENTENCES spoken by a held-out espeak voice, 0.3 s apart: 16 kHz float32."""
    from wav2vec2.corpus.synth import Request, synthesize
    from wav2vec2.corpus.voices import voices_by_split

    voice = [v for v in voices_by_split()["test"] if v.engine == "espeak"][voice_index]
    waves = synthesize(voice, [Request(s.lower(), voice.rate, voice.pitch) for s in SENTENCES[:n]])
    pause = np.zeros(int(0.3 * RATE), np.float32)
    return np.concatenate([x for w in waves for x in (w, pause)])


def wav_bytes(wave: np.ndarray, fmt: str = "WAV", subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, wave, RATE, format=fmt, subtype=subtype)
    return buf.getvalue()


def engine() -> Wav2Vec2Inference:
    return Wav2Vec2Inference.from_pretrained(MODEL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(engine: Wav2Vec2Inference, config: ServiceConfig | None = None):
    """The service on a real socket (uvicorn in a thread): yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(engine, config), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextlib.contextmanager
def served(model: Path = MODEL, *flags: str, env: dict | None = None, cwd: Path | None = None,
           timeout: float = 120):  # fmt: skip
    """``wav2vec2 serve MODEL FLAGS`` as its own process on a free port (in ``cwd``, with
    ``env`` added to the environment): yields (base URL, the process). Stopped (SIGTERM,
    then SIGKILL) at the end if still running."""
    import os
    import signal
    import subprocess
    import sys
    import tempfile

    import httpx

    port = free_port()
    src = Path(__file__).parents[1] / "src"
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           **(env or {})}  # fmt: skip
    cmd = [sys.executable, "-m", "wav2vec2", "serve", str(model), "--port", str(port), *flags]
    log = tempfile.TemporaryFile()  # its log (a pipe nobody reads would fill and block it)
    process = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"serve exited: {log.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{url}/v1/models", timeout=2).status_code in (200, 401):
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("serve did not start")
            time.sleep(0.2)
        yield url, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()
