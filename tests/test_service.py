"""The service (``wav2vec2 serve``): every endpoint against the engine it wraps, its formats,
limits, errors, API key, back-pressure, and live streaming. The model is the demo's, the
speech the built-in TTS's held-out voices."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import soundfile as sf
import srt
import webvtt
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse

from service_support import engine as demo_engine
from service_support import needs_tts, running_server, speech, wav_bytes
from wav2vec2.chunking import ChunkConfig
from wav2vec2.cli import build_parser
from wav2vec2.service import ServiceConfig, create_app
from wav2vec2.service.batching import Batcher, QueueFull
from wav2vec2.service.streaming import LiveTranscript

pytestmark = [needs_tts, pytest.mark.timeout(300)]
KEY = "s3cret-key"


@pytest.fixture(scope="module")
def engine():
    return demo_engine()


@pytest.fixture(scope="module")
def wave():
    return speech(2)


@pytest.fixture(scope="module")
def expected(engine, wave):
    """What the engine itself says about the speech as a 16-bit WAV (what is uploaded): the
    service must say the same."""
    (t,) = engine.transcribe([sf.read(io.BytesIO(wav_bytes(wave)), dtype="float32")[0]])
    assert t.ok and len(t.words) >= 5  # the model hears speech
    return t


@pytest.fixture(scope="module")
def client(engine):
    with TestClient(create_app(engine, ServiceConfig(max_upload_mb=2, max_audio_seconds=20))) as c:
        yield c


def test_transcribe_gives_the_engines_words_for_multipart_and_raw_bodies(client, wave, expected):
    data = wav_bytes(wave)
    by_form = client.post("/v1/transcribe", files={"file": ("speech.wav", data, "audio/wav")})
    by_body = client.post("/v1/transcribe", content=data, headers={"Content-Type": "audio/wav"})
    for r in (by_form, by_body):
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["text"] == expected.text and got["model"] == "demo_model"
        assert got["duration"] == pytest.approx(len(wave) / 16000, abs=1e-3)
        assert [w["word"] for w in got["words"]] == expected.text.split()
        for w, e in zip(got["words"], expected.words):
            assert w["start"] == pytest.approx(e.start, abs=1e-3) and w["end"] >= w["start"]
            assert 0 <= w["confidence"] <= 1
    # other containers and rates are converted as the CLI converts them
    flac = client.post("/v1/transcribe", files={"file": ("s.flac", wav_bytes(wave, "FLAC"))})
    assert flac.json()["text"] == expected.text


def test_openai_response_formats(client, wave, expected):
    def ask(fmt, **extra):
        files = {"file": ("speech.wav", wav_bytes(wave), "audio/wav")}
        data = {"model": "whisper-1", "response_format": fmt, **extra}
        r = client.post("/v1/audio/transcriptions", files=files, data=data)
        assert r.status_code == 200, r.text
        return r

    assert ask("json").json() == {"text": expected.text}
    assert ask("text").text.strip() == expected.text
    cues = list(srt.parse(ask("srt").text))
    assert " ".join(c.content for c in cues) == expected.text
    assert cues[0].start.total_seconds() == pytest.approx(expected.words[0].start, abs=1e-3)
    vtt = webvtt.from_buffer(io.StringIO(ask("vtt").text))
    assert " ".join(c.text for c in vtt) == expected.text
    verbose = ask("verbose_json", **{"timestamp_granularities[]": ["word", "segment"]}).json()
    assert verbose["text"] == expected.text and verbose["duration"] > 0
    assert [w["word"] for w in verbose["words"]] == expected.text.split()
    assert " ".join(s["text"] for s in verbose["segments"]) == expected.text
    assert "words" not in ask("verbose_json").json()  # segments only, unless asked


def test_health_models_page_and_openapi_schema(client):
    assert client.get("/health").json()["status"] == "ok"
    assert client.get("/v1/models").json()["data"][0]["id"] == "demo_model"
    page = client.get("/")
    assert page.status_code == 200 and "<title>wav2vec2 transcription</title>" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/app.js", "/recorder.js", "/style.css"):
        assert client.get(asset).status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/audio/transcriptions", "/v1/transcribe", "/health", "/v1/models"} <= set(paths)
    form = paths["/v1/audio/transcriptions"]["post"]["requestBody"]["content"]
    assert "response_format" in form["multipart/form-data"]["schema"]["properties"]


def test_render_gives_the_clis_subtitles(client, expected):
    body = {"text": expected.text, "duration": expected.duration,
            "words": [w.to_dict("word") for w in expected.words]}  # fmt: skip
    from wav2vec2.formats import render

    for fmt in ("txt", "srt", "vtt"):
        r = client.post(f"/v1/render?format={fmt}", json=body)
        assert r.status_code == 200 and r.text == render(expected, fmt)
    assert client.post("/v1/render?format=exe", json=body).status_code == 400


def error(r, status: int, *needles: str) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    e = r.json()["error"]
    assert e["code"] == status and "\n" not in e["message"]
    for needle in needles:
        assert needle in e["message"], e["message"]
    return e


def test_limits_and_errors_are_json_4xx(client, wave):
    big = b"\0" * (3 * 2**20)
    error(client.post("/v1/transcribe", content=big, headers={"Content-Type": "audio/wav"}),
          413, "2 MiB upload limit")  # fmt: skip

    def chunked():  # no Content-Length: counted as it arrives
        for _ in range(3 * 16):
            yield b"\0" * 2**16

    error(client.post("/v1/transcribe", content=chunked()), 413, "upload limit")
    long = wav_bytes(np.zeros(21 * 16000, np.float32))  # 0.7 MB, 21 s: over the 20 s limit
    error(client.post("/v1/transcribe", files={"file": ("long.wav", long)}), 413, "20 s limit")
    error(client.post("/v1/transcribe", json={"audio": "x"}), 415, "application/json")
    error(client.post("/v1/audio/transcriptions", content=wav_bytes(wave)), 415, "multipart")
    error(client.post("/v1/transcribe", files={"other": ("a.wav", b"x")}), 400, "'file'")
    junk = {"file": ("../../etc/passwd", b"not audio at all" * 10)}
    e = error(client.post("/v1/transcribe", files=junk), 422, "unreadable audio")
    assert "upload 'passwd'" in e["message"]  # a name is quoted, never opened
    bad = {"file": ("a.wav", wav_bytes(wave))}
    error(client.post("/v1/audio/transcriptions", files=bad, data={"response_format": "exe"}),
          400, "response_format")  # fmt: skip
    error(client.get("/v1/nothing"), 404)
    assert client.get("/health").status_code == 200  # and the service still serves


def test_api_key_guards_every_api_route(engine, wave):
    app = create_app(engine, ServiceConfig(api_key=KEY))
    data = wav_bytes(wave[:16000])
    routes = [("get", "/health", {}), ("get", "/v1/models", {}),
              ("post", "/v1/transcribe", {"content": data}),
              ("post", "/v1/audio/transcriptions", {"files": {"file": ("a.wav", data)}}),
              ("post", "/v1/render", {"json": {"text": ""}})]  # fmt: skip
    with TestClient(app) as c:
        for method, path, kw in routes:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "wrong"}):
                r = getattr(c, method)(path, headers=headers, **kw)
                error(r, 401, "API key")
                assert r.headers["www-authenticate"] == "Bearer"
            for headers in ({"Authorization": f"Bearer {KEY}"}, {"X-API-Key": KEY}):
                assert getattr(c, method)(path, headers=headers, **kw).status_code == 200
        assert c.get("/").status_code == 200  # the page itself is public; its calls are not
        with pytest.raises(WebSocketDenialResponse):
            with c.websocket_connect("/v1/listen", headers={"X-API-Key": "wrong"}):
                pass
        with c.websocket_connect("/v1/listen") as ws:  # a browser: the key in a first message
            ws.send_bytes(b"\0\0" * 1600)
            message = ws.receive_json()
            assert message["type"] == "error" and message["error"]["code"] == 401
        with c.websocket_connect("/v1/listen") as ws:
            ws.send_json({"api_key": KEY})
            ws.send_bytes((wave[:16000] * 32767).astype("<i2").tobytes())
            ws.send_json({"type": "stop"})
            while (message := ws.receive_json())["type"] == "partial":
                pass
            assert message["type"] == "final"


def test_batcher_batches_what_arrives_together_and_refuses_beyond_its_queue():
    calls: list[int] = []
    release = threading.Event()

    def run(arrays):
        calls.append(len(arrays))
        release.wait(10)
        return [f"t{len(a)}" for a in arrays]

    async def main():
        batcher = Batcher(run, capacity=3, max_batch=8, wait=0.05)
        await batcher.start()
        first = asyncio.create_task(batcher.submit(np.zeros(1)))  # taken at once: blocks run
        await asyncio.sleep(0.1)
        waiting = [asyncio.create_task(batcher.submit(np.zeros(n))) for n in (2, 3, 4)]
        await asyncio.sleep(0.05)
        with pytest.raises(QueueFull):  # three wait already: the fourth is refused at once
            await batcher.submit(np.zeros(5))
        release.set()
        results = await asyncio.gather(first, *waiting)
        await batcher.stop()
        return results

    assert asyncio.run(main()) == ["t1", "t2", "t3", "t4"]
    assert calls == [1, 3]  # the three that waited ran in one engine call


def test_a_full_queue_answers_503_at_once_over_http(engine, wave):
    """One request runs (its engine call held), one waits; the third gets 503 with
    Retry-After without waiting, and the first two are then served."""
    release = threading.Event()
    real = engine.transcribe

    class Held:
        cfg, source, decoder = engine.cfg, engine.source, engine.decoder

        def transcribe(self, audios):
            release.wait(30)
            return real(audios)

    data = wav_bytes(wave[:16000])
    config = ServiceConfig(queue=1, max_batch=1)
    with running_server(Held(), config) as url, ThreadPoolExecutor(2) as pool:
        post = lambda: httpx.post(f"{url}/v1/transcribe", content=data, timeout=60)  # noqa: E731
        first = pool.submit(post)
        time.sleep(0.5)
        second = pool.submit(post)
        time.sleep(0.5)
        start = time.monotonic()
        third = post()
        assert time.monotonic() - start < 1.0
        error(third, 503, "busy")
        assert third.headers["retry-after"] == "1"
        release.set()
        assert first.result().status_code == 200 and second.result().status_code == 200


def test_live_stream_partials_then_the_files_transcript(client, wave, expected):
    pcm = (np.clip(wave, -1, 1) * 32767).astype("<i2")
    with client.websocket_connect("/v1/listen?encoding=pcm_s16le") as ws:
        for i in range(0, len(pcm), 1600):  # 100 ms messages
            ws.send_bytes(pcm[i : i + 1600].tobytes())
        ws.send_json({"type": "stop"})
        messages = []
        while (m := ws.receive_json())["type"] == "partial":
            messages.append(m)
    assert m["type"] == "final", m
    assert len(messages) >= 1 and all(p["duration"] <= m["duration"] for p in messages)
    (int16,) = demo_engine().transcribe([pcm.astype(np.float32) / 32768])
    assert m["text"] == int16.text and len(m["words"]) == len(int16.words)
    assert m["text"].split()[:3] == expected.text.split()[:3]  # int16 rounding aside, the same


def test_partials_reuse_committed_chunks_and_end_at_the_files_transcript(engine, wave):
    # small chunks, so that a 7 s recording has several: committed ones are kept, not re-run
    engine.chunking = ChunkConfig(2.0, 0.5)
    try:
        live = LiveTranscript(engine, 60)
        runs = []
        original = engine.emissions
        engine.emissions = lambda audios: runs.append(len(audios[0])) or original(audios)
        for end in range(8000, len(wave) + 8000, 8000):
            live.add(wave[end - 8000 : end])
            live.partial(live.snapshot())
        last = live.partial(live.snapshot())
        del engine.emissions
        (whole,) = engine.transcribe([wave])
        assert last.text == whole.text
        assert [(w.start, w.end) for w in last.words] == [(w.start, w.end) for w in whole.words]
        # each partial re-ran only its open chunks (at most 3 s each), never the whole
        assert max(runs) <= 3.1 * 16000 < len(wave)
    finally:
        engine.chunking = ChunkConfig()


def test_live_stream_refusals(client):
    with client.websocket_connect("/v1/listen?encoding=f32le") as ws:
        ws.send_bytes(np.array([0.1, np.nan], "<f4").tobytes())
        m = ws.receive_json()
        assert m["error"]["code"] == 422 and "NaN" in m["error"]["message"]
    with client.websocket_connect("/v1/listen") as ws:
        ws.send_bytes(b"\0\0\0")  # half a sample
        assert ws.receive_json()["error"]["code"] == 422
    with client.websocket_connect("/v1/listen") as ws:
        for _ in range(21):  # 21 s over the 20 s limit
            ws.send_bytes(b"\0\0" * 16000)
        m = ws.receive_json()
        while m["type"] == "partial":
            m = ws.receive_json()
        assert m["error"]["code"] == 413
    with pytest.raises(WebSocketDenialResponse):
        with client.websocket_connect("/v1/listen?encoding=mp3"):
            pass
    assert client.get("/health").json()["streams"] == 0


def test_live_streams_beyond_the_limit_get_503_and_a_freed_slot_is_reused(engine, wave):
    app = create_app(engine, ServiceConfig(max_streams=2))
    with TestClient(app) as c:
        with c.websocket_connect("/v1/listen"), c.websocket_connect("/v1/listen"):
            assert c.get("/health").json()["streams"] == 2
            with pytest.raises(WebSocketDenialResponse) as denied:
                with c.websocket_connect("/v1/listen"):
                    pass
            assert denied.value.status_code == 503
            assert "2 live streams run already" in denied.value.json()["error"]["message"]
        assert c.get("/health").json()["streams"] == 0
        with c.websocket_connect("/v1/listen") as ws:  # the slots came back
            ws.send_bytes((wave[:16000] * 32767).astype("<i2").tobytes())
            ws.send_json({"type": "stop"})
            while (message := ws.receive_json())["type"] == "partial":
                pass
            assert message["type"] == "final"


def test_with_an_lm_the_service_decodes_by_beam_search(wave, tmp_path_factory):
    from lm_support import TEXT, build_lm
    from wav2vec2 import Wav2Vec2Inference

    engine = Wav2Vec2Inference.from_pretrained(demo_engine().source, lm=build_lm(tmp_path_factory))
    data = wav_bytes(wave)
    (expected,) = engine.transcribe([sf.read(io.BytesIO(data), dtype="float32")[0]])
    with TestClient(create_app(engine)) as c:
        assert c.get("/v1/models").json()["data"][0]["lm"] == "LexiconBeamDecoder"
        got = c.post("/v1/transcribe", content=data).json()
    lexicon = {w for line in TEXT for w in line.split()}
    assert got["text"] == expected.text and set(got["text"].split()) <= lexicon


def test_serve_cli_flags():
    args = build_parser().parse_args(
        ["serve", "m", "--port", "9", "--api-key", "k", "--max-upload-mb", "3",
         "--max-audio-seconds", "30", "--queue", "2", "--lm", "lmdir"]
    )  # fmt: skip
    got = (args.host, args.port, args.api_key, args.queue, args.lm)
    assert got == ("127.0.0.1", 9, "k", 2, "lmdir")
    assert (args.max_upload_mb, args.max_audio_seconds) == (3, 30)


def test_openais_own_client_works_against_the_service(engine, wave, expected, tmp_path):
    openai = pytest.importorskip("openai")
    path = tmp_path / "speech.wav"
    path.write_bytes(wav_bytes(wave))
    with running_server(engine, ServiceConfig(api_key=KEY)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)
        with path.open("rb") as f:
            plain = client.audio.transcriptions.create(model="whisper-1", file=f)
        assert plain.text == expected.text
        with path.open("rb") as f:
            verbose = client.audio.transcriptions.create(
                model="whisper-1", file=f, response_format="verbose_json",
                timestamp_granularities=["word"],
            )  # fmt: skip
        assert [w.word for w in verbose.words] == expected.text.split()
        assert verbose.words[0].start == pytest.approx(expected.words[0].start, abs=1e-3)
        with path.open("rb") as f:
            subtitles = client.audio.transcriptions.create(
                model="whisper-1", file=f, response_format="srt"
            )
        assert " ".join(c.content for c in srt.parse(subtitles)) == expected.text
        assert [m.id for m in client.models.list()] == ["demo_model"]
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0).models.list()
