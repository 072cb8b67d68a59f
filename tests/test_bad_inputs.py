"""One bad-input suite for every entry point (docs/reliability.md lists each case).

Each kind of input (audio, manifests, labels, dictionaries, models) has one list of bad
cases, made fresh per test, and every verb and Python entry that reads that kind gets the
same list. The promise checked for each pair: exit status 2 (or a Wav2Vec2Error in Python),
exactly one stderr line that names the bad input and the problem, no traceback, no hang
(pytest-timeout), and no output file left behind. Inputs that are converted rather than
refused (other rates, stereo, 24-bit, float) are checked against the conversion.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file, save_file

from hf_reference import make_ctc, save_with_processor
from wav2vec2 import Wav2Vec2Inference
from wav2vec2.audio import load_audio
from wav2vec2.cli import main
from wav2vec2.data.dataset import AudioDataset
from wav2vec2.data.manifest import read_dictionary, read_labels
from wav2vec2.errors import Wav2Vec2Error

pytestmark = pytest.mark.timeout(180)  # a hang is a failure, not a stuck CI job

RATE = 16_000


def tone(seconds: float = 1.0, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny CTC model in our own format (layer-norm encoder: 60-sample receptive field)."""
    hf = save_with_processor(make_ctc("lv60k_like"), tmp_path_factory.mktemp("hf"))
    ours = tmp_path_factory.mktemp("ours") / "model"
    assert main(["convert", str(hf), str(ours)]) == 0
    return ours


def one_line_error(capsys, argv, *needles) -> str:
    """Run the CLI; assert exit 2 and one stderr line holding every needle; return stdout."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert str(needle) in lines[0], (needle, lines[0])
    return out


# -- audio ---------------------------------------------------------------------------------


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _wav(path: Path, wave: np.ndarray, subtype: str = "PCM_16") -> Path:
    sf.write(path, wave, RATE, subtype=subtype)
    return path


def _truncated_flac(d: Path) -> Path:
    full = d / "full.flac"
    sf.write(full, tone(2.0), RATE)
    return _write(d / "truncated.flac", full.read_bytes()[: full.stat().st_size // 2])


def _with(wave: np.ndarray, index: int, value: float) -> np.ndarray:
    wave = wave.copy()
    wave[index] = value
    return wave


def _fifo(d: Path) -> Path:
    os.mkfifo(d / "pipe.wav")  # reading it would block forever: refused before opening
    return d / "pipe.wav"


def _folder(d: Path) -> Path:
    (d / "folder.wav").mkdir()
    return d / "folder.wav"


# name -> (make the file in a folder, what the one error line says)
BAD_AUDIO: dict[str, tuple[Callable[[Path], Path], str]] = {
    "corrupt": (lambda d: _write(d / "corrupt.wav", b"RIFF\0\0\0\0WAVEjunk" * 9), "unreadable"),
    "truncated_flac": (_truncated_flac, "unreadable audio"),
    "text_as_wav": (lambda d: _write(d / "notes.wav", b"hello, this is text\n" * 50), "unreadable"),
    "empty_file": (lambda d: _write(d / "empty.wav", b""), "empty file (0 bytes)"),
    "folder": (_folder, "is a folder, not an audio file"),
    "pipe": (_fifo, "not a regular file"),
    "missing": (lambda d: d / "missing.wav", "no such audio file"),
    "too_short": (lambda d: _wav(d / "short.wav", tone(0.002)), "too short: 32 samples"),
    "nan": (lambda d: _wav(d / "nan.wav", _with(tone(), 5, np.nan), "FLOAT"), "1 NaN or infinite"),
    "inf": (lambda d: _wav(d / "inf.wav", _with(tone(), 9, np.inf), "FLOAT"), "NaN or infinite"),
}


@pytest.fixture(params=sorted(BAD_AUDIO))
def bad_audio(request, tmp_path) -> tuple[Path, str]:
    make, message = BAD_AUDIO[request.param]
    return make(tmp_path), message


def test_transcribe_gives_one_line_and_keeps_the_line_of_each_input(capsys, model_dir, bad_audio):
    path, message = bad_audio
    good = _wav(path.parent / "good.wav", tone())
    if path.is_dir():  # transcribe searches folders: one without audio is refused up front
        out = one_line_error(capsys, ["transcribe", model_dir, path, good], path, "no audio files")
        assert out == ""
        return
    out = one_line_error(capsys, ["transcribe", model_dir, path, good], path, message)
    rows = [line.split("\t") for line in out.split("\n")[:-1]]
    assert [p for p, _ in rows] == [str(path), str(good)] and rows[0][1] == ""


@pytest.mark.parametrize("verb", ["transcribe", "align"])
def test_a_long_file_gone_bad_mid_way_gives_one_line(capsys, tmp_path, model_dir, verb):
    # A file that runs in chunks is read chunk by chunk: its header is sound, and the bad
    # data is only met after some of it has run (wav2vec2.audio_stream).
    full = tmp_path / "full.flac"
    sf.write(full, tone(4.0), RATE)
    cut = _write(tmp_path / "cut.flac", full.read_bytes()[: full.stat().st_size * 3 // 4])
    chunks = ["--chunk-seconds", "1", "--context-seconds", "0.25"]
    if verb == "align":
        assert one_line_error(capsys, ["align", model_dir, cut, "HELLO", *chunks], cut) == ""
        return
    good = _wav(tmp_path / "good.wav", tone())
    out = one_line_error(capsys, ["transcribe", model_dir, cut, good, *chunks], cut, "unreadable")
    rows = [line.split("\t") for line in out.split("\n")[:-1]]
    assert [p for p, _ in rows] == [str(cut), str(good)] and rows[0][1] == ""


def test_features_gives_one_line_and_writes_nothing(capsys, tmp_path, model_dir, bad_audio):
    path, message = bad_audio
    target = tmp_path / "out" / "f.npy"
    one_line_error(capsys, ["features", model_dir, path, "-o", target], path, message)
    assert not target.parent.exists() or not any(target.parent.iterdir())


def test_align_gives_one_line_and_prints_nothing(capsys, model_dir, bad_audio):
    path, message = bad_audio
    assert one_line_error(capsys, ["align", model_dir, path, "HELLO"], path, message) == ""


def test_python_api_reports_the_input(model_dir, bad_audio):
    path, message = bad_audio
    engine = Wav2Vec2Inference.from_pretrained(model_dir)
    (result,) = engine.transcribe([path])
    assert not result.ok and str(path) in result.error and message in result.error
    with pytest.raises(Wav2Vec2Error, match=re.escape(message)):
        engine.features(path)
    with pytest.raises(Wav2Vec2Error, match=re.escape(message)):
        engine.align(path, "HELLO")


def test_evaluate_reports_and_skips_the_bad_file(capsys, tmp_path, model_dir, bad_audio):
    path, message = bad_audio
    d = labeled_split(tmp_path / "data", good=1)
    rel = os.path.relpath(path, d)
    (d / "test.tsv").write_text(f"{d}\nu0.wav\t{RATE}\n{rel}\t{RATE}\n")
    (d / "test.wrd").write_text("AB\nAB\n")
    argv = ["evaluate", model_dir, "--data", d, "--split", "test", "--out", tmp_path / "r"]
    assert main([str(a) for a in argv]) == 0
    out, err = capsys.readouterr()
    assert "(1 utterances, 1 skipped" in out and "Traceback" not in err
    (line,) = [ln for ln in err.splitlines() if path.name in ln]
    assert message in line


def test_manifest_skips_and_lists_the_bad_file(capsys, tmp_path, bad_audio):
    path, message = bad_audio
    if not path.is_file() and not path.is_fifo():
        pytest.skip("manifest searches folders for files: a folder or a missing file is not one")
    _wav(path.parent / "good.wav", tone())
    argv = ["manifest", path.parent, tmp_path / "m", "--valid-percent", "0"]
    assert main([str(a) for a in argv]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    (line,) = [ln for ln in out.splitlines() if ln.startswith(f"skipped {path.name}")]
    assert message.split(":")[0].removesuffix(" 32 samples") in line or "too short" in line
    kept = (tmp_path / "m" / "train.tsv").read_text().splitlines()[1:]
    assert f"good.wav\t{RATE}" in kept and not any(k.startswith(path.name) for k in kept)


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((2, 16000), np.float32), "expected mono audio"),
        (np.full(16000, np.nan, np.float32), "16000 NaN or infinite"),
        (np.zeros(10, np.float32), "too short"),
        (np.array(["not", "audio"]), "expected a float array"),
    ],
)
def test_python_api_rejects_bad_arrays(model_dir, array, message):
    engine = Wav2Vec2Inference.from_pretrained(model_dir)
    (result,) = engine.transcribe([array])
    assert not result.ok and message in result.error


@contextlib.contextmanager
def as_user(uid: int):
    """Run the block with effective uid ``uid``: tests run as root, who may read anything, so
    a permission error is only real for another user."""
    os.seteuid(uid)
    try:
        yield
    finally:
        os.seteuid(0)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch users")
def test_a_file_without_read_permission(tmp_path_factory):
    # a folder everyone may enter (pytest's own are 0700), holding a file only root may read
    folder = tmp_path_factory.mktemp("perm")
    for p in (folder, *folder.parents):
        if p == Path("/"):
            break
        p.chmod(p.stat().st_mode | 0o011)
    path = _wav(folder / "secret.wav", tone())
    path.chmod(0o600)
    with as_user(65534), pytest.raises(Wav2Vec2Error, match="cannot read audio .Permission denied"):
        load_audio(path)


@pytest.mark.parametrize(
    "rate, channels, subtype",
    [(8000, 1, "PCM_16"), (44100, 1, "PCM_16"), (RATE, 2, "PCM_16"), (RATE, 1, "PCM_24"),
     (RATE, 1, "FLOAT"), (48000, 2, "PCM_24")],
)  # fmt: skip
def test_other_rates_channels_and_sample_formats_are_converted(
    capsys, tmp_path, model_dir, rate, channels, subtype
):
    wave = tone(1.0, rate)
    data = np.stack([wave] * channels, axis=1) if channels > 1 else wave
    path = tmp_path / "in.wav"
    sf.write(path, data, rate, subtype=subtype)
    loaded = load_audio(path)
    assert loaded.dtype == np.float32 and abs(len(loaded) - RATE) <= 1
    if rate == RATE:  # same signal, up to the sample format's precision
        assert np.abs(loaded - wave).max() < 1e-4
    assert main(["transcribe", str(model_dir), str(path)]) == 0
    capsys.readouterr()


def test_a_truncated_wav_reads_the_samples_it_holds(tmp_path):
    # PCM WAV has no frames to lose sync in: libsndfile, sox and ffmpeg all read what is there
    full = _wav(tmp_path / "full.wav", tone(2.0))
    cut = _write(tmp_path / "cut.wav", full.read_bytes()[: 44 + 2 * RATE])
    assert np.array_equal(load_audio(cut), load_audio(full)[:RATE])


# -- manifests, labels and dictionaries ------------------------------------------------------


def labeled_split(d: Path, good: int = 2) -> Path:
    """d/test.tsv + test.wrd + test.ltr + dict.ltr.txt over ``good`` one-second clips."""
    d.mkdir(parents=True, exist_ok=True)
    names = [f"u{i}.wav" for i in range(good)]
    for name in names:
        _wav(d / name, tone())
    (d / "test.tsv").write_text(f"{d}\n" + "".join(f"{n}\t{RATE}\n" for n in names))
    (d / "test.wrd").write_text("AB\n" * good)
    (d / "test.ltr").write_text("A B |\n" * good)
    (d / "dict.ltr.txt").write_text("| 9\nA 5\nB 4\n")
    return d


# name -> (file to change, new content, what the one error line says)
BAD_TEXT = {
    "no_root_line": ("test.tsv", "u0.wav\t16000\nu1.wav\t16000\n", "line 1 is an entry"),
    "manifest_with_spaces": ("test.tsv", "{d}\nu0.wav 16000\nu1.wav\t16000\n", "line 2: expected"),
    "manifest_bad_count": ("test.tsv", "{d}\nu0.wav\tmany\nu1.wav\t16000\n", "line 2: expected"),
    "empty_manifest": ("test.tsv", "", "empty manifest"),
    "manifest_not_utf8": ("test.tsv", b"{d}\nu\xff.wav\t16000\n", "line 2: not UTF-8"),
    "labels_not_utf8": ("test.wrd", b"AB\nA\xffB\n", "line 2: not UTF-8"),
    "too_few_labels": ("test.wrd", "AB\n", "1 lines for 2 manifest entries"),
}  # fmt: skip


@pytest.fixture(params=sorted(BAD_TEXT))
def bad_split(request, tmp_path) -> tuple[Path, Path, str]:
    d = labeled_split(tmp_path / "data")
    name, content, message = BAD_TEXT[request.param]
    if isinstance(content, str):
        content = content.format(d=d).encode()
    (d / name).write_bytes(content.replace(b"{d}", str(d).encode()))
    return d, d / name, message


def test_evaluate_names_the_bad_file(capsys, tmp_path, model_dir, bad_split):
    d, path, message = bad_split
    out = tmp_path / "report"
    one_line_error(
        capsys, ["evaluate", model_dir, "--data", d, "--split", "test", "--out", out], path, message
    )
    assert not out.exists()


@pytest.mark.parametrize("verb", ["finetune", "pretrain"])
def test_training_names_the_bad_manifest(capsys, tmp_path, model_dir, bad_split, verb):
    d, path, message = bad_split
    if path.suffix != ".tsv":
        pytest.skip("training reads .ltr labels (their cases are below)")
    (d / "train.tsv").write_bytes(path.read_bytes())
    (d / "train.ltr").write_text("A B |\n" * 2)
    argv = [verb, "--data", d, "--out", tmp_path / "run", "--max-updates", 1]
    argv += ["--init", model_dir] if verb == "finetune" else ["--preset", "small"]
    one_line_error(capsys, argv, d / "train.tsv", message.replace("test", "train"))


def test_python_readers_name_the_bad_file(bad_split):
    d, path, message = bad_split
    if "manifest entries" in message:
        pytest.skip("a count is checked against the manifest by its callers (above)")

    def dataset(p):
        return AudioDataset(p, min_valid_samples=60, pad=False, seed=0)

    reader = dataset if path.suffix == ".tsv" else read_labels
    with pytest.raises(Wav2Vec2Error, match=re.escape(message)):
        reader(path)


@pytest.mark.parametrize(
    "ltr, message",
    [
        (b"A B |\nA \xff |\n", "line 2: not UTF-8"),
        (b"A B |\n", "1 lines for 2 manifest entries"),
    ],
)
def test_finetune_labels_that_cannot_be_used(capsys, tmp_path, model_dir, ltr, message):
    d = labeled_split(tmp_path / "data")
    (d / "train.tsv").write_bytes((d / "test.tsv").read_bytes())
    (d / "train.ltr").write_bytes(ltr)
    argv = ["finetune", "--data", d, "--init", model_dir, "--out", tmp_path / "run"]
    one_line_error(capsys, [*argv, "--max-updates", 1], d / "train.ltr", message)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"| 9\nA\n", "line 2: expected 'SYMBOL COUNT'"),
        (b"| 9\nA 5\nA 4\n", "line 3: symbol 'A' is listed twice"),
        (b"| 9\n\xff 5\n", "line 2: not UTF-8"),
        (b"\n", "empty dictionary"),
    ],
)
def test_dictionary_errors_name_the_line(capsys, tmp_path, model_dir, content, message):
    path = _write(tmp_path / "dict.ltr.txt", content)
    with pytest.raises(Wav2Vec2Error, match=re.escape(message)):
        read_dictionary(path)
    d = labeled_split(tmp_path / "data")
    (d / "train.tsv").write_bytes((d / "test.tsv").read_bytes())
    (d / "train.ltr").write_bytes((d / "test.ltr").read_bytes())
    (d / "dict.ltr.txt").write_bytes(content)
    argv = ["finetune", "--data", d, "--init", model_dir, "--out", tmp_path / "run"]
    one_line_error(capsys, [*argv, "--max-updates", 1], d / "dict.ltr.txt", message)


# -- models ----------------------------------------------------------------------------------


def _retensor(model: Path, change: Callable[[dict], dict]) -> None:
    weights = model / "model.safetensors"
    save_file(change(load_file(str(weights))), str(weights))


def _bad_model(case: str, src: Path, target: Path) -> None:
    if case in ("missing",):
        return
    target.mkdir()
    if case == "bad_json":
        (target / "config.json").write_text("{not json")
        return
    if case == "other_model":
        (target / "config.json").write_text('{"model_type": "bert"}')
        return
    if case == "no_config":
        return
    for f in src.iterdir():
        (target / f.name).write_bytes(f.read_bytes())
    name = "encoder.layers.0.attention.q_proj.weight"
    if case == "corrupt_weights":
        weights = target / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:1000])
    elif case == "wrong_shape":
        _retensor(target, lambda s: {**s, name: s[name][:, :-1].contiguous()})
    elif case == "wrong_dtype":
        _retensor(target, lambda s: {**s, name: s[name].to(torch.int32)})
    elif case == "missing_tensor":
        _retensor(target, lambda s: {k: v for k, v in s.items() if k != name})
    elif case == "bad_vocab_json":
        (target / "vocab.json").write_text('{"A": 0,')
    elif case == "bad_config_values":
        meta = json.loads((target / "config.json").read_text())
        meta["model"]["transformer"] = "twelve"
        (target / "config.json").write_text(json.dumps(meta))


BAD_MODELS = {
    "missing": "no such file or directory",
    "no_config": "no config.json",
    "bad_json": "not valid JSON",
    "other_model": "unsupported model type 'bert'",
    "corrupt_weights": "corrupt or truncated weights file",
    "wrong_shape": "q_proj.weight has shape",
    "wrong_dtype": "q_proj.weight is int32",
    "missing_tensor": "weights do not match the config",
    "bad_vocab_json": "vocab.json",
    "bad_config_values": "invalid wav2vec2 config",
}


@pytest.fixture(params=sorted(BAD_MODELS))
def bad_model(request, tmp_path, model_dir) -> tuple[Path, str]:
    target = tmp_path / request.param
    _bad_model(request.param, model_dir, target)
    return target, BAD_MODELS[request.param]


@pytest.mark.parametrize("verb", ["info", "transcribe", "features", "convert", "export"])
def test_every_verb_that_reads_a_model_names_it(capsys, tmp_path, bad_model, verb):
    target, message = bad_model
    wav = _wav(tmp_path / "a.wav", tone())
    argv = {
        "info": ["info", target],
        "transcribe": ["transcribe", target, wav],
        "features": ["features", target, wav, "-o", tmp_path / "f.npy"],
        "convert": ["convert", target, tmp_path / "converted"],
        "export": ["export", "onnx", target, tmp_path / "m.onnx"],
    }[verb]
    out = one_line_error(capsys, argv, target.name, message)
    assert out == "" and not (tmp_path / "f.npy").exists() and not (tmp_path / "converted").exists()
    assert not (tmp_path / "m.onnx").exists()


def test_the_python_api_names_the_bad_model(bad_model):
    target, message = bad_model
    with pytest.raises(Wav2Vec2Error, match=message.replace("(", r"\(")):
        Wav2Vec2Inference.from_pretrained(target)


def test_finetune_names_the_bad_init_model(capsys, tmp_path, bad_model):
    target, message = bad_model
    d = labeled_split(tmp_path / "data")
    (d / "train.tsv").write_bytes((d / "test.tsv").read_bytes())
    (d / "train.ltr").write_bytes((d / "test.ltr").read_bytes())
    argv = ["finetune", "--data", d, "--init", target, "--out", tmp_path / "run"]
    one_line_error(capsys, [*argv, "--max-updates", 1], target.name, message)
