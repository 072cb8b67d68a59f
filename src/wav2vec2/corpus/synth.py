"""Run the TTS engines and turn their output into 16 kHz mono float audio.

Engines run as subprocesses with the text as an argument (no shell). festival starts slowly
(about 0.35 s), so its utterances are synthesized in one process per batch, from a script.
Resampling and level are done in float (soxr, numpy): sox's integer path clips when it
resamples these engines' loud output.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from wav2vec2.audio import SAMPLE_RATE
from wav2vec2.corpus.voices import Voice

ESPEAK_DEFAULT_WPM = 175
# Speaking rate in words per second at rate 1.0, measured on this corpus's text; used only
# to plan utterance lengths before synthesis (real lengths come from the audio).
WORDS_PER_SECOND = {"espeak": 3.6, "flite": 3.3, "festival": 3.2, "flite-rms": 3.0}
LEAD_SECONDS = 0.35  # leading + trailing silence the engines add


class SynthesisError(RuntimeError):
    """A TTS engine failed or produced no audio."""


@dataclass(frozen=True)
class Request:
    """One utterance to speak: the text, and how fast (and for espeak-ng how high)."""

    spoken: str  # lower-case words with prosodic punctuation
    rate: float = 1.0  # speed, 1.0 = engine default
    pitch: int = 50  # espeak-ng 0-99


def estimate_seconds(num_words: int, voice: Voice, rate: float) -> float:
    """Planned duration of ``num_words`` words spoken by ``voice`` at ``rate``."""
    wps = WORDS_PER_SECOND.get(voice.id, WORDS_PER_SECOND[voice.engine])
    return LEAD_SECONDS + num_words / (wps * rate)


def _read(path: Path) -> np.ndarray:
    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if rate != SAMPLE_RATE:
        audio = soxr.resample(audio, rate, SAMPLE_RATE, quality="VHQ").astype(np.float32)
    if audio.size == 0 or not np.any(audio):
        raise SynthesisError(f"no audio in {path.name}")
    return audio


def _run(cmd: list[str]) -> None:
    got = subprocess.run(cmd, capture_output=True, text=True)
    if got.returncode != 0:
        raise SynthesisError(f"{cmd[0]} failed ({got.returncode}): {got.stderr.strip()[:300]}")


def _espeak(voice: Voice, request: Request, out: Path) -> None:
    wpm = round(ESPEAK_DEFAULT_WPM * request.rate)
    _run(
        ["espeak-ng", "-v", voice.name, "-s", str(wpm), "-p", str(request.pitch), "-w", str(out)]
        + [request.spoken]
    )


def _flite(voice: Voice, request: Request, out: Path) -> None:
    stretch = 1.0 / request.rate  # flite stretches durations: the inverse of speed
    cmd = ["flite", "-voice", voice.name, "--setf", f"duration_stretch={stretch:.4f}"]
    _run([*cmd, "-t", request.spoken, "-o", str(out)])


def _festival(voice: Voice, requests: list[Request], outs: list[Path], folder: Path) -> None:
    lines = [f"(voice_{voice.name})"]
    for request, out in zip(requests, outs):
        # Plain text only reaches here ([a-z' .,;:!?]), so it is safe inside a Scheme string.
        assert '"' not in request.spoken and "\\" not in request.spoken
        lines.append(f"(Parameter.set 'Duration_Stretch {1.0 / request.rate:.4f})")
        lines.append(
            f'(utt.save.wave (utt.synth (Utterance Text "{request.spoken}")) "{out}" \'riff)'
        )
    script = folder / "batch.scm"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _run(["festival", "-b", str(script)])


def synthesize(voice: Voice, requests: list[Request]) -> list[np.ndarray]:
    """Speak each request with ``voice``: 16 kHz mono float32 arrays, in order."""
    with tempfile.TemporaryDirectory(prefix="wav2vec2-tts-") as tmp:
        folder = Path(tmp)
        outs = [folder / f"{i}.wav" for i in range(len(requests))]
        if voice.engine == "festival":
            _festival(voice, requests, outs, folder)
        else:
            speak = _espeak if voice.engine == "espeak" else _flite
            for request, out in zip(requests, outs):
                speak(voice, request, out)
        return [_read(out) for out in outs]


def to_pcm16(audio: np.ndarray, peak: float = 10 ** (-1 / 20)) -> np.ndarray:
    """Normalize the peak to ``peak`` (-1 dBFS) and quantize to int16; never clips."""
    top = float(np.max(np.abs(audio)))
    if top == 0.0:
        raise SynthesisError("silent audio")
    scaled = np.rint(audio.astype(np.float64) * (peak * 32767.0 / top))
    return np.clip(scaled, -32767, 32767).astype(np.int16)
