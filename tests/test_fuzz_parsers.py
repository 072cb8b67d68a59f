"""Fuzzing the readers of user files with hypothesis (a bounded number of examples each, a
few seconds in all): whatever the bytes, the audio loader and the manifest, label and
dictionary parsers either return a well-formed result or raise one Wav2Vec2Error that names
the file. Any other exception, a hang or a malformed result is a bug."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wav2vec2.audio import load_audio
from wav2vec2.data.manifest import read_labels, read_manifest, write_labels
from wav2vec2.errors import Wav2Vec2Error
from wav2vec2.vocab import read_dictionary

pytestmark = pytest.mark.timeout(120)

# no example database in the checkout; derandomized so that CI runs the same examples
FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def _valid(fmt: str) -> bytes:
    buf = io.BytesIO()
    t = np.arange(1600) / 16000
    sf.write(buf, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000, format=fmt)
    return buf.getvalue()


SEEDS = {fmt: _valid(fmt) for fmt in ("WAV", "FLAC")}


def read_or_refuse(reader, data: bytes, name: str):
    """``reader`` on a fresh file holding ``data`` (hypothesis calls a test many times in one
    tmp_path): its result, or None when it refused the file with one Wav2Vec2Error line
    naming it. Any other exception fails the test."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        try:
            return reader(path)
        except Wav2Vec2Error as exc:
            message = str(exc)
            assert str(path) in message and "\n" not in message
            return None


@st.composite
def damaged_audio(draw) -> bytes:
    """A valid WAV or FLAC with bytes overwritten, cut or appended, or plain random bytes."""
    kind = draw(st.sampled_from(["WAV", "FLAC", "random"]))
    if kind == "random":
        return draw(st.binary(max_size=2000))
    data = bytearray(SEEDS[kind])
    for _ in range(draw(st.integers(0, 8))):
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut]) + draw(st.binary(max_size=64))


@FUZZ
@given(damaged_audio())
def test_audio_loader(data):
    wave = read_or_refuse(load_audio, data, "x.wav")
    if wave is None:
        return
    assert wave.dtype == np.float32 and wave.ndim == 1 and len(wave) > 0
    assert np.isfinite(wave).all()


lines = st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=30), max_size=8)


@st.composite
def manifest_bytes(draw) -> bytes:
    """Text shaped like a manifest (a root, then path<TAB>count lines with noise), or bytes."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=300))
    body = [draw(st.sampled_from(["/data", "", "a.wav\t12", "  "]))]
    for _ in range(draw(st.integers(0, 6))):
        rel = draw(st.sampled_from(["a.wav", "d/b.flac", "", "x y.wav"]))
        sep = draw(st.sampled_from(["\t", " ", "\t\t", ""]))
        count = draw(st.sampled_from(["16000", "-5", "1e3", "", "0", " 7"]))
        body.append(rel + sep + count)
    end = draw(st.sampled_from(["\n", "\r\n", ""]))
    return (end or "\n").join(body).encode() + end.encode()


@FUZZ
@given(manifest_bytes())
def test_manifest_parser(data):
    got = read_or_refuse(read_manifest, data, "train.tsv")
    if got is None:
        return
    root, entries = got
    assert root == root.strip() and root  # the root line, whatever folder it names
    for rel, count in entries:
        assert rel and "\t" not in rel and isinstance(count, int) and count >= 0


@FUZZ
@given(st.binary(max_size=300))
def test_label_parser(data):
    got = read_or_refuse(read_labels, data, "train.wrd")
    if got is None:
        return
    assert got == data.decode("utf-8").split("\n")[: len(got)]


@settings(FUZZ, max_examples=50)
@given(
    st.lists(st.text(alphabet=st.characters(blacklist_characters="\n"), max_size=20), max_size=6)
)
def test_labels_round_trip(labels):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.wrd"
        write_labels(path, labels)
        assert read_labels(path) == labels


@st.composite
def dictionary_bytes(draw) -> bytes:
    if draw(st.booleans()):
        return draw(st.binary(max_size=200))
    rows = []
    for _ in range(draw(st.integers(0, 6))):
        symbol = draw(st.sampled_from(["A", "|", "'", "", "A B", "é"]))
        count = draw(st.sampled_from(["3", "0", "x", "", "-1", "2 #fairseq:overwrite"]))
        rows.append(f"{symbol} {count}")
    return "\n".join(rows).encode()


@FUZZ
@given(dictionary_bytes())
def test_dictionary_parser(data):
    got = read_or_refuse(read_dictionary, data, "dict.ltr.txt")
    if got is None:
        return
    assert got and all(s and isinstance(c, int) and c >= 0 for s, c in got.items())
